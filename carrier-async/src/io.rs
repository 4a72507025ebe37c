//! Reading and writing, shared by streams and channels: a [`Target`] names one (a stream,
//! or a channel of it), and the poll functions here serve `recv`/`send` and the
//! `AsyncRead`/`AsyncWrite` impls of both.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use carrier_proto::{ChannelId, CloseReason, StreamId, StreamState};

use crate::Error;
use crate::error::Closed;
use crate::session::SessionRef;
use crate::shared::{Inbox, State};

/// A stream, or one channel of it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) session: Arc<SessionRef>,
    pub(crate) stream: StreamId,
    pub(crate) channel: Option<ChannelId>,
    /// A write that would have to wait fails with `WouldBlock` instead (`try_send`).
    pub(crate) try_only: bool,
}

/// Where a stream's own data ends for a reader: reliable data at the peer's FIN, datagrams
/// at a Normal close; any other ending is an error.
fn stream_end(
    state: StreamState,
    reason: Option<carrier_proto::StateReason>,
    reliable: bool,
    finished: bool,
) -> Status {
    use carrier_proto::StateReason;
    if finished {
        return Status::Ended;
    }
    match state {
        StreamState::Connected => Status::Open,
        s if s.is_terminal() => {
            let clean = matches!(
                reason,
                Some(StateReason::ClosedLocally | StateReason::ClosedByPeer(CloseReason::Normal))
            );
            if clean && !reliable {
                Status::Ended
            } else {
                Status::Failed(Error::Closed(Closed::from_stream(reason)))
            }
        }
        _ => Status::NotYet,
    }
}

/// Where a stream or channel is, for a reader or writer.
enum Status {
    /// Not open yet, or paused (a writer waits).
    NotYet,
    /// Data flows.
    Open,
    /// A reader: the clean end (every byte the peer wrote was delivered).
    Ended,
    /// No more data, and why: a reader's data was cut short, or a writer may not write.
    Failed(Error),
}

