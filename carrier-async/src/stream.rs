//! [`Stream`]: state, datagrams or bytes, channels.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use carrier_proto::{
    SessionId, StateReason, StreamId, StreamOptions, StreamState, StreamType, TransportInfo,
};

use crate::Error;
use crate::channel::{Channel, IncomingChannel};
use crate::error::Closed;
use crate::io::{Target, async_io_impls, send_all, send_all_bytes};
use crate::session::{Session, SessionRef};

/// A stream of a session (the Carrier SDK's `Stream`). On an unreliable stream,
/// [`send`](Stream::send) and [`recv`](Stream::recv) move datagrams; a RELIABLE stream is
/// also an `AsyncRead` + `AsyncWrite` byte stream (futures-io; tokio's with the `tokio`
/// feature); a MULTIPLEXING stream carries [`Channel`]s. Cheap to clone; clones share one
/// reader queue (each chunk goes to one reader).
#[derive(Debug, Clone)]
pub struct Stream {
    target: Target,
}

impl Stream {
    pub(crate) fn new(session: Arc<SessionRef>, id: StreamId) -> Stream {
        Stream {
            target: Target {
                session,
                stream: id,
                channel: None,
                try_only: false,
            },
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.target.stream
    }

    /// Its session's id.
    pub fn session_id(&self) -> SessionId {
        self.target.session.id
    }

    /// Its session.
    pub fn session(&self) -> Session {
        Session {
            r: self.target.session.clone(),
        }
    }

    /// The current state, and why it ended if it did.
    pub fn state(&self) -> (StreamState, Option<StateReason>) {
        let mut st = self.target.session.shared.lock();
        st.stream_slot(self.session_id(), self.id())
            .map_or((StreamState::Closed, None), |s| (s.state, s.reason))
    }

    /// Waits until the state is no longer `from`; returns the new one.
    pub async fn state_changed(&self, from: StreamState) -> StreamState {
        poll_fn(|cx| {
            let mut st = self.target.session.shared.lock();
            let stopped = st.stopped.is_some();
            match st.stream_slot(self.session_id(), self.id()) {
                Some(s) if s.state == from && !stopped => {
                    s.state_wakers.register(cx.waker());
                    Poll::Pending
                }
                Some(s) => Poll::Ready(s.state),
                None => Poll::Ready(StreamState::Closed),
            }
        })
        .await
    }

    /// Every state change of the stream, in order, from its first: `next().await` gives
    /// the next one (`None` after the last, a terminal state).
    pub fn states(&self) -> StateChanges {
        StateChanges {
            stream: self.clone(),
            seen: 0,
        }
    }

    /// How the stream's packets travel: the pair in use and its topology.
    pub fn transport_info(&self) -> Result<TransportInfo, Error> {
        let mut st = self.target.session.shared.lock();
        Ok(st
            .engine
            .endpoint()
            .session(self.session_id())?
            .transport_info(self.id())?)
    }

    /// Waits until the stream is Connected; fails if it ends first.
    pub async fn connected(&self) -> Result<(), Error> {
        loop {
            let (state, reason) = self.state();
            if state == StreamState::Connected {
                return Ok(());
            }
            if state.is_terminal() {
                return Err(Error::StreamEnded(reason));
            }
            if let Some(why) = &self.target.session.shared.lock().stopped {
                return Err(Error::Stopped(why.clone()));
            }
            self.state_changed(state).await;
        }
    }

    /// Waits until the stream ended (Closed, Failed, Deactivated); returns why.
    pub async fn closed(&self) -> (StreamState, Option<StateReason>) {
        loop {
            let (state, reason) = self.state();
            if state.is_terminal() || self.target.session.shared.lock().stopped.is_some() {
                return (state, reason);
            }
            self.state_changed(state).await;
        }
    }

    /// Unreliable: sends `data` as one datagram (at most
    /// [`max_datagram_size`](Stream::max_datagram_size)). Reliable: writes all of it,
    /// waiting for room. Waits until Connected first.
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        send_all(&self.target, data).await
    }

    /// As [`send`](Stream::send), keeping `data` without a copy (reliable streams).
    pub async fn send_bytes(&self, data: Bytes) -> Result<(), Error> {
        send_all_bytes(&self.target, data).await
    }

