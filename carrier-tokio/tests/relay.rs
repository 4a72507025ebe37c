//! Reliable, protected transfers over real loopback UDP through the user-space impairment
//! relay of `carrier_tests::relay` (5% loss, some duplication and reordering, 2 ms delay):
//! every byte arrives, in order (SHA-256 compared).
//!
//! As in carrier-mio's relay test, the application carries the signaling itself and
//! rewrites each description's candidate port to the relay's stand-in for that peer: Bob
//! sends to "Alice" at the relay's A side, the relay forwards to Alice from its B side,
//! which Alice knows as Bob — and back. Only the data goes through the relay.

use std::time::{Duration, Instant};

use carrier_tests::relay::{Impairment, Relay, RelayCounts, via};
use carrier_tokio::{Config, Manager, Session, Stream, StreamOptions, StreamType};
use sha2::{Digest, Sha256};
use tokio::time::timeout;

const KIND: (StreamType, StreamOptions) = (StreamType::Application, StreamOptions::RELIABLE);
const LIMIT: Duration = Duration::from_secs(60);

fn config() -> Config {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).expect("entropy");
    Config::default().with_seed(seed)
}

fn impairment(seed: u64) -> Impairment {
    Impairment::loss(0.05)
        .with_duplicate(0.01)
        .with_reorder(0.01)
        .with_delay(Duration::from_millis(2))
        .with_seed(seed)
}

fn random(len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    getrandom::fill(&mut data).expect("entropy");
    data
}

/// Alice requests a session of one reliable stream from Bob; the offer and the answer go
/// by function call, their candidates pointed at the relay. Returns both sides' session
/// and stream, Connected.
async fn connect(alice: &Manager, bob: &Manager, relay: &Relay) -> [(Session, Stream); 2] {
    let mut incoming = bob.incoming();
    let session = alice.new_session("bob").unwrap();
    let stream = session.add_stream(KIND.0, KIND.1).unwrap();
    let request = session.request("relay").unwrap();
    let offer = request.offer().to_sdp_string();
    assert!(offer.contains("a=x-carrier-key:"), "a protected session");
    let offer = via(&offer, alice.local_addr().port(), relay.a_stand_in().port());
    assert!(offer.contains(&format!(" {} typ host", relay.a_stand_in().port())));
    bob.handle_offer("alice", &offer).unwrap();
    let incoming = timeout(LIMIT, incoming.next())
        .await
        .expect("no request")
        .expect("a request");
    let (bob_session, bob_streams, answer) = incoming.accept(&[KIND]).unwrap();
    let answer = via(
        &answer.to_sdp_string(),
        bob.local_addr().port(),
        relay.b_stand_in().port(),
    );
    alice.handle_answer(&answer).unwrap();
    timeout(LIMIT, request)
        .await
        .expect("no outcome")
        .expect("accepted");
    let bob_stream = bob_streams.into_iter().next().unwrap();
    for s in [&stream, &bob_stream] {
        timeout(LIMIT, s.connected())
            .await
            .expect("never connected")
            .unwrap();
    }
    [(session, stream), (bob_session, bob_stream)]
}

/// Reads `stream` to its end: (bytes, SHA-256).
async fn read_all(stream: Stream) -> (usize, [u8; 32]) {
    let (mut hash, mut len) = (Sha256::new(), 0);
    while let Some(chunk) = stream.recv().await.expect("read") {
        len += chunk.len();
        hash.update(&chunk);
    }
    (len, hash.finalize().into())
}

/// What a run through the relay must show: the impairment really happened.
fn check_relay(counts: RelayCounts) {
    let (lost, total) = (counts.lost, counts.lost + counts.forwarded);
    assert!(
        lost * 100 > total * 3,
        "the relay really lost ~5%: {lost} of {total}"
    );
    assert!(counts.duplicated > 0 && counts.reordered > 0, "{counts:?}");
    // Path MTU discovery probed above the relay's Ethernet MTU (the peers see a loopback
    // path) and the transfer went on at the size that fits.
    assert!(counts.too_big > 0, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_mebibytes_through_five_percent_loss_arrive_intact() {
    let bind = || carrier_tokio::bind("127.0.0.1:0".parse().unwrap(), config()).unwrap();
    let (alice, bob) = (bind(), bind());
    let relay = Relay::start(alice.local_addr(), bob.local_addr(), impairment(1)).unwrap();
    let start = Instant::now();
    let [(_session, stream), (_bob_session, bob_stream)] = connect(&alice, &bob, &relay).await;
    let data = random(20 << 20);
    let writing = async {
        stream.send(&data).await.expect("write");
        // A graceful close: the reader sees the end after the data.
        stream.close().expect("close");
    };
    let ((), (len, digest)) = timeout(
        LIMIT,
        futures_lite::future::zip(writing, read_all(bob_stream)),
    )
    .await
    .unwrap_or_else(|_| panic!("not done in {LIMIT:?}: {:?}", relay.counts()));
    let counts = relay.stop();
    check_arrived((len, digest), &data, counts, [&alice, &bob]);
    println!(
        "tokio -> tokio: 20 MiB through 5% loss in {:.2} s ({counts:?})",
        start.elapsed().as_secs_f64()
    );
}

/// A smol sender (its driver and writer on smol's executor) and a tokio receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smol_sends_tokio_eight_mebibytes_through_five_percent_loss() {
    let (alice, driver) =
        carrier_async_std::bind("127.0.0.1:0".parse().unwrap(), config()).unwrap();
    smol::spawn(driver).detach();
    let bob = carrier_tokio::bind("127.0.0.1:0".parse().unwrap(), config()).unwrap();
    let relay = Relay::start(alice.local_addr(), bob.local_addr(), impairment(2)).unwrap();
    let start = Instant::now();
    let [(_session, stream), (_bob_session, bob_stream)] = connect(&alice, &bob, &relay).await;
    let data = random(8 << 20);
    let writing = {
        let data = data.clone();
        // The stream comes back so that the session outlives the transfer.
        smol::spawn(async move {
            stream.send(&data).await.expect("write");
            stream.close().expect("close");
            stream
        })
    };
    let reading = tokio::spawn(read_all(bob_stream));
    let (len, digest) = timeout(LIMIT, reading)
        .await
        .unwrap_or_else(|_| panic!("not done in {LIMIT:?}: {:?}", relay.counts()))
        .unwrap();
    let _stream = timeout(LIMIT, writing).await.expect("the writer is stuck");
    let counts = relay.stop();
    check_arrived((len, digest), &data, counts, [&alice, &bob]);
    println!(
        "smol -> tokio: 8 MiB through 5% loss in {:.2} s ({counts:?})",
        start.elapsed().as_secs_f64()
    );
}

/// Every byte arrived in order (length and SHA-256), the relay really impaired the path,
/// and no packet failed its tag on either side.
fn check_arrived(
    (len, digest): (usize, [u8; 32]),
    data: &[u8],
    counts: RelayCounts,
    managers: [&carrier_tokio::Manager; 2],
) {
    assert_eq!(len, data.len());
    assert_eq!(
        digest,
        <[u8; 32]>::from(Sha256::digest(data)),
        "every byte, in order"
    );
    check_relay(counts);
    let bad_tags: u64 = managers.iter().map(|m| m.stats().dropped_bad_tag).sum();
    assert_eq!(bad_tags, 0);
}
