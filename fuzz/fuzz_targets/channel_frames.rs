//! Channel frames: a connected session with a reliable and an unreliable MULTIPLEXING stream
//! (and a plain reliable one), each with channels opened from both sides and accepted,
//! receives fuzzed channel input: packets of structured frames (CONTROL at the control
//! stream's next offset, so its bytes reach the record parser; channel DATA, DATAGRAM,
//! KEEPALIVE, MAX_CHANNEL_DATA, MAX_CONTROL_DATA, a few transport frames, raw bytes) sent
//! one or more times, then the raw input as a DATA payload. Nothing panics, the answerer
//! still answers and its timers advance, its channels and events stay within the limits;
//! and every frame the encoder writes parses back to itself.
//!
//! Input: `mode` (low four bits n: each structured packet is sent n³ + 1 times; 0x10: the
//! two endpoints exchange datagrams after each packet; 0x20: b has channel data in flight),
//! `policy` (b's application ignores, accepts or refuses opens, by `policy % 3`), `step`
//! (× 50 ms between packets), then up to 8 packets, each a count byte and that many ops
//! (`build_payload`). The seeds in `seeds/channel_frames` show the layout.
#![no_main]

use core::time::Duration;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use carrier_proto::packet::{ChannelFrame, Frame, FrameIter, Header, PacketType, write_packet};
use carrier_proto::*;
use libfuzzer_sys::fuzz_target;

const A: &str = "192.0.2.1:1";
const B: &str = "192.0.2.2:1";
/// The largest varint (2^62 − 1): the encoder's contract, so the harness stays within it.
const VARINT_MAX: u64 = (1 << 62) - 1;
/// Stream 0: reliable with channels; 1: unreliable with channels; 2: reliable, no channels.
const STREAMS: [(StreamType, StreamOptions); 3] = [
    (
        StreamType::Application,
        StreamOptions::RELIABLE.union(StreamOptions::MULTIPLEXING).union(StreamOptions::PLAIN),
    ),
    (StreamType::Application, StreamOptions::MULTIPLEXING.union(StreamOptions::PLAIN)),
    (StreamType::Text, StreamOptions::RELIABLE.union(StreamOptions::PLAIN)),
];
/// Most outputs one drain may produce before the endpoint counts as livelocked.
const MAX_OUTPUTS: usize = 100_000;
/// Most fuzzed packets per input (the raw one included).
const MAX_SENDS: usize = 4096;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Everything `poll_output` gives until it names a timer.
#[derive(Default)]
struct Drained {
    transmits: Vec<Transmit>,
    events: Vec<Event>,
    timeout: Option<Instant>,
}

fn drain(ep: &mut Endpoint) -> Drained {
    let mut d = Drained::default();
    for _ in 0..MAX_OUTPUTS {
        match ep.poll_output() {
            Output::Transmit(t) => d.transmits.push(t),
            Output::Event(e) => d.events.push(e),
            Output::Timeout(at) => {
                d.timeout = Some(at);
                return d;
            }
        }
    }
    panic!("poll_output never returned a timeout ({MAX_OUTPUTS} outputs)");
}

/// The two endpoints, talking directly to each other.
struct World {
    a: Endpoint,
    b: Endpoint,
    sa: SessionId,
    sb: SessionId,
    /// `b`'s streams (the same indices on both sides).
    streams: Vec<StreamId>,
    now: Instant,
    /// Next control-stream offset of a's control stream, per stream index (from a's packets).
    ctl_next: BTreeMap<u8, u64>,
    /// Events `b` handed out so far.
    b_events: usize,
    /// The open channels: (stream, channel), the same on both sides.
    channels: Vec<(StreamId, ChannelId)>,
    /// Datagrams delivered to `b`.
    to_b: u64,
}

impl World {
    fn deliver(&mut self, to_b: bool, t: Transmit) {
        if to_b {
            self.to_b += 1;
            // Note where a's control stream is, so fuzzed CONTROL frames continue it.
            if let Ok((h, payload)) = Header::parse(&t.contents, None)
                && h.packet_type == PacketType::Data
            {
                for f in FrameIter::new(payload).flatten() {
                    if let Frame::Control {
                        stream,
                        offset,
                        data,
                    } = f
                    {
                        let end = offset + data.len() as u64;
                        let e = self.ctl_next.entry(stream).or_default();
                        *e = (*e).max(end);
                    }
                }
            }
        }
        let ep = if to_b { &mut self.b } else { &mut self.a };
        ep.handle_input(Input::Receive {
            now: self.now,
            source: t.source,
            destination: t.destination,
            contents: t.contents,
        });
    }

