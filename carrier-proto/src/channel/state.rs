//! The per-stream channel table: which channels exist, in which state, and who may send.
//!
//! Sans-IO like the rest of the core: app calls and received frames go in, [`Action`]s (frames
//! to send, events for the application) come out in a caller-owned queue. No timers are
//! needed yet: an open the peer never answers is ended by the stream's own idle timeout,
//! which runs [`ChannelTable::close_all`].

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::BytesMut;

use super::frame::{ChannelFrame, MAX_CHANNEL_ID};
use crate::types::CloseReason;

/// A channel's id inside its stream. Never 0 (that is the stream's plain data).
///
/// The side that made the offer opens odd ids, the side that answered even ones; ids are
/// never reused within a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub(crate) u64);

impl ChannelId {
    /// The id as a number (as on the wire).
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl core::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "channel {}", self.0)
    }
}

/// Which end of the session this table is: decides the parity of the ids it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The side that made the offer: opens odd ids (1, 3, 5, …).
    Offerer,
    /// The side that answered: opens even ids (2, 4, 6, …).
    Answerer,
}

impl Side {
    /// The first id this side opens.
    const fn first_id(self) -> u64 {
        match self {
            Side::Offerer => 1,
            Side::Answerer => 2,
        }
    }

    /// The other side.
    const fn peer(self) -> Side {
        match self {
            Side::Offerer => Side::Answerer,
            Side::Answerer => Side::Offerer,
        }
    }

    /// True if `id` has this side's parity, i.e. only this side may open it.
    const fn opens(self, id: u64) -> bool {
        id % 2 == self.first_id() % 2
    }
}

/// Bounds on one stream's channels, applied to our opens and the peer's alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChannelLimits {
    /// Most channels alive at once, in any state (the Carrier SDK's 2048).
    pub(crate) max_channels: usize,
    /// Longest cookie, in bytes.
    pub(crate) max_cookie: usize,
    /// Most opens waiting for an answer: the peer's opens the application has not accepted
    /// yet, and our opens the peer has not answered yet (a peer with the same limits would
    /// refuse more). Bounds what an open flood can hold.
    pub(crate) max_incoming_opens: usize,
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits {
            max_channels: 2048,
            max_cookie: 1024,
            max_incoming_opens: 64,
        }
    }
}

/// Where a live channel is. A closed channel is not a state: it is removed from the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// We sent OPEN and wait for ACCEPT (or CLOSE: refused).
    Opening,
    /// The peer sent OPEN; the application has not accepted or refused it yet.
    Incoming,
    /// Both sides agree the channel is open: data may flow.
    Open,
}

/// Errors of the application's channel calls. Peer frames never produce one (they are
/// answered or counted in the endpoint's stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// No such channel (never opened, or closed and removed).
    #[error("unknown channel")]
    UnknownChannel,
    /// The channel is not in a state that allows the call (e.g. `accept` on our own open).
    #[error("`{op}` is not allowed on a channel in state {state:?}")]
    WrongState {
        /// The call.
        op: &'static str,
        /// The channel's state.
        state: ChannelState,
    },
    /// The stream already has the most channels allowed.
    #[error("the stream already has the maximum of {max} channels")]
    TooManyChannels {
        /// The limit.
        max: usize,
    },
    /// The cookie is longer than allowed.
    #[error("a cookie of {len} bytes exceeds the {max}-byte maximum")]
    CookieTooLong {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many of our opens are still waiting for the peer's answer.
    #[error("{max} channel opens are already waiting for the peer")]
    TooManyPendingOpens {
        /// The limit.
        max: usize,
    },
    /// The peer asked us to pause this channel (PEND); wait for its RESUME.
    #[error("the peer paused this channel")]
    RemotePaused,
    /// Every channel id of our parity has been used (2^61 opens: not reachable in practice).
    #[error("channel ids exhausted")]
    IdsExhausted,
    /// `close_all` ran: the stream's channels are gone for good.
    #[error("the stream's channels are closed")]
    Finished,
    /// The stream has no channels: it lacks the MULTIPLEXING option.
    #[error("the stream is not a multiplexing stream")]
    NotMultiplexing,
    /// The stream's control stream is full (the peer is not acknowledging our control
    /// records); try again after the next `poll_output` round.
    #[error("the control stream is full")]
    ControlFull,
    /// The call needs the other kind of stream (e.g. a datagram size on a reliable stream).
    #[error("not available on this kind of stream")]
    WrongStreamKind,
}

/// What the table tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChannelEvent {
    /// The peer opens a channel: accept or refuse it.
    Open {
        /// The channel.
        id: ChannelId,
        /// The peer's cookie (at most `max_cookie` bytes).
        cookie: Vec<u8>,
    },
    /// The channel is open on both sides (fires on both: after ACCEPT, and after `accept`).
    Opened {
        /// The channel.
        id: ChannelId,
    },
    /// The channel is closed, by either side (also fires for our own close and refusal).
    /// Every channel the application learned of ends with exactly one of these.
    Closed {
        /// The channel.
        id: ChannelId,
        /// Why.
        reason: CloseReason,
    },
    /// The peer asks us to stop sending on the channel; sends fail until [`Self::Resumed`].
    Pending {
        /// The channel.
        id: ChannelId,
    },
    /// The peer lets us send on the channel again.
    Resumed {
        /// The channel.
        id: ChannelId,
    },
}

/// The body of a control frame the table sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ControlKind {
    /// OPEN with the cookie.
    Open {
        /// The cookie for the peer's application.
        cookie: Vec<u8>,
    },
    /// ACCEPT.
    Accept,
    /// CLOSE with the reason.
    Close(CloseReason),
    /// PEND.
    Pend,
    /// RESUME.
    Resume,
}

/// A control frame the table wants sent, owned so it can wait in a queue. DATA and
/// MAX_CHANNEL_DATA come from each channel's own send and receive streams (next step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedChannelFrame {
    /// The stream's index in the session.
    pub(crate) stream: u8,
    /// The channel.
    pub(crate) channel: ChannelId,
    /// What to say about it.
    pub(crate) kind: ControlKind,
}

impl OwnedChannelFrame {
    /// The wire frame, borrowing the cookie.
    pub(crate) fn as_frame(&self) -> ChannelFrame<'_> {
        let (stream, channel) = (self.stream, self.channel.0);
        match &self.kind {
            ControlKind::Open { cookie } => ChannelFrame::Open {
                stream,
                channel,
                cookie,
            },
            ControlKind::Accept => ChannelFrame::Accept { stream, channel },
            ControlKind::Close(reason) => ChannelFrame::Close {
                stream,
                channel,
                reason: *reason,
            },
            ControlKind::Pend => ChannelFrame::Pend { stream, channel },
            ControlKind::Resume => ChannelFrame::Resume { stream, channel },
        }
    }

    /// Appends the frame to `out`.
    pub(crate) fn emit(&self, out: &mut BytesMut) {
        self.as_frame().emit(out);
    }
}

