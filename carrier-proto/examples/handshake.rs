//! The seed's handshake, step by step, between two in-memory peers.
//!
//! Run with `cargo run -p carrier-proto --example handshake`. Time is virtual: datagrams
//! take 10 ms each way, and the core is told the time at every step.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use carrier_proto::{
    Answer, Config, Endpoint, Event, Input, Instant, Output, Reply, SdpLimits, StreamOptions,
    StreamState, StreamType, Transmit,
};

/// A datagram on its way, and when it lands.
struct InFlight {
    at: Instant,
    to_bob: bool,
    transmit: Transmit,
}

const ONE_WAY: Duration = Duration::from_millis(10);

/// Drains one endpoint's outputs: datagrams go on the wire, events are printed.
fn drain(
    name: &str,
    ep: &mut Endpoint,
    now: Instant,
    wire: &mut VecDeque<InFlight>,
    to_bob: bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        match ep.poll_output() {
            Output::Transmit(t) => wire.push_back(InFlight {
                at: now + ONE_WAY,
                to_bob,
                transmit: t,
            }),
            Output::Event(e) => {
                match &e {
                    Event::StateChanged {
                        stream,
                        state,
                        reason,
                        ..
                    } => {
                        let why = reason.map(|r| format!(" ({r:?})")).unwrap_or_default();
                        println!("  [{:>7.1} ms] {name}: {stream} → {state}{why}", ms(now));
                    }
                    // Reliable-stream bytes are counted by the caller, not printed.
                    Event::StreamData { stream, .. } if stream.index() == 1 => {}
                    Event::StreamData { stream, data, .. } => {
                        println!(
                            "  [{:>7.1} ms] {name}: {stream} data {:?}",
                            ms(now),
                            String::from_utf8_lossy(data)
                        );
                    }
                    Event::SessionRequest {
                        handler,
                        peer,
                        offer,
                    } => println!(
                        "  [{:>7.1} ms] {name}: session request from {peer:?}, bundle {:?} → handler {handler:?}, {} streams offered",
                        ms(now),
                        offer.bundle().unwrap_or(""),
                        offer.description().media.len()
                    ),
                    Event::RequestComplete { outcome, .. } => println!(
                        "  [{:>7.1} ms] {name}: request complete, status {}",
                        ms(now),
                        outcome.status()
                    ),
                    other => println!("  [{:>7.1} ms] {name}: {other:?}", ms(now)),
                }
                events.push(e);
            }
            Output::Timeout(_) => return events,
        }
    }
}

fn ms(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e6
}

