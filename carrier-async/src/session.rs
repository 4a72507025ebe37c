//! [`Session`]: add streams, request (or reply and start), close.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use carrier_proto::{
    Answer, Offer, Reply, RequestOutcome, SessionId, StreamId, StreamOptions, StreamType,
};

use crate::Error;
use crate::shared::{SessionSlot, Shared, StreamSlot};
use crate::stream::Stream;

/// What every handle of one session shares; the last one to go closes the session.
#[derive(Debug)]
pub(crate) struct SessionRef {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: SessionId,
}

impl SessionRef {
    pub(crate) fn new(shared: Arc<Shared>, id: SessionId) -> Arc<SessionRef> {
        {
            let mut st = shared.lock();
            st.sessions.insert(id, SessionSlot::default());
            st.session_handles += 1;
        }
        Arc::new(SessionRef { shared, id })
    }
}

impl Drop for SessionRef {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let now = st.engine.now();
        // The last handle is gone. A stream left mid-write (written to, never finished) is
        // a transfer cut short: abort, so the peer's reader gets an error, not an end that
        // looks complete. Otherwise close gracefully (what was written still arrives). A
        // session already gone is fine.
        let cut_short = st.sessions.get(&self.id).is_some_and(|s| {
            s.streams
                .values()
                .any(|st| st.reliable && st.wrote && !st.write_finished && !st.state.is_terminal())
        });
        let ep = st.engine.endpoint();
        let _ = if cut_short {
            ep.abort_session(now, self.id)
        } else {
            ep.close_session(now, self.id)
        };
        st.sessions.remove(&self.id);
        st.session_handles -= 1;
        st.wake_driver();
    }
}

/// A session (the Carrier SDK's `Session`): add streams, then [`request`](Session::request)
/// (offerer) or [`reply`](Session::reply) and [`start`](Session::start) (answerer). Cheap to
/// clone; the session closes when the last clone and the last of its streams and channels
/// are dropped, or at [`close`](Session::close).
#[derive(Debug, Clone)]
pub struct Session {
    pub(crate) r: Arc<SessionRef>,
}

