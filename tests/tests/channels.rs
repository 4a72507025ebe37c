//! Channels on the simulator: open / accept / refuse / close on both sides, data per
//! channel, pend and resume as real flow control, no head-of-line blocking across channels,
//! fair shares, unreliable channels with keepalive and timeout, and the limits.

use core::time::Duration;

use carrier_proto::packet::{ChannelFrame, Frame, FrameIter, Header};
use carrier_proto::{
    ChannelConfig, ChannelError, ChannelId, ChannelState, CloseReason, Config, Error, Event,
    SessionId, StreamId, StreamOptions as O, StreamType as T,
};
use carrier_tests::netem::{Datagram, LinkConfig};
use carrier_tests::payload;
use carrier_tests::sim::{Handshake, PeerIdx, Sim, stream_id};

const RELIABLE_MUX: (T, O) = (T::Application, O::RELIABLE.union(O::MULTIPLEXING));
const UNRELIABLE_MUX: (T, O) = (T::Application, O::MULTIPLEXING);
/// For tests whose scripted loss reads the packets: PLAIN, so the frames are visible.
const PLAIN_MUX: (T, O) = (
    T::Application,
    O::RELIABLE.union(O::MULTIPLEXING).union(O::PLAIN),
);

/// Two peers with one multiplexing stream, connected; the link set afterwards.
struct Setup {
    sim: Sim,
    hs: Handshake,
    /// The stream's id (index 0 on both sides).
    stream: StreamId,
}

impl Setup {
    fn new(seed: u64, stream: (T, O), link: LinkConfig) -> Self {
        Self::with_configs(seed, stream, link, Config::default(), Config::default())
    }

    fn with_configs(seed: u64, stream: (T, O), link: LinkConfig, a: Config, b: Config) -> Self {
        let mut sim = Sim::new(seed);
        let (pa, pb) = (sim.add_peer_with("alice", a), sim.add_peer_with("bob", b));
        let hs = sim.handshake(pa, pb, &[stream]);
        assert!(
            sim.run_until_connected(&hs, 1),
            "seed {seed}: no connection"
        );
        sim.set_link(pa, pb, link);
        let stream = stream_id(&mut sim, pa, hs.offerer, 0);
        Setup { sim, hs, stream }
    }

    /// (peer, session) of one side.
    fn side(&self, offerer: bool) -> (PeerIdx, SessionId) {
        if offerer {
            (self.hs.offerer_peer, self.hs.offerer)
        } else {
            (self.hs.answerer_peer, self.hs.answerer)
        }
    }

    fn events(&self, offerer: bool) -> &[(carrier_proto::Instant, Event)] {
        &self.sim.peers[self.side(offerer).0].events
    }

    /// Runs until `pred` holds on one side's events (from index `from`), at most `limit`.
    fn run_until_event(
        &mut self,
        offerer: bool,
        limit: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> bool {
        let peer = self.side(offerer).0;
        let deadline = self.sim.now + limit;
        self.sim.run_until(deadline, |sim| {
            sim.peers[peer].events.iter().any(|(_, e)| pred(e))
        })
    }

    /// One side opens a channel with `cookie`, the other accepts; both see it opened.
    fn open_accepted(&mut self, from_offerer: bool, cookie: &[u8]) -> ChannelId {
        let (p, s) = self.side(from_offerer);
        let now = self.sim.now;
        let stream = self.stream;
        let id = self
            .sim
            .session(p, s)
            .open_channel(now, stream, cookie)
            .unwrap();
        assert_eq!(
            self.sim.session(p, s).channel_state(stream, id),
            Ok(ChannelState::Opening)
        );
        self.sim.drain(p);
        let cookie_seen = Bytes::copy_from_slice(cookie);
        assert!(
            self.run_until_event(!from_offerer, Duration::from_secs(5), |e| matches!(
                e,
                Event::ChannelOpen { channel, cookie, .. } if *channel == id && *cookie == cookie_seen
            )),
            "the peer never saw the open"
        );
        let (q, t) = self.side(!from_offerer);
        let now = self.sim.now;
        self.sim
            .session(q, t)
            .accept_channel(now, stream, id)
            .unwrap();
        self.sim.drain(q);
        assert!(
            self.run_until_event(from_offerer, Duration::from_secs(5), |e| matches!(
                e,
                Event::ChannelOpened { channel, .. } if *channel == id
            ))
        );
        assert!(self.events(!from_offerer).iter().any(|(_, e)| matches!(
            e,
            Event::ChannelOpened { channel, .. } if *channel == id
        )));
        id
    }

    /// The bytes one side received on a channel, in order.
    fn received(&self, offerer: bool, id: ChannelId) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, e) in self.events(offerer) {
            if let Event::ChannelData { channel, data, .. } = e {
                if *channel == id {
                    out.extend_from_slice(data);
                }
            }
        }
        out
    }

    /// The close reasons one side saw for a channel.
    fn closes(&self, offerer: bool, id: ChannelId) -> Vec<CloseReason> {
        self.events(offerer)
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ChannelClosed {
                    channel, reason, ..
                } if *channel == id => Some(*reason),
                _ => None,
            })
            .collect()
    }

    /// Writes what fits of each `(channel, data, written)` from one side.
    fn write_some(&mut self, from_offerer: bool, jobs: &mut [(ChannelId, Vec<u8>, usize)]) {
        let (p, s) = self.side(from_offerer);
        let now = self.sim.now;
        let stream = self.stream;
        for (id, data, written) in jobs.iter_mut() {
            while *written < data.len() {
                let end = (*written + 16 * 1024).min(data.len());
                match self
                    .sim
                    .session(p, s)
                    .write_channel(now, stream, *id, &data[*written..end])
                {
                    Ok(n) => *written += n,
                    Err(Error::WouldBlock) => break,
                    Err(e) => panic!("write_channel: {e}"),
                }
            }
        }
        self.sim.drain(p);
    }

    /// Pumps writes and the network until every job's bytes arrived or `limit` passes.
    fn transfer(
        &mut self,
        from_offerer: bool,
        jobs: &mut [(ChannelId, Vec<u8>, usize)],
        limit: Duration,
    ) -> bool {
        let deadline = self.sim.now + limit;
        loop {
            self.write_some(from_offerer, jobs);
            let done = jobs
                .iter()
                .all(|(id, data, _)| self.received(!from_offerer, *id).len() == data.len());
            if done {
                return true;
            }
            if self.sim.now >= deadline || !self.sim.step() {
                return false;
            }
        }
    }
}

