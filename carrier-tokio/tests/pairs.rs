//! Every pairing of the drivers — tokio (carrier-tokio), async-std and smol
//! (carrier-async-std) and mio (carrier-mio) — over real loopback UDP, each peer on its own
//! OS thread with its own runtime, runs the same scenario:
//!
//! 1. the offerer requests with direct signaling (just the answerer's address), the
//!    answerer accepts, both streams are Connected on both sides; the session is protected
//!    (both descriptions carry a key) and no packet fails its tag;
//! 2. an unreliable `Audio` stream: the offerer sends paced datagrams, the answerer checks
//!    that some arrive and each is intact (loopback rarely loses; not all are required);
//! 3. a `RELIABLE | MULTIPLEXING` `Application` stream: the offerer writes 1 MiB of random
//!    bytes, the answerer reads exactly that much (SHA-256 compared);
//! 4. on the same stream the answerer opens a channel with a cookie, the offerer accepts
//!    it, 256 KiB go through it (SHA-256 compared), the answerer closes it Normal and the
//!    offerer sees that reason.
//!
//! A peer keeps running until both have finished, so nobody's session goes away while the
//! other still needs it. Each pairing has a 30 s limit and names the stuck phases if it
//! is exceeded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant as WallClock};

use carrier_mio::{Driver, EventSink};
use carrier_tokio::proto::{
    self, ChannelId, Endpoint, Event, Offer, PendingOffer, Reply, RequestOutcome, SessionId,
    StreamId,
};
use carrier_tokio::{CloseReason, Config, Manager, StreamOptions, StreamState, StreamType};
use futures_lite::future;
use mio::{Events, Poll, Token};
use sha2::{Digest as _, Sha256};
use smol::Timer;

/// The scenario's streams, on both sides, in this order.
const STREAMS: [(StreamType, StreamOptions); 2] = [
    (StreamType::Audio, StreamOptions::empty()),
    (
        StreamType::Application,
        StreamOptions::RELIABLE.union(StreamOptions::MULTIPLEXING),
    ),
];
const BUNDLE: &str = "pairs";
const DATAGRAMS: usize = 32;
const DATAGRAM_LEN: usize = 600;
/// Between two datagrams: paced, so that the congestion window never drops one.
const DATAGRAM_GAP: Duration = Duration::from_millis(2);
/// How long the answerer waits for the first datagram.
const DATAGRAM_FIRST: Duration = Duration::from_secs(5);
/// How long the answerer waits for a missing datagram after others came. (The first one
/// is lost now and then: the answerer drops data that arrives before its own checks
/// selected a path, and the offerer may be Connected a moment earlier.)
const DATAGRAM_IDLE: Duration = Duration::from_millis(300);
const BULK: usize = 1 << 20;
const CHANNEL_BYTES: usize = 256 << 10;
const COOKIE: &[u8] = b"pairs/channel";
/// Each pairing's limit.
const LIMIT: Duration = Duration::from_secs(30);

type Digest = [u8; 32];

fn config() -> Config {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).expect("entropy");
    Config::default().with_seed(seed)
}

fn random(len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    getrandom::fill(&mut data).expect("entropy");
    data
}

fn sha(data: &[u8]) -> Digest {
    Sha256::digest(data).into()
}

/// Datagram `i`: its index, then bytes that depend on it and on their position.
fn datagram(i: usize) -> Vec<u8> {
    let mut d = (i as u32).to_le_bytes().to_vec();
    d.extend((4..DATAGRAM_LEN).map(|j| (i * 31 + j * 7) as u8));
    d
}

/// What one side saw; the test compares the two sides' reports.
#[derive(Debug, Default)]
struct Report {
    /// Both streams reached Connected.
    connected: bool,
    /// Our description (offer or answer) carried a key: the session is protected.
    protected: bool,
    /// Packets that failed their authentication tag.
    bad_tags: u64,
    /// Offerer: datagrams sent.
    datagrams_sent: usize,
    /// Answerer: distinct, intact datagrams received.
    datagrams_received: usize,
    /// Offerer: SHA-256 of the bulk data written.
    bulk_sent: Option<Digest>,
    /// Answerer: SHA-256 of the bulk data read.
    bulk_received: Option<Digest>,
    /// Offerer: the cookie of the channel it accepted.
    cookie: Option<Vec<u8>>,
    /// Answerer: SHA-256 of the channel data written.
    channel_sent: Option<Digest>,
    /// Offerer: SHA-256 of the channel data read.
    channel_received: Option<Digest>,
    /// Offerer: why the channel closed.
    close: Option<CloseReason>,
}

