//! What the driver needs from a runtime: a UDP socket it can wait on, and a timer.
//! Implemented for tokio (feature `tokio`) and async-io (feature `async-io`; async-std and
//! smol run on it).

use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use quinn_udp::UdpSockRef;

/// A runtime the driver can run on.
pub trait Runtime: Send + Sync + Debug + 'static {
    /// The runtime's UDP socket.
    type Socket: AsyncUdpSocket;
    /// The runtime's timer.
    type Timer: AsyncTimer;
    /// Wraps a bound, non-blocking std socket. Must be called inside the runtime.
    fn wrap_socket(&self, socket: std::net::UdpSocket) -> io::Result<Self::Socket>;
    /// A timer that fires at `at`.
    fn timer(&self, at: Instant) -> Self::Timer;
}

/// A UDP socket whose readiness a task can wait on.
pub trait AsyncUdpSocket: Send + Sync + Debug + Unpin + 'static {
    /// Waits until the socket is readable, then runs `io` on it; a `WouldBlock` from `io`
    /// means the readiness was spurious: wait again.
    fn poll_io_readable(
        &self,
        cx: &mut Context<'_>,
        io: &mut dyn FnMut(UdpSockRef<'_>) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>>;
    /// Waits until the socket is writable, then runs `io` on it (as above).
    fn poll_io_writable(
        &self,
        cx: &mut Context<'_>,
        io: &mut dyn FnMut(UdpSockRef<'_>) -> io::Result<()>,
    ) -> Poll<io::Result<()>>;
    /// The socket for calls that need no waiting (setup).
    fn with_ref<R>(&self, f: impl FnOnce(UdpSockRef<'_>) -> R) -> R;
    /// The bound address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A resettable timer.
pub trait AsyncTimer: Send + Debug + 'static {
    /// Fires at `at` instead.
    fn reset(self: Pin<&mut Self>, at: Instant);
    /// Ready once the deadline passed.
    fn poll_fire(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// Runs `io` until it stops saying `WouldBlock`, waiting with `ready` in between.
fn retry<T>(
    mut ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
    cx: &mut Context<'_>,
    mut io: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        match io() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return Poll::Ready(other),
        }
    }
}

#[cfg(feature = "tokio")]
pub use self::tokio_rt::TokioRuntime;

#[cfg(feature = "tokio")]
mod tokio_rt {
    use super::*;
    use tokio::io::Interest;

    /// The tokio runtime (the current one, where [`Runtime::wrap_socket`] is called).
    #[derive(Debug, Default, Clone, Copy)]
    pub struct TokioRuntime;

    impl Runtime for TokioRuntime {
        type Socket = tokio::net::UdpSocket;
        type Timer = Pin<Box<tokio::time::Sleep>>;
        fn wrap_socket(&self, socket: std::net::UdpSocket) -> io::Result<Self::Socket> {
            socket.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(socket)
        }
        fn timer(&self, at: Instant) -> Self::Timer {
            Box::pin(tokio::time::sleep_until(at.into()))
        }
    }

    impl AsyncUdpSocket for tokio::net::UdpSocket {
        fn poll_io_readable(
            &self,
            cx: &mut Context<'_>,
            io: &mut dyn FnMut(UdpSockRef<'_>) -> io::Result<usize>,
        ) -> Poll<io::Result<usize>> {
            // try_io tells tokio a WouldBlock happened, so it clears the readiness.
            retry(
                |cx| self.poll_recv_ready(cx),
                cx,
                || self.try_io(Interest::READABLE, || io(self.into())),
            )
        }
        fn poll_io_writable(
            &self,
            cx: &mut Context<'_>,
            io: &mut dyn FnMut(UdpSockRef<'_>) -> io::Result<()>,
        ) -> Poll<io::Result<()>> {
            retry(
                |cx| self.poll_send_ready(cx),
                cx,
                || self.try_io(Interest::WRITABLE, || io(self.into())),
            )
        }
        fn with_ref<R>(&self, f: impl FnOnce(UdpSockRef<'_>) -> R) -> R {
            f(self.into())
        }
        fn local_addr(&self) -> io::Result<SocketAddr> {
            tokio::net::UdpSocket::local_addr(self)
        }
    }

    impl AsyncTimer for Pin<Box<tokio::time::Sleep>> {
        fn reset(self: Pin<&mut Self>, at: Instant) {
            self.get_mut().as_mut().reset(at.into());
        }
        fn poll_fire(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            std::future::Future::poll(self.get_mut().as_mut(), cx)
        }
    }
}

#[cfg(feature = "async-io")]
pub use self::async_io_rt::AsyncIoRuntime;

#[cfg(feature = "async-io")]
mod async_io_rt {
    use super::*;
    use async_io::{Async, Timer};

    /// The async-io reactor: what async-std and smol run on.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct AsyncIoRuntime;

    /// An async-io timer.
    #[derive(Debug)]
    pub struct AsyncIoTimer(Timer);

    impl Runtime for AsyncIoRuntime {
        type Socket = Async<std::net::UdpSocket>;
        type Timer = AsyncIoTimer;
        fn wrap_socket(&self, socket: std::net::UdpSocket) -> io::Result<Self::Socket> {
            Async::new(socket)
        }
        fn timer(&self, at: Instant) -> Self::Timer {
            AsyncIoTimer(Timer::at(at))
        }
    }

    impl AsyncUdpSocket for Async<std::net::UdpSocket> {
        fn poll_io_readable(
            &self,
            cx: &mut Context<'_>,
            io: &mut dyn FnMut(UdpSockRef<'_>) -> io::Result<usize>,
        ) -> Poll<io::Result<usize>> {
            retry(
                |cx| self.poll_readable(cx),
                cx,
                || io(self.get_ref().into()),
            )
        }
        fn poll_io_writable(
            &self,
            cx: &mut Context<'_>,
            io: &mut dyn FnMut(UdpSockRef<'_>) -> io::Result<()>,
        ) -> Poll<io::Result<()>> {
            retry(
                |cx| self.poll_writable(cx),
                cx,
                || io(self.get_ref().into()),
            )
        }
        fn with_ref<R>(&self, f: impl FnOnce(UdpSockRef<'_>) -> R) -> R {
            f(self.get_ref().into())
        }
        fn local_addr(&self) -> io::Result<SocketAddr> {
            self.get_ref().local_addr()
        }
    }

    impl AsyncTimer for AsyncIoTimer {
        fn reset(mut self: Pin<&mut Self>, at: Instant) {
            self.0.set_at(at);
        }
        fn poll_fire(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            std::future::Future::poll(Pin::new(&mut self.0), cx).map(|_| ())
        }
    }
}