use bytes::Bytes;

#[test]
fn open_accept_data_and_a_normal_close_deliver_everything_to_both_sides() {
    let mut t = Setup::new(1, RELIABLE_MUX, LinkConfig::wan());
    let a = t.open_accepted(true, b"ssh");
    let b = t.open_accepted(false, b"from the answerer");
    // Ids split by side: the offerer's odd, the answerer's even.
    assert_eq!((a.as_u64() % 2, b.as_u64() % 2), (1, 0));
    let data_a = payload(300_000, 1);
    let data_b = payload(200_000, 2);
    let mut jobs = vec![(a, data_a.clone(), 0), (b, data_b.clone(), 0)];
    assert!(t.transfer(true, &mut jobs, Duration::from_secs(30)));
    assert_eq!(t.received(false, a), data_a);
    assert_eq!(t.received(false, b), data_b);
    // And the other way on the same channel.
    let back = payload(50_000, 3);
    let mut jobs = vec![(a, back.clone(), 0)];
    assert!(t.transfer(false, &mut jobs, Duration::from_secs(30)));
    assert_eq!(t.received(true, a), back);

    // A Normal close right after a write: the closer sees it closed at once, the peer gets
    // every byte first and then the close.
    let (p, s) = t.side(true);
    let now = t.sim.now;
    let tail = payload(100_000, 4);
    let n = t
        .sim
        .session(p, s)
        .write_channel(now, t.stream, a, &tail)
        .unwrap();
    assert_eq!(n, tail.len());
    t.sim
        .session(p, s)
        .close_channel(now, t.stream, a, CloseReason::Normal)
        .unwrap();
    assert_eq!(t.closes(true, a), []);
    t.sim.drain(p);
    assert_eq!(t.closes(true, a), [CloseReason::Normal]);
    assert_eq!(
        t.sim.session(p, s).write_channel(now, t.stream, a, b"x"),
        Err(Error::Channel(ChannelError::UnknownChannel))
    );
    assert!(
        t.run_until_event(false, Duration::from_secs(30), |e| matches!(
            e,
            Event::ChannelClosed { channel, .. } if *channel == a
        ))
    );
    assert_eq!(t.closes(false, a), [CloseReason::Normal]);
    let mut expect = data_a.clone();
    expect.extend_from_slice(&tail);
    assert_eq!(t.received(false, a), expect, "data before the close");
    // The close came after the last data event.
    let events = t.events(false);
    let close_at = events
        .iter()
        .position(|(_, e)| matches!(e, Event::ChannelClosed { channel, .. } if *channel == a))
        .unwrap();
    assert!(
        !events[close_at..]
            .iter()
            .any(|(_, e)| matches!(e, Event::ChannelData { channel, .. } if *channel == a))
    );
    // Channel b is untouched.
    let (q, r) = t.side(false);
    assert_eq!(
        t.sim.session(q, r).channel_state(t.stream, b),
        Ok(ChannelState::Open)
    );
    assert_eq!(t.sim.session(q, r).channel_count(t.stream), Ok(1));
}