/// Checks one received datagram and marks it seen.
fn check_datagram(data: &[u8], seen: &mut [bool]) -> Result<(), String> {
    if data.len() < 4 {
        return Err(format!("a datagram of {} bytes", data.len()));
    }
    let i = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if i >= DATAGRAMS || data != datagram(i) {
        return Err(format!(
            "datagram {i} ({} bytes) arrived damaged",
            data.len()
        ));
    }
    if std::mem::replace(&mut seen[i], true) {
        return Err(format!("datagram {i} arrived twice"));
    }
    Ok(())
}

/// What the two sides of one pairing share: the phase each is in (for a timeout's
/// message), and how many have finished.
struct Shared {
    phases: [Mutex<&'static str>; 2],
    finished: AtomicUsize,
}

const OFFERER: usize = 0;
const ANSWERER: usize = 1;

impl Shared {
    fn phase(&self, side: usize, phase: &'static str) {
        *self.phases[side].lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    fn phase_of(&self, side: usize) -> &'static str {
        *self.phases[side].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, side: usize) {
        self.phase(side, "finished, waiting for the peer");
        self.finished.fetch_add(1, Ordering::SeqCst);
    }

    fn all_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst) >= 2
    }
}

/// Which side a peer plays.
enum Role {
    /// Request a session from the answerer at this address.
    Offer(SocketAddr),
    /// Tell the offerer our address, then answer its request.
    Answer(Sender<SocketAddr>),
}

/// A peer: a driver and the runtime it runs on.
#[derive(Clone, Copy, Debug)]
enum Peer {
    Tokio,
    AsyncStd,
    Smol,
    Mio,
}

impl Peer {
    /// Plays `role` to the end (on the calling thread, which it blocks).
    fn run(self, role: Role, shared: &Shared) -> Result<Report, String> {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        match self {
            Peer::Tokio => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(text)?;
                rt.block_on(async {
                    let manager = carrier_tokio::bind(any, config()).map_err(text)?;
                    play(manager, role, shared).await
                })
            }
            Peer::AsyncStd => async_std::task::block_on(async {
                let (manager, driver) = carrier_async_std::bind(any, config()).map_err(text)?;
                async_std::task::spawn(driver);
                play(manager, role, shared).await
            }),
            Peer::Smol => smol::block_on(async {
                let (manager, driver) = carrier_async_std::bind(any, config()).map_err(text)?;
                smol::spawn(driver).detach();
                play(manager, role, shared).await
            }),
            Peer::Mio => mio_play(any, role, shared),
        }
    }
}

