//! [`Manager`]: the socket's endpoint, incoming requests, new sessions.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant as WallClock;

use carrier_proto::{
    Answer, Config, EndpointStats, HandlerId, Offer, Reply, StreamOptions, StreamType,
};
use carrier_udp::{Engine, IoStats, Socket};

use crate::callback::{CallbackScope, Callbacks};
use crate::driver::Driver;
use crate::runtime::{AsyncUdpSocket, Runtime};
use crate::session::{Session, SessionRef};
use crate::shared::{Mode, Shared};
use crate::{Error, Stream};

/// Counters of the async layer, beside the endpoint's own ([`Manager::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// The socket side: send calls, datagrams the socket refused, signaling datagrams.
    pub io: IoStats,
    /// Session requests dropped because their handler's queue was full.
    pub requests_dropped: u64,
    /// Datagrams dropped because a reader did not keep up.
    pub datagrams_dropped: u64,
}

/// The last manager handle closes the manager: the driver stops once the sessions still
/// held are dropped too.
#[derive(Debug)]
struct ManagerRef {
    shared: Arc<Shared>,
    local: SocketAddr,
    /// The socket's GSO limit (datagrams per send).
    gso: usize,
}

impl Drop for ManagerRef {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closing = true;
        st.wake_driver();
    }
}

/// One UDP socket's worth of sessions (the Carrier SDK's session manager). Make one with a
/// runtime crate's `bind` (`carrier_tokio::bind`, `carrier_async_std::bind`) or
/// [`Manager::new`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Manager {
    r: Arc<ManagerRef>,
}

impl Manager {
    /// A manager on `socket` (bound; made non-blocking here) and the [`Driver`] future to
    /// spawn on `runtime`. Events go to the handles (sessions, streams, channels).
    pub fn new<R: Runtime>(
        runtime: R,
        socket: std::net::UdpSocket,
        config: Config,
    ) -> io::Result<(Manager, Driver<R>)> {
        Self::with_mode(runtime, socket, config, Mode::Handles)
    }

    /// As [`Manager::new`], but every event goes to `handler`'s callbacks (the Carrier SDK's
    /// style) on the driver task instead of the handles. Make calls on the endpoint from
    /// outside with [`Manager::call`].
    pub fn with_handler<R: Runtime>(
        runtime: R,
        socket: std::net::UdpSocket,
        config: Config,
        handler: impl Callbacks,
    ) -> io::Result<(Manager, Driver<R>)> {
        Self::with_mode(runtime, socket, config, Mode::Callback(Box::new(handler)))
    }

    fn with_mode<R: Runtime>(
        runtime: R,
        socket: std::net::UdpSocket,
        config: Config,
        mode: Mode,
    ) -> io::Result<(Manager, Driver<R>)> {
        socket.set_nonblocking(true)?;
        carrier_udp::tune_buffers(carrier_udp::socket2::SockRef::from(&socket));
        let socket = runtime.wrap_socket(socket)?;
        let local = socket.local_addr()?;
        let io = socket.with_ref(Socket::new)?;
        // Readers return credit as they read: what waits for them is bounded by windows.
        let config = config.with_manual_credit(true);
        let gso = io.max_gso_segments();
        let engine = Engine::new(config, local, gso);
        let shared = Arc::new(Shared::new(engine, mode));
        let driver = Driver {
            shared: shared.clone(),
            socket,
            io,
            timer: Box::pin(runtime.timer(WallClock::now())),
            timer_at: None,
            outgoing: None,
        };
        let manager = Manager {
            r: Arc::new(ManagerRef { shared, local, gso }),
        };
        Ok((manager, driver))
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.r.shared
    }

    /// The socket's address (the host candidate offered to peers).
    pub fn local_addr(&self) -> SocketAddr {
        self.r.local
    }