/// One output of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send this control frame to the peer (reliably and in order: see the module docs).
    Send(OwnedChannelFrame),
    /// Tell the application.
    Event(ChannelEvent),
}

/// Counters of peer frames the table refused or dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChannelStats {
    /// OPENs refused with CLOSE(Error): over a limit, or for an id already used.
    pub(crate) refused_opens: u64,
    /// Frames for ids that never existed, answered with CLOSE(Error).
    pub(crate) unknown_channel: u64,
    /// Frames that break the state machine (e.g. DATA before we accepted); the channel is
    /// closed with Error.
    pub(crate) violations: u64,
    /// Harmless late or duplicate frames (for a closed channel, a repeated ACCEPT or CLOSE,
    /// anything after `close_all`), dropped.
    pub(crate) ignored: u64,
}

/// One live channel.
#[derive(Clone, Copy, Debug)]
struct Channel {
    state: ChannelState,
    /// We sent PEND (and no RESUME since): the peer should not send.
    local_paused: bool,
    /// The peer sent PEND (and no RESUME since): we must not send.
    remote_paused: bool,
}

/// The channels of one stream, and the rules for opening, pausing and closing them.
#[derive(Debug)]
pub(crate) struct ChannelTable {
    stream: u8,
    side: Side,
    limits: ChannelLimits,
    /// Live channels by id (`close_all` sorts the ids, so its events come in id order).
    channels: super::IdMap<Channel>,
    /// The id our next open gets. Only grows (by 2), so our ids are never reused, and every
    /// id of our parity below it has been used.
    next_local: u64,
    /// The lowest id the peer may open next. Only grows: the peer opens in increasing
    /// order, so an OPEN below it is stale, and every peer-parity id below it was used.
    next_remote: u64,
    /// Channels in state Incoming (kept as a count so a flood costs O(log n) per OPEN).
    incoming: usize,
    /// Channels in state Opening.
    opening: usize,
    /// `close_all` ran.
    finished: bool,
    stats: ChannelStats,
}

impl ChannelTable {
    /// An empty table for stream `stream`, on `side` of the session.
    // A fixed hash seed: for tests, which replay exactly anyway.
    #[cfg(test)]
    pub(crate) fn new(stream: u8, side: Side, limits: ChannelLimits) -> Self {
        Self::with_seed(stream, side, limits, 0)
    }

    /// An empty table for stream `stream`, on `side` of the session, its map hashing with
    /// `seed` (from the endpoint's randomness).
    pub(crate) fn with_seed(stream: u8, side: Side, limits: ChannelLimits, seed: u64) -> Self {
        ChannelTable {
            stream,
            side,
            limits,
            channels: super::id_map(seed),
            next_local: side.first_id(),
            next_remote: side.peer().first_id(),
            incoming: 0,
            opening: 0,
            finished: false,
            stats: ChannelStats::default(),
        }
    }

    /// Live channels.
    pub(crate) fn len(&self) -> usize {
        self.channels.len()
    }

