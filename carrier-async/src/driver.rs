//! The driver: the one task that owns the socket and the timer and moves the endpoint.
//!
//! Each time it is woken it does one round under the lock: read what the socket has, fire
//! the timer if due, then step the engine, sending transmits and routing events. A round
//! has a work budget: after [`RECV_BUDGET`] reads or [`STEP_BUDGET`] steps it yields to the
//! runtime (waking itself), so one busy session cannot keep the application's tasks (or
//! the other sessions' readers) from running. Transmits of different sessions take turns
//! inside the core.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use carrier_udp::{OwnedStep, OwnedTransmit, Socket};

use crate::runtime::{AsyncTimer, AsyncUdpSocket, Runtime};
use crate::shared::Shared;

/// Socket reads per round (each may return many datagrams with GRO).
pub const RECV_BUDGET: usize = 64;

/// Engine steps (transmits and events) per round.
pub const STEP_BUDGET: usize = 1024;

/// The future that drives a [`Manager`](crate::Manager): spawn it on the runtime (the
/// runtime crates' `bind` does). It ends when the manager and its handles are gone and
/// the last packets are out, or with the socket's error.
#[must_use = "the driver does nothing unless spawned or awaited"]
#[derive(Debug)]
pub struct Driver<R: Runtime> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) socket: R::Socket,
    pub(crate) io: Socket,
    pub(crate) timer: Pin<Box<R::Timer>>,
    pub(crate) timer_at: Option<Instant>,
    /// A transmit taken out of the engine, to send (it waits here while the socket is
    /// full).
    pub(crate) outgoing: Option<OwnedTransmit>,
}

impl<R: Runtime> Future for Driver<R> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = this.round(cx);
        if let Poll::Ready(r) = &result {
            let mut st = this.shared.lock();
            st.stopped = Some(match r {
                Ok(()) => "the manager was closed".to_string(),
                Err(e) => format!("socket error: {e}"),
            });
            st.wake_everyone();
        }
        result
    }
}

impl<R: Runtime> Driver<R> {
    /// One round. The lock is taken for the endpoint's work only: socket reads and sends
    /// happen outside it (a read is fed to the engine under a short lock; a transmit is
    /// taken out owned, sent, then handed back), so handles are not kept waiting on
    /// system calls.
    fn round(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Driver {
            shared,
            socket,
            io,
            timer,
            timer_at,
            outgoing,
        } = self;
        shared.lock().set_driver(cx.waker());
        let mut more = false;

        // 1. What the socket has.
        for n in 0..=RECV_BUDGET {
            if n == RECV_BUDGET {
                more = true;
                break;
            }
            let mut got = None;
            let read = socket.poll_io_readable(cx, &mut |s| {
                got = io.read(s)?;
                Ok(0)
            });
            match read {
                Poll::Ready(Ok(_)) => {
                    if let Some(r) = got {
                        io.feed(r, &mut shared.lock().engine);
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }

        let mut steps = 0;
        loop {
            // 2. A transmit taken out earlier goes first (or waits for writability).
            if let Some(t) = outgoing.take() {
                match socket.poll_io_writable(cx, &mut |s| io.send(s, &t.as_transmit())) {
                    Poll::Ready(Ok(())) => shared.lock().engine.finish(t, true),
                    // Unreachable destination, too big, ...: lost, as on a network.
                    Poll::Ready(Err(_)) => shared.lock().engine.finish(t, false),
                    // The socket is full: it wakes us when writable.
                    Poll::Pending => {
                        *outgoing = Some(t);
                        break;
                    }
                }
            }
            let mut st = shared.lock();
            // 3. Timers due.
            if st.engine.deadline().is_some_and(|at| at <= Instant::now()) {
                st.engine.handle_timeout();
            }
            // 4. Events, up to the next transmit, within the budget.
            let next = loop {
                if steps >= STEP_BUDGET {
                    more = true;
                    break None;
                }
                steps += 1;
                match st.engine.poll_owned() {
                    OwnedStep::Transmit(t) => break Some(t),
                    OwnedStep::Event(e) => st.route(e),
                    OwnedStep::Idle => break None,
                }
            };
            if let Some(t) = next {
                *outgoing = Some(t);
                continue;
            }
            if st.closing && !more {
                return Poll::Ready(Ok(()));
            }
            // 5. The timer for what comes next.
            let Some(at) = st.engine.deadline() else {
                *timer_at = None;
                break;
            };
            drop(st);
            if *timer_at != Some(at) {
                timer.as_mut().reset(at);
                *timer_at = Some(at);
            }
            match timer.as_mut().poll_fire(cx) {
                // Already due: another pass (unless out of budget).
                Poll::Ready(()) if !more => {
                    *timer_at = None;
                    continue;
                }
                _ => break,
            }
        }
        if more {
            // Out of budget: let other tasks run, then continue.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
