//! A reliable transfer over real loopback UDP through a user-space impairment relay (loss,
//! duplication, reordering, delay): every byte arrives, in order (hash compared).
//!
//! The relay sits between the peers because the signaling path (this test) rewrites each
//! description's candidate port to the relay's: Bob sends to "Alice" at relay port A, the
//! relay forwards to Alice from relay port B, which Alice knows as Bob — and back. (The
//! relay is `carrier_tests::relay`, shared with the carrier-tokio tests.)

mod common;
use common::{Peer, config};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant as WallClock};

use carrier_mio::Driver;
use carrier_tests::relay::{Impairment, Relay, via};
use mio::{Events, Poll, Token};

fn digest(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[test]
fn twenty_mebibytes_through_five_percent_loss_arrive_intact() {
    let any = "127.0.0.1:0".parse().unwrap();
    let (mut a, mut b) = (
        Driver::bind(any, config()).unwrap(),
        Driver::bind(any, config()).unwrap(),
    );
    let imp = Impairment::loss(0.05)
        .with_duplicate(0.01)
        .with_reorder(0.01)
        .with_delay(Duration::from_millis(2));
    let relay = Relay::start(a.local_addr(), b.local_addr(), imp).unwrap();
    let (ra_port, rb_port) = (relay.a_stand_in().port(), relay.b_stand_in().port());

    let mut poll = Poll::new().unwrap();
    a.register(poll.registry(), Token(0)).unwrap();
    b.register(poll.registry(), Token(1)).unwrap();
    let (mut alice, mut bob) = (Peer::keeping(), Peer::keeping());
    let (s, stream, pending) = common::request_one_stream(&mut a, "bob", "");
    // Signaling: Bob learns Alice at relay port A, Alice learns Bob at relay port B.
    let offer = via(
        &pending.offer().to_sdp_string(),
        a.local_addr().port(),
        ra_port,
    );
    alice.pending = Some(pending);
    b.endpoint().handle_offer("alice", &offer).unwrap();
    b.flush(&mut bob).unwrap();
    let answer = via(&bob.answer.take().unwrap(), b.local_addr().port(), rb_port);
    a.endpoint().handle_answer(&answer).unwrap();
    a.flush(&mut alice).unwrap();

    let data: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut written = 0;
    let mut events = Events::with_capacity(128);
    let start = WallClock::now();
    while bob.received.len() < data.len() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "stuck at {} of {} bytes",
            bob.received.len(),
            data.len()
        );
        carrier_mio::turn(
            &mut poll,
            &mut events,
            &mut [(&mut a, &mut alice), (&mut b, &mut bob)],
            Duration::from_millis(5),
        )
        .unwrap();
        if alice.connected && written < data.len() {
            let now = a.now();
            let end = (written + (256 << 10)).min(data.len());
            written += a
                .endpoint()
                .session(s)
                .unwrap()
                .write(now, stream, &data[written..end])
                .unwrap_or(0);
            a.flush(&mut alice).unwrap();
        }
    }
    let counts = relay.stop();
    assert_eq!(bob.received.len(), data.len());
    assert_eq!(digest(&bob.received), digest(&data), "every byte, in order");
    let (lost, forwarded) = (counts.lost, counts.forwarded);
    assert!(
        lost * 100 > (lost + forwarded) * 3,
        "the relay really lost ~5%: {lost} of {}",
        lost + forwarded
    );
    assert!(counts.duplicated > 0 && counts.reordered > 0, "{counts:?}");
    println!(
        "20 MiB through 5% loss in {:.2} s ({} lost, {} forwarded)",
        start.elapsed().as_secs_f64(),
        lost,
        forwarded
    );
}
