//! The request / reply / start lifecycle (the seed's handshake).
//!
//! Offerer: `add_stream`… → `request` (streams TransportReady, phase Requested) → the answer
//! arrives (`complete_request`) → `start_with` (Connecting, or Deactivated where the answer
//! does not match). Answerer: `add_stream`… → `reply` (TransportReady, or Deactivated where
//! the offer does not match) → `start` (Connecting).

use crate::crypto::{Ephemeral, KEY_LEN, Protection, Secrets};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::Conn;
use super::{Remote, Session, SessionPhase};
use crate::error::Error;
use crate::event::Event;
use crate::negotiation::{Answer, Offer, PendingOffer, Reply, RequestOutcome};
use crate::sdp::{MediaDescription, Refusal, SessionDescription};
use crate::stream::{StateReason, Stream, StreamId};
use crate::time::Instant;
use crate::transport::state::Reliable;
use crate::types::{Candidate, StreamOptions, StreamState, StreamType};

/// Visible ASCII without spaces: what a bundle string may contain.
fn valid_bundle(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

impl Session {
    fn phase_error(&self, op: &'static str) -> Error {
        Error::SessionPhase {
            op,
            phase: self.phase.name(),
        }
    }

    pub(crate) fn add_stream(
        &mut self,
        conn: &mut Conn,
        stream_type: StreamType,
        options: StreamOptions,
    ) -> Result<StreamId, Error> {
        if self.phase != SessionPhase::New {
            return Err(self.phase_error("add_stream"));
        }
        let max = conn
            .config
            .max_streams_per_session
            .min(usize::from(u8::MAX));
        if self.streams.len() >= max {
            return Err(Error::Limit {
                what: "streams per session",
                max,
            });
        }
        let id = StreamId(self.streams.len() as u8);
        let mut stream = Stream::new(id, stream_type, options, &self.span);
        if stream.is_reliable() {
            stream.reliable = Some(Reliable::new(&conn.config.transport));
        }
        self.streams.push(stream);
        self.set_state(conn, id.index(), StreamState::Initialized, None);
        Ok(id)
    }

    /// Our side of a description: identity, credentials, and the given media.
    fn local_description(&self, media: Vec<MediaDescription>) -> SessionDescription {
        let mut desc =
            SessionDescription::new(self.id.0, self.local_ufrag.clone(), self.local_pwd.clone());
        desc.media = media;
        desc
    }

    fn media_for(stream: &Stream, hosts: &[Candidate]) -> MediaDescription {
        MediaDescription {
            stream_type: stream.stream_type,
            options: stream.options,
            rejected: false,
            candidates: hosts.to_vec(),
        }
    }

    pub(crate) fn request(
        &mut self,
        conn: &mut Conn,
        hosts: &[Candidate],
        now: Instant,
        bundle: &str,
    ) -> Result<PendingOffer, Error> {
        if self.phase != SessionPhase::New {
            return Err(self.phase_error("request"));
        }
        if self.streams.is_empty() {
            return Err(Error::SessionPhase {
                op: "request",
                phase: "without streams",
            });
        }
        if bundle.len() > conn.config.max_bundle_len {
            return Err(Error::Limit {
                what: "bundle length",
                max: conn.config.max_bundle_len,
            });
        }
        if !valid_bundle(bundle) {
            return Err(Error::InvalidText("bundle (visible ASCII, no spaces)"));
        }
        if hosts.is_empty() {
            return Err(Error::NoCandidates);
        }
        let media = self
            .streams
            .iter()
            .map(|s| Self::media_for(s, hosts))
            .collect();
        let mut desc = self.local_description(media);
        desc.bundle = (!bundle.is_empty()).then(|| String::from(bundle));
        crate::trace::log_info!(bundle, streams = self.streams.len(), "requesting a session");
        if self.needs_protection() {
            // Our half of the key exchange travels in the offer.
            let eph = Ephemeral::generate(&mut conn.rng);
            desc.key = Some(eph.public().to_vec());
            self.ephemeral = Some(eph);
        }
        if let Some(secret) = &conn.config.identity {
            crate::crypto::identity::sign(secret, &mut desc);
        }
        self.phase = SessionPhase::Requested {
            deadline: now + conn.config.request_timeout,
        };
        self.set_states_from(
            conn,
            StreamState::Initialized,
            StreamState::TransportReady,
            None,
        );
        Ok(PendingOffer {
            session: self.id,
            offer: Offer(desc),
        })
    }

    /// Takes the peer's description: its id and its candidates (deduplicated).
    fn learn_remote(&mut self, desc: &SessionDescription) {
        let mut candidates: Vec<Candidate> = Vec::new();
        for c in desc
            .media
            .iter()
            .filter(|m| !m.rejected)
            .flat_map(|m| &m.candidates)
        {
            if !candidates.iter().any(|k| k.address == c.address) {
                candidates.push(c.clone());
            }
        }
        self.remote = Some(Remote {
            id: desc.session_id,
            ufrag: desc.ice_ufrag.clone(),
            candidates,
        });
    }

    pub(crate) fn reply(
        &mut self,
        conn: &mut Conn,
        hosts: &[Candidate],
        offer: &Offer,
        reply: Reply,
    ) -> Result<Answer, Error> {
        if self.phase != SessionPhase::New {
            return Err(self.phase_error("reply"));
        }
        let offered = &offer.0;
        if offered.media.len() > conn.config.max_streams_per_session {
            return Err(Error::Limit {
                what: "streams per session",
                max: conn.config.max_streams_per_session,
            });
        }
        let mut desc = self.local_description(Vec::new());
        desc.reply_to = Some(offered.session_id);
        if let Reply::Refuse { status, reason } = reply {
            if status == 0 {
                return Err(Error::ZeroRefusalStatus);
            }
            if reason.len() > conn.config.max_reason_len {
                return Err(Error::Limit {
                    what: "reason length",
                    max: conn.config.max_reason_len,
                });
            }
            if reason.contains(['\r', '\n', '\0']) {
                return Err(Error::InvalidText("reason (no CR, LF or NUL)"));
            }
            crate::trace::log_info!(status, reason = %reason, "refusing the request");
            desc.media = offered
                .media
                .iter()
                .map(|m| MediaDescription {
                    rejected: true,
                    candidates: Vec::new(),
                    ..m.clone()
                })
                .collect();
            desc.refusal = Some(Refusal { status, reason });
            if let Some(secret) = &conn.config.identity {
                crate::crypto::identity::sign(secret, &mut desc);
            }
            self.end(conn, StreamState::Closed, StateReason::RefusedLocally);
            return Ok(Answer(desc));
        }
        if hosts.is_empty() {
            return Err(Error::NoCandidates);
        }
        // RFC 3264: one answer media section per offered one, in order; a stream we lack or
        // that differs is rejected with port 0.
        let mut media = Vec::with_capacity(offered.media.len());
        for (i, m) in offered.media.iter().enumerate() {
            match self.streams.get(i) {
                Some(s) if !m.rejected && s.matches(m.stream_type, m.options) => {
                    media.push(Self::media_for(s, hosts));
                }
                _ => media.push(MediaDescription {
                    rejected: true,
                    candidates: Vec::new(),
                    ..m.clone()
                }),
            }
        }
        // A protected session: agree on keys before anything changes, so a bad key leaves
        // the session as it was.
        let protect = media
            .iter()
            .any(|m| !m.rejected && !m.options.contains(StreamOptions::PLAIN));
        crate::trace::log_info!(
            streams = self.streams.len(),
            protect,
            "accepting the request"
        );
        if protect {
            let eph = Ephemeral::generate(&mut conn.rng);
            let offer_key = peer_key(offered)?;
            let shared = eph.agree(&offer_key).ok_or(Error::MissingKey)?;
            let secrets = Secrets::derive(&shared, &offer_key, &eph.public());
            self.protection = Some(Box::new(
                Protection::new(&secrets, false).ok_or(Error::MissingKey)?,
            ));
            desc.key = Some(eph.public().to_vec());
        }
        for i in 0..self.streams.len() {
            match media.get(i) {
                Some(m) if !m.rejected => {
                    self.set_state(conn, i, StreamState::TransportReady, None);
                }
                Some(_) => self.set_state(
                    conn,
                    i,
                    StreamState::Deactivated,
                    Some(StateReason::Mismatch),
                ),
                None => self.set_state(
                    conn,
                    i,
                    StreamState::Deactivated,
                    Some(StateReason::NotInRemoteDescription),
                ),
            }
        }
        desc.media = media;
        if let Some(secret) = &conn.config.identity {
            crate::crypto::identity::sign(secret, &mut desc);
        }
        self.learn_remote(offered);
        self.phase = SessionPhase::Replied;
        Ok(Answer(desc))
    }

    /// The peer's answer arrived (through the endpoint or `start_with`): completes the
    /// request and reports it. Returns whether the peer accepted.
    pub(crate) fn complete_request(
        &mut self,
        conn: &mut Conn,
        answer: &Answer,
    ) -> Result<bool, Error> {
        if !matches!(self.phase, SessionPhase::Requested { .. }) {
            return Err(self.phase_error("complete_request"));
        }
        if answer.reply_to() != Some(self.id.0) || answer.0.media.len() != self.streams.len() {
            return Err(Error::AnswerMismatch);
        }
        let outcome = match answer.refusal() {
            Some(refusal) => {
                let status = refusal.status;
                crate::trace::log_info!(status, reason = %refusal.reason, "request refused by the peer");
                self.end(conn, StreamState::Closed, StateReason::Refused { status });
                RequestOutcome::Refused(refusal.clone())
            }
            None => {
                self.phase = SessionPhase::Accepted;
                RequestOutcome::Accepted(answer.clone())
            }
        };
        let accepted = matches!(outcome, RequestOutcome::Accepted(_));
        conn.emit(Event::RequestComplete {
            session: self.id,
            outcome,
        });
        Ok(accepted)
    }

    /// No reply in time.
    pub(crate) fn request_timed_out(&mut self, conn: &mut Conn) {
        self.end(conn, StreamState::Failed, StateReason::RequestTimedOut);
        conn.emit(Event::RequestComplete {
            session: self.id,
            outcome: RequestOutcome::TimedOut,
        });
    }

    pub(crate) fn start_with(
        &mut self,
        conn: &mut Conn,
        hosts: &[Candidate],
        now: Instant,
        pending: PendingOffer,
        answer: Answer,
    ) -> Result<(), Error> {
        if pending.session != self.id || answer.reply_to() != Some(pending.offer.0.session_id) {
            return Err(Error::AnswerMismatch);
        }
        if matches!(self.phase, SessionPhase::Requested { .. }) {
            self.complete_request(conn, &answer)?;
        }
        if self.phase != SessionPhase::Accepted {
            return Err(self.phase_error("start_with"));
        }
        // The streams that will run decide whether the session is protected; if so the
        // answer must carry the peer's key. Checked before anything changes.
        let protect = self.streams.iter().enumerate().any(|(i, s)| {
            !s.options.contains(StreamOptions::PLAIN)
                && answer
                    .0
                    .media
                    .get(i)
                    .is_some_and(|m| !m.rejected && s.matches(m.stream_type, m.options))
        });
        if protect {
            let eph = self.ephemeral.as_ref().ok_or(Error::MissingKey)?;
            let answer_key = peer_key(&answer.0)?;
            let shared = eph.agree(&answer_key).ok_or(Error::MissingKey)?;
            let secrets = Secrets::derive(&shared, &eph.public(), &answer_key);
            self.protection = Some(Box::new(
                Protection::new(&secrets, true).ok_or(Error::MissingKey)?,
            ));
        }
        self.ephemeral = None;
        for i in 0..self.streams.len() {
            let remote = answer.0.media.get(i);
            let (to, reason) = match remote {
                Some(m) if m.rejected => (
                    StreamState::Deactivated,
                    Some(StateReason::NotInRemoteDescription),
                ),
                Some(m) if self.streams[i].matches(m.stream_type, m.options) => {
                    (StreamState::Connecting, None)
                }
                Some(_) => (StreamState::Deactivated, Some(StateReason::Mismatch)),
                None => (
                    StreamState::Deactivated,
                    Some(StateReason::NotInRemoteDescription),
                ),
            };
            if self.streams[i].state == StreamState::TransportReady {
                self.set_state(conn, i, to, reason);
            }
        }
        self.learn_remote(&answer.0);
        self.begin_checks(conn, hosts, now, true);
        Ok(())
    }

    pub(crate) fn start(
        &mut self,
        conn: &mut Conn,
        hosts: &[Candidate],
        now: Instant,
    ) -> Result<(), Error> {
        if self.phase != SessionPhase::Replied {
            return Err(self.phase_error("start"));
        }
        self.set_states_from(
            conn,
            StreamState::TransportReady,
            StreamState::Connecting,
            None,
        );
        self.begin_checks(conn, hosts, now, false);
        Ok(())
    }

    /// Phase Started; connectivity checks begin if any stream is Connecting.
    fn begin_checks(
        &mut self,
        conn: &mut Conn,
        hosts: &[Candidate],
        now: Instant,
        controlling: bool,
    ) {
        self.phase = SessionPhase::Started;
        // Channel ids are split by side: the offerer (controlling) opens odd ones.
        let side = if controlling {
            crate::channel::Side::Offerer
        } else {
            crate::channel::Side::Answerer
        };
        for s in &mut self.streams {
            if s.is_multiplexing() && s.state == StreamState::Connecting {
                s.mux = Some(alloc::boxed::Box::new(crate::channel::Mux::new(
                    s.id.0,
                    side,
                    s.is_reliable(),
                    &conn.config.channels,
                    conn.config.transport.max_reassembly_segments,
                    conn.rng.u64(),
                )));
            }
        }
        self.last_rx = now;
        self.last_tx = now;
        let connecting = self
            .streams
            .iter()
            .any(|s| s.state == StreamState::Connecting);
        let remotes = self
            .remote
            .as_ref()
            .map(|r| r.candidates.as_slice())
            .unwrap_or(&[]);
        if connecting {
            let rng = &mut conn.rng;
            self.path
                .start(now, hosts, remotes, controlling, &conn.config, || {
                    let mut t = [0; crate::packet::TRANSACTION_ID_LEN];
                    rng.fill(&mut t);
                    t
                });
            crate::trace::log_debug!(
                pairs = self.path.pairs.len(),
                controlling,
                "connectivity checks begin"
            );
            self.handle_timeout(conn, now);
        }
    }
}

/// The peer's ephemeral public key from its description.
fn peer_key(desc: &SessionDescription) -> Result<[u8; KEY_LEN], Error> {
    desc.key
        .as_deref()
        .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok())
        .ok_or(Error::MissingKey)
}