    /// Moves datagrams both ways until both are quiet; returns (a's events, b's events).
    fn exchange(&mut self, rounds: usize) -> (Vec<Event>, Vec<Event>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let da = drain(&mut self.a);
            let db = drain(&mut self.b);
            self.b_events += db.events.len();
            ea.extend(da.events);
            eb.extend(db.events);
            if da.transmits.is_empty() && db.transmits.is_empty() {
                break;
            }
            for t in da.transmits {
                self.deliver(true, t);
            }
            for t in db.transmits {
                self.deliver(false, t);
            }
        }
        (ea, eb)
    }

    /// Opens a channel from one side on `index` and accepts it on the other.
    fn open_accepted(&mut self, from_a: bool, index: usize, cookie: &[u8]) -> ChannelId {
        let now = self.now;
        let (opener, s) = if from_a {
            (&mut self.a, self.sa)
        } else {
            (&mut self.b, self.sb)
        };
        let stream = opener.session(s).unwrap().stream_at(index).unwrap();
        let id = opener
            .session(s)
            .unwrap()
            .open_channel(now, stream, cookie)
            .unwrap();
        let (ea, eb) = self.exchange(8);
        let seen = if from_a { eb } else { ea };
        assert!(
            seen.iter().any(
                |e| matches!(e, Event::ChannelOpen { channel, cookie: c, .. }
                if *channel == id && c[..] == cookie[..])
            ),
            "the peer never saw the open of {id}"
        );
        let (answerer, t) = if from_a {
            (&mut self.b, self.sb)
        } else {
            (&mut self.a, self.sa)
        };
        answerer
            .session(t)
            .unwrap()
            .accept_channel(now, stream, id)
            .unwrap();
        let (ea, _) = self.exchange(8);
        if from_a {
            assert!(
                ea.iter()
                    .any(|e| matches!(e, Event::ChannelOpened { channel, .. } if *channel == id)),
                "the opener never saw {id} accepted"
            );
        }
        id
    }
}

/// Two connected endpoints (a offered, b answered) with channels 1 (a's) and 2 (b's) open
/// on both multiplexing streams.
fn world() -> World {
    let now = Instant::ZERO;
    let mut a = Endpoint::new(Config::default().with_seed([1; 32]));
    let mut b = Endpoint::new(Config::default().with_seed([2; 32]));
    a.add_host_candidate(addr(A));
    b.add_host_candidate(addr(B));
    let sa = a.new_session("b").unwrap();
    let sb = b.new_session("a").unwrap();
    let mut streams = Vec::new();
    for (ty, opts) in STREAMS {
        a.session(sa).unwrap().add_stream(ty, opts).unwrap();
        streams.push(b.session(sb).unwrap().add_stream(ty, opts).unwrap());
    }
    let pending = a.session(sa).unwrap().request(now, "").unwrap();
    let answer = b
        .session(sb)
        .unwrap()
        .reply(pending.offer(), Reply::Accept)
        .unwrap();
    b.session(sb).unwrap().start(now).unwrap();
    a.session(sa)
        .unwrap()
        .start_with(now, pending, answer)
        .unwrap();
    let mut w = World {
        a,
        b,
        sa,
        sb,
        streams,
        now,
        ctl_next: BTreeMap::new(),
        b_events: 0,
        channels: Vec::new(),
        to_b: 0,
    };
    w.exchange(8);
    for index in 0..2 {
        let stream = w.streams[index];
        let ours = w.open_accepted(true, index, b"ssh");
        let theirs = w.open_accepted(false, index, b"web");
        assert_eq!((ours.as_u64(), theirs.as_u64()), (1, 2));
        w.channels.push((stream, ours));
        w.channels.push((stream, theirs));
    }
    w
}