/// Runs the scenario between two peers, each on its own thread, and checks what both saw.
fn pair(offerer: Peer, answerer: Peer) {
    let start = WallClock::now();
    let shared = Arc::new(Shared {
        phases: [Mutex::new("starting"), Mutex::new("starting")],
        finished: AtomicUsize::new(0),
    });
    let (results, reports) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    let spawn = |peer: Peer, side: usize, role: Role| {
        let (shared, results) = (shared.clone(), results.clone());
        thread::Builder::new()
            .name(format!("{peer:?}"))
            .spawn(move || {
                // A panic is reported like an error, not left for the timeout.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    peer.run(role, &shared)
                }))
                .unwrap_or_else(|p| {
                    let why = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned());
                    Err(format!("panicked: {}", why.unwrap_or_default()))
                });
                let _ = results.send((side, outcome));
            })
            .expect("a thread")
    };
    let _answering = spawn(answerer, ANSWERER, Role::Answer(addr_tx));
    let addr = match addr_rx.recv_timeout(LIMIT) {
        Ok(addr) => addr,
        Err(_) => match reports.try_recv() {
            Ok((_, Err(e))) => panic!("{answerer:?} (answerer): {e}"),
            _ => panic!("{answerer:?} (answerer) never bound"),
        },
    };
    let _offering = spawn(offerer, OFFERER, Role::Offer(addr));
    let names = [
        format!("{offerer:?} (offerer)"),
        format!("{answerer:?} (answerer)"),
    ];
    let mut got: [Option<Report>; 2] = [None, None];
    while got.iter().any(Option::is_none) {
        let left = LIMIT.saturating_sub(start.elapsed());
        match reports.recv_timeout(left) {
            Ok((side, Ok(report))) => got[side] = Some(report),
            Ok((side, Err(e))) => panic!("{}: {e}", names[side]),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                "timed out after {LIMIT:?}: {} at '{}', {} at '{}'",
                names[0],
                shared.phase_of(0),
                names[1],
                shared.phase_of(1)
            ),
        }
    }
    let [Some(o), Some(a)] = got else {
        unreachable!()
    };
    assert!(o.connected && a.connected, "connected: {o:?} {a:?}");
    assert!(o.protected && a.protected, "a plain session: {o:?} {a:?}");
    assert_eq!((o.bad_tags, a.bad_tags), (0, 0), "packets failed their tag");
    assert_eq!(o.datagrams_sent, DATAGRAMS);
    assert!(
        a.datagrams_received >= 1,
        "no datagram arrived of {DATAGRAMS}"
    );
    assert!(o.bulk_sent.is_some(), "{o:?}");
    assert_eq!(a.bulk_received, o.bulk_sent, "the reliable stream's bytes");
    assert_eq!(o.cookie.as_deref(), Some(COOKIE), "the channel's cookie");
    assert!(a.channel_sent.is_some(), "{a:?}");
    assert_eq!(o.channel_received, a.channel_sent, "the channel's bytes");
    assert_eq!(o.close, Some(CloseReason::Normal), "the channel's close");
    println!(
        "{} -> {}: {} of {DATAGRAMS} datagrams, {:.2} s",
        names[0],
        names[1],
        a.datagrams_received,
        start.elapsed().as_secs_f64()
    );
}

// ---- the async peers (tokio, async-std, smol: one carrier-async API) ----

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `work`, or an error after the limit.
async fn limited<T>(
    work: impl Future<Output = Result<T, String>>,
    side: usize,
    shared: &Shared,
) -> Result<T, String> {
    future::or(work, async {
        Timer::after(LIMIT).await;
        Err(format!("timed out at '{}'", shared.phase_of(side)))
    })
    .await
}

/// Waits (without blocking the runtime's thread) until both sides finished.
async fn rendezvous(side: usize, shared: &Shared) {
    shared.finish(side);
    while !shared.all_finished() {
        Timer::after(Duration::from_millis(5)).await;
    }
}

async fn play(manager: Manager, role: Role, shared: &Shared) -> Result<Report, String> {
    match role {
        Role::Offer(to) => limited(offer(manager, to, shared), OFFERER, shared).await,
        Role::Answer(tell) => {
            tell.send(manager.local_addr()).map_err(text)?;
            limited(answer(manager, shared), ANSWERER, shared).await
        }
    }
}

async fn offer(manager: Manager, to: SocketAddr, shared: &Shared) -> Result<Report, String> {
    let phase = |p| shared.phase(OFFERER, p);
    let mut report = Report::default();
    phase("request");
    let session = manager.new_session("answerer").map_err(text)?;
    let dgram = session
        .add_stream(STREAMS[0].0, STREAMS[0].1)
        .map_err(text)?;
    let mux = session
        .add_stream(STREAMS[1].0, STREAMS[1].1)
        .map_err(text)?;
    let request = session.request_direct(to, BUNDLE).map_err(text)?;
    report.protected = request.offer().to_sdp_string().contains("a=x-carrier-key:");
    request.await.map_err(text)?;
    phase("connect");
    dgram.connected().await.map_err(text)?;
    mux.connected().await.map_err(text)?;
    report.connected = true;

    let bulk = random(BULK);
    report.bulk_sent = Some(sha(&bulk));
    let sending = async {
        for i in 0..DATAGRAMS {
            dgram.send(&datagram(i)).await.map_err(text)?;
            report.datagrams_sent += 1;
            Timer::after(DATAGRAM_GAP).await;
        }
        mux.send(&bulk).await.map_err(text)
    };
    let channel = async {
        let incoming = mux
            .accept_channel()
            .await
            .ok_or("the stream ended before the channel opened")?;
        let cookie = incoming.cookie().to_vec();
        let channel = incoming.accept().map_err(text)?;
        phase("channel data");
        let mut hash = Sha256::new();
        while let Some(chunk) = channel.recv().await.map_err(text)? {
            hash.update(&chunk);
        }
        phase("channel close");
        let reason = channel.closed().await;
        Ok::<_, String>((cookie, Digest::from(hash.finalize()), reason))
    };
    let ((), (cookie, received, reason)) = future::try_zip(sending, channel).await?;
    report.cookie = Some(cookie);
    report.channel_received = Some(received);
    report.close = Some(reason);
    report.bad_tags = manager.stats().dropped_bad_tag;
    rendezvous(OFFERER, shared).await;
    Ok(report)
}