#[test]
fn a_full_channel_buffer_blocks_the_writer_until_writable() {
    let small = ChannelConfig {
        send_buffer: 64 * 1024,
        ..ChannelConfig::default()
    };
    let config = Config::default().with_channels(small);
    let mut t = Setup::with_configs(13, RELIABLE_MUX, LinkConfig::wan(), config.clone(), config);
    let id = t.open_accepted(true, b"x");
    let (p, s) = t.side(true);
    let now = t.sim.now;
    let data = payload(100_000, 13);
    let n = t
        .sim
        .session(p, s)
        .write_channel(now, t.stream, id, &data)
        .unwrap();
    assert_eq!(n, 64 * 1024, "the buffer takes what fits");
    assert_eq!(
        t.sim.session(p, s).channel_writable_bytes(t.stream, id),
        Ok(0)
    );
    assert_eq!(
        t.sim
            .session(p, s)
            .write_channel(now, t.stream, id, &data[n..]),
        Err(Error::WouldBlock)
    );
    t.sim.drain(p);
    assert!(
        t.run_until_event(true, Duration::from_secs(5), |e| matches!(
            e,
            Event::ChannelWritable { channel, .. } if *channel == id
        ))
    );
    let mut jobs = vec![(id, data.clone(), n)];
    assert!(t.transfer(true, &mut jobs, Duration::from_secs(10)));
    assert_eq!(t.received(false, id), data);
}

#[test]
fn channel_zero_is_the_streams_plain_data_next_to_channels() {
    let mut t = Setup::new(14, RELIABLE_MUX, LinkConfig::wan());
    let id = t.open_accepted(true, b"x");
    let (p, s) = t.side(true);
    let now = t.sim.now;
    let plain = payload(30_000, 14);
    let on_channel = payload(30_000, 15);
    assert_eq!(
        t.sim.session(p, s).write(now, t.stream, &plain),
        Ok(plain.len())
    );
    let mut jobs = vec![(id, on_channel.clone(), 0)];
    assert!(t.transfer(true, &mut jobs, Duration::from_secs(10)));
    t.sim.run_for(Duration::from_secs(1));
    let (q, r) = t.side(false);
    let got: Vec<u8> = t
        .sim
        .received(q, r, 0)
        .iter()
        .flat_map(|b| b.to_vec())
        .collect();
    assert_eq!(got, plain, "plain stream data arrives as StreamData");
    assert_eq!(t.received(false, id), on_channel);
}

#[test]
fn zero_copy_writes_arrive_intact_over_loss() {
    let mut t = Setup::new(15, RELIABLE_MUX, LinkConfig::wan().with_loss(0.05));
    let id = t.open_accepted(true, b"zc");
    let data = Bytes::from(payload(400_000, 16));
    let plain = Bytes::from(payload(100_000, 17));
    let (p, s) = t.side(true);
    let (mut sent, mut sent_plain) = (0, 0);
    let deadline = t.sim.now + Duration::from_secs(60);
    while t.received(false, id).len() < data.len() && t.sim.now < deadline {
        let now = t.sim.now;
        let stream = t.stream;
        while sent < data.len() {
            // Slices of one buffer, as an application holding a file in memory would.
            let piece = data.slice(sent..(sent + 50_000).min(data.len()));
            match t
                .sim
                .session(p, s)
                .write_channel_bytes(now, stream, id, piece)
            {
                Ok(n) => sent += n,
                Err(Error::WouldBlock) => break,
                Err(e) => panic!("{e}"),
            }
        }
        if sent_plain < plain.len() {
            let piece = plain.slice(sent_plain..);
            sent_plain += t
                .sim
                .session(p, s)
                .write_bytes(now, stream, piece)
                .unwrap_or(0);
        }
        t.sim.drain(p);
        assert!(t.sim.step());
    }
    assert_eq!(t.received(false, id), data[..]);
    t.sim.run_for(Duration::from_secs(2));
    let (q, r) = t.side(false);
    let got: Vec<u8> = t
        .sim
        .received(q, r, 0)
        .iter()
        .flat_map(|b| b.to_vec())
        .collect();
    assert_eq!(got, plain[..]);
}

#[test]
fn a_refused_open_reaches_the_opener_as_close_error() {
    let mut t = Setup::new(2, RELIABLE_MUX, LinkConfig::wan());
    let (p, s) = t.side(true);
    let now = t.sim.now;
    let id = t
        .sim
        .session(p, s)
        .open_channel(now, t.stream, b"no")
        .unwrap();
    t.sim.drain(p);
    assert!(
        t.run_until_event(false, Duration::from_secs(5), |e| matches!(
            e,
            Event::ChannelOpen { .. }
        ))
    );
    let (q, r) = t.side(false);
    let now = t.sim.now;
    t.sim
        .session(q, r)
        .refuse_channel(now, t.stream, id)
        .unwrap();
    t.sim.drain(q);
    assert!(
        t.run_until_event(true, Duration::from_secs(5), |e| matches!(
            e,
            Event::ChannelClosed { .. }
        ))
    );
    assert_eq!(t.closes(true, id), [CloseReason::Error]);
    assert_eq!(t.closes(false, id), [CloseReason::Error]);
    assert!(
        !t.events(true)
            .iter()
            .any(|(_, e)| matches!(e, Event::ChannelOpened { .. }))
    );
}