fn main() -> Result<(), carrier_proto::Error> {
    let alice_addr: SocketAddr = "192.0.2.1:7000".parse().expect("address");
    let bob_addr: SocketAddr = "192.0.2.2:7000".parse().expect("address");
    let mut alice = Endpoint::new(Config::default().with_seed([1; 32]));
    let mut bob = Endpoint::new(Config::default().with_seed([2; 32]));
    alice.add_host_candidate(alice_addr);
    bob.add_host_candidate(bob_addr);
    let mut wire = VecDeque::new();
    let mut now = Instant::ZERO;

    println!("1. Peer 1 (alice) creates a session and adds two streams");
    let s1 = alice.new_session("bob")?;
    let video = alice
        .session(s1)?
        .add_stream(StreamType::Application, StreamOptions::empty())?;
    let files = alice.session(s1)?.add_stream(
        StreamType::Text,
        StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
    )?;
    drain("alice", &mut alice, now, &mut wire, true);

    println!("\n2. Peer 1 requests the session (bundle \"filetransfer\"); the offer it sends:");
    let pending = alice.session(s1)?.request(now, "filetransfer")?;
    let offer_text = pending.offer().to_sdp_string();
    print!("{}", indent(&offer_text));
    drain("alice", &mut alice, now, &mut wire, true);

    println!("\n3. Peer 2 (bob) receives the request");
    now += Duration::from_millis(50); // the signaling path
    let media = bob.add_request_handler("file");
    bob.handle_offer("alice", &offer_text)?;
    let offer = drain("bob", &mut bob, now, &mut wire, false)
        .into_iter()
        .find_map(|e| match e {
            Event::SessionRequest { handler, offer, .. } => {
                assert_eq!(handler, Some(media), "routed by the bundle prefix");
                Some(offer)
            }
            _ => None,
        })
        .expect("a session request");

    println!("\n4. Peer 2 creates its session, adds the same streams and replies; the answer:");
    let s2 = bob.new_session("alice")?;
    bob.session(s2)?
        .add_stream(StreamType::Application, StreamOptions::empty())?;
    bob.session(s2)?.add_stream(
        StreamType::Text,
        StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
    )?;
    let answer = bob.session(s2)?.reply(&offer, Reply::Accept)?;
    let answer_text = answer.to_sdp_string();
    print!("{}", indent(&answer_text));
    drain("bob", &mut bob, now, &mut wire, false);

    println!("\n5. Both start: peer 2 at once, peer 1 when the answer arrives");
    bob.session(s2)?.start(now)?;
    drain("bob", &mut bob, now, &mut wire, false);
    now += Duration::from_millis(50);
    let answer = Answer::parse(&answer_text, &SdpLimits::default())?;
    alice.handle_answer(&answer_text)?;
    alice.session(s1)?.start_with(now, pending, answer)?;
    drain("alice", &mut alice, now, &mut wire, true);

    println!("\n6. Connectivity checks run until both sides are Connected, then data flows");
    let mut sent = false;
    let bulk = vec![0x42u8; 256 * 1024];
    let mut bulk_at = None;
    let mut bulk_received = 0usize;
    // Until the reliable transfer is done: deliver the next datagram, or fire the next timer
    // (pacing, delayed ACKs), whichever comes first.
    let deadline = now + Duration::from_secs(10);
    while bulk_received < bulk.len() && now < deadline {
        let timer = alice.next_timeout().min(bob.next_timeout());
        let packet_first = wire.front().is_some_and(|d| d.at <= timer);
        if !packet_first {
            now = now.max(timer);
            alice.handle_input(Input::Timeout(now));
            drain("alice", &mut alice, now, &mut wire, true);
            bob.handle_input(Input::Timeout(now));
            drain("bob", &mut bob, now, &mut wire, false);
            continue;
        }
        let Some(next) = wire.pop_front() else { break };
        now = now.max(next.at);
        let (name, ep, to_bob) = if next.to_bob {
            ("bob", &mut bob, false)
        } else {
            ("alice", &mut alice, true)
        };
        ep.handle_input(Input::Receive {
            now,
            source: next.transmit.source,
            destination: next.transmit.destination,
            contents: next.transmit.contents,
        });
        for e in drain(name, ep, now, &mut wire, to_bob) {
            if let Event::StreamData { stream, data, .. } = e {
                if stream == files && name == "bob" {
                    bulk_received += data.len();
                    if bulk_received == bulk.len() {
                        let took = now.saturating_duration_since(bulk_at.unwrap_or(now));
                        println!(
                            "  [{:>7.1} ms] bob: all {} KiB of the reliable stream arrived, in order, {:.1} ms after the write",
                            ms(now),
                            bulk.len() / 1024,
                            took.as_secs_f64() * 1e3
                        );
                    }
                }
            }
        }
        let both = alice.session(s1)?.stream_state(video)? == StreamState::Connected
            && bob.session(s2)?.stream_state(video)? == StreamState::Connected;
        if both && !sent {
            sent = true;
            let info = alice.session(s1)?.transport_info(video)?;
            println!(
                "  path: {:?} {} ⇄ {}",
                info.topology, info.local.address, info.remote.address
            );
            let max = alice.session(s1)?.max_datagram_size(video)?;
            println!("  alice writes one datagram (max {max} bytes per write)");
            alice.session(s1)?.write(now, video, b"hello from alice")?;
            let taken = alice.session(s1)?.write(now, files, &bulk)?;
            println!(
                "  alice writes {} KiB on the reliable stream (the send buffer takes {} KiB)",
                bulk.len() / 1024,
                taken / 1024
            );
            bulk_at = Some(now);
            drain("alice", &mut alice, now, &mut wire, true);
        }
    }

    println!("\n7. Peer 1 closes the session; peer 2 sees its streams close");
    alice.close_session(now, s1)?;
    drain("alice", &mut alice, now, &mut wire, true);
    // Alice's session is gone: only what is addressed to bob still matters.
    while let Some(next) = wire.pop_front() {
        if !next.to_bob {
            continue;
        }
        now = now.max(next.at);
        bob.handle_input(Input::Receive {
            now,
            source: next.transmit.source,
            destination: next.transmit.destination,
            contents: next.transmit.contents,
        });
        drain("bob", &mut bob, now, &mut wire, false);
    }
    assert_eq!(bulk_received, bulk.len(), "the reliable transfer completed");
    println!("\nalice {:?}\nbob   {:?}", alice.stats(), bob.stats());
    Ok(())
}

fn indent(sdp: &str) -> String {
    sdp.lines().map(|l| format!("    {l}\n")).collect()
}