    /// True if no channel is live.
    // Inspection for tests and diagnostics.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// The ids of the live channels, in increasing order.
    // Inspection for tests and diagnostics.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn ids(&self) -> impl Iterator<Item = ChannelId> + '_ {
        let mut ids: alloc::vec::Vec<u64> = self.channels.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().map(ChannelId)
    }

    /// A live channel's state; `None` if it is closed or never existed.
    pub(crate) fn state(&self, id: ChannelId) -> Option<ChannelState> {
        self.channels.get(&id.0).map(|c| c.state)
    }

    /// True if we asked the peer to stop sending on the channel.
    // Inspection for tests and diagnostics.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn local_paused(&self, id: ChannelId) -> Option<bool> {
        self.channels.get(&id.0).map(|c| c.local_paused)
    }

    /// True if the peer asked us to stop sending on the channel.
    pub(crate) fn remote_paused(&self, id: ChannelId) -> Option<bool> {
        self.channels.get(&id.0).map(|c| c.remote_paused)
    }

    /// Peer opens waiting for the application's answer.
    // Inspection for tests and diagnostics.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn incoming_count(&self) -> usize {
        self.incoming
    }

    /// Our opens waiting for the peer's answer.
    // Inspection for tests and diagnostics.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn opening_count(&self) -> usize {
        self.opening
    }

    /// True once `close_all` ran.
    // Inspection for tests and diagnostics.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// What the peer got refused or dropped.
    pub(crate) fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// The limits this table enforces.
    // Inspection for tests and diagnostics.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn limits(&self) -> ChannelLimits {
        self.limits
    }

    // ---- application calls ----

    /// Opens a channel with `cookie` for the peer's application: sends OPEN. The channel is
    /// [`ChannelState::Opening`] until the peer accepts ([`ChannelEvent::Opened`]) or refuses
    /// ([`ChannelEvent::Closed`] with Error).
    pub(crate) fn open(
        &mut self,
        cookie: &[u8],
        out: &mut VecDeque<Action>,
    ) -> Result<ChannelId, ChannelError> {
        self.check_live()?;
        let max = self.limits.max_cookie;
        if cookie.len() > max {
            return Err(ChannelError::CookieTooLong {
                len: cookie.len(),
                max,
            });
        }
        if self.channels.len() >= self.limits.max_channels {
            return Err(ChannelError::TooManyChannels {
                max: self.limits.max_channels,
            });
        }
        if self.opening >= self.limits.max_incoming_opens {
            return Err(ChannelError::TooManyPendingOpens {
                max: self.limits.max_incoming_opens,
            });
        }
        if self.next_local > MAX_CHANNEL_ID {
            return Err(ChannelError::IdsExhausted);
        }
        let id = self.next_local;
        // Cannot overflow: next_local ≤ 2^62 − 1 here.
        self.next_local += 2;
        self.channels.insert(
            id,
            Channel {
                state: ChannelState::Opening,
                local_paused: false,
                remote_paused: false,
            },
        );
        self.opening += 1;
        self.send(
            out,
            id,
            ControlKind::Open {
                cookie: cookie.to_vec(),
            },
        );
        Ok(ChannelId(id))
    }

    /// Accepts the peer's open: sends ACCEPT; the channel is open on our side at once.
    pub(crate) fn accept(
        &mut self,
        id: ChannelId,
        out: &mut VecDeque<Action>,
    ) -> Result<(), ChannelError> {
        self.expect_state(id, "accept", ChannelState::Incoming)?;
        self.set_state(id.0, ChannelState::Open);
        self.send(out, id.0, ControlKind::Accept);
        out.push_back(Action::Event(ChannelEvent::Opened { id }));
        Ok(())
    }

    /// Refuses the peer's open: sends CLOSE(Error), which the peer's application sees as
    /// `Closed { Error }`, the Carrier SDK's refusal.
    pub(crate) fn refuse(
        &mut self,
        id: ChannelId,
        out: &mut VecDeque<Action>,
    ) -> Result<(), ChannelError> {
        self.expect_state(id, "refuse", ChannelState::Incoming)?;
        self.remove_and_tell(id.0, CloseReason::Error, out);
        Ok(())
    }

    /// Closes a channel in any state (an Opening one is withdrawn, an Incoming one refused
    /// with `reason`): sends CLOSE(reason); the channel is gone at once.
    pub(crate) fn close(
        &mut self,
        id: ChannelId,
        reason: CloseReason,
        out: &mut VecDeque<Action>,
    ) -> Result<(), ChannelError> {
        self.get(id)?;
        self.remove_and_tell(id.0, reason, out);
        Ok(())
    }

    /// Asks the peer to stop sending on the channel (PEND). Allowed in every state, so an
    /// application can hold back a channel it is about to accept. Pausing twice sends once.
    pub(crate) fn pend(
        &mut self,
        id: ChannelId,
        out: &mut VecDeque<Action>,
    ) -> Result<(), ChannelError> {
        self.set_local_paused(id, true, out)
    }

    /// Lets the peer send on the channel again (RESUME). Resuming twice sends once.
    pub(crate) fn resume(
        &mut self,
        id: ChannelId,
        out: &mut VecDeque<Action>,
    ) -> Result<(), ChannelError> {
        self.set_local_paused(id, false, out)
    }

    /// Whether we may send data on the channel now: it must be open, and not paused by the
    /// peer. This is what makes pend real (the Carrier SDK's was advisory): the write path asks
    /// before it queues a byte.
    pub(crate) fn check_send(&self, id: ChannelId) -> Result<(), ChannelError> {
        let channel = self.get(id)?;
        if channel.state != ChannelState::Open {
            return Err(ChannelError::WrongState {
                op: "send",
                state: channel.state,
            });
        }
        if channel.remote_paused {
            return Err(ChannelError::RemotePaused);
        }
        Ok(())
    }

    /// The stream or session ended: every channel is closed with `reason` (one `Closed`
    /// event each, in id order), the table empties and refuses everything from now on.
    ///
    /// No frames are sent: the stream's own CLOSE (or the session's end) tells the peer,
    /// whose table runs `close_all` too.
    pub(crate) fn close_all(&mut self, reason: CloseReason, out: &mut VecDeque<Action>) {
        self.finished = true;
        let mut ids: alloc::vec::Vec<u64> = self.channels.drain().map(|(id, _)| id).collect();
        ids.sort_unstable();
        for id in ids {
            out.push_back(Action::Event(ChannelEvent::Closed {
                id: ChannelId(id),
                reason,
            }));
        }
        self.incoming = 0;
        self.opening = 0;
    }

    // ---- peer frames ----

    /// Handles a channel frame from the peer. Returns true if the frame's payload (DATA
    /// bytes, MAX_CHANNEL_DATA credit) belongs to a live channel and should go to that
    /// channel's streams; false if the frame was handled here or dropped.
    ///
    /// Never fails: a frame that cannot be honoured is answered (CLOSE(Error), so the peer
    /// is always told) or dropped, and counted in [`ChannelStats`].
    pub(crate) fn on_frame(
        &mut self,
        frame: &ChannelFrame<'_>,
        out: &mut VecDeque<Action>,
    ) -> bool {
        // The caller routes by stream; a misrouted frame must not touch this stream's ids.
        if self.finished || frame.stream() != self.stream {
            self.stats.ignored += 1;
            return false;
        }
        let id = frame.channel();
        let state = self.channels.get(&id).map(|c| c.state);
        match *frame {
            ChannelFrame::Open { cookie, .. } => {
                self.on_open(id, cookie, out);
                false
            }
            ChannelFrame::Close { reason, .. } => {
                if state.is_some() {
                    self.remove(id);
                    self.event_closed(out, id, reason);
                } else {
                    // Our CLOSE crossed theirs, or a repeat: never answer a CLOSE (no loops).
                    self.stats.ignored += 1;
                }
                false
            }
            ChannelFrame::Accept { .. } => {
                match state {
                    Some(ChannelState::Opening) => self.opened(id, out),
                    // A repeat, or the ACCEPT after DATA already implied it.
                    Some(ChannelState::Open) => self.stats.ignored += 1,
                    // The peer accepting its own open.
                    Some(ChannelState::Incoming) => self.violation(id, out),
                    None => self.on_unknown(id, out),
                }
                false
            }
            ChannelFrame::Data { .. }
            | ChannelFrame::Datagram { .. }
            | ChannelFrame::KeepAlive { .. } => match state {
                Some(ChannelState::Open) => true,
                // The peer sends only after it accepted, so DATA means ACCEPT; it can
                // overtake the ACCEPT because data travels apart from control.
                Some(ChannelState::Opening) => {
                    self.opened(id, out);
                    true
                }
                // Data before we accepted: the peer broke the protocol.
                Some(ChannelState::Incoming) => {
                    self.violation(id, out);
                    false
                }
                None => {
                    self.on_unknown(id, out);
                    false
                }
            },
            ChannelFrame::Pend { .. } | ChannelFrame::Resume { .. } => {
                let paused = matches!(frame, ChannelFrame::Pend { .. });
                match self.channels.get_mut(&id) {
                    Some(c) if c.remote_paused != paused => {
                        c.remote_paused = paused;
                        let id = ChannelId(id);
                        let event = if paused {
                            ChannelEvent::Pending { id }
                        } else {
                            ChannelEvent::Resumed { id }
                        };
                        out.push_back(Action::Event(event));
                    }
                    Some(_) => self.stats.ignored += 1,
                    None => self.on_unknown(id, out),
                }
                false
            }
            ChannelFrame::MaxChannelData { .. } => {
                // Credit may come with or ahead of ACCEPT; keep it for any live channel.
                if state.is_none() {
                    self.on_unknown(id, out);
                }
                state.is_some()
            }
        }
    }

    /// The peer's OPEN: a new Incoming channel, or a refusal if it breaks a rule or a limit.
    fn on_open(&mut self, id: u64, cookie: &[u8], out: &mut VecDeque<Action>) {
        if self.side.opens(id) {
            // An id only we may open. Close ours if it exists, so neither side keeps a
            // channel the other disagrees about.
            if self.channels.contains_key(&id) {
                self.violation(id, out);
            } else {
                self.refuse_open(id, out);
            }
            return;
        }
        if self.channels.contains_key(&id) {
            // A repeat of an OPEN we already hold.
            self.stats.ignored += 1;
            return;
        }
        if id < self.next_remote {
            // Stale: this id was used before. Ids are never reused; tell the peer no.
            self.refuse_open(id, out);
            return;
        }
        // Mark the id used before any limit check, so a refused id stays refused.
        // Cannot overflow: parse bounds ids by 2^62 − 1.
        self.next_remote = id.saturating_add(2);
        if cookie.len() > self.limits.max_cookie
            || self.channels.len() >= self.limits.max_channels
            || self.incoming >= self.limits.max_incoming_opens
        {
            // Refused without storing anything: an open flood cannot grow the table.
            self.refuse_open(id, out);
            return;
        }
        self.channels.insert(
            id,
            Channel {
                state: ChannelState::Incoming,
                local_paused: false,
                remote_paused: false,
            },
        );
        self.incoming += 1;
        out.push_back(Action::Event(ChannelEvent::Open {
            id: ChannelId(id),
            cookie: cookie.to_vec(),
        }));
    }

    /// A frame other than OPEN or CLOSE for a channel not in the table.
    fn on_unknown(&mut self, id: u64, out: &mut VecDeque<Action>) {
        let used = if self.side.opens(id) {
            id < self.next_local
        } else {
            id < self.next_remote
        };
        if used {
            // The channel existed and is closed: a CLOSE already went one way or the other,
            // so the peer knows or will; a second CLOSE would only change its reason.
            self.stats.ignored += 1;
        } else {
            // Never existed: tell the peer, so it does not keep a channel we never had
            // (the Carrier SDK left it dangling).
            self.stats.unknown_channel += 1;
            self.send(out, id, ControlKind::Close(CloseReason::Error));
        }
    }

    // ---- helpers ----

    fn check_live(&self) -> Result<(), ChannelError> {
        if self.finished {
            Err(ChannelError::Finished)
        } else {
            Ok(())
        }
    }

    fn get(&self, id: ChannelId) -> Result<&Channel, ChannelError> {
        self.check_live()?;
        self.channels.get(&id.0).ok_or(ChannelError::UnknownChannel)
    }

    fn expect_state(
        &self,
        id: ChannelId,
        op: &'static str,
        want: ChannelState,
    ) -> Result<(), ChannelError> {
        let state = self.get(id)?.state;
        if state == want {
            Ok(())
        } else {
            Err(ChannelError::WrongState { op, state })
        }
    }

    fn set_local_paused(
        &mut self,
        id: ChannelId,
        paused: bool,
        out: &mut VecDeque<Action>,
    ) -> Result<(), ChannelError> {
        self.get(id)?;
        let Some(channel) = self.channels.get_mut(&id.0) else {
            return Err(ChannelError::UnknownChannel);
        };
        if channel.local_paused != paused {
            channel.local_paused = paused;
            let kind = if paused {
                ControlKind::Pend
            } else {
                ControlKind::Resume
            };
            self.send(out, id.0, kind);
        }
        Ok(())
    }

    /// Moves a live channel to `state`, keeping the counters right.
    fn set_state(&mut self, id: u64, state: ChannelState) {
        if let Some(channel) = self.channels.get_mut(&id) {
            let old = core::mem::replace(&mut channel.state, state);
            self.uncount(old);
        }
    }

    /// Removes a channel, keeping the counters right.
    fn remove(&mut self, id: u64) {
        if let Some(channel) = self.channels.remove(&id) {
            self.uncount(channel.state);
        }
    }

    /// Takes a channel that leaves `state` out of its counter. Only Opening and Incoming
    /// are counted, and nothing ever moves into them, so there is nothing to add.
    fn uncount(&mut self, state: ChannelState) {
        match state {
            ChannelState::Opening => self.opening = self.opening.saturating_sub(1),
            ChannelState::Incoming => self.incoming = self.incoming.saturating_sub(1),
            ChannelState::Open => {}
        }
    }

    /// Our Opening channel was accepted.
    fn opened(&mut self, id: u64, out: &mut VecDeque<Action>) {
        self.set_state(id, ChannelState::Open);
        out.push_back(Action::Event(ChannelEvent::Opened { id: ChannelId(id) }));
    }

    /// Removes a channel, tells the peer with CLOSE(reason) and the application with Closed.
    fn remove_and_tell(&mut self, id: u64, reason: CloseReason, out: &mut VecDeque<Action>) {
        self.remove(id);
        self.send(out, id, ControlKind::Close(reason));
        self.event_closed(out, id, reason);
    }

    /// The peer broke the channel's state machine: close it with Error on both sides.
    fn violation(&mut self, id: u64, out: &mut VecDeque<Action>) {
        self.stats.violations += 1;
        self.remove_and_tell(id, CloseReason::Error, out);
    }

    fn refuse_open(&mut self, id: u64, out: &mut VecDeque<Action>) {
        self.stats.refused_opens += 1;
        self.send(out, id, ControlKind::Close(CloseReason::Error));
    }

    fn send(&self, out: &mut VecDeque<Action>, id: u64, kind: ControlKind) {
        out.push_back(Action::Send(OwnedChannelFrame {
            stream: self.stream,
            channel: ChannelId(id),
            kind,
        }));
    }

    fn event_closed(&self, out: &mut VecDeque<Action>, id: u64, reason: CloseReason) {
        out.push_back(Action::Event(ChannelEvent::Closed {
            id: ChannelId(id),
            reason,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PacketError;
    use crate::transport::varint;
    use alloc::collections::BTreeSet;
    use proptest::prelude::*;

    const STREAM: u8 = 1;

    /// Encodes a frame the table sent, as the wire would.
    fn wire(frame: &OwnedChannelFrame, limits: &ChannelLimits) -> BytesMut {
        let mut out = BytesMut::new();
        frame.emit(&mut out);
        // Parse once here so every frame a table sends is checked against the codec.
        let (&ty, mut body) = out.split_first().unwrap();
        let parsed = ChannelFrame::parse(ty, &mut body, MAX_CHANNEL_ID, limits.max_cookie);
        assert_eq!(parsed, Ok(frame.as_frame()));
        out
    }

    fn parse<'a>(bytes: &'a [u8], limits: &ChannelLimits) -> Result<ChannelFrame<'a>, PacketError> {
        let (&ty, mut body) = bytes
            .split_first()
            .ok_or(PacketError::TruncatedFrame("x"))?;
        ChannelFrame::parse(ty, &mut body, MAX_CHANNEL_ID, limits.max_cookie)
    }

    /// One side: its table, its pending actions and the events it has seen.
    struct Peer {
        table: ChannelTable,
        out: VecDeque<Action>,
        events: Vec<ChannelEvent>,
    }

    impl Peer {
        fn new(side: Side, limits: ChannelLimits) -> Self {
            Peer {
                table: ChannelTable::new(STREAM, side, limits),
                out: VecDeque::new(),
                events: Vec::new(),
            }
        }

        /// Moves actions out: events to the log, frames (encoded) to `wire_out`.
        fn flush(&mut self, wire_out: &mut VecDeque<BytesMut>) {
            let limits = self.table.limits();
            while let Some(action) = self.out.pop_front() {
                match action {
                    Action::Send(f) => wire_out.push_back(wire(&f, &limits)),
                    Action::Event(e) => self.events.push(e),
                }
            }
        }

        /// Hands the peer a frame; returns `on_frame`'s answer.
        fn receive(&mut self, bytes: &[u8]) -> bool {
            let frame = parse(bytes, &self.table.limits()).unwrap();
            self.table.on_frame(&frame, &mut self.out)
        }

        fn take_events(&mut self) -> Vec<ChannelEvent> {
            core::mem::take(&mut self.events)
        }
    }

    /// Two tables back to back with an in-order control path each way.
    struct Pair {
        a: Peer,
        b: Peer,
        a_to_b: VecDeque<BytesMut>,
        b_to_a: VecDeque<BytesMut>,
    }

    impl Pair {
        fn new(limits: ChannelLimits) -> Self {
            Pair {
                a: Peer::new(Side::Offerer, limits),
                b: Peer::new(Side::Answerer, limits),
                a_to_b: VecDeque::new(),
                b_to_a: VecDeque::new(),
            }
        }

        /// Delivers frames both ways until nothing is in flight.
        fn drain(&mut self) {
            loop {
                self.a.flush(&mut self.a_to_b);
                self.b.flush(&mut self.b_to_a);
                if let Some(f) = self.a_to_b.pop_front() {
                    self.b.receive(&f);
                } else if let Some(f) = self.b_to_a.pop_front() {
                    self.a.receive(&f);
                } else {
                    break;
                }
            }
        }
    }

    fn data(channel: ChannelId) -> BytesMut {
        let mut out = BytesMut::new();
        ChannelFrame::Data {
            stream: STREAM,
            channel: channel.0,
            offset: 0,
            data: b"hi",
            fin: false,
        }
        .emit(&mut out);
        out
    }

    fn close_frame(channel: u64, reason: CloseReason) -> Action {
        Action::Send(OwnedChannelFrame {
            stream: STREAM,
            channel: ChannelId(channel),
            kind: ControlKind::Close(reason),
        })
    }

    #[test]
    fn open_accept_data_close() {
        let mut p = Pair::new(ChannelLimits::default());
        let id = p.a.table.open(b"ssh", &mut p.a.out).unwrap();
        assert_eq!(id, ChannelId(1), "the offerer opens odd ids");
        assert_eq!(
            p.a.table.check_send(id),
            Err(ChannelError::WrongState {
                op: "send",
                state: ChannelState::Opening
            })
        );
        p.drain();
        assert_eq!(
            p.b.take_events(),
            [ChannelEvent::Open {
                id,
                cookie: b"ssh".to_vec()
            }]
        );
        assert_eq!(p.b.table.state(id), Some(ChannelState::Incoming));
        p.b.table.accept(id, &mut p.b.out).unwrap();
        p.drain();
        assert_eq!(p.a.take_events(), [ChannelEvent::Opened { id }]);
        assert_eq!(p.b.take_events(), [ChannelEvent::Opened { id }]);
        // Data flows both ways.
        assert_eq!(p.a.table.check_send(id), Ok(()));
        assert_eq!(p.b.table.check_send(id), Ok(()));
        assert!(p.b.receive(&data(id)));
        assert!(p.a.receive(&data(id)));
        // The answerer's own open gets an even id.
        let id2 = p.b.table.open(b"", &mut p.b.out).unwrap();
        assert_eq!(id2, ChannelId(2));
        p.drain();
        p.a.table.accept(id2, &mut p.a.out).unwrap();
        p.drain();
        p.a.take_events();
        p.b.take_events();
        // Close from the opener's side, then from the accepter's.
        p.a.table
            .close(id, CloseReason::Normal, &mut p.a.out)
            .unwrap();
        p.a.table
            .close(id2, CloseReason::Timeout, &mut p.a.out)
            .unwrap();
        p.drain();
        let closed = |id, reason| ChannelEvent::Closed { id, reason };
        let both = [
            closed(id, CloseReason::Normal),
            closed(id2, CloseReason::Timeout),
        ];
        assert_eq!(p.a.take_events(), both);
        assert_eq!(p.b.take_events(), both);
        assert!(p.a.table.is_empty() && p.b.table.is_empty());
        // Late data for the closed channel is dropped, not answered; ids are not reused.
        assert!(!p.b.receive(&data(id)));
        assert!(p.b.out.is_empty());
        assert_eq!(p.b.table.stats().ignored, 1);
        assert_eq!(p.a.table.open(b"", &mut p.a.out), Ok(ChannelId(3)));
        assert_eq!(
            p.a.table.close(id, CloseReason::Normal, &mut p.a.out),
            Err(ChannelError::UnknownChannel)
        );
    }

    #[test]
    fn refusal_reaches_the_opener_as_close_error() {
        let mut p = Pair::new(ChannelLimits::default());
        let id = p.a.table.open(b"nope", &mut p.a.out).unwrap();
        p.drain();
        p.b.take_events();
        // accept/refuse only apply to the peer's opens.
        assert!(matches!(
            p.a.table.accept(id, &mut p.a.out),
            Err(ChannelError::WrongState { op: "accept", .. })
        ));
        p.b.table.refuse(id, &mut p.b.out).unwrap();
        p.drain();
        let refused = [ChannelEvent::Closed {
            id,
            reason: CloseReason::Error,
        }];
        assert_eq!(p.a.take_events(), refused);
        assert_eq!(p.b.take_events(), refused);
        assert!(p.a.table.is_empty() && p.b.table.is_empty());
        assert_eq!(p.a.table.opening_count(), 0);
    }

    #[test]
    fn pend_and_resume_stop_and_restart_the_sender() {
        let mut p = Pair::new(ChannelLimits::default());
        let id = p.a.table.open(b"", &mut p.a.out).unwrap();
        p.drain();
        p.b.table.accept(id, &mut p.b.out).unwrap();
        p.drain();
        p.a.take_events();
        p.b.take_events();
        // B asks A to stop: A's sends fail, B's do not.
        p.b.table.pend(id, &mut p.b.out).unwrap();
        p.b.table.pend(id, &mut p.b.out).unwrap();
        assert_eq!(p.b.out.len(), 1, "pausing twice sends one PEND");
        p.drain();
        assert_eq!(p.a.take_events(), [ChannelEvent::Pending { id }]);
        assert_eq!(p.a.table.check_send(id), Err(ChannelError::RemotePaused));
        assert_eq!(p.a.table.remote_paused(id), Some(true));
        assert_eq!(p.b.table.local_paused(id), Some(true));
        assert_eq!(p.b.table.check_send(id), Ok(()));
        // A repeated PEND changes nothing and tells nobody.
        let mut pend = BytesMut::new();
        ChannelFrame::Pend {
            stream: STREAM,
            channel: id.0,
        }
        .emit(&mut pend);
        p.a.receive(&pend);
        assert!(p.a.out.is_empty());
        // Resume.
        p.b.table.resume(id, &mut p.b.out).unwrap();
        p.drain();
        assert_eq!(p.a.take_events(), [ChannelEvent::Resumed { id }]);
        assert_eq!(p.a.table.check_send(id), Ok(()));
        // Both directions are independent.
        p.a.table.pend(id, &mut p.a.out).unwrap();
        p.drain();
        assert_eq!(p.b.take_events(), [ChannelEvent::Pending { id }]);
        assert_eq!(p.b.table.check_send(id), Err(ChannelError::RemotePaused));
        assert_eq!(p.a.table.check_send(id), Ok(()));
    }

    #[test]
    fn data_can_stand_in_for_a_late_accept() {
        let mut p = Pair::new(ChannelLimits::default());
        let id = p.a.table.open(b"", &mut p.a.out).unwrap();
        p.drain();
        p.b.table.accept(id, &mut p.b.out).unwrap();
        p.b.flush(&mut p.b_to_a);
        // B's data overtakes its ACCEPT.
        assert!(p.a.receive(&data(id)));
        p.a.flush(&mut p.a_to_b);
        assert_eq!(p.a.take_events(), [ChannelEvent::Opened { id }]);
        p.drain();
        // The late ACCEPT is a harmless repeat.
        assert_eq!(p.a.take_events(), []);
        assert_eq!(p.a.table.state(id), Some(ChannelState::Open));
    }

    #[test]
    fn unknown_channels_are_answered_and_closes_never_are() {
        let limits = ChannelLimits::default();
        let mut b = Peer::new(Side::Answerer, limits);
        // DATA for a channel that never existed: the peer is told.
        assert!(!b.receive(&data(ChannelId(7))));
        assert_eq!(
            b.out.drain(..).collect::<Vec<_>>(),
            [close_frame(7, CloseReason::Error)]
        );
        // Same for an ACCEPT of an open we never made.
        let mut accept = BytesMut::new();
        ChannelFrame::Accept {
            stream: STREAM,
            channel: 4,
        }
        .emit(&mut accept);
        b.receive(&accept);
        assert_eq!(
            b.out.drain(..).collect::<Vec<_>>(),
            [close_frame(4, CloseReason::Error)]
        );
        assert_eq!(b.table.stats().unknown_channel, 2);
        // A CLOSE for an unknown channel is never answered (no close ping-pong).
        let mut close = BytesMut::new();
        ChannelFrame::Close {
            stream: STREAM,
            channel: 9,
            reason: CloseReason::Normal,
        }
        .emit(&mut close);
        b.receive(&close);
        b.receive(&close);
        assert!(b.out.is_empty());
        // DATA on an open we have not accepted breaks the protocol: closed with Error.
        let mut open = BytesMut::new();
        ChannelFrame::Open {
            stream: STREAM,
            channel: 11,
            cookie: b"",
        }
        .emit(&mut open);
        b.receive(&open);
        b.out.clear();
        assert!(!b.receive(&data(ChannelId(11))));
        assert_eq!(b.out.pop_front(), Some(close_frame(11, CloseReason::Error)));
        assert_eq!(b.table.stats().violations, 1);
        assert!(b.table.is_empty());
        // An OPEN that reuses an id (stale) or takes one of ours is refused.
        b.out.clear();
        b.receive(&open);
        assert_eq!(
            b.out.drain(..).collect::<Vec<_>>(),
            [close_frame(11, CloseReason::Error)]
        );
        let mut ours = BytesMut::new();
        ChannelFrame::Open {
            stream: STREAM,
            channel: 2,
            cookie: b"",
        }
        .emit(&mut ours);
        b.receive(&ours);
        assert_eq!(
            b.out.drain(..).collect::<Vec<_>>(),
            [close_frame(2, CloseReason::Error)]
        );
        assert!(b.table.is_empty());
        // Frames for another stream are not this table's business.
        let mut other = BytesMut::new();
        ChannelFrame::Open {
            stream: STREAM + 1,
            channel: 13,
            cookie: b"",
        }
        .emit(&mut other);
        b.receive(&other);
        assert!(b.out.is_empty() && b.table.is_empty());
    }

    #[test]
    fn an_open_flood_is_refused_and_bounded() {
        let limits = ChannelLimits::default();
        let mut b = Peer::new(Side::Answerer, limits);
        let flood = 10_000u64;
        let mut refused = 0;
        for i in 0..flood {
            let mut open = BytesMut::new();
            ChannelFrame::Open {
                stream: STREAM,
                channel: 2 * i + 1,
                cookie: &[0; 16],
            }
            .emit(&mut open);
            b.receive(&open);
            assert!(b.table.len() <= limits.max_incoming_opens);
            for action in b.out.drain(..) {
                match action {
                    Action::Send(f) => {
                        assert_eq!(f, close_frame(2 * i + 1, CloseReason::Error).into_send());
                        refused += 1;
                    }
                    Action::Event(ChannelEvent::Open { .. }) => {}
                    other => panic!("{other:?}"),
                }
            }
        }
        let admitted = limits.max_incoming_opens as u64;
        assert_eq!(b.table.len() as u64, admitted);
        assert_eq!(refused, flood - admitted);
        assert_eq!(b.table.stats().refused_opens, flood - admitted);
        // A cookie over the limit is refused too (here the codec is bypassed on purpose).
        let mut small = Peer::new(
            Side::Answerer,
            ChannelLimits {
                max_cookie: 2,
                ..limits
            },
        );
        let frame = ChannelFrame::Open {
            stream: STREAM,
            channel: 1,
            cookie: b"abc",
        };
        small.table.on_frame(&frame, &mut small.out);
        assert_eq!(
            small.out.drain(..).collect::<Vec<_>>(),
            [close_frame(1, CloseReason::Error)]
        );
        assert!(small.table.is_empty());
    }

    impl Action {
        /// The frame of a `Send`, for comparisons.
        fn into_send(self) -> OwnedChannelFrame {
            match self {
                Action::Send(f) => f,
                Action::Event(e) => panic!("{e:?}"),
            }
        }
    }

    #[test]
    fn local_limits() {
        let limits = ChannelLimits {
            max_channels: 3,
            max_cookie: 4,
            max_incoming_opens: 2,
        };
        let mut p = Pair::new(limits);
        assert_eq!(
            p.a.table.open(b"12345", &mut p.a.out),
            Err(ChannelError::CookieTooLong { len: 5, max: 4 })
        );
        let x = p.a.table.open(b"1234", &mut p.a.out).unwrap();
        p.a.table.open(b"", &mut p.a.out).unwrap();
        assert_eq!(
            p.a.table.open(b"", &mut p.a.out),
            Err(ChannelError::TooManyPendingOpens { max: 2 })
        );
        p.drain();
        p.b.table.accept(x, &mut p.b.out).unwrap();
        p.drain();
        p.a.table.open(b"", &mut p.a.out).unwrap();
        assert_eq!(
            p.a.table.open(b"", &mut p.a.out),
            Err(ChannelError::TooManyChannels { max: 3 })
        );
        assert_eq!(p.a.table.len(), 3);
    }

    #[test]
    fn close_all_ends_everything() {
        let mut p = Pair::new(ChannelLimits::default());
        let x = p.a.table.open(b"", &mut p.a.out).unwrap();
        let y = p.a.table.open(b"", &mut p.a.out).unwrap();
        p.drain();
        p.b.table.accept(x, &mut p.b.out).unwrap();
        p.drain();
        p.a.take_events();
        p.b.take_events();
        let z = p.b.table.open(b"", &mut p.b.out).unwrap();
        p.a.table.close_all(CloseReason::Timeout, &mut p.a.out);
        p.a.flush(&mut p.a_to_b);
        assert!(p.a_to_b.is_empty(), "close_all sends nothing");
        let closed = |id| ChannelEvent::Closed {
            id,
            reason: CloseReason::Timeout,
        };
        assert_eq!(p.a.take_events(), [closed(x), closed(y)]);
        assert!(p.a.table.is_finished() && p.a.table.is_empty());
        assert_eq!(
            p.a.table.open(b"", &mut p.a.out),
            Err(ChannelError::Finished)
        );
        assert_eq!(p.a.table.check_send(x), Err(ChannelError::Finished));
        // B's OPEN reaches a finished table: ignored.
        p.drain();
        assert!(p.a.table.is_empty());
        p.b.table.close_all(CloseReason::Timeout, &mut p.b.out);
        assert_eq!(p.b.out.len(), 3);
        p.b.flush(&mut p.b_to_a);
        assert_eq!(
            p.b.take_events(),
            [closed(x), closed(z), closed(y)],
            "id order"
        );
    }

    // ---- the property test: two tables, random operations, random interleavings ----

    /// Which table an operation applies to.
    #[derive(Clone, Copy, Debug)]
    enum Who {
        A,
        B,
    }

    /// One step of the property test. A `usize` picks among the ids seen so far.
    #[derive(Clone, Debug)]
    enum Op {
        Open(Who, usize),
        Accept(Who, usize),
        Refuse(Who, usize),
        Pend(Who, usize),
        Resume(Who, usize),
        Close(Who, usize, CloseReason),
        /// Queue a DATA frame if `check_send` allows it.
        Send(Who, usize),
        /// Deliver the next control frame travelling from `Who`.
        Control(Who),
        /// Deliver one DATA frame from `Who`, picked anywhere: data overtakes control.
        Data(Who, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let who = prop_oneof![Just(Who::A), Just(Who::B)];
        let reason = prop_oneof![
            Just(CloseReason::Normal),
            Just(CloseReason::Timeout),
            Just(CloseReason::Error)
        ];
        let pick = 0..16usize;
        prop_oneof![
            2 => (who.clone(), 0..7usize).prop_map(|(w, n)| Op::Open(w, n)),
            2 => (who.clone(), pick.clone()).prop_map(|(w, n)| Op::Accept(w, n)),
            1 => (who.clone(), pick.clone()).prop_map(|(w, n)| Op::Refuse(w, n)),
            1 => (who.clone(), pick.clone()).prop_map(|(w, n)| Op::Pend(w, n)),
            1 => (who.clone(), pick.clone()).prop_map(|(w, n)| Op::Resume(w, n)),
            1 => (who.clone(), pick.clone(), reason).prop_map(|(w, n, r)| Op::Close(w, n, r)),
            2 => (who.clone(), pick.clone()).prop_map(|(w, n)| Op::Send(w, n)),
            4 => who.clone().prop_map(Op::Control),
            2 => (who, pick).prop_map(|(w, n)| Op::Data(w, n)),
        ]
    }

    /// The two tables, their control paths (in order) and data paths (any order).
    struct World {
        pair: Pair,
        a_data: Vec<BytesMut>,
        b_data: Vec<BytesMut>,
        /// Every id either side has heard of, to pick from (including closed ones).
        seen: Vec<ChannelId>,
    }

    impl World {
        fn peer(&mut self, who: Who) -> &mut Peer {
            match who {
                Who::A => &mut self.pair.a,
                Who::B => &mut self.pair.b,
            }
        }

        fn pick(&self, n: usize) -> ChannelId {
            self.seen
                .get(n % self.seen.len().max(1))
                .copied()
                .unwrap_or(ChannelId(1))
        }

        fn apply(&mut self, op: Op) {
            match op {
                Op::Open(w, len) => {
                    let peer = self.peer(w);
                    if let Ok(id) = peer.table.open(&[7; 8][..len], &mut peer.out) {
                        self.seen.push(id);
                    }
                }
                Op::Accept(w, n) => {
                    let id = self.pick(n);
                    let p = self.peer(w);
                    let _ = p.table.accept(id, &mut p.out);
                }
                Op::Refuse(w, n) => {
                    let id = self.pick(n);
                    let p = self.peer(w);
                    let _ = p.table.refuse(id, &mut p.out);
                }
                Op::Pend(w, n) => {
                    let id = self.pick(n);
                    let p = self.peer(w);
                    let _ = p.table.pend(id, &mut p.out);
                }
                Op::Resume(w, n) => {
                    let id = self.pick(n);
                    let p = self.peer(w);
                    let _ = p.table.resume(id, &mut p.out);
                }
                Op::Close(w, n, reason) => {
                    let id = self.pick(n);
                    let p = self.peer(w);
                    let _ = p.table.close(id, reason, &mut p.out);
                }
                Op::Send(w, n) => {
                    let id = self.pick(n);
                    if self.peer(w).table.check_send(id).is_ok() {
                        match w {
                            Who::A => self.a_data.push(data(id)),
                            Who::B => self.b_data.push(data(id)),
                        }
                    }
                }
                Op::Control(Who::A) => {
                    if let Some(f) = self.pair.a_to_b.pop_front() {
                        self.pair.b.receive(&f);
                    }
                }
                Op::Control(Who::B) => {
                    if let Some(f) = self.pair.b_to_a.pop_front() {
                        self.pair.a.receive(&f);
                    }
                }
                Op::Data(w, n) => {
                    let (queue, to) = match w {
                        Who::A => (&mut self.a_data, &mut self.pair.b),
                        Who::B => (&mut self.b_data, &mut self.pair.a),
                    };
                    if !queue.is_empty() {
                        let f = queue.swap_remove(n % queue.len());
                        let id = parse(&f, &to.table.limits()).unwrap().channel();
                        let delivered = to.receive(&f);
                        let state = to.table.state(ChannelId(id));
                        // Data goes to a channel exactly when it is (now) open here: it is
                        // never handed to a channel in another state, and never dropped
                        // while its channel lives (e.g. when it overtook the ACCEPT).
                        assert_eq!(delivered, state.is_some(), "{state:?}");
                        if delivered {
                            assert_eq!(state, Some(ChannelState::Open));
                        }
                    }
                }
            }
            self.pair.a.flush(&mut self.pair.a_to_b);
            self.pair.b.flush(&mut self.pair.b_to_a);
            for e in self.pair.a.events.iter().chain(&self.pair.b.events) {
                if let ChannelEvent::Open { id, .. } = e
                    && !self.seen.contains(id)
                {
                    self.seen.push(*id);
                }
            }
        }

        /// Delivers everything in flight, data included.
        fn drain(&mut self) {
            while !self.a_data.is_empty() || !self.b_data.is_empty() {
                self.apply(Op::Data(Who::A, 0));
                self.apply(Op::Data(Who::B, 0));
            }
            self.pair.drain();
        }
    }

    /// Checks one side's event log: each channel the app learned of (opened by it, or an
    /// `Open` event) has at most one `Opened` and at most (or, if `ended`, exactly) one
    /// `Closed`, and nothing after it.
    fn check_events(
        events: &[ChannelEvent],
        own: &[ChannelId],
        live: &BTreeSet<ChannelId>,
        ended: bool,
    ) {
        let mut known: BTreeSet<ChannelId> = own.iter().copied().collect();
        let mut opened = BTreeSet::new();
        let mut closed = BTreeSet::new();
        for e in events {
            match e {
                ChannelEvent::Open { id, .. } => assert!(known.insert(*id), "{e:?}"),
                ChannelEvent::Opened { id } => {
                    assert!(known.contains(id) && !closed.contains(id), "{e:?}");
                    assert!(opened.insert(*id), "{e:?}");
                }
                ChannelEvent::Closed { id, .. } => {
                    assert!(known.contains(id), "{e:?}");
                    assert!(closed.insert(*id), "{e:?} twice");
                }
                ChannelEvent::Pending { id } | ChannelEvent::Resumed { id } => {
                    assert!(known.contains(id) && !closed.contains(id), "{e:?}");
                }
            }
        }
        for id in &known {
            // A channel is live exactly when it has not been reported closed.
            assert_eq!(live.contains(id), !closed.contains(id), "{id:?}");
        }
        if ended {
            assert_eq!(known, closed);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn two_tables_agree(ops in proptest::collection::vec(op(), 0..120), drain_first: bool) {
            let limits = ChannelLimits {
                max_channels: 6,
                max_cookie: 5,
                max_incoming_opens: 3,
            };
            let mut world = World {
                pair: Pair::new(limits),
                a_data: Vec::new(),
                b_data: Vec::new(),
                seen: Vec::new(),
            };
            for op in ops {
                world.apply(op);
                for t in [&world.pair.a.table, &world.pair.b.table] {
                    prop_assert!(t.len() <= limits.max_channels);
                    prop_assert!(t.incoming_count() <= limits.max_incoming_opens);
                    prop_assert!(t.opening_count() <= limits.max_incoming_opens);
                }
            }
            let own = |side: Side| -> Vec<ChannelId> {
                world.seen.iter().copied().filter(|id| side.opens(id.0)).collect()
            };
            let (own_a, own_b) = (own(Side::Offerer), own(Side::Answerer));
            if drain_first {
                world.drain();
                let (a, b) = (&world.pair.a.table, &world.pair.b.table);
                let ids: BTreeSet<_> = a.ids().chain(b.ids()).collect();
                for id in ids {
                    use ChannelState::*;
                    let states = (a.state(id), b.state(id));
                    prop_assert!(
                        matches!(states, (Some(Open), Some(Open)) | (Some(Opening), Some(Incoming)) | (Some(Incoming), Some(Opening))),
                        "{id:?}: {states:?}"
                    );
                    prop_assert_eq!(a.local_paused(id), b.remote_paused(id));
                    prop_assert_eq!(a.remote_paused(id), b.local_paused(id));
                }
                let live = |t: &ChannelTable| t.ids().collect::<BTreeSet<_>>();
                check_events(&world.pair.a.events, &own_a, &live(a), false);
                check_events(&world.pair.b.events, &own_b, &live(b), false);
            }
            // The stream ends (frames may still be in flight if we did not drain).
            world.pair.a.table.close_all(CloseReason::Error, &mut world.pair.a.out);
            world.pair.b.table.close_all(CloseReason::Error, &mut world.pair.b.out);
            world.drain();
            prop_assert!(world.pair.a.table.is_empty() && world.pair.b.table.is_empty());
            let none = BTreeSet::new();
            check_events(&world.pair.a.events, &own_a, &none, true);
            check_events(&world.pair.b.events, &own_b, &none, true);
        }

        #[test]
        fn arbitrary_frames_keep_the_table_bounded(
            frames in proptest::collection::vec(
                (0x0Au8..=0x10, 1u64..40, proptest::collection::vec(any::<u8>(), 0..8), any::<u8>()),
                0..200,
            ),
        ) {
            let limits = ChannelLimits { max_channels: 8, max_cookie: 4, max_incoming_opens: 3 };
            let mut t = ChannelTable::new(STREAM, Side::Answerer, limits);
            let mut out = VecDeque::new();
            let _ = t.open(b"", &mut out);
            for (ty, channel, mut body, extra) in frames {
                // A plausible header (stream, channel) in front of arbitrary bytes.
                let mut bytes = BytesMut::new();
                bytes.extend_from_slice(&[STREAM]);
                varint::write(&mut bytes, channel);
                bytes.extend_from_slice(&[extra]);
                bytes.extend_from_slice(&body);
                body.clear();
                let mut input = &bytes[..];
                if let Ok(f) = ChannelFrame::parse(ty, &mut input, MAX_CHANNEL_ID, limits.max_cookie) {
                    t.on_frame(&f, &mut out);
                }
                prop_assert!(t.len() <= limits.max_channels);
                prop_assert!(t.incoming_count() <= limits.max_incoming_opens);
                out.clear();
            }
        }
    }
}