/// Reads the fuzz input front to back; past the end every read is 0 or empty.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// A number, usually small, sometimes anything a varint holds.
    fn num(&mut self) -> u64 {
        let tag = self.byte();
        let wide = |r: &mut Self, n: usize| {
            r.bytes(n)
                .iter()
                .fold(0u64, |v, &b| (v << 8) | u64::from(b))
        };
        match tag {
            0..=127 => u64::from(tag),
            128..=191 => wide(self, 2),
            192..=223 => wide(self, 4),
            224..=239 => VARINT_MAX - u64::from(tag - 224),
            _ => wide(self, 8) & VARINT_MAX,
        }
    }

    /// A stream index: mostly ours (3 is one that does not exist), rarely anything.
    fn stream(&mut self) -> u8 {
        let s = self.byte();
        if s < 248 { s % 4 } else { s }
    }

    /// A channel id: mostly 1..=12 (1 and 2 are open), rarely 0 (malformed) or anything.
    fn channel(&mut self) -> u64 {
        match self.byte() {
            c @ 0..=239 => 1 + u64::from(c % 12),
            240..=243 => 0,
            _ => self.num(),
        }
    }

    fn reason(&mut self) -> CloseReason {
        match self.byte() % 3 {
            0 => CloseReason::Normal,
            1 => CloseReason::Timeout,
            _ => CloseReason::Error,
        }
    }
}

/// One control record, written by the crate's encoder (the record layout is the frame's).
fn record(r: &mut Reader<'_>, stream: u8, out: &mut Vec<u8>) {
    let channel = r.channel();
    let frame = match r.byte() % 16 {
        0..=2 => {
            let len = usize::from(r.byte()) * usize::from(r.byte() % 8 + 1);
            ChannelFrame::Open {
                stream,
                channel,
                cookie: r.bytes(len),
            }
        }
        3..=5 => ChannelFrame::Accept { stream, channel },
        6..=8 => ChannelFrame::Close {
            stream,
            channel,
            reason: r.reason(),
        },
        9..=11 => ChannelFrame::Pend { stream, channel },
        12..=14 => ChannelFrame::Resume { stream, channel },
        // A packet frame where a record belongs: breaks the control stream.
        _ => ChannelFrame::KeepAlive { stream, channel },
    };
    let mut buf = BytesMut::new();
    Frame::Channel(frame).emit(&mut buf);
    out.extend_from_slice(&buf);
}

/// The frames of one fuzzed packet payload.
fn build_payload(
    r: &mut Reader<'_>,
    w: &mut World,
    chan_next: &mut BTreeMap<(u8, u64), u64>,
) -> Vec<u8> {
    let mut out = BytesMut::new();
    let ops = r.byte() % 32 + 1;
    for _ in 0..ops {
        if r.is_empty() {
            break;
        }
        let op = r.byte();
        let stream = r.stream();
        // The low six bits choose the frame, the high two are flags.
        let frame: Option<Frame<'_>> = match (op & 0x3f) % 10 {
            // CONTROL with raw record bytes at the control stream's next offset.
            0 | 1 => {
                let len = usize::from(r.byte());
                let data = r.bytes(len);
                let next = w.ctl_next.entry(stream).or_default();
                let offset = if op & 0x80 != 0 { r.num() } else { *next };
                if op & 0x80 == 0 {
                    *next += data.len() as u64;
                }
                emit_checked(
                    &mut out,
                    Frame::Control {
                        stream,
                        offset,
                        data,
                    },
                );
                None
            }
            // Well-formed records, possibly split over two CONTROL frames (in either order).
            2 | 3 => {
                let mut recs = Vec::new();
                for _ in 0..(r.byte() % 4 + 1) {
                    record(r, stream, &mut recs);
                }
                let next = w.ctl_next.entry(stream).or_default();
                let base = *next;
                *next += recs.len() as u64;
                let cut = usize::from(r.byte()).min(recs.len());
                let (x, y) = recs.split_at(cut);
                let first = Frame::Control {
                    stream,
                    offset: base,
                    data: x,
                };
                let second = Frame::Control {
                    stream,
                    offset: base + cut as u64,
                    data: y,
                };
                if op & 0x80 != 0 {
                    emit_checked(&mut out, second);
                    emit_checked(&mut out, first);
                } else {
                    emit_checked(&mut out, first);
                    emit_checked(&mut out, second);
                }
                None
            }
            4 => {
                let channel = r.channel();
                let len = usize::from(r.byte()) * usize::from(r.byte() % 4 + 1);
                let data = r.bytes(len);
                let next = chan_next.entry((stream, channel)).or_default();
                let offset = if op & 0x80 != 0 { r.num() } else { *next };
                if op & 0x80 == 0 {
                    *next += data.len() as u64;
                }
                Some(Frame::Channel(ChannelFrame::Data {
                    stream,
                    channel,
                    offset,
                    data,
                    fin: op & 0x40 != 0,
                }))
            }
            5 => {
                let channel = r.channel();
                let len = usize::from(r.byte());
                Some(Frame::Channel(ChannelFrame::Datagram {
                    stream,
                    channel,
                    data: r.bytes(len),
                }))
            }
            6 => Some(Frame::Channel(ChannelFrame::KeepAlive {
                stream,
                channel: r.channel(),
            })),
            7 => Some(Frame::Channel(ChannelFrame::MaxChannelData {
                stream,
                channel: r.channel(),
                max: r.num(),
            })),
            8 => Some(Frame::MaxControlData {
                stream,
                max: r.num(),
            }),
            // Transport frames that end or feed streams, and raw bytes.
            _ => match r.byte() % 5 {
                0 => Some(Frame::Ping),
                1 => Some(Frame::Close {
                    scope: stream,
                    reason: r.reason(),
                }),
                2 => {
                    let len = usize::from(r.byte());
                    Some(Frame::Stream {
                        stream,
                        offset: r.num() % 4096,
                        data: r.bytes(len),
                        fin: op & 0x40 != 0,
                    })
                }
                3 => Some(Frame::MaxStreamData {
                    stream,
                    max: r.num(),
                }),
                _ => {
                    let len = usize::from(r.byte() % 16);
                    out.extend_from_slice(r.bytes(len));
                    None
                }
            },
        };
        if let Some(f) = frame {
            emit_checked(&mut out, f);
        }
    }
    out.to_vec()
}

