//! Close and abort through the mio driver over loopback UDP: a session closed in the
//! middle of a transfer delivers every byte `write` took and then the end
//! (`StreamFinished`); an aborted one never reports an end, and the reader sees why.

mod common;
use common::{Peer, config};
use std::time::{Duration, Instant as WallClock};

use carrier_mio::{Driver, turn};
use carrier_proto::{CloseReason, StateReason, StreamState};
use mio::{Events, Poll, Token};

/// Alice sends 8 MiB to Bob and, once `close_at` bytes were taken by `write`, closes
/// (or aborts) her session. Returns Bob's side and how much Alice's writes took.
fn transfer_then(abort: bool, close_at: usize) -> (Peer, usize) {
    let any = "127.0.0.1:0".parse().unwrap();
    let (mut a, mut b) = (
        Driver::bind(any, config()).unwrap(),
        Driver::bind(any, config()).unwrap(),
    );
    let mut poll = Poll::new().unwrap();
    a.register(poll.registry(), Token(0)).unwrap();
    b.register(poll.registry(), Token(1)).unwrap();
    let (mut alice, mut bob) = (Peer::default(), Peer::keeping());
    let (s, stream, pending) = common::request_one_stream(&mut a, "bob", "close");
    // The application carries the signaling itself (a function call here).
    b.endpoint()
        .handle_offer("alice", &pending.offer().to_sdp_string())
        .unwrap();
    alice.pending = Some(pending);
    b.flush(&mut bob).unwrap();
    let answer = bob.answer.take().expect("bob answered");
    a.endpoint().handle_answer(&answer).unwrap();
    a.flush(&mut alice).unwrap();

    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut written = 0;
    let mut closed = false;
    let mut events = Events::with_capacity(256);
    let start = WallClock::now();
    while bob.ended.is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "stuck");
        if alice.connected && !closed {
            let now = a.now();
            while written < close_at {
                match a
                    .endpoint()
                    .session(s)
                    .unwrap()
                    .write(now, stream, &data[written..close_at])
                {
                    Ok(n) => written += n,
                    Err(carrier_proto::Error::WouldBlock) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            if written == close_at {
                let ep = a.endpoint();
                if abort {
                    ep.abort_session(now, s).unwrap();
                } else {
                    ep.close_session(now, s).unwrap();
                }
                closed = true;
            }
            a.flush(&mut alice).unwrap();
        }
        turn(
            &mut poll,
            &mut events,
            &mut [(&mut a, &mut alice), (&mut b, &mut bob)],
            Duration::from_millis(5),
        )
        .unwrap();
    }
    assert!(bob.received.len() <= written);
    assert_eq!(bob.received, data[..bob.received.len()]);
    (bob, written)
}

#[test]
fn a_session_closed_mid_transfer_delivers_everything_then_the_end() {
    let (bob, written) = transfer_then(false, 6 << 20);
    assert_eq!(bob.received.len(), written, "every byte write took");
    assert!(bob.finished, "the end after the data");
    assert_eq!(
        bob.ended,
        Some((
            StreamState::Closed,
            Some(StateReason::ClosedByPeer(CloseReason::Normal))
        ))
    );
}

#[test]
fn an_aborted_session_never_reports_an_end() {
    let (bob, written) = transfer_then(true, 6 << 20);
    assert!(!bob.finished, "no end after an abort");
    assert!(bob.received.len() < written);
    assert_eq!(
        bob.ended,
        Some((
            StreamState::Closed,
            Some(StateReason::ClosedByPeer(CloseReason::Error))
        ))
    );
}

#[test]
fn unpaced_datagrams_wait_for_room_and_all_arrive() {
    let any = "127.0.0.1:0".parse().unwrap();
    let (mut a, mut b) = (
        Driver::bind(any, config()).unwrap(),
        Driver::bind(any, config()).unwrap(),
    );
    let mut poll = Poll::new().unwrap();
    a.register(poll.registry(), Token(0)).unwrap();
    b.register(poll.registry(), Token(1)).unwrap();
    let options = carrier_proto::StreamOptions::empty();
    let mut alice = Peer::default();
    let mut bob = Peer {
        options: Some(options),
        ..Peer::default()
    };
    let (s, stream, pending) = common::request_stream(&mut a, "bob", "dgram", options);
    b.endpoint()
        .handle_offer("alice", &pending.offer().to_sdp_string())
        .unwrap();
    alice.pending = Some(pending);
    b.flush(&mut bob).unwrap();
    a.endpoint()
        .handle_answer(&bob.answer.take().unwrap())
        .unwrap();
    a.flush(&mut alice).unwrap();
    let total = 10_000;
    let (mut sent, mut blocked) = (0, 0);
    let mut events = Events::with_capacity(256);
    let start = WallClock::now();
    let datagram = [0x5au8; 1024];
    // Until everything arrived, or everything is sent and nothing came for half a
    // second (a datagram the kernel's loopback buffer dropped is not coming).
    let (mut last_count, mut last_change) = (0, WallClock::now());
    while bob.data_events < total
        && !(sent == total && last_change.elapsed() > Duration::from_millis(500))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "stuck at {}",
            bob.data_events
        );
        if bob.data_events != last_count {
            (last_count, last_change) = (bob.data_events, WallClock::now());
        }
        if alice.connected && sent < total {
            let now = a.now();
            let mut session = a.endpoint().session(s).unwrap();
            while sent < total {
                match session.write(now, stream, &datagram) {
                    Ok(_) => sent += 1,
                    Err(carrier_proto::Error::WouldBlock) => {
                        blocked += 1;
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            a.flush(&mut alice).unwrap();
        }
        turn(
            &mut poll,
            &mut events,
            &mut [(&mut a, &mut alice), (&mut b, &mut bob)],
            Duration::from_millis(5),
        )
        .unwrap();
    }
    // The sender loses none; 0.1% is left for the kernel's loopback buffers.
    assert_eq!(sent, total);
    assert_eq!(a.endpoint().stats().datagrams_sent, total as u64);
    assert!(
        bob.data_events * 1000 >= total * 999,
        "{} of {total} arrived",
        bob.data_events
    );
    assert!(
        blocked > 0 && alice.writable > 0,
        "the queue filled and drained"
    );
    assert_eq!(a.endpoint().stats().datagrams_congestion_dropped, 0);
}
