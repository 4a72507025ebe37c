//! Two drivers on one `mio::Poll` over loopback UDP: the seed's handshake, a reliable
//! transfer and a channel, all through the driver's callbacks.

use std::time::{Duration, Instant as WallClock};

use carrier_mio::{Driver, EventSink};
use carrier_proto::{
    CloseReason, Config, Endpoint, Event, PendingOffer, Reply, RequestOutcome, SessionId,
    StreamOptions, StreamType,
};
use mio::{Events, Poll, Token};

const STREAMS: [(StreamType, StreamOptions); 2] = [
    (StreamType::Application, StreamOptions::empty()),
    (
        StreamType::Application,
        StreamOptions::RELIABLE.union(StreamOptions::MULTIPLEXING),
    ),
];

fn config() -> Config {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    Config::default().with_seed(seed)
}

/// Alice: starts when the answer comes, counts what she is told.
#[derive(Default)]
struct Alice {
    pending: Option<PendingOffer>,
    session: Option<SessionId>,
    connected: usize,
    channel_opened: bool,
}

impl EventSink for Alice {
    fn on_event(&mut self, endpoint: &mut Endpoint, event: Event) {
        match event {
            Event::RequestComplete {
                outcome: RequestOutcome::Accepted(answer),
                session,
            } => {
                let pending = self.pending.take().expect("one request");
                let now = carrier_proto::Instant::ZERO;
                endpoint
                    .session(session)
                    .unwrap()
                    .start_with(now, pending, answer)
                    .unwrap();
            }
            Event::StateChanged {
                state: carrier_proto::StreamState::Connected,
                ..
            } => self.connected += 1,
            Event::ChannelOpened { .. } => self.channel_opened = true,
            _ => {}
        }
    }
}

/// Bob: accepts the request and the channel, counts the bytes.
#[derive(Default)]
struct Bob {
    answer: Option<String>,
    stream_bytes: usize,
    channel_bytes: usize,
    channel_closed: Option<CloseReason>,
}

impl EventSink for Bob {
    fn on_event(&mut self, endpoint: &mut Endpoint, event: Event) {
        let now = carrier_proto::Instant::ZERO;
        match event {
            Event::SessionRequest { offer, .. } => {
                let s = endpoint.new_session("alice").unwrap();
                for (t, o) in STREAMS {
                    endpoint.session(s).unwrap().add_stream(t, o).unwrap();
                }
                let answer = endpoint
                    .session(s)
                    .unwrap()
                    .reply(&offer, Reply::Accept)
                    .unwrap();
                endpoint.session(s).unwrap().start(now).unwrap();
                self.answer = Some(answer.to_sdp_string());
            }
            Event::StreamData { data, .. } => self.stream_bytes += data.len(),
            Event::ChannelOpen {
                session,
                stream,
                channel,
                ..
            } => endpoint
                .session(session)
                .unwrap()
                .accept_channel(now, stream, channel)
                .unwrap(),
            Event::ChannelData { data, .. } => self.channel_bytes += data.len(),
            Event::ChannelClosed { reason, .. } => self.channel_closed = Some(reason),
            _ => {}
        }
    }
}

#[test]
fn two_drivers_handshake_transfer_and_open_a_channel() {
    let mut poll = Poll::new().unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let (mut a, mut b) = (
        Driver::bind(any, config()).unwrap(),
        Driver::bind(any, config()).unwrap(),
    );
    a.register(poll.registry(), Token(0)).unwrap();
    b.register(poll.registry(), Token(1)).unwrap();
    let (mut alice, mut bob) = (Alice::default(), Bob::default());

    // The request; the offer and the answer travel in-process (the app's signaling).
    let now = a.now();
    let s = a.endpoint().new_session("bob").unwrap();
    let mut ids = Vec::new();
    for (t, o) in STREAMS {
        ids.push(a.endpoint().session(s).unwrap().add_stream(t, o).unwrap());
    }
    let pending = a.endpoint().session(s).unwrap().request(now, "").unwrap();
    let offer = pending.offer().to_sdp_string();
    alice.pending = Some(pending);
    alice.session = Some(s);
    b.endpoint().handle_offer("alice", &offer).unwrap();
    b.flush(&mut bob).unwrap();
    let answer = bob.answer.take().expect("bob answered");
    a.endpoint().handle_answer(&answer).unwrap();
    a.flush(&mut alice).unwrap();

    let data = vec![0x42u8; 1 << 20];
    let (mut written, mut channel) = (0, None);
    let mut events = Events::with_capacity(64);
    let start = WallClock::now();
    while bob.stream_bytes < data.len() || bob.channel_closed.is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "stuck");
        carrier_mio::turn(
            &mut poll,
            &mut events,
            &mut [(&mut a, &mut alice), (&mut b, &mut bob)],
            Duration::from_millis(10),
        )
        .unwrap();
        if alice.connected == 2 {
            let now = a.now();
            let mut sess = a.endpoint().session(s).unwrap();
            if written < data.len() {
                written += sess.write(now, ids[1], &data[written..]).unwrap_or(0);
            }
            if channel.is_none() {
                channel = Some(sess.open_channel(now, ids[1], b"mio").unwrap());
            }
            if let (Some(c), true) = (channel, alice.channel_opened) {
                if sess
                    .write_channel(now, ids[1], c, b"over a channel")
                    .is_ok()
                {
                    sess.close_channel(now, ids[1], c, CloseReason::Normal)
                        .unwrap();
                    alice.channel_opened = false;
                }
            }
            a.flush(&mut alice).unwrap();
        }
    }
    assert_eq!(bob.stream_bytes, data.len());
    assert_eq!(bob.channel_bytes, b"over a channel".len());
    assert_eq!(bob.channel_closed, Some(CloseReason::Normal));
    assert_eq!(a.endpoint().stats().dropped_bad_tag, 0);
    // Where the OS offers GSO (Linux), bulk packets leave in batches: fewer send calls
    // than packets.
    if a.set_batching(true) {
        assert!(
            a.send_calls() < a.endpoint().stats().packets_sent,
            "{} calls for {} packets",
            a.send_calls(),
            a.endpoint().stats().packets_sent
        );
    }
}