async fn answer(manager: Manager, shared: &Shared) -> Result<Report, String> {
    let phase = |p| shared.phase(ANSWERER, p);
    let mut report = Report::default();
    phase("request");
    let request = manager.incoming().next().await.ok_or("no request came")?;
    if request.bundle() != BUNDLE {
        return Err(format!("the bundle is {:?}", request.bundle()));
    }
    let (_session, streams, answer) = request.accept(&STREAMS).map_err(text)?;
    report.protected = answer.to_sdp_string().contains("a=x-carrier-key:");
    let [dgram, mux] = <[_; 2]>::try_from(streams).map_err(|s| format!("{} streams", s.len()))?;
    phase("connect");
    dgram.connected().await.map_err(text)?;
    mux.connected().await.map_err(text)?;
    report.connected = true;

    let datagrams = async {
        let mut seen = [false; DATAGRAMS];
        let mut count = 0;
        while count < DATAGRAMS {
            let wait = if count == 0 {
                DATAGRAM_FIRST
            } else {
                DATAGRAM_IDLE
            };
            let next = future::or(async { Some(dgram.recv().await) }, async {
                Timer::after(wait).await;
                None
            });
            match next.await {
                Some(Ok(Some(d))) => check_datagram(&d, &mut seen)?,
                Some(Err(e)) => return Err(text(e)),
                // The stream ended, or nothing came for a while: some were lost.
                Some(Ok(None)) | None => break,
            }
            count += 1;
        }
        Ok(count)
    };
    let bulk = async {
        let (mut hash, mut len) = (Sha256::new(), 0);
        while len < BULK {
            let chunk = mux
                .recv()
                .await
                .map_err(text)?
                .ok_or(format!("the stream ended after {len} bytes"))?;
            len += chunk.len();
            hash.update(&chunk);
        }
        if len > BULK {
            return Err(format!("{len} bytes, {BULK} sent"));
        }
        Ok(Digest::from(hash.finalize()))
    };
    let channel = async {
        let channel = mux.open_channel(COOKIE).await.map_err(text)?;
        channel.opened().await.map_err(text)?;
        let data = random(CHANNEL_BYTES);
        channel.send(&data).await.map_err(text)?;
        channel.close(CloseReason::Normal).map_err(text)?;
        Ok(sha(&data))
    };
    phase("datagrams, bulk data, channel");
    let (count, (received, sent)) =
        future::try_zip(datagrams, future::try_zip(bulk, channel)).await?;
    report.datagrams_received = count;
    report.bulk_received = Some(received);
    report.channel_sent = Some(sent);
    report.bad_tags = manager.stats().dropped_bad_tag;
    rendezvous(ANSWERER, shared).await;
    Ok(report)
}

// ---- the mio peer: a EventSink state machine and a blocking loop ----

/// The mio side of the scenario: the handler records what the events say and answers
/// what can be answered inside a callback; the loop ([`mio_play`]) does the rest.
#[derive(Default)]
struct MioApp {
    /// Offerer: the request in flight.
    pending: Option<PendingOffer>,
    /// Answerer: requests to answer (the reply goes through the driver, outside).
    requests: Vec<Offer>,
    session: Option<SessionId>,
    dgram: Option<StreamId>,
    mux: Option<StreamId>,
    connected: usize,
    /// The first thing that went wrong.
    error: Option<String>,
    /// Offerer: the channel the answerer opened, its cookie, data and close.
    incoming: Option<ChannelId>,
    cookie: Option<Vec<u8>>,
    channel_hash: Sha256,
    close: Option<CloseReason>,
    /// Answerer: what arrived on the streams.
    seen: [bool; DATAGRAMS],
    datagrams: usize,
    last_datagram: Option<WallClock>,
    connected_at: Option<WallClock>,
    bulk_hash: Sha256,
    bulk_len: usize,
    /// Answerer: our channel, and whether the offerer accepted it.
    outgoing: Option<ChannelId>,
    opened: bool,
}