#[test]
fn refusing_incoming_data_tells_the_peer() {
    // The Carrier SDK leaked the peer's channel when the app refused its data; here the app
    // closes with Error and the peer hears of it.
    let mut t = Setup::new(3, RELIABLE_MUX, LinkConfig::wan());
    let id = t.open_accepted(true, b"x");
    let mut jobs = vec![(id, payload(5000, 5), 0)];
    t.write_some(true, &mut jobs);
    assert!(
        t.run_until_event(false, Duration::from_secs(5), |e| matches!(
            e,
            Event::ChannelData { .. }
        ))
    );
    let (q, r) = t.side(false);
    let now = t.sim.now;
    t.sim
        .session(q, r)
        .close_channel(now, t.stream, id, CloseReason::Error)
        .unwrap();
    t.sim.drain(q);
    assert!(
        t.run_until_event(true, Duration::from_secs(5), |e| matches!(
            e,
            Event::ChannelClosed { .. }
        ))
    );
    assert_eq!(t.closes(true, id), [CloseReason::Error]);
    let (p, s) = t.side(true);
    assert!(t.sim.session(p, s).channel_state(t.stream, id).is_err());
}

#[test]
fn closing_the_session_closes_every_channel_on_both_sides() {
    let mut t = Setup::new(4, RELIABLE_MUX, LinkConfig::wan());
    let ids: Vec<_> = (0..6).map(|i| t.open_accepted(i % 2 == 0, b"c")).collect();
    // One more left half-open on each side: Opening here, Incoming there.
    let (p, s) = t.side(true);
    let now = t.sim.now;
    let pending = t
        .sim
        .session(p, s)
        .open_channel(now, t.stream, b"late")
        .unwrap();
    t.sim.drain(p);
    assert!(
        t.run_until_event(false, Duration::from_secs(5), |e| matches!(
            e,
            Event::ChannelOpen { channel, .. } if *channel == pending
        ))
    );
    let now = t.sim.now;
    t.sim.ep(p).close_session(now, s).unwrap();
    t.sim.drain(p);
    t.sim.run_for(Duration::from_secs(2));
    for &id in ids.iter().chain([&pending]) {
        assert_eq!(t.closes(true, id), [CloseReason::Normal], "{id} here");
        assert_eq!(
            t.closes(false, id),
            [CloseReason::Normal],
            "{id} at the peer"
        );
    }
}