    /// This endpoint's public identity key, if the config has an identity.
    pub fn identity(&self) -> Option<[u8; 32]> {
        self.shared().lock().engine.endpoint().identity()
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> EndpointStats {
        self.shared().lock().stats()
    }

    /// The async layer's counters.
    pub fn driver_stats(&self) -> DriverStats {
        let st = self.shared().lock();
        DriverStats {
            io: st.engine.stats(),
            requests_dropped: st.requests_dropped,
            datagrams_dropped: st.datagrams_dropped,
        }
    }

    /// Turns batched sends (GSO) on or off where the OS has them (on by default).
    /// Returns whether they are on now.
    pub fn set_batching(&self, on: bool) -> bool {
        let max = if on { self.r.gso } else { 1 };
        self.shared().lock().engine.set_max_segments(max);
        max > 1
    }

    /// Runs `f` with the endpoint under the lock (the callback style's way in from
    /// outside), then wakes the driver to send what it produced.
    pub fn call<T>(&self, f: impl FnOnce(&mut CallbackScope<'_>) -> T) -> T {
        let mut st = self.shared().lock();
        let out = f(&mut CallbackScope {
            engine: &mut st.engine,
        });
        st.wake_driver();
        out
    }

    /// A new session with `peer` (a name for logs and the signaling layer).
    pub fn new_session(&self, peer: &str) -> Result<Session, Error> {
        let id = {
            let mut st = self.shared().lock();
            if let Some(why) = &st.stopped {
                return Err(Error::Stopped(why.clone()));
            }
            st.engine.endpoint().new_session(peer)?
        };
        Ok(Session {
            r: SessionRef::new(self.shared().clone(), id),
        })
    }

    /// Session requests whose bundle matches no registered prefix (all of them if none
    /// is registered).
    pub fn incoming(&self) -> Requests {
        Requests {
            shared: self.shared().clone(),
            handler: None,
        }
    }

    /// Session requests whose bundle starts with `prefix` (the longest matching prefix
    /// wins). Dropping the [`Requests`] removes the route.
    pub fn incoming_for(&self, prefix: &str) -> Requests {
        let id = self
            .shared()
            .lock()
            .engine
            .endpoint()
            .add_request_handler(prefix);
        Requests {
            shared: self.shared().clone(),
            handler: Some(id),
        }
    }

    /// Signaling the application carries: an offer from `peer` arrived. The request
    /// shows up on [`incoming`](Manager::incoming) (or its prefix's).
    pub fn handle_offer(&self, peer: &str, offer_sdp: &str) -> Result<(), Error> {
        let mut st = self.shared().lock();
        st.engine.endpoint().handle_offer(peer, offer_sdp)?;
        st.wake_driver();
        Ok(())
    }

    /// Signaling the application carries: the answer to one of our requests arrived; its
    /// [`Request`](crate::Request) completes.
    pub fn handle_answer(&self, answer_sdp: &str) -> Result<(), Error> {
        let mut st = self.shared().lock();
        st.engine.endpoint().handle_answer(answer_sdp)?;
        st.wake_driver();
        Ok(())
    }
}

/// Session requests routed to one handler: `next().await`, or use it as a
/// `futures_core::Stream`. Ends (`None`) when the driver stops.
#[derive(Debug)]
pub struct Requests {
    shared: Arc<Shared>,
    handler: Option<HandlerId>,
}

impl Requests {
    /// The next request.
    pub async fn next(&mut self) -> Option<IncomingRequest> {
        poll_fn(|cx| self.poll_request(cx)).await
    }

    fn poll_request(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<IncomingRequest>> {
        let mut st = self.shared.lock();
        let stopped = st.stopped.is_some();
        let q = st.requests.entry(self.handler).or_default();
        if let Some((peer, offer)) = q.queue.pop_front() {
            return Poll::Ready(Some(IncomingRequest {
                shared: self.shared.clone(),
                peer,
                offer,
            }));
        }
        if stopped {
            return Poll::Ready(None);
        }
        q.wakers.register(cx.waker());
        Poll::Pending
    }
}

impl futures_core::Stream for Requests {
    type Item = IncomingRequest;
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_request(cx)
    }
}

impl Drop for Requests {
    fn drop(&mut self) {
        if let Some(id) = self.handler {
            let mut st = self.shared.lock();
            st.engine.endpoint().remove_request_handler(id);
            st.requests.remove(&Some(id));
        }
    }
}

/// A peer's session request (the Carrier SDK's `onSessionRequest`): accept it with the
/// streams to answer with, or refuse it. If the offer came over the socket (direct
/// signaling), the answer goes back the same way by itself.
#[derive(Debug)]
pub struct IncomingRequest {
    shared: Arc<Shared>,
    peer: String,
    offer: Offer,
}

impl IncomingRequest {
    /// Who asks (for a direct request, the sender's address).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The offer (its streams, bundle, identity).
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// The bundle string the requester asked for.
    pub fn bundle(&self) -> &str {
        self.offer.bundle().unwrap_or("")
    }

    /// Accepts: a new session with `streams` (matching the offer's, in order), the
    /// answer, and the start. Returns the session, its streams, and the answer (to carry
    /// back when the application does the signaling; a direct request's goes by itself).
    pub fn accept(
        self,
        streams: &[(StreamType, StreamOptions)],
    ) -> Result<(Session, Vec<Stream>, Answer), Error> {
        let manager_session = {
            let mut st = self.shared.lock();
            st.engine.endpoint().new_session(&self.peer)?
        };
        let session = Session {
            r: SessionRef::new(self.shared.clone(), manager_session),
        };
        let handles = streams
            .iter()
            .map(|(t, o)| session.add_stream(*t, *o))
            .collect::<Result<Vec<_>, _>>()?;
        let answer = session.reply(&self.offer, Reply::Accept)?;
        session.start()?;
        self.send_direct(&answer);
        Ok((session, handles, answer))
    }

    /// Refuses with a non-zero `status` and a `reason` the requester sees. Returns the
    /// answer (carried back by itself for a direct request).
    pub fn refuse(self, status: i32, reason: &str) -> Result<Answer, Error> {
        let id = self
            .shared
            .lock()
            .engine
            .endpoint()
            .new_session(&self.peer)?;
        let session = Session {
            r: SessionRef::new(self.shared.clone(), id),
        };
        let answer = session.reply(
            &self.offer,
            Reply::Refuse {
                status,
                reason: reason.to_string(),
            },
        )?;
        self.send_direct(&answer);
        Ok(answer)
    }

    fn send_direct(&self, answer: &Answer) {
        let mut st = self.shared.lock();
        st.engine.reply_direct(&self.offer, answer);
        st.wake_driver();
    }
}
