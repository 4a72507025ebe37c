//! Two endpoints wired back to back in one thread, for measuring the core's own cost.

use std::net::SocketAddr;
use std::time::Duration;

use carrier_proto::{
    Config, Endpoint, Event, Input, Instant, Output, Reply, SessionId, StreamId, StreamOptions,
    StreamType,
};

/// Two connected endpoints with one reliable stream, exchanging datagrams directly.
pub struct Pair {
    /// The sender.
    pub a: Endpoint,
    /// The receiver.
    pub b: Endpoint,
    /// The sender's session.
    pub sa: SessionId,
    /// The receiver's session.
    pub sb: SessionId,
    /// The stream (the same index on both sides).
    pub stream: StreamId,
    /// Virtual time.
    pub now: Instant,
    /// Bytes the receiver got.
    pub received: u64,
    /// Datagrams moved between the two.
    pub packets: u64,
}

/// Two endpoints with `config` (seeds 1 and 2), each with one host address.
pub fn endpoints(config: Config) -> (Endpoint, Endpoint) {
    let addr_a: SocketAddr = "192.0.2.1:1".parse().expect("address");
    let addr_b: SocketAddr = "192.0.2.2:1".parse().expect("address");
    let mut a = Endpoint::new(config.clone().with_seed([1; 32]));
    let mut b = Endpoint::new(config.with_seed([2; 32]));
    a.add_host_candidate(addr_a);
    b.add_host_candidate(addr_b);
    (a, b)
}

/// Requests a session with one stream of `kind` from `a` to `b`, has `b` accept and start,
/// and `a` start: connectivity checks then run over the datagrams the two hand out.
/// Returns both sessions and the stream.
pub fn start_session(
    a: &mut Endpoint,
    b: &mut Endpoint,
    kind: (StreamType, StreamOptions),
    now: Instant,
) -> (SessionId, SessionId, StreamId) {
    let sa = a.new_session("b").expect("session");
    let stream = a
        .session(sa)
        .and_then(|mut s| s.add_stream(kind.0, kind.1))
        .expect("stream");
    let pending = a
        .session(sa)
        .and_then(|mut s| s.request(now, ""))
        .expect("request");
    let sb = b.new_session("a").expect("session");
    b.session(sb)
        .and_then(|mut s| s.add_stream(kind.0, kind.1))
        .expect("stream");
    let answer = b
        .session(sb)
        .and_then(|mut s| s.reply(pending.offer(), Reply::Accept))
        .expect("reply");
    b.session(sb).and_then(|mut s| s.start(now)).expect("start");
    a.session(sa)
        .and_then(|mut s| s.start_with(now, pending, answer))
        .expect("start_with");
    (sa, sb, stream)
}

impl Pair {
    /// Connects two endpoints with `config` and one stream with `options`.
    pub fn connect(config: Config, options: StreamOptions) -> Pair {
        let (mut a, mut b) = endpoints(config);
        let now = Instant::ZERO;
        let (sa, sb, stream) =
            start_session(&mut a, &mut b, (StreamType::Application, options), now);
        let mut pair = Pair {
            a,
            b,
            sa,
            sb,
            stream,
            now,
            received: 0,
            packets: 0,
        };
        for _ in 0..10 {
            pair.exchange();
        }
        pair
    }

    /// Moves everything each side has to send to the other, once each way; counts the
    /// stream bytes the receiver got. Returns whether anything moved.
    pub fn exchange(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        loop {
            match self.a.poll_output() {
                Output::Transmit(t) => {
                    moved = true;
                    self.packets += 1;
                    self.b.handle_input(Input::Receive {
                        now,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents,
                    });
                }
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        loop {
            match self.b.poll_output() {
                Output::Transmit(t) => {
                    moved = true;
                    self.packets += 1;
                    self.a.handle_input(Input::Receive {
                        now,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents,
                    });
                }
                Output::Event(Event::StreamData { data, .. }) => self.received += data.len() as u64,
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        moved
    }

    /// Sends `total` bytes from `a` to `b` (copied from `source` over and over), advancing
    /// virtual time by `tick` per round. Returns the bytes received.
    pub fn transfer(&mut self, total: u64, source: &[u8], tick: Duration) -> u64 {
        let start = self.received;
        let mut written = 0u64;
        while self.received - start < total {
            while written < total {
                let n = ((total - written) as usize).min(source.len());
                match self
                    .a
                    .session(self.sa)
                    .and_then(|mut s| s.write(self.now, self.stream, &source[..n]))
                {
                    Ok(k) => written += k as u64,
                    Err(_) => break,
                }
            }
            self.now += tick;
            self.a.handle_input(Input::Timeout(self.now));
            self.b.handle_input(Input::Timeout(self.now));
            self.exchange();
        }
        self.received - start
    }
}