/// Parses a datagram's DATA frames of one channel: (offset, len) each.
fn channel_data_frames(d: &Datagram, channel: ChannelId) -> Vec<(u64, usize)> {
    let Ok((_, payload)) = Header::parse(&d.contents, None) else {
        return Vec::new();
    };
    FrameIter::new(payload)
        .filter_map(|f| match f {
            Ok(Frame::Channel(ChannelFrame::Data {
                channel: c,
                offset,
                data,
                ..
            })) if c == channel.as_u64() => Some((offset, data.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_loss_on_one_channel_does_not_hold_up_another() {
    let mut t = Setup::new(5, PLAIN_MUX, LinkConfig::wan());
    let a = t.open_accepted(true, b"a");
    let b = t.open_accepted(true, b"b");
    // Drop the 40th packet that carries channel A's data (both channels are flowing by
    // then), once.
    let dropped = std::rc::Rc::new(std::cell::Cell::new(None::<u64>));
    let seen = std::rc::Rc::new(std::cell::Cell::new(0));
    let (d2, s2) = (dropped.clone(), seen.clone());
    t.sim.drop_filter = Some(Box::new(move |_, d| {
        let frames = channel_data_frames(d, a);
        if frames.is_empty() || d2.get().is_some() {
            return false;
        }
        s2.set(s2.get() + 1);
        if s2.get() == 40 {
            d2.set(Some(frames[0].0));
            return true;
        }
        false
    }));
    let mut jobs = vec![(a, payload(200_000, 6), 0), (b, payload(200_000, 7), 0)];
    assert!(t.transfer(true, &mut jobs, Duration::from_secs(30)));
    let gap = dropped.get().expect("a packet of channel A was dropped");
    assert_eq!(t.received(false, a), jobs[0].1);
    assert_eq!(t.received(false, b), jobs[1].1);

    // When did A deliver past the gap, and how far had it got before?
    let events = t.events(false);
    let mut a_bytes = 0u64;
    let mut stall = None;
    let mut fill = None;
    for (i, (_, e)) in events.iter().enumerate() {
        if let Event::ChannelData { channel, data, .. } = e {
            if *channel == a {
                if a_bytes <= gap && a_bytes + data.len() as u64 > gap {
                    fill = Some(i);
                    break;
                }
                a_bytes += data.len() as u64;
                stall = Some(i);
            }
        }
    }
    let (stall, fill) = (stall.unwrap(), fill.unwrap());
    assert_eq!(a_bytes, gap, "A stopped exactly at the lost packet");
    let b_between: usize = events[stall..fill]
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChannelData { channel, data, .. } if *channel == b => Some(data.len()),
            _ => None,
        })
        .sum();
    assert!(
        b_between >= 16 * 1024,
        "channel B delivered only {b_between} bytes while A waited for its retransmission"
    );
    assert!(events[fill].0 > events[stall].0, "A waited (virtual time)");
}

#[test]
fn out_of_order_data_is_bounded_across_channels_and_still_arrives() {
    // A budget of 4 out-of-order segments for the whole stream: with a packet of each
    // channel lost, a packet with data beyond the budget is left unacknowledged and sent
    // again, never held, never lost.
    let config = Config::default().with_transport(carrier_proto::TransportConfig {
        max_reassembly_segments: 4,
        ..carrier_proto::TransportConfig::default()
    });
    let mut t = Setup::with_configs(12, PLAIN_MUX, LinkConfig::wan(), config.clone(), config);
    let ids: Vec<_> = (0..3).map(|_| t.open_accepted(true, b"x")).collect();
    let lost = std::rc::Rc::new(std::cell::RefCell::new(std::collections::BTreeSet::new()));
    let lost2 = lost.clone();
    let ids2 = ids.clone();
    t.sim.drop_filter = Some(Box::new(move |_, d| {
        // One data packet of each channel, well into the transfer, is lost once.
        for id in &ids2 {
            if channel_data_frames(d, *id).iter().any(|&(o, _)| o > 60_000)
                && lost2.borrow_mut().insert(*id)
            {
                return true;
            }
        }
        false
    }));
    let mut jobs: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, payload(150_000, 40 + i as u64), 0))
        .collect();
    assert!(t.transfer(true, &mut jobs, Duration::from_secs(60)));
    for (id, data, _) in &jobs {
        assert_eq!(&t.received(false, *id), data);
    }
    assert_eq!(lost.borrow().len(), 3);
    let (q, _) = t.side(false);
    assert!(
        t.sim.ep(q).stats().packets_refused_busy > 0,
        "packets with segments past the budget were left unacknowledged"
    );
}

#[test]
fn pend_stops_the_writer_and_resume_restarts_it_without_touching_other_channels() {
    let mut t = Setup::new(6, RELIABLE_MUX, LinkConfig::wan());
    let a = t.open_accepted(true, b"a");
    let b = t.open_accepted(true, b"b");
    let data_a = payload(2_000_000, 8);
    let data_b = payload(600_000, 9);
    let mut jobs = vec![(a, data_a.clone(), 0), (b, data_b.clone(), 0)];
    t.write_some(true, &mut jobs);
    t.sim.run_for(Duration::from_millis(150));
    // The receiver pends A.
    let (q, r) = t.side(false);
    let now = t.sim.now;
    t.sim.session(q, r).pend_channel(now, t.stream, a).unwrap();
    t.sim.drain(q);
    assert!(
        t.run_until_event(true, Duration::from_secs(5), |e| matches!(
            e,
            Event::ChannelPending { channel, .. } if *channel == a
        ))
    );
    // The writer is stopped: writes on A are refused, nothing new goes out.
    let (p, s) = t.side(true);
    let now = t.sim.now;
    assert_eq!(
        t.sim.session(p, s).write_channel(now, t.stream, a, b"more"),
        Err(Error::WouldBlock)
    );
    assert_eq!(
        t.sim.session(p, s).channel_writable_bytes(t.stream, a),
        Ok(0)
    );
    // The one paused flag says so; B is not paused.
    assert_eq!(
        t.sim.session(p, s).channel_paused_by_peer(t.stream, a),
        Ok(true)
    );
    assert_eq!(
        t.sim.session(p, s).channel_paused_by_peer(t.stream, b),
        Ok(false)
    );
    // Let what was in flight land, then A must not grow while B finishes.
    t.sim.run_for(Duration::from_millis(500));
    let a_at_pend = t.received(false, a).len();
    assert!(a_at_pend < data_a.len());
    let mut only_b = vec![jobs[1].clone()];
    assert!(t.transfer(true, &mut only_b, Duration::from_secs(30)));
    assert_eq!(t.received(false, b), data_b, "pend on A never stops B");
    assert_eq!(t.received(false, a).len(), a_at_pend, "nothing more on A");
    // Resume: the writer hears of it and A completes intact.
    let now = t.sim.now;
    t.sim
        .session(q, r)
        .resume_channel(now, t.stream, a)
        .unwrap();
    t.sim.drain(q);
    assert!(
        t.run_until_event(true, Duration::from_secs(5), |e| matches!(
            e,
            Event::ChannelResumed { channel, .. } if *channel == a
        ))
    );
    let (p, s) = t.side(true);
    assert_eq!(
        t.sim.session(p, s).channel_paused_by_peer(t.stream, a),
        Ok(false)
    );
    let mut only_a = vec![jobs[0].clone()];
    assert!(t.transfer(true, &mut only_a, Duration::from_secs(60)));
    assert_eq!(t.received(false, a), data_a);
}

#[test]
fn two_bulk_channels_share_a_bottleneck_evenly() {
    // 20 Mbit/s, 40 ms RTT: both channels always have data queued.
    let link = LinkConfig::wan()
        .with_delay(Duration::from_millis(20))
        .with_bottleneck(20_000_000, 100_000);
    let mut t = Setup::new(7, RELIABLE_MUX, link);
    let a = t.open_accepted(true, b"a");
    let b = t.open_accepted(true, b"b");
    let mut jobs = vec![
        (a, payload(20_000_000, 10), 0),
        (b, payload(20_000_000, 11), 0),
    ];
    let deadline = t.sim.now + Duration::from_secs(4);
    while t.sim.now < deadline {
        t.write_some(true, &mut jobs);
        assert!(t.sim.step());
    }
    let (ra, rb) = (t.received(false, a).len(), t.received(false, b).len());
    assert!(ra > 2_000_000 && rb > 2_000_000, "{ra} / {rb}");
    let ratio = ra as f64 / rb as f64;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "shares {ra} vs {rb} ({ratio:.3})"
    );
    assert_eq!(t.received(false, a), jobs[0].1[..ra]);
    assert_eq!(t.received(false, b), jobs[1].1[..rb]);
}

