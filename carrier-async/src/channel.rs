//! [`Channel`]: one flow inside a MULTIPLEXING stream.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use carrier_proto::{ChannelId, CloseReason, StreamId};

use crate::Error;
use crate::io::{Target, async_io_impls, send_all, send_all_bytes};
use crate::session::SessionRef;

/// A channel (the Carrier SDK's channels of a multiplexing stream): open, accepted or
/// refused, data, pend/resume, close with a reason. On a reliable stream it is an
/// `AsyncRead` + `AsyncWrite` byte stream of its own; on an unreliable one it carries
/// datagrams ([`send`](Channel::send) / [`recv`](Channel::recv)). Dropping it after
/// [`finish`](Channel::finish) or [`close`](Channel::close), or without having written
/// anything, closes it with [`CloseReason::Normal`] (a reliable channel still delivers
/// what was written); dropping it in the middle of writing aborts it, so the peer's
/// reader gets an error rather than an end that looks complete.
#[derive(Debug)]
pub struct Channel {
    target: Target,
    id: ChannelId,
}

impl Channel {
    pub(crate) fn new(session: Arc<SessionRef>, stream: StreamId, id: ChannelId) -> Channel {
        Channel {
            target: Target {
                session,
                stream,
                channel: Some(id),
                try_only: false,
            },
            id,
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The channel's id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Its stream's id.
    pub fn stream_id(&self) -> StreamId {
        self.target.stream
    }

    /// Runs `f` on the channel's slot: `None` if it is gone.
    fn slot<T>(&self, f: impl FnOnce(&mut crate::shared::ChannelSlot) -> T) -> Option<T> {
        let mut st = self.target.session.shared.lock();
        st.stream_slot(self.target.session.id, self.target.stream)
            .and_then(|s| s.channels.get_mut(&self.id()))
            .map(f)
    }

    /// Waits until the peer accepted the channel (at once for one we accepted); fails
    /// with [`Error::ChannelClosed`] if it was refused (`Error`) or closed first.
    pub async fn opened(&self) -> Result<(), Error> {
        poll_fn(|cx| {
            let mut st = self.target.session.shared.lock();
            if let Some(why) = &st.stopped {
                return Poll::Ready(Err(Error::Stopped(why.clone())));
            }
            let terminal = st
                .stream_slot(self.target.session.id, self.target.stream)
                .map(|s| (s.state.is_terminal(), s.reason));
            let slot = st
                .stream_slot(self.target.session.id, self.target.stream)
                .and_then(|s| s.channels.get_mut(&self.id()));
            match (slot, terminal) {
                (Some(c), _) if c.opened => Poll::Ready(Ok(())),
                (Some(c), _) if c.closed.is_some() => Poll::Ready(Err(Error::ChannelClosed(
                    c.closed.unwrap_or(CloseReason::Error),
                ))),
                (Some(_), Some((true, reason))) => Poll::Ready(Err(Error::StreamEnded(reason))),
                (Some(c), _) => {
                    c.state.register(cx.waker());
                    Poll::Pending
                }
                (None, _) => Poll::Ready(Err(Error::ChannelClosed(CloseReason::Normal))),
            }
        })
        .await
    }

    /// Waits until the channel is closed (by either side, or its stream's end); returns
    /// why.
    pub async fn closed(&self) -> CloseReason {
        poll_fn(|cx| {
            let mut st = self.target.session.shared.lock();
            let stopped = st.stopped.is_some();
            let slot = st
                .stream_slot(self.target.session.id, self.target.stream)
                .and_then(|s| s.channels.get_mut(&self.id()));
            match slot {
                Some(c) if c.closed.is_none() && !stopped => {
                    c.state.register(cx.waker());
                    Poll::Pending
                }
                Some(c) => Poll::Ready(c.closed.unwrap_or(CloseReason::Error)),
                None => Poll::Ready(CloseReason::Normal),
            }
        })
        .await
    }

    /// Whether the peer asked us to stop sending (writes wait until it resumes us).
    pub fn is_paused(&self) -> bool {
        let mut st = self.target.session.shared.lock();
        st.channel_paused(self.target.session.id, self.target.stream, self.id())
    }

    /// Waits until the peer pauses the channel (PEND), or it closes.
    pub async fn paused(&self) {
        self.wait_paused(true).await
    }

    /// Waits until the channel is not paused by the peer (at once if it is not), or it
    /// closes: a writer's signal to go on.
    pub async fn resumed(&self) {
        self.wait_paused(false).await
    }

    async fn wait_paused(&self, paused: bool) {
        poll_fn(|cx| {
            let mut st = self.target.session.shared.lock();
            let stopped = st.stopped.is_some();
            let now = st.channel_paused(self.target.session.id, self.target.stream, self.id());
            let slot = st
                .stream_slot(self.target.session.id, self.target.stream)
                .and_then(|s| s.channels.get_mut(&self.id()));
            match slot {
                Some(c) if now != paused && c.closed.is_none() && !stopped => {
                    c.state.register(cx.waker());
                    Poll::Pending
                }
                _ => Poll::Ready(()),
            }
        })
        .await
    }

    /// Writes all of `data` (reliable stream; waits for room, for the open, and while the
    /// peer has us paused) or sends it as one datagram (unreliable stream).
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        send_all(&self.target, data).await
    }

    /// As [`send`](Channel::send), keeping `data` without a copy.
    pub async fn send_bytes(&self, data: Bytes) -> Result<(), Error> {
        send_all_bytes(&self.target, data).await
    }

    /// The next bytes in order (reliable) or the next datagram; `None` once the channel
    /// closed normally and everything was read.
    pub async fn recv(&self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.target.poll_recv(cx, usize::MAX)).await
    }

