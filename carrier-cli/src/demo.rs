//! `carrier demo`: two peers, one process, real loopback UDP sockets.
//!
//! The loop is the whole integration a program needs with the sans-IO core: read what the
//! socket has into `handle_input`, fire `Input::Timeout` when the deadline passes, and drain
//! `poll_output` — datagrams to the socket, events to the application — until it says when
//! to come back.

use std::error::Error as StdError;
use std::fmt;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant as WallClock};

use bytes::Bytes;
use carrier_proto::{
    Answer, ChannelId, CloseReason, Config, Endpoint, Event, Input, Instant, Output, PendingOffer,
    Reply, RequestOutcome, SessionId, StreamId, StreamOptions, StreamState, StreamType,
};

/// What the demo moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bytes of the reliable transfer on the stream itself.
    pub bytes: u64,
    /// Bytes on each of the two channels.
    pub channel_bytes: u64,
}

impl Options {
    /// Parses `[--bytes N] [--channel-bytes N]`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            bytes: 64 << 20,
            channel_bytes: 8 << 20,
        };
        for (flag, n) in sized_flags(args)? {
            match flag {
                "--bytes" => options.bytes = n,
                "--channel-bytes" => options.channel_bytes = n,
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(options)
    }
}

/// `--flag N` pairs, each N a size (see [`parse_size`]).
pub(crate) fn sized_flags(args: &[String]) -> Result<Vec<(&str, u64)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n = parse_size(value).ok_or_else(|| format!("bad size {value:?}"))?;
        out.push((flag.as_str(), n));
    }
    Ok(out)
}

/// `123`, `64K`, `8M`, `1G` (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Why the demo stopped early.
#[derive(Debug)]
pub enum DemoError {
    /// A socket call failed.
    Io(std::io::Error),
    /// The core refused a call.
    Carrier(carrier_proto::Error),
    /// Something did not happen in time.
    Stuck(&'static str),
    /// Not enough randomness for the seeds.
    Entropy(getrandom::Error),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Io(e) => write!(f, "socket: {e}"),
            DemoError::Carrier(e) => write!(f, "{e}"),
            DemoError::Stuck(what) => write!(f, "timed out waiting for {what}"),
            DemoError::Entropy(e) => write!(f, "no randomness for the seeds: {e}"),
        }
    }
}

impl StdError for DemoError {}

impl From<std::io::Error> for DemoError {
    fn from(e: std::io::Error) -> Self {
        DemoError::Io(e)
    }
}

impl From<carrier_proto::Error> for DemoError {
    fn from(e: carrier_proto::Error) -> Self {
        DemoError::Carrier(e)
    }
}

/// One peer: its socket and its endpoint.
pub(crate) struct Peer {
    pub(crate) name: &'static str,
    socket: UdpSocket,
    pub(crate) local: SocketAddr,
    pub(crate) endpoint: Endpoint,
    /// When the endpoint wants `Input::Timeout`.
    pub(crate) timeout: Instant,
}

impl Peer {
    pub(crate) fn new(name: &'static str) -> Result<Peer, DemoError> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(DemoError::Entropy)?;
        let mut endpoint = Endpoint::new(Config::default().with_seed(seed));
        endpoint.add_host_candidate(local);
        Ok(Peer {
            name,
            socket,
            local,
            endpoint,
            timeout: Instant::ZERO,
        })
    }