impl Target {
    fn inbox<'a>(&self, st: &'a mut State) -> Option<&'a mut Inbox> {
        let slot = st.stream_slot(self.session.id, self.stream)?;
        match self.channel {
            None => Some(&mut slot.inbox),
            Some(c) => slot.channels.get_mut(&c).map(|c| &mut c.inbox),
        }
    }

    pub(crate) fn reliable(&self, st: &mut State) -> bool {
        st.stream_slot(self.session.id, self.stream)
            .is_some_and(|s| s.reliable)
    }

    /// For a reader with nothing queued: the end only after the peer's FIN (or, for
    /// datagrams and channels, a Normal close — which the core sends only after every
    /// byte was acknowledged); an error for every other ending.
    fn read_status(&self, st: &mut State) -> Status {
        if let Some(why) = &st.stopped {
            return Status::Failed(Error::Stopped(why.clone()));
        }
        let Some(slot) = st.stream_slot(self.session.id, self.stream) else {
            return Status::Failed(Error::Closed(Closed::Aborted));
        };
        let stream_end = stream_end(slot.state, slot.reason, slot.reliable, slot.finished);
        let Some(ch) = self.channel else {
            return stream_end;
        };
        match slot.channels.get(&ch) {
            None => Status::Failed(Error::Closed(Closed::Finished)),
            Some(c) if c.finished => Status::Ended,
            Some(c) => match c.closed {
                Some(CloseReason::Normal) => Status::Ended,
                Some(r) => Status::Failed(Error::Closed(Closed::from_channel(r, c.closed_locally))),
                None => match stream_end {
                    Status::NotYet | Status::Open => Status::Open,
                    // The stream ended under an open channel: its close is on the way.
                    other => other,
                },
            },
        }
    }

    /// For a writer: open, not yet (waits), or why it may not write.
    fn write_status(&self, st: &mut State) -> Status {
        if let Some(why) = &st.stopped {
            return Status::Failed(Error::Stopped(why.clone()));
        }
        let paused = self
            .channel
            .is_some_and(|ch| st.channel_paused(self.session.id, self.stream, ch));
        let Some(slot) = st.stream_slot(self.session.id, self.stream) else {
            return Status::Failed(Error::Closed(Closed::Aborted));
        };
        let stream = match slot.state {
            StreamState::Connected if slot.write_finished && self.channel.is_none() => {
                Status::Failed(Error::Closed(Closed::Finished))
            }
            StreamState::Connected => Status::Open,
            s if s.is_terminal() => Status::Failed(Error::Closed(Closed::from_stream(slot.reason))),
            _ => Status::NotYet,
        };
        let Some(ch) = self.channel else {
            return stream;
        };
        match slot.channels.get(&ch) {
            None => Status::Failed(Error::Closed(Closed::Finished)),
            Some(c) => match c.closed {
                Some(r) => Status::Failed(Error::Closed(Closed::from_channel(r, c.closed_locally))),
                None if c.write_finished => Status::Failed(Error::Closed(Closed::Finished)),
                None if !matches!(stream, Status::Open) => stream,
                None if !c.opened || paused => Status::NotYet,
                None => Status::Open,
            },
        }
    }

    /// The next bytes (at most `max`; a datagram whole), `None` at a clean end.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<Result<Option<Bytes>, Error>> {
        let mut st = self.session.shared.lock();
        let reliable = self.reliable(&mut st);
        let max = if reliable { max } else { usize::MAX };
        if let Some(data) = self.inbox(&mut st).and_then(|i| i.take(max)) {
            if reliable {
                st.consume(self.session.id, self.stream, self.channel, data.len());
            }
            return Poll::Ready(Ok(Some(data)));
        }
        match self.read_status(&mut st) {
            Status::Ended => Poll::Ready(Ok(None)),
            Status::Failed(e) => Poll::Ready(Err(e)),
            Status::NotYet | Status::Open => {
                if let Some(i) = self.inbox(&mut st) {
                    i.readers.register(cx.waker());
                }
                Poll::Pending
            }
        }
    }

    /// Copies as much as is queued (up to `buf.len()`) into `buf` under one lock: a
    /// reader with a big buffer takes many packets' worth per call. `Ok(0)` at a clean end.
    pub(crate) fn poll_read_into(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, Error>> {
        let mut st = self.session.shared.lock();
        let mut n = 0;
        if let Some(inbox) = self.inbox(&mut st) {
            while n < buf.len() {
                let Some(chunk) = inbox.take(buf.len() - n) else {
                    break;
                };
                buf[n..n + chunk.len()].copy_from_slice(&chunk);
                n += chunk.len();
            }
        }
        if n > 0 {
            st.consume(self.session.id, self.stream, self.channel, n);
            return Poll::Ready(Ok(n));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match self.read_status(&mut st) {
            Status::Ended => Poll::Ready(Ok(0)),
            Status::Failed(e) => Poll::Ready(Err(e)),
            Status::NotYet | Status::Open => {
                if let Some(i) = self.inbox(&mut st) {
                    i.readers.register(cx.waker());
                }
                Poll::Pending
            }
        }
    }

    /// Writes what fits of `data` (a reliable stream or channel), or sends it as one
    /// datagram (unreliable), once open.
    pub(crate) fn poll_write(
        &self,
        cx: &mut Context<'_>,
        data: WriteData<'_>,
    ) -> Poll<Result<usize, Error>> {
        let mut st = self.session.shared.lock();
        match self.write_status(&mut st) {
            Status::Open => {}
            Status::NotYet => return self.wait_writable(&mut st, cx),
            Status::Ended => return Poll::Ready(Err(Error::Closed(Closed::Finished))),
            Status::Failed(e) => return Poll::Ready(Err(e)),
        }
        let now = st.engine.now();
        let (s, stream) = (self.session.id, self.stream);
        let written =
            st.engine
                .endpoint()
                .session(s)
                .and_then(|mut session| match (self.channel, data) {
                    (None, WriteData::Slice(d)) => session.write(now, stream, d),
                    (None, WriteData::Bytes(b)) => session.write_bytes(now, stream, b.clone()),
                    (Some(c), WriteData::Slice(d)) => session.write_channel(now, stream, c, d),
                    (Some(c), WriteData::Bytes(b)) => {
                        session.write_channel_bytes(now, stream, c, b.clone())
                    }
                });
        match written {
            Ok(0) if !data.is_empty() => self.wait_writable(&mut st, cx),
            Ok(n) => {
                if n > 0 {
                    self.mark_wrote(&mut st);
                }
                st.wake_driver();
                Poll::Ready(Ok(n))
            }
            Err(carrier_proto::Error::WouldBlock) if !self.try_only => {
                self.wait_writable(&mut st, cx)
            }
            Err(carrier_proto::Error::Finished) => {
                Poll::Ready(Err(Error::Closed(Closed::Finished)))
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    /// Remembers that this side wrote: dropping it unfinished is then an abort.
    fn mark_wrote(&self, st: &mut State) {
        if let Some(slot) = st.stream_slot(self.session.id, self.stream) {
            match self.channel {
                None => slot.wrote = true,
                Some(c) => {
                    if let Some(c) = slot.channels.get_mut(&c) {
                        c.wrote = true;
                    }
                }
            }
        }
    }

    fn wait_writable<T>(&self, st: &mut State, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(i) = self.inbox(st) {
            i.writers.register(cx.waker());
        }
        Poll::Pending
    }
}

/// What a write hands over: bytes to copy, or `Bytes` to keep (zero-copy).
#[derive(Clone, Copy)]
pub(crate) enum WriteData<'a> {
    Slice(&'a [u8]),
    Bytes(&'a Bytes),
}

impl WriteData<'_> {
    fn is_empty(&self) -> bool {
        match self {
            WriteData::Slice(d) => d.is_empty(),
            WriteData::Bytes(b) => b.is_empty(),
        }
    }
}

/// Writes all of `data` (reliable), or sends it as one datagram (unreliable).
pub(crate) async fn send_all(target: &Target, data: &[u8]) -> Result<(), Error> {
    let mut at = 0;
    loop {
        let n =
            std::future::poll_fn(|cx| target.poll_write(cx, WriteData::Slice(&data[at..]))).await?;
        at += n;
        if at >= data.len() {
            return Ok(());
        }
    }
}

/// As [`send_all`], keeping `data` without a copy where the core can.
pub(crate) async fn send_all_bytes(target: &Target, mut data: Bytes) -> Result<(), Error> {
    loop {
        let n = std::future::poll_fn(|cx| target.poll_write(cx, WriteData::Bytes(&data))).await?;
        if n >= data.len() {
            return Ok(());
        }
        let _ = data.split_to(n);
    }
}

/// futures-io's `poll_read` over a target: copies the next bytes into `buf`.
pub(crate) fn poll_read(
    target: &Target,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<std::io::Result<usize>> {
    if !target.reliable(&mut target.session.shared.lock()) {
        return Poll::Ready(Err(
            Error::WrongKind("byte reads need a RELIABLE stream").into()
        ));
    }
    target.poll_read_into(cx, buf).map_err(Into::into)
}

/// `poll_write` for the AsyncWrite impls.
pub(crate) fn poll_write_io(
    target: &Target,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<std::io::Result<usize>> {
    target
        .poll_write(cx, WriteData::Slice(buf))
        .map_err(Into::into)
}

/// Implements futures-io's and (with the `tokio` feature) tokio's `AsyncRead` and
/// `AsyncWrite` for a handle type with a `target()` and a `shutdown()`.
macro_rules! async_io_impls {
    ($ty:ty) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::io::poll_read(self.target(), cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::io::poll_write_io(self.target(), cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // Written bytes are the driver's to send: nothing to flush here.
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown().map_err(Into::into))
            }
        }

        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let dst = buf.initialize_unfilled();
                match $crate::io::poll_read(self.target(), cx, dst) {
                    std::task::Poll::Ready(Ok(n)) => {
                        buf.advance(n);
                        std::task::Poll::Ready(Ok(()))
                    }
                    std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Pending => std::task::Poll::Pending,
                }
            }
        }

        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::io::poll_write_io(self.target(), cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown().map_err(Into::into))
            }
        }
    };
}

pub(crate) use async_io_impls;