impl MioApp {
    /// A new session with the test's two streams, remembered in `self`.
    fn new_session(
        &mut self,
        ep: &mut carrier_tokio::proto::Endpoint,
        peer: &str,
    ) -> Result<carrier_tokio::SessionId, String> {
        let s = ep.new_session(peer).map_err(|e| e.to_string())?;
        let mut session = ep.session(s).map_err(|e| e.to_string())?;
        self.dgram = Some(
            session
                .add_stream(STREAMS[0].0, STREAMS[0].1)
                .map_err(|e| e.to_string())?,
        );
        self.mux = Some(
            session
                .add_stream(STREAMS[1].0, STREAMS[1].1)
                .map_err(|e| e.to_string())?,
        );
        Ok(s)
    }
}

impl MioApp {
    fn fail(&mut self, why: String) {
        self.error.get_or_insert(why);
    }
}

impl EventSink for MioApp {
    fn on_event(&mut self, endpoint: &mut Endpoint, event: Event) {
        // The endpoint keeps its own clock; calls only need a time not after it.
        let now = proto::Instant::ZERO;
        match event {
            Event::SessionRequest { offer, .. } => self.requests.push(offer),
            Event::RequestComplete { session, outcome } => match outcome {
                RequestOutcome::Accepted(answer) => {
                    let Some(pending) = self.pending.take() else {
                        return self.fail("an answer to no request".into());
                    };
                    if let Err(e) = endpoint
                        .session(session)
                        .and_then(|mut s| s.start_with(now, pending, answer))
                    {
                        self.fail(format!("start_with: {e}"));
                    }
                }
                other => self.fail(format!("the request failed: {other:?}")),
            },
            Event::StateChanged {
                stream,
                state,
                reason,
                ..
            } => {
                if state == StreamState::Connected {
                    self.connected += 1;
                    self.connected_at.get_or_insert_with(WallClock::now);
                } else if state.is_terminal() {
                    self.fail(format!("stream {stream:?} ended: {state:?} {reason:?}"));
                }
            }
            Event::StreamData { stream, data, .. } if Some(stream) == self.dgram => {
                if let Err(e) = check_datagram(&data, &mut self.seen) {
                    self.fail(e);
                }
                self.datagrams += 1;
                self.last_datagram = Some(WallClock::now());
            }
            Event::StreamData { data, .. } => {
                self.bulk_len += data.len();
                self.bulk_hash.update(&data);
                if self.bulk_len > BULK {
                    self.fail(format!("{} bytes, {BULK} sent", self.bulk_len));
                }
            }
            Event::ChannelOpen {
                session,
                stream,
                channel,
                cookie,
            } => {
                if self.incoming.is_some() {
                    return self.fail("a second channel".into());
                }
                self.incoming = Some(channel);
                self.cookie = Some(cookie.to_vec());
                if let Err(e) = endpoint
                    .session(session)
                    .and_then(|mut s| s.accept_channel(now, stream, channel))
                {
                    self.fail(format!("accept_channel: {e}"));
                }
            }
            Event::ChannelOpened { channel, .. } if Some(channel) == self.outgoing => {
                self.opened = true;
            }
            Event::ChannelData { channel, data, .. } if Some(channel) == self.incoming => {
                self.channel_hash.update(&data);
            }
            Event::ChannelClosed {
                channel, reason, ..
            } => {
                if Some(channel) == self.incoming {
                    self.close = Some(reason);
                } else if Some(channel) == self.outgoing && reason != CloseReason::Normal {
                    self.fail(format!("our channel closed: {reason:?}"));
                }
            }
            _ => {}
        }
    }
}

/// What the mio offerer has still to write.
struct MioSender {
    bulk: Vec<u8>,
    written: usize,
    datagrams: usize,
    last: Option<WallClock>,
}

