//! carrier on tokio (`carrier-tokio`) over loopback: the contender under test, encrypted (the
//! default) or PLAIN (unencrypted), over one reliable application stream of a session made by
//! direct signaling between two managers.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use carrier_tokio::{
    Config, DriverStats, EndpointStats, Manager, Session, Stream, StreamOptions, StreamType,
};

/// The bundle the requester asks for (the answerer takes any).
const BUNDLE: &str = "bench";

/// The sender's writes: slices of one reusable buffer of this size handed over with
/// `Stream::send_bytes` (zero-copy). Measured against tokio's `write_all` (the core copies
/// the bytes) of 64 KiB and 1 MiB writes: `send_bytes` was 10-15% faster, encrypted and
/// PLAIN; 64 KiB and 1 MiB slices were alike.
const SEND_BUFFER: usize = 1024 * 1024;

/// A manager on 127.0.0.1 (a fresh port) with a random seed; its driver runs as a task on
/// the current tokio runtime.
fn manager(payload: Option<usize>) -> io::Result<Manager> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(e.to_string()))?;
    carrier_tokio::bind(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        match payload {
            // Path MTU discovery off: every packet the given size.
            Some(size) => Config {
                max_udp_payload: size,
                mtu_ceiling: size,
                loopback_mtu_ceiling: size,
                ..Config::default().with_seed(seed)
            },
            // The defaults: 1200-byte packets until path MTU discovery finds more (on this
            // loopback path up to `Config::loopback_mtu_ceiling`, 65,507).
            None => Config::default().with_seed(seed),
        },
    )
}

/// One reliable application stream, PLAIN (unencrypted) or not.
fn stream_kind(plain: bool) -> (StreamType, StreamOptions) {
    let options = if plain {
        StreamOptions::RELIABLE | StreamOptions::PLAIN
    } else {
        StreamOptions::RELIABLE
    };
    (StreamType::Application, options)
}

/// The answering side: takes the next request on `bob` and accepts it with one stream of
/// `kind`. Returns its session and stream.
async fn answer(bob: Manager, kind: (StreamType, StreamOptions)) -> io::Result<(Session, Stream)> {
    let mut incoming = bob.incoming();
    let request = incoming
        .next()
        .await
        .ok_or_else(|| io::Error::other("carrier: the answerer's driver stopped"))?;
    let (session, streams, _answer) = request.accept(&[kind])?;
    let stream = streams
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::other("carrier: accepted without a stream"))?;
    Ok((session, stream))
}

/// Two fresh managers, the requester's (alice) session with one stream of `kind` added, and
/// bob's answering task already waiting for the request.
struct Setup {
    /// Kept for the run: the last manager handle closes its manager.
    _alice: Manager,
    bob: Manager,
    session: Session,
    stream: Stream,
    answering: tokio::task::JoinHandle<io::Result<(Session, Stream)>>,
}

impl Setup {
    /// Must be called inside a tokio runtime (the drivers are spawned on it).
    fn new(kind: (StreamType, StreamOptions), payload: Option<usize>) -> io::Result<Setup> {
        let alice = manager(payload)?;
        let bob = manager(payload)?;
        let answering = tokio::spawn(answer(bob.clone(), kind));
        let session = alice.new_session("bob")?;
        let stream = session.add_stream(kind.0, kind.1)?;
        Ok(Setup {
            _alice: alice,
            bob,
            session,
            stream,
            answering,
        })
    }

    /// Direct signaling: the request to bob, then alice's stream Connected.
    async fn connect(&self) -> io::Result<()> {
        self.session
            .request_direct(self.bob.local_addr(), BUNDLE)?
            .await?;
        self.stream.connected().await?;
        Ok(())
    }

    /// Bob's session and stream (once the request was accepted).
    async fn answered(&mut self) -> io::Result<(Session, Stream)> {
        (&mut self.answering).await.map_err(io::Error::other)?
    }
}

/// Moves `bytes` bytes over one reliable stream (PLAIN: unencrypted) of a fresh, connected
/// session between two managers: the requester writes them as zero-copy slices of one
/// reusable 1 MiB buffer; the answerer takes the chunks as they come (`Stream::recv`) until
/// it has them all. Returns the time from the first write to the answerer having read
/// everything (the managers and the session are made and connected before timing).
///
/// `payload`: `None` for carrier's defaults (path MTU discovery on), or a fixed UDP
/// payload size with discovery off.
pub async fn goodput(bytes: usize, plain: bool, payload: Option<usize>) -> io::Result<Duration> {
    Ok(goodput_run(bytes, plain, payload).await?.time)
}

/// What one [`goodput_run`] measured: the time, and both sides' counters.
#[derive(Debug, Clone)]
pub struct Run {
    /// From the first write to the answerer having read everything.
    pub time: Duration,
    /// The sender's (requester's) endpoint and driver counters.
    pub sender: (EndpointStats, DriverStats),
    /// The receiver's (answerer's).
    pub receiver: (EndpointStats, DriverStats),
}

/// [`goodput`], with both sides' counters (for profiling).
pub async fn goodput_run(bytes: usize, plain: bool, payload: Option<usize>) -> io::Result<Run> {
    let mut setup = Setup::new(stream_kind(plain), payload)?;
    setup.connect().await?;
    let (bob_session, bob_stream) = setup.answered().await?;

    let reader = tokio::spawn(async move {
        let mut got = 0usize;
        while got < bytes {
            match bob_stream.recv().await? {
                Some(chunk) => got += chunk.len(),
                None => break,
            }
        }
        Ok::<_, io::Error>((got, Instant::now(), bob_stream))
    });

    let buf = Bytes::from(vec![0x5Au8; SEND_BUFFER]);
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len());
        setup.stream.send_bytes(buf.slice(..n)).await?;
        left -= n;
    }
    let (got, end, _bob_stream) = reader.await.map_err(io::Error::other)??;

    let sender = (setup._alice.stats(), setup._alice.driver_stats());
    let receiver = (setup.bob.stats(), setup.bob.driver_stats());
    // Not timed: both sessions close; the drivers stop once every handle is gone.
    let _ = setup.session.close();
    let _ = bob_session.close();
    if got != bytes {
        return Err(io::Error::other(format!(
            "carrier: the answerer read {got} of {bytes} bytes"
        )));
    }
    Ok(Run {
        time: end.duration_since(start),
        sender,
        receiver,
    })
}

/// Session setup: the time from `request_direct` on a fresh manager pair (made before timing,
/// the session and its one encrypted reliable stream added) to the requester's stream being
/// Connected.
pub async fn setup_time() -> io::Result<Duration> {
    let mut setup = Setup::new(stream_kind(false), None)?;
    let start = Instant::now();
    setup.connect().await?;
    let elapsed = start.elapsed();

    let (bob_session, _bob_stream) = setup.answered().await?;
    let _ = setup.session.close();
    let _ = bob_session.close();
    Ok(elapsed)
}