impl Session {
    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.r.id
    }

    /// Runs `f` on the core's session under the lock, then wakes the driver.
    fn with<T>(
        &self,
        f: impl FnOnce(
            &mut carrier_proto::SessionMut<'_>,
            carrier_proto::Instant,
        ) -> Result<T, carrier_proto::Error>,
    ) -> Result<T, Error> {
        let mut st = self.r.shared.lock();
        if let Some(why) = &st.stopped {
            return Err(Error::Stopped(why.clone()));
        }
        let now = st.engine.now();
        let out = f(&mut st.engine.endpoint().session(self.r.id)?, now)?;
        st.wake_driver();
        Ok(out)
    }

    /// Adds a stream (before the request or the reply).
    pub fn add_stream(&self, ty: StreamType, options: StreamOptions) -> Result<Stream, Error> {
        let reliable = options.contains(StreamOptions::RELIABLE);
        let mut st = self.r.shared.lock();
        if let Some(why) = &st.stopped {
            return Err(Error::Stopped(why.clone()));
        }
        let id = st
            .engine
            .endpoint()
            .session(self.r.id)?
            .add_stream(ty, options)?;
        // Under the same lock as the core call: the driver routes the stream's first
        // state change (Initialized) only to a slot that exists.
        if let Some(slot) = st.sessions.get_mut(&self.r.id) {
            slot.streams.insert(id, StreamSlot::new(reliable));
        }
        st.wake_driver();
        Ok(Stream::new(self.r.clone(), id))
    }

    /// The stream with this id, if the session has it.
    pub fn stream(&self, id: StreamId) -> Option<Stream> {
        let mut st = self.r.shared.lock();
        st.stream_slot(self.r.id, id)?;
        Some(Stream::new(self.r.clone(), id))
    }

    /// Makes the offer for signaling the application carries itself: send
    /// [`Request::offer`] to the peer, feed its answer to
    /// [`Manager::handle_answer`](crate::Manager::handle_answer), and await the
    /// [`Request`]: it completes when the peer accepts (the session then starts), refuses,
    /// or the request times out.
    pub fn request(&self, bundle: &str) -> Result<Request, Error> {
        self.request_inner(bundle, None)
    }

    /// Direct signaling: sends the offer to `to` over the manager's socket (repeated until
    /// answered); await the [`Request`] as with [`request`](Session::request).
    pub fn request_direct(&self, to: SocketAddr, bundle: &str) -> Result<Request, Error> {
        self.request_inner(bundle, Some(to))
    }

    fn request_inner(&self, bundle: &str, to: Option<SocketAddr>) -> Result<Request, Error> {
        let pending = self.with(|s, now| s.request(now, bundle))?;
        let offer = pending.offer().clone();
        let mut st = self.r.shared.lock();
        if let Some(to) = to {
            st.engine.request_direct(to, &pending);
        }
        if let Some(slot) = st.sessions.get_mut(&self.r.id) {
            slot.pending = Some(pending);
        }
        st.wake_driver();
        Ok(Request {
            session: self.clone(),
            offer,
        })
    }

    /// Answers a peer's offer with the streams added to this session (or a refusal). Call
    /// [`start`](Session::start) next when accepting. (An
    /// [`IncomingRequest`](crate::IncomingRequest) does all of it in one call.)
    pub fn reply(&self, offer: &Offer, reply: Reply) -> Result<Answer, Error> {
        self.with(|s, _| s.reply(offer, reply))
    }

    /// Starts the connectivity checks of an accepted session (the answerer's side).
    pub fn start(&self) -> Result<(), Error> {
        self.with(|s, now| s.start(now))
    }

    /// Closes the session gracefully: no more writes; what every reliable stream and
    /// channel was given still arrives (the peers' readers read it, then the end), queued
    /// datagrams go out, and then the session ends on both sides. Bounded by
    /// `Config::close_linger`: a peer that does not acknowledge in time gets the session
    /// closed with a timeout (its readers see an error). Await [`Stream::closed`] to know
    /// each stream is through.
    pub fn close(&self) -> Result<(), Error> {
        let mut st = self.r.shared.lock();
        let now = st.engine.now();
        st.engine.endpoint().close_session(now, self.r.id)?;
        if let Some(slot) = st.sessions.get_mut(&self.r.id) {
            for s in slot.streams.values_mut() {
                s.write_finished = true;
            }
        }
        st.wake_driver();
        Ok(())
    }

    /// Aborts the session: the peer is told at once, every stream and channel ends on
    /// both sides, and their readers get an error
    /// ([`Closed::AbortedByPeer`](crate::Closed)) rather than an end.
    pub fn abort(&self) -> Result<(), Error> {
        let mut st = self.r.shared.lock();
        let now = st.engine.now();
        st.engine.endpoint().abort_session(now, self.r.id)?;
        st.wake_driver();
        Ok(())
    }
}

/// A session request in flight: await it. Accepted → `Ok(())` and the session starts
/// (await [`Stream::connected`]); refused → [`Error::Refused`]; no reply →
/// [`Error::TimedOut`].
#[derive(Debug)]
#[must_use = "a request completes only when awaited"]
pub struct Request {
    session: Session,
    offer: Offer,
}

impl Request {
    /// The offer to carry to the peer (as SDP: `offer().to_sdp_string()`).
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// The requesting session.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

impl Future for Request {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let r = &self.session.r;
        let mut st = r.shared.lock();
        if let Some(why) = &st.stopped {
            return Poll::Ready(Err(Error::Stopped(why.clone())));
        }
        let Some(slot) = st.sessions.get_mut(&r.id) else {
            return Poll::Ready(Err(Error::NoRequest));
        };
        let Some(outcome) = slot.outcome.take() else {
            if slot.pending.is_none() {
                return Poll::Ready(Err(Error::NoRequest));
            }
            slot.request_wakers.register(cx.waker());
            return Poll::Pending;
        };
        let pending = slot.pending.take();
        Poll::Ready(match outcome {
            RequestOutcome::Accepted(answer) => {
                let pending = pending.ok_or(Error::NoRequest)?;
                let now = st.engine.now();
                let started = st
                    .engine
                    .endpoint()
                    .session(r.id)
                    .and_then(|mut s| s.start_with(now, pending, answer));
                st.wake_driver();
                started.map_err(Error::from)
            }
            RequestOutcome::Refused(refusal) => Err(Error::Refused {
                status: refusal.status,
                reason: refusal.reason,
            }),
            _ => Err(Error::TimedOut),
        })
    }
}
