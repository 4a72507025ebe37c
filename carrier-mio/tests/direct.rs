//! Direct signaling: two drivers connect given just an address — the offer and the answer
//! travel on the same UDP socket, the offer is repeated until answered, and a repeat is
//! never raised twice.

mod common;
use common::{Peer, config};
use std::time::{Duration, Instant as WallClock};

use carrier_mio::Driver;
use carrier_proto::{Reply, StreamOptions, StreamType};
use mio::{Events, Poll, Token};

#[test]
fn two_programs_connect_given_an_address() {
    let any = "127.0.0.1:0".parse().unwrap();
    let (mut a, mut b) = (
        Driver::bind(any, config()).unwrap(),
        Driver::bind(any, config()).unwrap(),
    );
    let mut poll = Poll::new().unwrap();
    a.register(poll.registry(), Token(0)).unwrap();
    b.register(poll.registry(), Token(1)).unwrap();
    let keep_all = || Peer {
        defer_requests: true,
        ..Peer::keeping()
    };
    let (mut alice, mut bob) = (keep_all(), keep_all());
    let (s, stream, pending) = common::request_one_stream(&mut a, "bob", "direct");
    a.request_direct(b.local_addr(), &pending);
    alice.pending = Some(pending);

    let mut events = Events::with_capacity(64);
    let start = WallClock::now();
    let mut sent = false;
    while bob.received.len() < 5 {
        assert!(start.elapsed() < Duration::from_secs(20), "stuck");
        let wait = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_millis(10))
            .min(Duration::from_millis(10));
        poll.poll(&mut events, Some(wait)).unwrap();
        // Bob is busy for the first second: Alice's offer goes at 0, 250 and 750 ms.
        let bob_awake = start.elapsed() > Duration::from_millis(1000);
        for ev in events.iter() {
            match ev.token() {
                Token(0) => a.on_readable(&mut alice).unwrap(),
                _ if bob_awake => b.on_readable(&mut bob).unwrap(),
                _ => {}
            }
        }
        a.on_timeout(&mut alice).unwrap();
        if bob_awake {
            b.on_readable(&mut bob).unwrap();
            b.on_timeout(&mut bob).unwrap();
        }
        // Bob's application answers what came in.
        for (peer, offer) in std::mem::take(&mut bob.offers) {
            assert_eq!(
                peer,
                a.local_addr().to_string(),
                "the peer is the sender's address"
            );
            assert_eq!(offer.bundle(), Some("direct"));
            let now = b.now();
            let bs = b.endpoint().new_session(&peer).unwrap();
            b.endpoint()
                .session(bs)
                .unwrap()
                .add_stream(StreamType::Application, StreamOptions::RELIABLE)
                .unwrap();
            let answer = b
                .endpoint()
                .session(bs)
                .unwrap()
                .reply(&offer, Reply::Accept)
                .unwrap();
            b.endpoint().session(bs).unwrap().start(now).unwrap();
            assert!(b.reply_direct(&offer, &answer));
            b.flush(&mut bob).unwrap();
        }
        if alice.connected && !sent {
            let now = a.now();
            a.endpoint()
                .session(s)
                .unwrap()
                .write(now, stream, b"hello")
                .unwrap();
            a.flush(&mut alice).unwrap();
            sent = true;
        }
    }
    assert_eq!(bob.received, b"hello");
    assert_eq!(bob.requests, 1, "repeats of the offer are not raised again");
    assert!(
        a.signals_sent() >= 3,
        "the offer was repeated: {}",
        a.signals_sent()
    );
    // Nothing is repeated once answered.
    let before = a.signals_sent();
    std::thread::sleep(Duration::from_millis(600));
    a.on_timeout(&mut alice).unwrap();
    assert_eq!(a.signals_sent(), before);
}