#[test]
fn many_channels_under_loss_each_arrive_intact() {
    let mut t = Setup::new(8, RELIABLE_MUX, LinkConfig::wan().with_loss(0.05));
    let mut jobs: Vec<_> = (0..24)
        .map(|i| {
            let id = t.open_accepted(i % 3 != 0, b"bulk");
            (id, payload(20_000 + i * 3_000, 100 + i as u64), 0)
        })
        .collect();
    // The offerer writes on all of them, whoever opened them.
    assert!(t.transfer(true, &mut jobs, Duration::from_secs(120)));
    for (id, data, _) in &jobs {
        assert_eq!(&t.received(false, *id), data, "{id}");
    }
}

#[test]
fn unreliable_channels_carry_datagrams_keep_alive_and_time_out() {
    let mut t = Setup::new(9, UNRELIABLE_MUX, LinkConfig::wan());
    let id = t.open_accepted(true, b"voice");
    let (p, s) = t.side(true);
    let now = t.sim.now;
    let max = t
        .sim
        .session(p, s)
        .max_channel_datagram_size(t.stream, id)
        .unwrap();
    assert!(max > 1000);
    for i in 0..10u8 {
        t.sim
            .session(p, s)
            .write_channel(now, t.stream, id, &[i; 100])
            .unwrap();
    }
    assert_eq!(
        t.sim
            .session(p, s)
            .write_channel(now, t.stream, id, &vec![0; max + 1]),
        Err(Error::PayloadTooLarge { len: max + 1, max })
    );
    t.sim.drain(p);
    t.sim.run_for(Duration::from_millis(200));
    let got: Vec<Bytes> = t
        .events(false)
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChannelData { channel, data, .. } if *channel == id => Some(data.clone()),
            _ => None,
        })
        .collect();
    // Datagrams: each exactly once, in any order (the link jitters).
    let mut firsts: Vec<u8> = got.iter().map(|d| d[0]).collect();
    firsts.sort_unstable();
    assert_eq!(firsts, (0..10).collect::<Vec<u8>>());
    assert!(got.iter().all(|d| d[..] == [d[0]; 100]));

    // Idle for a minute: the keepalive holds the channel open on both sides.
    t.sim.run_for(Duration::from_secs(60));
    let (q, r) = t.side(false);
    assert_eq!(
        t.sim.session(p, s).channel_state(t.stream, id),
        Ok(ChannelState::Open)
    );
    assert_eq!(
        t.sim.session(q, r).channel_state(t.stream, id),
        Ok(ChannelState::Open)
    );

    // The peer goes silent: both sides close the channel with Timeout, well before the
    // session's own idle timeout (60 s).
    let silent_from = t.sim.now;
    let (pa, pb) = (t.hs.offerer_peer, t.hs.answerer_peer);
    t.sim.partition(pa, pb, true);
    assert!(
        t.run_until_event(true, Duration::from_secs(30), |e| matches!(
            e,
            Event::ChannelClosed { .. }
        ))
    );
    assert_eq!(t.closes(true, id), [CloseReason::Timeout]);
    let at = t
        .events(true)
        .iter()
        .find(|(_, e)| matches!(e, Event::ChannelClosed { .. }))
        .unwrap()
        .0;
    let waited = at - silent_from;
    assert!(
        waited >= Duration::from_secs(15) && waited <= Duration::from_secs(21),
        "closed after {waited:?}"
    );
    t.sim.run_for(Duration::from_secs(5));
    assert_eq!(t.closes(false, id), [CloseReason::Timeout]);
    assert!(t.sim.ep(pa).stats().channel_timeouts >= 1);
}