/// What the mio answerer has still to write on its channel.
struct MioChannel {
    data: Vec<u8>,
    written: usize,
    closed: bool,
}

fn mio_play(any: SocketAddr, role: Role, shared: &Shared) -> Result<Report, String> {
    let side = match role {
        Role::Offer(_) => OFFERER,
        Role::Answer(_) => ANSWERER,
    };
    let phase = |p| shared.phase(side, p);
    let io = |e: std::io::Error| e.to_string();
    let proto = |e: proto::Error| e.to_string();
    let mut poll = Poll::new().map_err(io)?;
    let mut driver = Driver::bind(any, config()).map_err(io)?;
    driver.register(poll.registry(), Token(0)).map_err(io)?;
    let mut app = MioApp::default();
    let mut report = Report::default();
    phase("request");
    match role {
        Role::Offer(to) => {
            let now = driver.now();
            let ep = driver.endpoint();
            let s = app.new_session(ep, "answerer")?;
            let mut session = ep.session(s).map_err(proto)?;
            let pending = session.request(now, BUNDLE).map_err(proto)?;
            report.protected = pending.offer().to_sdp_string().contains("a=x-carrier-key:");
            driver.request_direct(to, &pending);
            app.pending = Some(pending);
            app.session = Some(s);
            driver.flush(&mut app).map_err(io)?;
        }
        Role::Answer(tell) => tell.send(driver.local_addr()).map_err(text)?,
    }
    let mut sender = MioSender {
        bulk: random(BULK),
        written: 0,
        datagrams: 0,
        last: None,
    };
    if side == OFFERER {
        report.bulk_sent = Some(sha(&sender.bulk));
    }
    let mut channel = MioChannel {
        data: random(CHANNEL_BYTES),
        written: 0,
        closed: false,
    };
    let mut events = Events::with_capacity(256);
    let start = WallClock::now();
    let mut finished = false;
    loop {
        if start.elapsed() > LIMIT {
            return Err(format!("timed out at '{}'", shared.phase_of(side)));
        }
        carrier_mio::turn(
            &mut poll,
            &mut events,
            &mut [(&mut driver, &mut app)],
            Duration::from_millis(1),
        )
        .map_err(io)?;
        // Once both finished, the peer may close at any time: nothing more to check.
        if finished && shared.all_finished() {
            break;
        }
        // The answerer replies to a request outside the callback: through the driver.
        for offer in std::mem::take(&mut app.requests) {
            if app.session.is_some() {
                return Err("a second request".into());
            }
            if offer.bundle() != Some(BUNDLE) {
                return Err(format!("the bundle is {:?}", offer.bundle()));
            }
            let now = driver.now();
            let ep = driver.endpoint();
            let s = app.new_session(ep, "offerer")?;
            let mut session = ep.session(s).map_err(proto)?;
            let answer = session.reply(&offer, Reply::Accept).map_err(proto)?;
            session.start(now).map_err(proto)?;
            report.protected = answer.to_sdp_string().contains("a=x-carrier-key:");
            if !driver.reply_direct(&offer, &answer) {
                return Err("the offer did not come over the socket".into());
            }
            app.session = Some(s);
            phase("connect");
        }
        if let Some(e) = app.error.take() {
            return Err(e);
        }
        let (Some(s), Some(dgram), Some(mux)) = (app.session, app.dgram, app.mux) else {
            continue;
        };
        if app.connected < 2 {
            continue;
        }
        report.connected = true;
        let now = driver.now();
        let mut session = driver.endpoint().session(s).map_err(proto)?;
        let done = if side == OFFERER {
            let due = sender.last.is_none_or(|t| t.elapsed() >= DATAGRAM_GAP);
            if sender.datagrams < DATAGRAMS && due {
                let d = datagram(sender.datagrams);
                session.write(now, dgram, &d).map_err(proto)?;
                sender.datagrams += 1;
                sender.last = Some(WallClock::now());
            }
            if sender.datagrams == DATAGRAMS {
                while sender.written < BULK {
                    match session.write(now, mux, &sender.bulk[sender.written..]) {
                        Ok(0) | Err(proto::Error::WouldBlock) => break,
                        Ok(n) => sender.written += n,
                        Err(e) => return Err(format!("write: {e}")),
                    }
                }
            }
            if !finished {
                phase(if sender.datagrams < DATAGRAMS {
                    "datagrams"
                } else if sender.written < BULK {
                    "bulk data"
                } else {
                    "channel data and close"
                });
            }
            sender.written == BULK && app.close.is_some()
        } else {
            if app.outgoing.is_none() {
                app.outgoing = Some(session.open_channel(now, mux, COOKIE).map_err(proto)?);
            }
            if let (Some(c), true, false) = (app.outgoing, app.opened, channel.closed) {
                while channel.written < CHANNEL_BYTES {
                    let rest = &channel.data[channel.written..];
                    match session.write_channel(now, mux, c, rest) {
                        Ok(0) | Err(proto::Error::WouldBlock) => break,
                        Ok(n) => channel.written += n,
                        Err(e) => return Err(format!("write_channel: {e}")),
                    }
                }
                if channel.written == CHANNEL_BYTES {
                    session
                        .close_channel(now, mux, c, CloseReason::Normal)
                        .map_err(proto)?;
                    channel.closed = true;
                }
            }
            // Datagrams are done when all came, or none came for a while.
            let datagrams_done = match (app.datagrams, app.last_datagram, app.connected_at) {
                (DATAGRAMS, _, _) => true,
                (_, Some(last), _) => last.elapsed() >= DATAGRAM_IDLE,
                (_, None, Some(at)) => at.elapsed() >= DATAGRAM_FIRST,
                _ => false,
            };
            if !finished {
                phase(if !app.opened {
                    "channel open"
                } else if !channel.closed {
                    "channel data"
                } else if app.bulk_len < BULK {
                    "bulk data"
                } else {
                    "datagrams"
                });
            }
            app.bulk_len == BULK && channel.closed && datagrams_done
        };
        driver.flush(&mut app).map_err(io)?;
        if done && !finished {
            finished = true;
            shared.finish(side);
        }
    }
    if side == OFFERER {
        report.datagrams_sent = sender.datagrams;
        report.cookie = app.cookie.take();
        report.channel_received = Some(app.channel_hash.finalize().into());
        report.close = app.close;
    } else {
        report.datagrams_received = app.datagrams;
        report.bulk_received = Some(app.bulk_hash.finalize().into());
        report.channel_sent = Some(sha(&channel.data));
    }
    report.bad_tags = driver.endpoint().stats().dropped_bad_tag;
    Ok(report)
}