    /// The next datagram (unreliable) or the next bytes in order (reliable); `None` once
    /// the stream closed and everything was read.
    pub async fn recv(&self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.target.poll_recv(cx, usize::MAX)).await
    }

    /// The largest datagram [`send`](Stream::send) takes on an unreliable stream.
    pub fn max_datagram_size(&self) -> Result<usize, Error> {
        let mut st = self.target.session.shared.lock();
        Ok(st
            .engine
            .endpoint()
            .session(self.session_id())?
            .max_datagram_size(self.id())?)
    }

    /// As [`send`](Stream::send) on an unreliable stream, without waiting: a full datagram
    /// queue is `Err(Error::Proto(carrier_proto::Error::WouldBlock))` at once. On a
    /// reliable stream, writes what fits now (all of it or the error).
    pub fn try_send(&self, data: &[u8]) -> Result<usize, Error> {
        let target = Target {
            try_only: true,
            ..self.target.clone()
        };
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match target.poll_write(&mut cx, crate::io::WriteData::Slice(data)) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::Proto(carrier_proto::Error::WouldBlock)),
        }
    }

    /// The stream's type and options (as added; the options normalized, e.g.
    /// PORT_FORWARDING implies MULTIPLEXING).
    pub fn kind(&self) -> Result<(StreamType, StreamOptions), Error> {
        let mut st = self.target.session.shared.lock();
        Ok(st
            .engine
            .endpoint()
            .session(self.session_id())?
            .stream_kind(self.id())?)
    }

    /// Runs a stream call of the core under the lock, then wakes the driver.
    fn call(
        &self,
        f: impl FnOnce(
            &mut carrier_proto::SessionMut<'_>,
            carrier_proto::Instant,
            StreamId,
        ) -> Result<(), carrier_proto::Error>,
    ) -> Result<(), Error> {
        let mut st = self.target.session.shared.lock();
        let now = st.engine.now();
        f(
            &mut st.engine.endpoint().session(self.session_id())?,
            now,
            self.id(),
        )?;
        st.wake_driver();
        Ok(())
    }

    fn set_write_finished(&self) {
        let mut st = self.target.session.shared.lock();
        if let Some(slot) = st.stream_slot(self.session_id(), self.id()) {
            slot.write_finished = true;
        }
    }

    /// Half-close (a reliable stream): no more writes; what was written still arrives,
    /// then the peer reads the end, and may go on writing — this side keeps reading until
    /// its end. Await [`finished`](Stream::finished) for the peer's acknowledgement.
    /// `AsyncWrite::poll_close` / `poll_shutdown` do this.
    pub fn finish(&self) -> Result<(), Error> {
        self.call(|s, now, id| s.finish_stream(now, id))?;
        self.set_write_finished();
        Ok(())
    }

    /// Waits until the peer has acknowledged everything written and the end (after
    /// [`finish`](Stream::finish) or [`close`](Stream::close)). Fails with the cause if
    /// the stream ended first (aborted, the peer closed it, the path died).
    pub async fn finished(&self) -> Result<(), Error> {
        poll_fn(|cx| {
            let mut st = self.target.session.shared.lock();
            if let Some(why) = &st.stopped {
                return Poll::Ready(Err(Error::Stopped(why.clone())));
            }
            let Some(s) = st.stream_slot(self.session_id(), self.id()) else {
                return Poll::Ready(Err(Error::Closed(Closed::Aborted)));
            };
            if s.acknowledged {
                return Poll::Ready(Ok(()));
            }
            if s.state.is_terminal() {
                return Poll::Ready(Err(Error::Closed(Closed::from_stream(s.reason))));
            }
            s.state_wakers.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Closes the stream gracefully and tells the peer: no more writes; what was written
    /// still arrives (the peer reads it, then the end), and once the peer acknowledged it
    /// all the stream is Closed on both sides (about one round trip after the last data).
    /// What the peer still had to send is discarded. An unreliable stream closes at once.
    pub fn close(&self) -> Result<(), Error> {
        self.call(|s, now, id| s.close_stream(now, id))?;
        self.set_write_finished();
        Ok(())
    }

    /// Aborts the stream: the peer is told at once and its reader gets an error
    /// ([`Closed::AbortedByPeer`], `io::ErrorKind::ConnectionReset`), never a clean end;
    /// what was not delivered either way is discarded.
    pub fn abort(&self) -> Result<(), Error> {
        self.call(|s, now, id| s.abort_stream(now, id))?;
        self.set_write_finished();
        Ok(())
    }

    /// `AsyncWrite::poll_close` / `poll_shutdown`: half-close a reliable stream, close an
    /// unreliable one.
    fn shutdown(&self) -> Result<(), Error> {
        let reliable = self.target.reliable(&mut self.target.session.shared.lock());
        let r = if reliable {
            self.finish()
        } else {
            self.close()
        };
        match r {
            // Already finishing or closed: nothing more to do.
            Err(Error::Proto(_)) => Ok(()),
            other => other,
        }
    }

    /// Opens a channel on a MULTIPLEXING stream with `cookie` (what the peer sees in its
    /// [`IncomingChannel`]), once the stream is Connected; await [`Channel::opened`] for
    /// the peer's accept. With the limit of opens in flight reached
    /// (`ChannelConfig::max_pending_opens`), waits until one of them is answered.
    pub async fn open_channel(&self, cookie: &[u8]) -> Result<Channel, Error> {
        self.connected().await?;
        // Over the limit of opens in flight, wait for one to be answered.
        let id = poll_fn(|cx| {
            let mut st = self.target.session.shared.lock();
            let now = st.engine.now();
            let opened = st
                .engine
                .endpoint()
                .session(self.session_id())
                .and_then(|mut s| s.open_channel(now, self.id(), cookie));
            match opened {
                Ok(id) => {
                    if let Some(slot) = st.stream_slot(self.session_id(), self.id()) {
                        slot.channels.insert(id, Default::default());
                    }
                    st.wake_driver();
                    Poll::Ready(Ok(id))
                }
                Err(carrier_proto::Error::Channel(
                    carrier_proto::ChannelError::TooManyPendingOpens { .. },
                )) => match st.stream_slot(self.session_id(), self.id()) {
                    Some(slot) if !slot.state.is_terminal() => {
                        slot.room_wakers.register(cx.waker());
                        Poll::Pending
                    }
                    _ => Poll::Ready(Err(Error::Closed(Closed::Aborted))),
                },
                Err(e) => Poll::Ready(Err(e.into())),
            }
        })
        .await?;
        Ok(Channel::new(self.target.session.clone(), self.id(), id))
    }

    /// The next channel the peer opens on this stream (accept or refuse it); `None` once
    /// the stream ended.
    pub async fn accept_channel(&self) -> Option<IncomingChannel> {
        poll_fn(|cx| {
            let mut st = self.target.session.shared.lock();
            let stopped = st.stopped.is_some();
            let Some(slot) = st.stream_slot(self.session_id(), self.id()) else {
                return Poll::Ready(None);
            };
            if let Some((id, cookie)) = slot.opens.pop_front() {
                return Poll::Ready(Some(IncomingChannel::new(
                    Channel::new(self.target.session.clone(), self.id(), id),
                    cookie,
                )));
            }
            if slot.state.is_terminal() || stopped {
                return Poll::Ready(None);
            }
            slot.open_wakers.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}

async_io_impls!(Stream);

/// The state changes of a stream, one by one ([`Stream::states`]).
#[derive(Debug)]
pub struct StateChanges {
    stream: Stream,
    seen: usize,
}

impl StateChanges {
    /// The next state change and its reason; `None` once the stream ended and every
    /// change was seen (or the driver stopped).
    pub async fn next(&mut self) -> Option<(StreamState, Option<StateReason>)> {
        poll_fn(|cx| {
            let target = &self.stream.target;
            let mut st = target.session.shared.lock();
            let stopped = st.stopped.is_some();
            let Some(slot) = st.stream_slot(target.session.id, target.stream) else {
                return Poll::Ready(None);
            };
            if let Some(change) = slot.history.get(self.seen) {
                self.seen += 1;
                return Poll::Ready(Some(*change));
            }
            if slot.state.is_terminal() || stopped {
                return Poll::Ready(None);
            }
            slot.state_wakers.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}
