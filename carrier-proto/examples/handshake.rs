//! The seed's handshake, step by step, between two in-memory peers.
//!
//! Run with `cargo run -p carrier-proto --example handshake`. Time is virtual: datagrams
//! take 10 ms each way, and the core is told the time at every step.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use carrier_proto::{
    Answer, CloseReason, Config, Endpoint, Event, Input, Instant, Output, Reply, SdpLimits,
    StreamOptions, StreamState, StreamType, Transmit,
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
                    // Reliable-stream and channel bytes are counted by the caller, not printed.
                    Event::StreamData { stream, .. } if stream.index() == 1 => {}
                    Event::ChannelData { .. } => {}
                    Event::ChannelOpen {
                        channel, cookie, ..
                    } => println!(
                        "  [{:>7.1} ms] {name}: {channel} open requested, cookie {:?}",
                        ms(now),
                        String::from_utf8_lossy(cookie)
                    ),
                    Event::ChannelOpened { channel, .. } => {
                        println!("  [{:>7.1} ms] {name}: {channel} opened", ms(now))
                    }
                    Event::ChannelClosed {
                        channel, reason, ..
                    } => println!(
                        "  [{:>7.1} ms] {name}: {channel} closed ({reason:?})",
                        ms(now)
                    ),
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
        let (name, events) = step(&mut alice, &mut bob, &mut wire, &mut now);
        for e in events {
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
                "  path: {:?} {} ⇄ {} (every packet sealed with AES-256-GCM; keys from the X25519 keys in the offer and answer)",
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

    println!("\n7. Channels on the multiplexing stream: alice opens two, bob accepts them,");
    println!("   alice sends 64 KiB on each and closes them; bob gets every byte, then the close");
    let cookies: [&[u8]; 2] = [b"report.pdf", b"photo.jpg"];
    let mut channels = Vec::new();
    for cookie in cookies {
        channels.push(alice.session(s1)?.open_channel(now, files, cookie)?);
    }
    drain("alice", &mut alice, now, &mut wire, true);
    let payload = vec![0x5au8; 64 * 1024];
    let (mut opened, mut closed, mut channel_bytes) = (0, 0, 0usize);
    let channels_start = now;
    let deadline = now + Duration::from_secs(10);
    while closed < channels.len() && now < deadline {
        let (name, events) = step(&mut alice, &mut bob, &mut wire, &mut now);
        for e in events {
            match e {
                Event::ChannelOpen { channel, .. } if name == "bob" => {
                    bob.session(s2)?.accept_channel(now, files, channel)?;
                    drain("bob", &mut bob, now, &mut wire, false);
                }
                Event::ChannelOpened { channel, .. } if name == "alice" => {
                    opened += 1;
                    let taken = alice
                        .session(s1)?
                        .write_channel(now, files, channel, &payload)?;
                    assert_eq!(taken, payload.len(), "the channel buffer takes it all");
                    alice
                        .session(s1)?
                        .close_channel(now, files, channel, CloseReason::Normal)?;
                    drain("alice", &mut alice, now, &mut wire, true);
                }
                Event::ChannelData { data, .. } if name == "bob" => channel_bytes += data.len(),
                Event::ChannelClosed { .. } if name == "bob" => closed += 1,
                _ => {}
            }
        }
    }
    assert_eq!(opened, channels.len());
    assert_eq!(
        channel_bytes,
        channels.len() * payload.len(),
        "every channel byte arrived"
    );
    println!(
        "  bob got {} KiB over {} channels and both closes in {:.1} ms",
        channel_bytes / 1024,
        channels.len(),
        now.saturating_duration_since(channels_start).as_secs_f64() * 1e3
    );

    println!("\n8. Peer 1 closes the session; peer 2 sees its streams close");
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

/// Moves the simulation on by one thing: delivers the next datagram, or fires the next
/// timer (pacing, delayed ACKs, retransmissions), whichever comes first. Returns whose
/// events came out.
fn step(
    alice: &mut Endpoint,
    bob: &mut Endpoint,
    wire: &mut VecDeque<InFlight>,
    now: &mut Instant,
) -> (&'static str, Vec<Event>) {
    let timer = alice.next_timeout().min(bob.next_timeout());
    let packet_first = wire.front().is_some_and(|d| d.at <= timer);
    if !packet_first {
        *now = (*now).max(timer);
        alice.handle_input(Input::Timeout(*now));
        let mut events = drain("alice", alice, *now, wire, true);
        bob.handle_input(Input::Timeout(*now));
        events.extend(drain("bob", bob, *now, wire, false));
        // Timer events are printed by `drain`; none of them matters to the caller.
        events.retain(|e| matches!(e, Event::StateChanged { .. }));
        return ("timer", events);
    }
    let Some(next) = wire.pop_front() else {
        return ("none", Vec::new());
    };
    *now = (*now).max(next.at);
    let (name, ep, to_bob) = if next.to_bob {
        ("bob", bob, false)
    } else {
        ("alice", alice, true)
    };
    ep.handle_input(Input::Receive {
        now: *now,
        source: next.transmit.source,
        destination: next.transmit.destination,
        contents: next.transmit.contents,
    });
    (name, drain(name, ep, *now, wire, to_bob))
}

fn indent(sdp: &str) -> String {
    sdp.lines().map(|l| format!("    {l}\n")).collect()
}