/// Whether the parser must accept `f` (the encoder's output of it): channel ids ≥ 1 and
/// data ending at or below 2^62 − 1.
fn must_parse(f: &Frame<'_>) -> bool {
    let end_ok = |offset: u64, len: usize| {
        offset
            .checked_add(len as u64)
            .is_some_and(|e| e <= VARINT_MAX)
    };
    match *f {
        Frame::Channel(c) => {
            let channel = match c {
                ChannelFrame::Data {
                    channel,
                    offset,
                    data,
                    ..
                } => {
                    if !end_ok(offset, data.len()) {
                        return false;
                    }
                    channel
                }
                ChannelFrame::MaxChannelData { channel, .. }
                | ChannelFrame::Datagram { channel, .. }
                | ChannelFrame::KeepAlive { channel, .. } => channel,
                // Control records are never packet frames.
                _ => return false,
            };
            channel != 0
        }
        Frame::Control { offset, data, .. } | Frame::Stream { offset, data, .. } => {
            end_ok(offset, data.len())
        }
        _ => true,
    }
}

/// Appends `f` and checks the encoder against the parser: what must parse parses back to
/// `f`, exactly `encoded_len` bytes; what must not is refused.
fn emit_checked(out: &mut BytesMut, f: Frame<'_>) {
    let mut one = BytesMut::new();
    f.emit(&mut one);
    assert_eq!(one.len(), f.encoded_len(), "encoded_len of {f:?}");
    let back: Vec<_> = FrameIter::new(&one).collect();
    if must_parse(&f) {
        assert_eq!(back, [Ok(f)], "{f:?} did not parse back");
    } else {
        assert!(back.iter().any(|r| r.is_err()), "{f:?} parsed: {back:?}");
    }
    out.extend_from_slice(&one);
}

/// packet_decode's check for channel frames: a payload that parses fully re-encodes to
/// bytes that parse to the same frames.
fn round_trip(payload: &[u8]) {
    let frames: Vec<_> = FrameIter::new(payload).collect();
    if !frames.iter().all(|f| f.is_ok()) {
        return;
    }
    let mut out = BytesMut::new();
    for f in frames.iter().flatten() {
        f.emit(&mut out);
    }
    let again: Vec<_> = FrameIter::new(&out).collect();
    assert_eq!(again.len(), frames.len(), "frame count after re-encoding");
    for (x, y) in again.iter().zip(&frames) {
        match (x, y) {
            (Ok(Frame::Ack(x)), Ok(Frame::Ack(y))) => {
                let xr: Vec<_> = x.ranges().collect();
                let yr: Vec<_> = y.ranges().collect();
                assert_eq!(
                    (x.largest(), x.ack_delay_micros(), xr),
                    (y.largest(), y.ack_delay_micros(), yr)
                );
            }
            (x, y) => assert_eq!(x, y, "frame changed by re-encoding"),
        }
    }
}