// ---- the pairings: offerer → answerer ----

#[test]
fn tokio_requests_tokio() {
    pair(Peer::Tokio, Peer::Tokio);
}

#[test]
fn async_std_requests_async_std() {
    pair(Peer::AsyncStd, Peer::AsyncStd);
}

#[test]
fn smol_requests_smol() {
    pair(Peer::Smol, Peer::Smol);
}

#[test]
fn mio_requests_mio() {
    pair(Peer::Mio, Peer::Mio);
}

#[test]
fn tokio_requests_async_std() {
    pair(Peer::Tokio, Peer::AsyncStd);
}

#[test]
fn async_std_requests_tokio() {
    pair(Peer::AsyncStd, Peer::Tokio);
}

#[test]
fn tokio_requests_smol() {
    pair(Peer::Tokio, Peer::Smol);
}

#[test]
fn smol_requests_tokio() {
    pair(Peer::Smol, Peer::Tokio);
}

#[test]
fn tokio_requests_mio() {
    pair(Peer::Tokio, Peer::Mio);
}

#[test]
fn mio_requests_tokio() {
    pair(Peer::Mio, Peer::Tokio);
}

#[test]
fn async_std_requests_smol() {
    pair(Peer::AsyncStd, Peer::Smol);
}

#[test]
fn smol_requests_async_std() {
    pair(Peer::Smol, Peer::AsyncStd);
}

#[test]
fn async_std_requests_mio() {
    pair(Peer::AsyncStd, Peer::Mio);
}

#[test]
fn mio_requests_async_std() {
    pair(Peer::Mio, Peer::AsyncStd);
}

#[test]
fn smol_requests_mio() {
    pair(Peer::Smol, Peer::Mio);
}

#[test]
fn mio_requests_smol() {
    pair(Peer::Mio, Peer::Smol);
}