#[test]
fn limits_are_enforced_for_our_calls_and_the_peers_opens() {
    let small = ChannelConfig {
        max_channels: 8,
        max_cookie_len: 16,
        max_pending_opens: 4,
        ..ChannelConfig::default()
    };
    // Alice has the small limits; Bob is generous, so his opens test Alice's side.
    let mut t = Setup::with_configs(
        10,
        RELIABLE_MUX,
        LinkConfig::wan(),
        Config::default().with_channels(small),
        Config::default(),
    );
    let (p, s) = t.side(true);
    let now = t.sim.now;
    let stream = t.stream;
    assert_eq!(
        t.sim.session(p, s).open_channel(now, stream, &[0; 17]),
        Err(Error::Channel(ChannelError::CookieTooLong {
            len: 17,
            max: 16
        }))
    );
    for _ in 0..4 {
        t.sim
            .session(p, s)
            .open_channel(now, stream, b"ok")
            .unwrap();
    }
    assert_eq!(
        t.sim.session(p, s).open_channel(now, stream, b"ok"),
        Err(Error::Channel(ChannelError::TooManyPendingOpens { max: 4 }))
    );
    t.sim.drain(p);
    // Bob floods opens; Alice holds at most 4 unanswered and refuses the rest.
    let (q, r) = t.side(false);
    let mut bob_ids = Vec::new();
    for _ in 0..50 {
        let now = t.sim.now;
        bob_ids.push(
            t.sim
                .session(q, r)
                .open_channel(now, stream, b"flood")
                .unwrap(),
        );
    }
    t.sim.drain(q);
    t.sim.run_for(Duration::from_secs(2));
    let incoming = t
        .events(true)
        .iter()
        .filter(|(_, e)| matches!(e, Event::ChannelOpen { .. }))
        .count();
    assert_eq!(
        incoming, 4,
        "Alice holds only max_pending_opens of Bob's opens"
    );
    assert!(t.sim.session(p, s).channel_count(stream).unwrap() <= 8);
    assert_eq!(t.sim.ep(p).stats().channel_opens_refused, 46);
    let refused = bob_ids
        .iter()
        .filter(|id| t.closes(false, **id) == [CloseReason::Error])
        .count();
    assert_eq!(refused, 46, "Bob hears of every refusal");
    // A cookie over Alice's limit from Bob (whose own limit is larger) is refused too.
    let now = t.sim.now;
    let big = t
        .sim
        .session(q, r)
        .open_channel(now, stream, &[7; 100])
        .unwrap();
    t.sim.drain(q);
    t.sim.run_for(Duration::from_secs(2));
    assert_eq!(t.closes(false, big), [CloseReason::Error]);
    assert!(
        !t.events(true)
            .iter()
            .any(|(_, e)| matches!(e, Event::ChannelOpen { channel, .. } if *channel == big))
    );
    // ... as a refused channel, not a broken stream.
    assert_eq!(
        t.sim.stream_state(p, s, 0),
        carrier_proto::StreamState::Connected
    );
    assert_eq!(t.sim.ep(p).stats().channel_violations, 0);
    // A non-multiplexing stream has no channels.
    let mut u = Setup::new(11, (T::Application, O::RELIABLE), LinkConfig::wan());
    let (p, s) = u.side(true);
    let now = u.sim.now;
    let stream = u.stream;
    assert_eq!(
        u.sim.session(p, s).open_channel(now, stream, b""),
        Err(Error::Channel(ChannelError::NotMultiplexing))
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// One application call (or the passage of time) on one side.
    #[derive(Clone, Debug)]
    enum Op {
        Open(bool),
        Accept(bool, usize),
        Refuse(bool, usize),
        Write(bool, usize, usize),
        Close(bool, usize, CloseReason),
        Pend(bool, usize),
        Resume(bool, usize),
        Run(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let reason = prop_oneof![
            Just(CloseReason::Normal),
            Just(CloseReason::Timeout),
            Just(CloseReason::Error)
        ];
        prop_oneof![
            3 => any::<bool>().prop_map(Op::Open),
            3 => (any::<bool>(), any::<usize>()).prop_map(|(s, i)| Op::Accept(s, i)),
            1 => (any::<bool>(), any::<usize>()).prop_map(|(s, i)| Op::Refuse(s, i)),
            3 => (any::<bool>(), any::<usize>(), 0..40_000usize)
                .prop_map(|(s, i, n)| Op::Write(s, i, n)),
            1 => (any::<bool>(), any::<usize>(), reason).prop_map(|(s, i, r)| Op::Close(s, i, r)),
            1 => (any::<bool>(), any::<usize>()).prop_map(|(s, i)| Op::Pend(s, i)),
            1 => (any::<bool>(), any::<usize>()).prop_map(|(s, i)| Op::Resume(s, i)),
            2 => (1..300u64).prop_map(Op::Run),
        ]
    }

    /// The channels one side has heard of: its opens and the peer's.
    fn known(t: &Setup, offerer: bool, ours: &BTreeSet<ChannelId>) -> BTreeSet<ChannelId> {
        let mut all = ours.clone();
        for (_, e) in t.events(offerer) {
            if let Event::ChannelOpen { channel, .. } = e {
                all.insert(*channel);
            }
        }
        all
    }

    fn pick(set: &BTreeSet<ChannelId>, i: usize) -> Option<ChannelId> {
        (!set.is_empty()).then(|| *set.iter().nth(i % set.len()).unwrap())
    }

    fn run(ops: Vec<Op>, reliable: bool, loss: f64, closer_is_offerer: bool) {
        let kind = if reliable {
            RELIABLE_MUX
        } else {
            UNRELIABLE_MUX
        };
        let mut t = Setup::new(77, kind, LinkConfig::wan().with_loss(loss));
        let mut ours: BTreeMap<bool, BTreeSet<ChannelId>> = BTreeMap::new();
        let stream = t.stream;
        for op in ops {
            let now = t.sim.now;
            let side = match op {
                Op::Open(s)
                | Op::Accept(s, _)
                | Op::Refuse(s, _)
                | Op::Write(s, ..)
                | Op::Close(s, ..)
                | Op::Pend(s, _)
                | Op::Resume(s, _) => s,
                Op::Run(ms) => {
                    t.sim.run_for(Duration::from_millis(ms));
                    continue;
                }
            };
            let mine = ours.entry(side).or_default().clone();
            let all = known(&t, side, &mine);
            let (p, s) = t.side(side);
            let mut h = t.sim.session(p, s);
            // Errors are fine (a channel closed meanwhile, a full buffer, a limit): the
            // property is about what the core does, not about the calls being valid.
            match op {
                Op::Open(_) => {
                    if let Ok(id) = h.open_channel(now, stream, b"prop") {
                        ours.entry(side).or_default().insert(id);
                    }
                }
                Op::Accept(_, i) => {
                    if let Some(id) = pick(&all, i) {
                        let _ = h.accept_channel(now, stream, id);
                    }
                }
                Op::Refuse(_, i) => {
                    if let Some(id) = pick(&all, i) {
                        let _ = h.refuse_channel(now, stream, id);
                    }
                }
                Op::Write(_, i, n) => {
                    if let Some(id) = pick(&all, i) {
                        let n = if reliable { n } else { n % 1000 };
                        let _ = h.write_channel(now, stream, id, &payload(n, n as u64));
                    }
                }
                Op::Close(_, i, reason) => {
                    if let Some(id) = pick(&all, i) {
                        let _ = h.close_channel(now, stream, id, reason);
                    }
                }
                Op::Pend(_, i) => {
                    if let Some(id) = pick(&all, i) {
                        let _ = h.pend_channel(now, stream, id);
                    }
                }
                Op::Resume(_, i) => {
                    if let Some(id) = pick(&all, i) {
                        let _ = h.resume_channel(now, stream, id);
                    }
                }
                Op::Run(_) => unreachable!(),
            }
            t.sim.drain(p);
        }
        // Close the session from one side; a lost session CLOSE ends the other side by
        // its idle timeout, so give it that long.
        let (p, s) = t.side(closer_is_offerer);
        let now = t.sim.now;
        t.sim.ep(p).close_session(now, s).unwrap();
        t.sim.drain(p);
        t.sim.run_for(Duration::from_secs(75));
        for side in [true, false] {
            let mine = ours.get(&side).cloned().unwrap_or_default();
            let all = known(&t, side, &mine);
            let mut closed: BTreeMap<ChannelId, usize> = BTreeMap::new();
            for (_, e) in t.events(side) {
                match e {
                    Event::ChannelClosed { channel, .. } => {
                        *closed.entry(*channel).or_default() += 1;
                    }
                    Event::ChannelData { channel, .. }
                    | Event::ChannelOpened { channel, .. }
                    | Event::ChannelPending { channel, .. }
                    | Event::ChannelResumed { channel, .. } => {
                        assert!(
                            !closed.contains_key(channel),
                            "side {side}: an event for {channel} after its close"
                        );
                    }
                    _ => {}
                }
            }
            for id in &all {
                assert_eq!(
                    closed.get(id),
                    Some(&1),
                    "side {side}: {id} must end with exactly one ChannelClosed"
                );
            }
            assert_eq!(
                closed.len(),
                all.len(),
                "side {side}: closes for unknown channels"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn every_channel_ends_closed_on_both_sides(
            ops in proptest::collection::vec(op(), 0..100),
            reliable: bool,
            loss in prop_oneof![Just(0.0), Just(0.05), Just(0.2)],
            closer: bool,
        ) {
            run(ops, reliable, loss, closer);
        }
    }
}