    /// Runs a channel call of the core under the lock, then wakes the driver.
    fn call(
        &self,
        f: impl FnOnce(
            &mut carrier_proto::SessionMut<'_>,
            carrier_proto::Instant,
            StreamId,
            ChannelId,
        ) -> Result<(), carrier_proto::Error>,
    ) -> Result<(), Error> {
        let mut st = self.target.session.shared.lock();
        let now = st.engine.now();
        let mut session = st.engine.endpoint().session(self.target.session.id)?;
        f(&mut session, now, self.target.stream, self.id())?;
        st.wake_driver();
        Ok(())
    }

    /// Closes the channel with `reason`; the peer sees it. A Normal close of a reliable
    /// channel delivers what was written first; this side reads no more.
    pub fn close(&self, reason: CloseReason) -> Result<(), Error> {
        self.call(|s, now, st, ch| s.close_channel(now, st, ch, reason))?;
        self.slot(|c| {
            c.closed_locally = true;
            c.write_finished = true;
        });
        Ok(())
    }

    /// Aborts the channel: the peer's reader gets an error
    /// ([`Closed::AbortedByPeer`](crate::Closed)), never a clean end (a close with
    /// [`CloseReason::Error`]).
    pub fn abort(&self) -> Result<(), Error> {
        self.close(CloseReason::Error)
    }

    /// Half-close (a reliable stream's channel): no more writes; what was written still
    /// arrives, then the peer reads the end and may go on writing. The channel closes
    /// Normal on both sides once both have finished. `AsyncWrite::poll_close` /
    /// `poll_shutdown` do this.
    pub fn finish(&self) -> Result<(), Error> {
        self.call(|s, now, st, ch| s.finish_channel(now, st, ch))?;
        self.slot(|c| c.write_finished = true);
        Ok(())
    }

    /// Asks the peer to stop sending on this channel (flow control by hand).
    pub fn pend(&self) -> Result<(), Error> {
        self.call(|s, now, st, ch| s.pend_channel(now, st, ch))
    }

    /// Lets the peer send again after [`pend`](Channel::pend).
    pub fn resume(&self) -> Result<(), Error> {
        self.call(|s, now, st, ch| s.resume_channel(now, st, ch))
    }

    /// `AsyncWrite::poll_close` / `poll_shutdown`: half-close a reliable channel, close an
    /// unreliable one Normal.
    fn shutdown(&self) -> Result<(), Error> {
        if self
            .slot(|c| c.closed.is_some() || c.write_finished)
            .unwrap_or(true)
        {
            return Ok(());
        }
        if self.target.reliable(&mut self.target.session.shared.lock()) {
            self.finish()
        } else {
            self.close(CloseReason::Normal)
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Mid-write (something written, not finished): an abort, so the peer's reader
        // cannot mistake a cut-off transfer for a complete one. Otherwise a Normal close.
        let state = self.slot(|c| (c.closed.is_some(), c.wrote && !c.write_finished));
        match state {
            Some((false, true)) => {
                let _ = self.abort();
            }
            Some((false, false)) => {
                let _ = self.close(CloseReason::Normal);
            }
            _ => {}
        }
        let mut st = self.target.session.shared.lock();
        let (s, stream, id) = (self.target.session.id, self.target.stream, self.id());
        if let Some(slot) = st.stream_slot(s, stream) {
            // Bytes nobody will read: their credit goes back.
            let unread: usize = slot
                .channels
                .remove(&id)
                .map_or(0, |c| c.inbox.queued_bytes());
            if slot.reliable && unread > 0 {
                st.consume(s, stream, Some(id), unread);
            }
        }
    }
}

async_io_impls!(Channel);

/// A channel the peer opened, waiting for our answer. Dropping it refuses it.
#[derive(Debug)]
pub struct IncomingChannel {
    channel: Option<Channel>,
    id: ChannelId,
    cookie: Bytes,
}

impl IncomingChannel {
    pub(crate) fn new(channel: Channel, cookie: Bytes) -> IncomingChannel {
        IncomingChannel {
            id: channel.id,
            channel: Some(channel),
            cookie,
        }
    }

    /// The channel's id.
    pub fn id(&self) -> ChannelId {
        self.channel.as_ref().map_or(self.id, |c| c.id)
    }

    /// The peer's cookie (what the channel is for).
    pub fn cookie(&self) -> &Bytes {
        &self.cookie
    }

    /// Accepts: the channel is open on both sides.
    pub fn accept(mut self) -> Result<Channel, Error> {
        let channel = self
            .channel
            .take()
            .ok_or(Error::ChannelClosed(CloseReason::Error))?;
        channel.call(|s, now, st, ch| s.accept_channel(now, st, ch))?;
        Ok(channel)
    }

    /// Refuses: the peer's channel closes with [`CloseReason::Error`].
    pub fn refuse(mut self) -> Result<(), Error> {
        self.refuse_inner()
    }

    fn refuse_inner(&mut self) -> Result<(), Error> {
        match self.channel.take() {
            Some(c) => {
                let r = c.call(|s, now, st, ch| s.refuse_channel(now, st, ch));
                // Mark it closed so dropping the handle does not close it again.
                c.slot(|slot| {
                    slot.closed = Some(CloseReason::Error);
                    slot.closed_locally = true;
                });
                r
            }
            None => Ok(()),
        }
    }
}

impl Drop for IncomingChannel {
    fn drop(&mut self) {
        let _ = self.refuse_inner();
    }
}