    /// Feeds the endpoint what the socket has and the timer if due, sends what it wants
    /// sent, and returns its events. Returns whether anything happened.
    pub(crate) fn pump(
        &mut self,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<bool, DemoError> {
        let mut busy = false;
        let mut buf = [0u8; 2048];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, source)) => {
                    busy = true;
                    self.endpoint.handle_input(Input::Receive {
                        now,
                        source,
                        destination: self.local,
                        contents: Bytes::copy_from_slice(&buf[..n]),
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // A previous datagram bounced (ICMP): nothing to do for UDP.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if now >= self.timeout {
            self.endpoint.handle_input(Input::Timeout(now));
        }
        loop {
            match self.endpoint.poll_output() {
                Output::Transmit(t) => {
                    busy = true;
                    match self.socket.send_to(&t.contents, t.destination) {
                        Ok(_) => {}
                        // A full socket buffer drops the datagram, as the network would;
                        // the core's recovery copes.
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Output::Event(e) => {
                    busy = true;
                    events.push(e);
                }
                Output::Timeout(at) => {
                    self.timeout = at;
                    break;
                }
            }
        }
        Ok(busy)
    }
}

/// Where the demo is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Handshake,
    Transfer,
    Channels,
    Closing,
    Done,
}

/// Runs the demo.
pub fn run(options: &Options) -> Result<(), DemoError> {
    let start = WallClock::now();
    let clock = || Instant::from_nanos(start.elapsed().as_nanos() as u64);
    let mut alice = Peer::new("alice")?;
    let mut bob = Peer::new("bob")?;
    println!(
        "carrier demo: alice on {}, bob on {} (loopback UDP)",
        alice.local, bob.local
    );

    // 1. Alice: a session, two streams (encrypted: no PLAIN option), the request.
    let sa = alice.endpoint.new_session("bob")?;
    let datagrams = alice
        .endpoint
        .session(sa)?
        .add_stream(StreamType::Application, StreamOptions::empty())?;
    let files = alice.endpoint.session(sa)?.add_stream(
        StreamType::Application,
        StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
    )?;
    let now = clock();
    let mut pending: Option<PendingOffer> = Some(alice.endpoint.session(sa)?.request(now, "demo")?);
    let offer_text = pending
        .as_ref()
        .map(|p| p.offer().to_sdp_string())
        .unwrap_or_default();
    println!(
        "alice requests a session (offer: {} bytes of SDP, with her X25519 key)",
        offer_text.len()
    );
    // The signaling path: in-process here, a chat or rendezvous server in real life.
    bob.endpoint.handle_offer("alice", &offer_text)?;
    let mut sb: Option<SessionId> = None;

    let mut phase = Phase::Handshake;
    let payload = Bytes::from(vec![0x5Au8; 256 * 1024]);
    let (mut written, mut received) = (0u64, 0u64);
    let mut transfer_start = start;
    let mut channels: Vec<(ChannelId, u64)> = Vec::new();
    let (mut channel_received, mut channels_closed) = (0u64, 0usize);
    let mut channel_start = start;
    let mut datagrams_seen = 0;
    let deadline = Duration::from_secs(120);
    let mut events = Vec::new();

    while phase != Phase::Done {
        if start.elapsed() > deadline {
            return Err(DemoError::Stuck(match phase {
                Phase::Handshake => "the handshake",
                Phase::Transfer => "the transfer",
                Phase::Channels => "the channels",
                _ => "the close",
            }));
        }
        let now = clock();
        let mut busy = alice.pump(now, &mut events)?;
        for e in events.drain(..) {
            match e {
                Event::StateChanged {
                    stream,
                    state,
                    reason,
                    ..
                } => print_state(alice.name, start, stream, state, reason),
                Event::RequestComplete {
                    outcome: RequestOutcome::Accepted(answer),
                    ..
                } => {
                    println!("alice: bob accepted; starting");
                    if let Some(p) = pending.take() {
                        alice.endpoint.session(sa)?.start_with(now, p, answer)?;
                    }
                }
                Event::RequestComplete { outcome, .. } => {
                    println!("alice: the request ended with status {}", outcome.status());
                    return Err(DemoError::Stuck("an accepted request"));
                }
                Event::ChannelOpened { channel, .. } => {
                    println!("alice: {channel} opened");
                    channels.push((channel, 0));
                }
                _ => {}
            }
        }
        busy |= bob.pump(now, &mut events)?;
        for e in events.drain(..) {
            match e {
                Event::SessionRequest { offer, .. } => {
                    let s = bob.endpoint.new_session("alice")?;
                    bob.endpoint
                        .session(s)?
                        .add_stream(StreamType::Application, StreamOptions::empty())?;
                    bob.endpoint.session(s)?.add_stream(
                        StreamType::Application,
                        StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
                    )?;
                    let answer = bob.endpoint.session(s)?.reply(&offer, Reply::Accept)?;
                    bob.endpoint.session(s)?.start(now)?;
                    println!("bob: accepts and starts (answer with his X25519 key)");
                    let text = answer.to_sdp_string();
                    Answer::parse(&text, &Default::default())?;
                    alice.endpoint.handle_answer(&text)?;
                    sb = Some(s);
                }
                Event::StateChanged {
                    stream,
                    state,
                    reason,
                    ..
                } => print_state(bob.name, start, stream, state, reason),
                Event::StreamData { stream, data, .. } => {
                    if stream == datagrams {
                        datagrams_seen += 1;
                        println!("bob: datagram {:?}", String::from_utf8_lossy(&data));
                    } else {
                        received += data.len() as u64;
                    }
                }
                Event::ChannelOpen {
                    channel, cookie, ..
                } => {
                    println!(
                        "bob: {channel} requested, cookie {:?}; accepting",
                        String::from_utf8_lossy(&cookie)
                    );
                    if let Some(s) = sb {
                        bob.endpoint
                            .session(s)?
                            .accept_channel(now, files, channel)?;
                    }
                }
                Event::ChannelData { data, .. } => channel_received += data.len() as u64,
                Event::ChannelClosed {
                    channel, reason, ..
                } => {
                    println!("bob: {channel} closed ({reason:?})");
                    channels_closed += 1;
                }
                _ => {}
            }
        }

        match phase {
            Phase::Handshake => {
                let s = alice.endpoint.session(sa)?;
                if s.stream_state(files)? == StreamState::Connected
                    && s.stream_state(datagrams)? == StreamState::Connected
                {
                    let info = s.transport_info(files)?;
                    println!(
                        "connected in {:.1} ms: {:?} {} ⇄ {}, every packet sealed (AES-256-GCM)",
                        start.elapsed().as_secs_f64() * 1e3,
                        info.topology,
                        info.local.address,
                        info.remote.address
                    );
                    let mut s = alice.endpoint.session(sa)?;
                    for i in 1..=3 {
                        s.write(now, datagrams, format!("hello {i} from alice").as_bytes())?;
                    }
                    transfer_start = WallClock::now();
                    phase = Phase::Transfer;
                }
            }
            Phase::Transfer => {
                let mut s = alice.endpoint.session(sa)?;
                while written < options.bytes {
                    let n = (options.bytes - written).min(payload.len() as u64) as usize;
                    match s.write_bytes(now, files, payload.slice(..n)) {
                        Ok(k) => written += k as u64,
                        Err(carrier_proto::Error::WouldBlock) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                if received >= options.bytes {
                    let secs = transfer_start.elapsed().as_secs_f64();
                    println!(
                        "reliable stream: {} MiB in {:.2} s = {:.0} MB/s ({} datagrams seen)",
                        options.bytes >> 20,
                        secs,
                        options.bytes as f64 / secs / 1e6,
                        datagrams_seen
                    );
                    for cookie in ["report.pdf", "photo.jpg"] {
                        s.open_channel(now, files, cookie.as_bytes())?;
                    }
                    channel_start = WallClock::now();
                    phase = Phase::Channels;
                }
            }
            Phase::Channels => {
                let mut s = alice.endpoint.session(sa)?;
                for (id, sent) in &mut channels {
                    if *sent >= options.channel_bytes {
                        continue;
                    }
                    while *sent < options.channel_bytes {
                        let n = (options.channel_bytes - *sent).min(payload.len() as u64) as usize;
                        match s.write_channel_bytes(now, files, *id, payload.slice(..n)) {
                            Ok(k) => *sent += k as u64,
                            Err(carrier_proto::Error::WouldBlock) => break,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    if *sent >= options.channel_bytes {
                        // Normal close: the rest is delivered before the close.
                        s.close_channel(now, files, *id, CloseReason::Normal)?;
                    }
                }
                if channels_closed == 2 {
                    let secs = channel_start.elapsed().as_secs_f64();
                    println!(
                        "channels: 2 × {} MiB in {:.2} s = {:.0} MB/s, every byte before its close ({} bytes)",
                        options.channel_bytes >> 20,
                        secs,
                        channel_received as f64 / secs / 1e6,
                        channel_received
                    );
                    if channel_received != 2 * options.channel_bytes {
                        return Err(DemoError::Stuck("every channel byte"));
                    }
                    alice.endpoint.close_session(now, sa)?;
                    println!("alice closes the session");
                    phase = Phase::Closing;
                }
            }
            Phase::Closing => {
                let closed = sb.is_none_or(|s| {
                    bob.endpoint
                        .session(s)
                        .and_then(|s| s.stream_state(files))
                        .is_ok_and(|st| st == StreamState::Closed)
                });
                if closed {
                    phase = Phase::Done;
                }
            }
            Phase::Done => {}
        }

        if !busy {
            // Idle: wait a little (at most until the next timer).
            let next = alice.timeout.min(bob.timeout);
            let wait = Duration::from_nanos(next.as_nanos().saturating_sub(clock().as_nanos()))
                .min(Duration::from_micros(200));
            std::thread::sleep(wait);
        }
    }
    let (a, b) = (alice.endpoint.stats(), bob.endpoint.stats());
    println!(
        "done in {:.2} s. alice sent {} packets ({} MB); bob dropped {} (bad tag {}, replay {})",
        start.elapsed().as_secs_f64(),
        a.packets_sent,
        a.bytes_sent / 1_000_000,
        b.dropped_bad_tag + b.dropped_replay + b.dropped_malformed + b.dropped_unexpected,
        b.dropped_bad_tag,
        b.dropped_replay
    );
    Ok(())
}

fn print_state(
    name: &str,
    start: WallClock,
    stream: StreamId,
    state: StreamState,
    reason: Option<carrier_proto::StateReason>,
) {
    let why = reason.map(|r| format!(" ({r:?})")).unwrap_or_default();
    println!(
        "[{:>8.1} ms] {name}: {stream} → {state}{why}",
        start.elapsed().as_secs_f64() * 1e3
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_options_parse_and_bad_ones_are_errors() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("8m"), Some(8 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
        let args: Vec<String> = ["--bytes", "1M", "--channel-bytes", "64K"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            Options::parse(&args),
            Ok(Options {
                bytes: 1 << 20,
                channel_bytes: 64 << 10
            })
        );
        assert!(Options::parse(&["--bytes".to_string()]).is_err());
        assert!(Options::parse(&["--nope".to_string(), "1".to_string()]).is_err());
    }
}
