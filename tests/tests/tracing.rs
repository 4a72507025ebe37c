//! What the core logs through `tracing` (the `tracing` feature): a session's life as spans
//! and events, and every dropped packet with its reason.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use carrier_proto::packet::{Header, PacketType};
use carrier_proto::{Input, StreamOptions as O, StreamType as T};
use carrier_tests::sim::{Sim, stream_id};

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `f` with a debug-level subscriber writing plain lines into the returned capture.
fn capture(f: impl FnOnce()) -> String {
    let out = Captured::default();
    let sink = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    out.text()
}

#[test]
fn a_forged_packet_is_reported_dropped_with_its_reason_inside_its_session_span() {
    let mut bob_session = None;
    let log = capture(|| {
        let mut sim = Sim::new(7);
        let (a, b) = (sim.add_peer("alice"), sim.add_peer("bob"));
        let hs = sim.handshake(a, b, &[(T::Application, O::RELIABLE)]);
        assert!(sim.run_until_connected(&hs, 1), "no connection");
        bob_session = Some(hs.answerer);
        // Capture one sealed DATA packet for bob, then hand him a copy with a byte flipped.
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<Bytes>::new()));
        let sink = seen.clone();
        sim.drop_filter = Some(Box::new(move |_, d| {
            sink.borrow_mut().push(d.contents.clone());
            true
        }));
        let id = stream_id(&mut sim, a, hs.offerer, 0);
        let now = sim.now;
        sim.session(a, hs.offerer).write(now, id, b"hello").unwrap();
        sim.drain(a);
        sim.drop_filter = None;
        let packet = seen
            .borrow()
            .iter()
            .rev()
            .find(|d| {
                Header::parse_protected(d, 16).is_ok_and(|h| {
                    h.packet_type == PacketType::Data && h.destination == hs.answerer.as_u64()
                })
            })
            .cloned()
            .expect("a data packet");
        let mut forged = packet.to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 0x40;
        let before = sim.ep(b).stats().dropped_bad_tag;
        let (from, to) = (sim.peers[a].addr, sim.peers[b].addr);
        sim.ep(b).handle_input(Input::Receive {
            now,
            source: from,
            destination: to,
            contents: Bytes::from(forged),
        });
        sim.drain(b);
        assert_eq!(sim.ep(b).stats().dropped_bad_tag, before + 1);
    });
    let bob = format!("{:016x}", bob_session.unwrap().as_u64());
    let dropped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("packet dropped"))
        .collect();
    assert_eq!(dropped.len(), 1, "one drop reported:\n{log}");
    let line = dropped[0];
    assert!(
        line.contains("reason=\"bad authentication tag\""),
        "the reason is given: {line}"
    );
    assert!(
        line.contains(&format!("session{{id={bob} peer=\"alice\"}}")),
        "inside bob's session span: {line}"
    );
    // The session's life is there too: states of its stream, and the path it chose.
    assert!(
        log.lines()
            .any(|l| l.contains("stream{index=0") && l.contains("to=Connected")),
        "state changes are logged in the stream's span:\n{log}"
    );
    assert!(log.contains("path selected"), "{log}");
}
