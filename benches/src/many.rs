//! Two endpoints with many connected sessions between them, in one thread: for measuring
//! what idle sessions cost the endpoint's loop (`benches/scale.rs`).

use std::time::Duration;

use carrier_proto::{
    Config, Endpoint, Input, Instant, Output, SessionId, StreamId, StreamOptions, StreamType,
};

/// `a` and `b` with `sessions` connected sessions between them, each with one encrypted
/// unreliable stream.
pub struct Many {
    /// One side.
    pub a: Endpoint,
    /// The other side.
    pub b: Endpoint,
    /// The session on `a` the measured traffic uses (the first one made).
    pub active: SessionId,
    /// Its stream.
    pub stream: StreamId,
    /// Virtual time.
    pub now: Instant,
}

impl Many {
    /// Connects `sessions` sessions. Idle timers are set far out so that the measurement
    /// (which advances virtual time by microseconds) sees idle sessions stay idle.
    pub fn connect(sessions: usize) -> Many {
        let mut config =
            Config::default().with_idle(Duration::from_secs(1800), Duration::from_secs(3600));
        config.max_sessions = sessions + 1;
        let (mut a, mut b) = crate::pair::endpoints(config);
        let now = Instant::ZERO;
        let kind = (StreamType::Audio, StreamOptions::empty());
        let mut first = None;
        for _ in 0..sessions {
            let (sa, _, stream) = crate::pair::start_session(&mut a, &mut b, kind, now);
            first.get_or_insert((sa, stream));
            // Connect as we go, so the queues stay small.
            let mut many = Half {
                a: &mut a,
                b: &mut b,
            };
            for _ in 0..4 {
                many.exchange(now);
            }
        }
        let (active, stream) = first.expect("at least one session");
        Many {
            a,
            b,
            active,
            stream,
            now,
        }
    }

    /// One event on the active session: a 100-byte datagram from `a`, handed to `b`, and
    /// both endpoints drained (`poll_output` until `Timeout`, then `next_timeout`), with
    /// virtual time 1 µs on. Returns the datagrams moved.
    pub fn one_event(&mut self) -> usize {
        self.now += Duration::from_micros(1);
        let now = self.now;
        self.a.handle_input(Input::Timeout(now));
        let _ = self
            .a
            .session(self.active)
            .and_then(|mut s| s.write(now, self.stream, &[0x5a; 100]));
        let moved = Half {
            a: &mut self.a,
            b: &mut self.b,
        }
        .exchange(now);
        std::hint::black_box(self.a.next_timeout());
        std::hint::black_box(self.b.next_timeout());
        moved
    }
}

/// The two endpoints, borrowed.
struct Half<'e> {
    a: &'e mut Endpoint,
    b: &'e mut Endpoint,
}

impl Half<'_> {
    /// Moves what `a` has to `b`, then what `b` has to `a`. Returns the datagrams moved.
    fn exchange(&mut self, now: Instant) -> usize {
        drain_into(self.a, self.b, now) + drain_into(self.b, self.a, now)
    }
}

/// Drains `from`'s outputs; its datagrams go to `to`.
fn drain_into(from: &mut Endpoint, to: &mut Endpoint, now: Instant) -> usize {
    let mut moved = 0;
    loop {
        match from.poll_output() {
            Output::Transmit(t) => {
                moved += 1;
                to.handle_input(Input::Receive {
                    now,
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents,
                });
            }
            Output::Event(_) => {}
            Output::Timeout(_) => return moved,
        }
    }
}
