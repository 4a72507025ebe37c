//! The async API over real loopback sockets (tokio): refusals, signaling carried by the
//! application, bundle-prefix routing, the callback style, back-pressure with a reader that
//! does not read, pend/resume, datagrams, session drop, and a busy session not starving a
//! quiet one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use carrier_tokio::{
    CallbackScope, Callbacks, CloseReason, Config, Error, Manager, SessionId, StateReason,
    StreamId, StreamOptions as O, StreamState, StreamType as T,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);
const RELIABLE: (T, O) = (T::Application, O::RELIABLE);
const MUX: (T, O) = (T::Application, O::RELIABLE.union(O::MULTIPLEXING));

fn config() -> Config {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).expect("entropy");
    Config::default().with_seed(seed)
}

fn manager() -> Manager {
    carrier_tokio::bind("127.0.0.1:0".parse().unwrap(), config()).expect("bind")
}

/// Bob accepts the next request on `incoming` with `streams`.
fn accept_next(
    mut incoming: carrier_tokio::Requests,
    streams: Vec<(T, O)>,
) -> tokio::task::JoinHandle<(carrier_tokio::Session, Vec<carrier_tokio::Stream>, String)> {
    tokio::spawn(async move {
        let request = incoming.next().await.expect("a request");
        let bundle = request.bundle().to_string();
        let (session, streams, _) = request.accept(&streams).expect("accept");
        (session, streams, bundle)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_reaches_the_requester_with_status_and_reason() {
    let (alice, bob) = (manager(), manager());
    let mut incoming = bob.incoming();
    tokio::spawn(async move {
        let request = incoming.next().await.expect("a request");
        request.refuse(486, "busy here").expect("refuse");
    });
    let session = alice.new_session("bob").unwrap();
    let stream = session.add_stream(RELIABLE.0, RELIABLE.1).unwrap();
    let outcome = timeout(
        LIMIT,
        session.request_direct(bob.local_addr(), "call").unwrap(),
    )
    .await
    .expect("no outcome");
    match outcome {
        Err(Error::Refused { status, reason }) => {
            assert_eq!((status, reason.as_str()), (486, "busy here"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        stream.connected().await.is_err(),
        "a refused stream never connects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_carried_by_the_application_connects() {
    let (alice, bob) = (manager(), manager());
    let mut incoming = bob.incoming();
    let session = alice.new_session("bob").unwrap();
    let mut stream = session.add_stream(RELIABLE.0, RELIABLE.1).unwrap();
    let request = session.request("chat").unwrap();
    // The application's own channel (here: a function call) carries the offer...
    bob.handle_offer("alice", &request.offer().to_sdp_string())
        .unwrap();
    let incoming_request = incoming.next().await.unwrap();
    assert_eq!(
        (incoming_request.peer(), incoming_request.bundle()),
        ("alice", "chat")
    );
    let (_s, mut bob_streams, answer) = incoming_request.accept(&[RELIABLE]).unwrap();
    // ...and the answer back: nothing went over the socket by itself.
    alice.handle_answer(&answer.to_sdp_string()).unwrap();
    timeout(LIMIT, request).await.unwrap().expect("accepted");
    assert_eq!(alice.driver_stats().io.signals_sent, 0);
    assert_eq!(bob.driver_stats().io.signals_sent, 0);
    timeout(LIMIT, stream.connected()).await.unwrap().unwrap();
    stream.write_all(b"carried by hand").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(LIMIT, bob_streams[0].read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"carried by hand");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_routed_by_the_longest_bundle_prefix() {
    let (alice, bob) = (manager(), manager());
    let files = accept_next(bob.incoming_for("files/"), vec![RELIABLE]);
    let rest = accept_next(bob.incoming(), vec![RELIABLE]);
    for bundle in ["chat", "files/report.pdf"] {
        let s = alice.new_session("bob").unwrap();
        let stream = s.add_stream(RELIABLE.0, RELIABLE.1).unwrap();
        timeout(LIMIT, s.request_direct(bob.local_addr(), bundle).unwrap())
            .await
            .unwrap()
            .unwrap();
        timeout(LIMIT, stream.connected()).await.unwrap().unwrap();
    }
    assert_eq!(files.await.unwrap().2, "files/report.pdf");
    assert_eq!(rest.await.unwrap().2, "chat");
}

/// A ported-style handler: accepts every session and channel, echoes channel data back,
/// logs stream states.
#[derive(Default)]
struct Echo {
    log: Arc<Mutex<Vec<String>>>,
}

impl Callbacks for Echo {
    fn on_session_request(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        _handler: Option<carrier_tokio::proto::HandlerId>,
        peer: &str,
        offer: carrier_tokio::proto::Offer,
    ) {
        let now = ctx.now();
        let ep = ctx.endpoint();
        let s = ep.new_session(peer).unwrap();
        ep.session(s).unwrap().add_stream(MUX.0, MUX.1).unwrap();
        let answer = ep
            .session(s)
            .unwrap()
            .reply(&offer, carrier_tokio::proto::Reply::Accept)
            .unwrap();
        ep.session(s).unwrap().start(now).unwrap();
        assert!(ctx.reply_direct(&offer, &answer));
    }
    fn on_state_changed(
        &mut self,
        _ctx: &mut CallbackScope<'_>,
        _session: SessionId,
        _stream: StreamId,
        state: StreamState,
        _reason: Option<StateReason>,
    ) {
        self.log.lock().unwrap().push(format!("{state:?}"));
    }
    fn on_channel_open(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: carrier_tokio::ChannelId,
        cookie: Bytes,
    ) {
        self.log
            .lock()
            .unwrap()
            .push(format!("open {}", String::from_utf8_lossy(&cookie)));
        let now = ctx.now();
        ctx.endpoint()
            .session(session)
            .unwrap()
            .accept_channel(now, stream, channel)
            .unwrap();
    }
    fn on_channel_data(
        &mut self,
        ctx: &mut CallbackScope<'_>,
        session: SessionId,
        stream: StreamId,
        channel: carrier_tokio::ChannelId,
        data: Bytes,
    ) {
        let now = ctx.now();
        let n = ctx
            .endpoint()
            .session(session)
            .unwrap()
            .write_channel_bytes(now, stream, channel, data.clone())
            .unwrap();
        assert_eq!(n, data.len(), "small echoes fit the send buffer");
    }
    fn on_channel_close(
        &mut self,
        _ctx: &mut CallbackScope<'_>,
        _session: SessionId,
        _stream: StreamId,
        _channel: carrier_tokio::ChannelId,
        reason: CloseReason,
    ) {
        self.log.lock().unwrap().push(format!("close {reason:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_handler_serves_a_handle_peer() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let bob = carrier_tokio::bind_with_handler(
        "127.0.0.1:0".parse().unwrap(),
        config(),
        Echo { log: log.clone() },
    )
    .unwrap();
    let alice = manager();
    let session = alice.new_session("bob").unwrap();
    let stream = session.add_stream(MUX.0, MUX.1).unwrap();
    timeout(
        LIMIT,
        session.request_direct(bob.local_addr(), "echo").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    timeout(LIMIT, stream.connected()).await.unwrap().unwrap();
    let mut channel = stream.open_channel(b"echo-1").await.unwrap();
    timeout(LIMIT, channel.opened()).await.unwrap().unwrap();
    let message: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    channel.write_all(&message).await.unwrap();
    let mut echoed = vec![0; message.len()];
    timeout(LIMIT, channel.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, message);
    channel.close(CloseReason::Normal).unwrap();
    // The handler hears the close.
    let deadline = Instant::now() + LIMIT;
    while !log.lock().unwrap().iter().any(|l| l == "close Normal") {
        assert!(
            Instant::now() < deadline,
            "no close: {:?}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = log.lock().unwrap().clone();
    assert!(log.contains(&"Connected".to_string()), "{log:?}");
    assert!(log.contains(&"open echo-1".to_string()), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_does_not_read_stops_the_writer_and_loses_nothing() {
    let (alice, bob) = (manager(), manager());
    let answering = accept_next(bob.incoming(), vec![RELIABLE]);
    let session = alice.new_session("bob").unwrap();
    let mut stream = session.add_stream(RELIABLE.0, RELIABLE.1).unwrap();
    timeout(LIMIT, session.request_direct(bob.local_addr(), "").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_bob_session, mut bob_streams, _) = answering.await.unwrap();
    let data: Arc<Vec<u8>> = Arc::new((0..64 << 20).map(|i: u32| (i * 7 % 253) as u8).collect());
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            stream.write_all(&data).await.unwrap();
            stream.shutdown().await.unwrap();
        })
    };
    // Nobody reads for a while: the writer must stall (the windows are far below 64 MiB).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writer.is_finished(), "64 MiB written with nobody reading");
    let received_so_far = bob.stats().packets_received;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Stalled: at most a trickle (probes, acks) arrives.
    assert!(bob.stats().packets_received - received_so_far < 200);
    // Now read everything.
    let mut got = Vec::with_capacity(data.len());
    timeout(
        Duration::from_secs(60),
        bob_streams[0].read_to_end(&mut got),
    )
    .await
    .unwrap()
    .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == *data, "bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pended_channel_waits_and_resumes_intact() {
    let (alice, bob) = (manager(), manager());
    let answering = accept_next(bob.incoming(), vec![MUX]);
    let session = alice.new_session("bob").unwrap();
    let stream = session.add_stream(MUX.0, MUX.1).unwrap();
    timeout(LIMIT, session.request_direct(bob.local_addr(), "").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_bob_session, bob_streams, _) = answering.await.unwrap();
    let mut channel = stream.open_channel(b"bulk").await.unwrap();
    let incoming = timeout(LIMIT, bob_streams[0].accept_channel())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&incoming.cookie()[..], b"bulk");
    let mut bob_channel = incoming.accept().unwrap();
    timeout(LIMIT, channel.opened()).await.unwrap().unwrap();
    bob_channel.pend().unwrap();
    let deadline = Instant::now() + LIMIT;
    while !channel.is_paused() {
        assert!(Instant::now() < deadline, "the pend never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 241) as u8).collect();
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            channel.write_all(&data).await.unwrap();
            channel.shutdown().await.unwrap();
            channel
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "a paused channel took 4 MiB");
    bob_channel.resume().unwrap();
    let mut got = Vec::new();
    timeout(LIMIT, bob_channel.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == data, "got {} of {} bytes", got.len(), data.len());
    let channel = writer.await.unwrap();
    // Alice's shutdown is a half-close: the channel closes once Bob finishes too.
    bob_channel.shutdown().await.unwrap();
    assert_eq!(
        timeout(LIMIT, channel.closed()).await.unwrap(),
        CloseReason::Normal
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_flow_and_an_oversized_one_is_refused() {
    let (alice, bob) = (manager(), manager());
    let kind = (T::Audio, O::empty());
    let answering = accept_next(bob.incoming(), vec![kind]);
    let session = alice.new_session("bob").unwrap();
    let stream = session.add_stream(kind.0, kind.1).unwrap();
    timeout(LIMIT, session.request_direct(bob.local_addr(), "").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_bob_session, bob_streams, _) = answering.await.unwrap();
    timeout(LIMIT, stream.connected()).await.unwrap().unwrap();
    timeout(LIMIT, bob_streams[0].connected())
        .await
        .unwrap()
        .unwrap();
    let max = stream.max_datagram_size().unwrap();
    assert!(max > 1000);
    assert!(matches!(
        stream.send(&vec![0; max + 1]).await,
        Err(Error::Proto(
            carrier_tokio::proto::Error::PayloadTooLarge { .. }
        ))
    ));
    for i in 0..50u8 {
        stream.send(&[i; 100]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut seen = 0;
    while let Ok(Ok(Some(d))) = timeout(Duration::from_millis(500), bob_streams[0].recv()).await {
        assert_eq!(d.len(), 100);
        assert!(d.iter().all(|b| *b == d[0]), "a datagram arrived mixed");
        seen += 1;
        if seen == 50 {
            break;
        }
    }
    assert!(seen >= 40, "only {seen} of 50 datagrams on loopback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_of_a_session_closes_it_on_both_sides() {
    let (alice, bob) = (manager(), manager());
    let answering = accept_next(bob.incoming(), vec![RELIABLE]);
    let session = alice.new_session("bob").unwrap();
    let stream = session.add_stream(RELIABLE.0, RELIABLE.1).unwrap();
    timeout(LIMIT, session.request_direct(bob.local_addr(), "").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_bob_session, bob_streams, _) = answering.await.unwrap();
    timeout(LIMIT, bob_streams[0].connected())
        .await
        .unwrap()
        .unwrap();
    drop((session, stream));
    let (state, reason) = timeout(LIMIT, bob_streams[0].closed()).await.unwrap();
    assert_eq!(state, StreamState::Closed);
    assert!(
        matches!(reason, Some(StateReason::ClosedByPeer(_))),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_session_does_not_starve_a_quiet_one_on_the_same_manager() {
    let (alice, bob) = (manager(), manager());
    let mut incoming = bob.incoming();
    // Bob: accept two sessions; drain the bulk one, echo the other.
    tokio::spawn(async move {
        while let Some(request) = incoming.next().await {
            let bulk = request.bundle() == "bulk";
            let (session, mut streams, _) = request.accept(&[RELIABLE]).unwrap();
            let mut s = streams.remove(0);
            tokio::spawn(async move {
                let _keep = session;
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if !bulk {
                        s.write_all(&buf[..n]).await.unwrap();
                    }
                }
            });
        }
    });
    let connect = |bundle: &'static str| {
        let alice = alice.clone();
        let to = bob.local_addr();
        async move {
            let session = alice.new_session("bob").unwrap();
            let stream = session.add_stream(RELIABLE.0, RELIABLE.1).unwrap();
            session.request_direct(to, bundle).unwrap().await.unwrap();
            stream.connected().await.unwrap();
            (session, stream)
        }
    };
    let (_bulk_session, mut bulk) = timeout(LIMIT, connect("bulk")).await.unwrap();
    let (_ping_session, mut ping) = timeout(LIMIT, connect("ping")).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bulk_task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let chunk = vec![7u8; 256 * 1024];
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                bulk.write_all(&chunk).await.unwrap();
                sent += chunk.len() as u64;
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut worst = Duration::ZERO;
    for i in 0..20u8 {
        let t = Instant::now();
        ping.write_all(&[i; 64]).await.unwrap();
        let mut back = [0; 64];
        timeout(LIMIT, ping.read_exact(&mut back))
            .await
            .expect("the quiet session starved")
            .unwrap();
        assert_eq!(back, [i; 64]);
        worst = worst.max(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = bulk_task.await.unwrap();
    assert!(sent > 1 << 20, "the bulk session barely ran: {sent} bytes");
    // A liveness bound, not a performance target: a starved session would wait seconds.
    assert!(worst < Duration::from_secs(2), "worst ping {worst:?}");
}