/// b's application: takes its events, and answers opens as the input says.
fn app(w: &mut World, events: &[Event], policy: u8) {
    let now = w.now;
    for e in events {
        if let Event::ChannelOpen {
            stream, channel, ..
        } = *e
        {
            let Ok(mut s) = w.b.session(w.sb) else { return };
            let _ = match policy % 3 {
                0 => Ok(()),
                1 => s.accept_channel(now, stream, channel),
                _ => s.refuse_channel(now, stream, channel),
            };
        }
    }
}

/// The bounds that must hold on b whatever it was sent.
fn check_bounds(w: &mut World, drained_events: usize) {
    let max_channels = ChannelConfig::default().max_channels;
    let max_events = Config::default().max_queued_events;
    // Control events are not dropped at the queue's limit, but are bounded by the channels.
    assert!(
        drained_events <= max_events + 4 * max_channels + 16,
        "{drained_events} events from one input"
    );
    if let Ok(s) = w.b.session(w.sb) {
        for &stream in &w.streams {
            if let Ok(n) = s.channel_count(stream) {
                assert!(n <= max_channels, "{n} channels on {stream:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut w = world();
    let mut r = Reader(data);
    let mode = r.byte();
    // A peer may send the same frames again and again: up to 3376 times (n³ + 1), so a
    // small input can fill what a large one would.
    let repeats = usize::from(mode & 0x0f).pow(3) + 1;
    let exchange = mode & 0x10 != 0;
    let policy = r.byte();
    let step = Duration::from_millis(u64::from(r.byte()) * 50);
    if mode & 0x20 != 0 {
        // b has data in flight on its channels, unacknowledged (unreliable: one datagram).
        let now = w.now;
        let mut s = w.b.session(w.sb).unwrap();
        for &(stream, channel) in &w.channels {
            let len = if stream == w.streams[0] { 3000 } else { 100 };
            let _ = s.write_channel(now, stream, channel, &vec![7; len]);
        }
        let _ = drain(&mut w.b);
    }
    let (source, destination) = (addr(A), addr(B));
    let mut number = 1u64 << 20;
    let mut chan_next = BTreeMap::new();
    let mut packets: Vec<Vec<u8>> = Vec::new();
    while !r.is_empty() && packets.len() < 8 {
        let payload = build_payload(&mut r, &mut w, &mut chan_next);
        round_trip(&payload);
        packets.push(payload);
    }
    // The raw input as a payload too (as packet_decode does).
    round_trip(data);
    packets.push(data.to_vec());
    let received_before = w.b.stats().packets_received - w.to_b;
    let mut sent = 0;
    for (i, payload) in packets.iter().enumerate() {
        // The structured packets repeat (a peer that keeps sending); the raw one goes once.
        let times = if i + 1 == packets.len() {
            1
        } else {
            repeats.min(MAX_SENDS - 1 - sent)
        };
        for _ in 0..times {
            let header = Header {
                packet_type: PacketType::Data,
                destination: w.sb.as_u64(),
                packet_number: number,
            };
            number += 1;
            let mut packet = BytesMut::new();
            write_packet(&mut packet, &header, 4, |o| o.extend_from_slice(payload));
            w.b.handle_input(Input::Receive {
                now: w.now,
                source,
                destination,
                contents: Bytes::from(packet),
            });
            sent += 1;
            let events = if exchange {
                w.exchange(4).1
            } else {
                let d = drain(&mut w.b);
                w.b_events += d.events.len();
                d.events
            };
            check_bounds(&mut w, events.len());
            app(&mut w, &events, policy);
            w.now += step;
        }
    }
    assert_eq!(
        w.b.stats().packets_received,
        received_before + sent as u64 + w.to_b,
        "every datagram is counted"
    );
    // b still runs: its timers move forward (keepalives, idle timeouts, probes) and it answers.
    let end = w.now + Duration::from_secs(90);
    let mut stuck = 0;
    for _ in 0..256 {
        let d = drain(&mut w.b);
        check_bounds(&mut w, d.events.len());
        let at = d.timeout.expect("drain ends at a timeout");
        if at == Instant::FAR_FUTURE || at > end {
            break;
        }
        // A timer that stays due after it ran would spin a driver.
        if at <= w.now && d.transmits.is_empty() {
            stuck += 1;
            assert!(stuck < 32, "timer stuck at {at:?}");
        } else {
            stuck = 0;
        }
        w.now = w.now.max(at);
        w.b.handle_input(Input::Timeout(w.now));
    }
});
