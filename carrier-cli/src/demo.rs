//! `carrier demo`: two peers, one process, real loopback UDP sockets, on the tokio adapter
//! (`carrier-tokio`): the seed's whole flow as an application writes it with async/await.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, Instant as WallClock};

use bytes::Bytes;
use carrier_tokio::{
    CloseReason, Config, Manager, Stream, StreamId, StreamOptions, StreamState, StreamType,
};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// What the demo moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bytes of the reliable transfer on the stream itself.
    pub bytes: u64,
    /// Bytes on each of the two channels.
    pub channel_bytes: u64,
}

impl Options {
    /// Parses `[--bytes N] [--channel-bytes N]`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            bytes: 64 << 20,
            channel_bytes: 8 << 20,
        };
        for (flag, n) in sized_flags(args)? {
            match flag {
                "--bytes" => options.bytes = n,
                "--channel-bytes" => options.channel_bytes = n,
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(options)
    }
}

/// `--flag N` pairs, each N a size (see [`parse_size`]).
pub(crate) fn sized_flags(args: &[String]) -> Result<Vec<(&str, u64)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n = parse_size(value).ok_or_else(|| format!("bad size {value:?}"))?;
        out.push((flag.as_str(), n));
    }
    Ok(out)
}

/// `123`, `64K`, `8M`, `1G` (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Why the demo stopped early.
#[derive(Debug)]
pub enum DemoError {
    /// A socket call failed.
    Io(std::io::Error),
    /// The core or the adapter refused a call.
    Carrier(carrier_tokio::Error),
    /// Something did not happen in time.
    Stuck(&'static str),
    /// Not enough randomness for the seeds.
    Entropy(getrandom::Error),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Io(e) => write!(f, "socket: {e}"),
            DemoError::Carrier(e) => write!(f, "{e}"),
            DemoError::Stuck(what) => write!(f, "timed out waiting for {what}"),
            DemoError::Entropy(e) => write!(f, "no randomness for the seeds: {e}"),
        }
    }
}

impl StdError for DemoError {}

impl From<std::io::Error> for DemoError {
    fn from(e: std::io::Error) -> Self {
        DemoError::Io(e)
    }
}

impl From<carrier_proto::Error> for DemoError {
    fn from(e: carrier_proto::Error) -> Self {
        DemoError::Carrier(e.into())
    }
}

impl From<carrier_tokio::Error> for DemoError {
    fn from(e: carrier_tokio::Error) -> Self {
        DemoError::Carrier(e)
    }
}

/// The two streams of the demo's session: encrypted datagrams, and an encrypted reliable
/// stream that also carries channels.
const STREAMS: [(StreamType, StreamOptions); 2] = [
    (StreamType::Application, StreamOptions::empty()),
    (
        StreamType::Application,
        StreamOptions::RELIABLE.union(StreamOptions::MULTIPLEXING),
    ),
];

/// Longest the whole demo may take.
const DEADLINE: Duration = Duration::from_secs(120);

fn manager() -> Result<Manager, DemoError> {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).map_err(DemoError::Entropy)?;
    Ok(carrier_tokio::bind(
        "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
        Config::default().with_seed(seed),
    )?)
}

/// Prints every state change of `stream` as `[t ms] name: stream N → State (reason)`.
fn watch(name: &'static str, start: WallClock, stream: &Stream) -> tokio::task::JoinHandle<()> {
    let mut states = stream.states();
    let id = stream.id();
    tokio::spawn(async move {
        while let Some((state, reason)) = states.next().await {
            print_state(name, start, id, state, reason);
        }
    })
}

/// What Bob's tasks report to the main task.
enum BobSaw {
    /// The reliable stream delivered this many bytes in all.
    Stream(u64),
    /// A channel closed after delivering this many bytes.
    Channel(u64),
}

/// Runs the demo.
pub fn run(options: &Options) -> Result<(), DemoError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match tokio::time::timeout(DEADLINE, demo(options)).await {
            Ok(result) => result,
            Err(_) => Err(DemoError::Stuck("the demo to finish")),
        }
    })
}

async fn demo(options: &Options) -> Result<(), DemoError> {
    let start = WallClock::now();
    let (alice, bob) = (manager()?, manager()?);
    println!(
        "carrier demo: alice on {}, bob on {} (loopback UDP, tokio adapter)",
        alice.local_addr(),
        bob.local_addr()
    );

    // Bob: answer the request, then serve its streams.
    let (tx, mut bob_saw) = mpsc::unbounded_channel();
    let mut incoming = bob.incoming();
    let bob_task = tokio::spawn(async move {
        let request = incoming.next().await.ok_or(DemoError::Stuck("a request"))?;
        println!(
            "bob: request from {} for {:?}; accepts and starts (answer with his X25519 key)",
            request.peer(),
            request.bundle()
        );
        let (session, streams, _answer) = request.accept(&STREAMS)?;
        let [datagrams, files] =
            <[Stream; 2]>::try_from(streams).map_err(|_| DemoError::Stuck("two streams"))?;
        let watchers = [watch("bob", start, &datagrams), watch("bob", start, &files)];
        tokio::spawn(async move {
            while let Ok(Some(d)) = datagrams.recv().await {
                println!("bob: datagram {:?}", String::from_utf8_lossy(&d));
            }
        });
        // The stream's own bytes, counted as they come.
        let reader = files.clone();
        let stream_tx = tx.clone();
        tokio::spawn(async move {
            let mut total = 0u64;
            while let Ok(Some(d)) = reader.recv().await {
                total += d.len() as u64;
                let _ = stream_tx.send(BobSaw::Stream(total));
            }
        });
        // Channels: accept each, read it to its end.
        while let Some(incoming) = files.accept_channel().await {
            println!(
                "bob: {} requested, cookie {:?}; accepting",
                incoming.id(),
                String::from_utf8_lossy(incoming.cookie())
            );
            let mut channel = incoming.accept()?;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut sink = Vec::new();
                let n = channel.read_to_end(&mut sink).await.unwrap_or(0) as u64;
                let reason = channel.closed().await;
                println!("bob: {} closed ({reason:?})", channel.id());
                let _ = tx.send(BobSaw::Channel(n));
            });
        }
        for w in watchers {
            let _ = w.await;
        }
        drop(session);
        Ok::<(), DemoError>(())
    });

    // Alice: a session, two streams (encrypted: no PLAIN option), the request sent
    // straight to Bob's address (direct signaling: repeated until answered).
    let session = alice.new_session("bob")?;
    let datagrams = session.add_stream(STREAMS[0].0, STREAMS[0].1)?;
    let files = session.add_stream(STREAMS[1].0, STREAMS[1].1)?;
    let watchers = [
        watch("alice", start, &datagrams),
        watch("alice", start, &files),
    ];
    let request = session.request_direct(bob.local_addr(), "demo")?;
    println!(
        "alice requests a session (offer: {} bytes of SDP, with her X25519 key), sent to {}",
        request.offer().to_sdp_string().len(),
        bob.local_addr()
    );
    request.await?;
    println!("alice: bob accepted; starting");
    datagrams.connected().await?;
    files.connected().await?;
    let info = files.transport_info()?;
    println!(
        "connected in {:.1} ms: {:?} {} ⇄ {}, every packet sealed (AES-256-GCM)",
        start.elapsed().as_secs_f64() * 1e3,
        info.topology,
        info.local.address,
        info.remote.address
    );
    for i in 1..=3 {
        datagrams
            .send(format!("hello {i} from alice").as_bytes())
            .await?;
    }

    // The reliable stream: zero-copy writes of one 1 MiB buffer.
    let payload = Bytes::from(vec![0x5Au8; 1 << 20]);
    let t = WallClock::now();
    let writer = {
        let files = files.clone();
        let payload = payload.clone();
        let total = options.bytes;
        tokio::spawn(async move {
            let mut written = 0u64;
            while written < total {
                let n = (total - written).min(payload.len() as u64) as usize;
                files.send_bytes(payload.slice(..n)).await?;
                written += n as u64;
            }
            Ok::<(), carrier_tokio::Error>(())
        })
    };
    let mut channel_bytes = 0u64;
    let mut channels_closed = 0;
    if options.bytes > 0 {
        loop {
            match bob_saw.recv().await {
                Some(BobSaw::Stream(n)) if n >= options.bytes => break,
                Some(_) => {}
                None => return Err(DemoError::Stuck("the reliable transfer")),
            }
        }
    }
    writer.await.map_err(|_| DemoError::Stuck("the writer"))??;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "reliable stream: {} MiB in {:.2} s = {:.0} MB/s",
        options.bytes >> 20,
        secs,
        options.bytes as f64 / secs / 1e6
    );

    // Two channels on the same stream, filled at once and closed (Normal: everything
    // written arrives before the close).
    let t = WallClock::now();
    let mut fills = Vec::new();
    for cookie in ["report.pdf", "photo.jpg"] {
        let channel = files.open_channel(cookie.as_bytes()).await?;
        let payload = payload.clone();
        let total = options.channel_bytes;
        fills.push(tokio::spawn(async move {
            channel.opened().await?;
            println!("alice: {} opened", channel.id());
            let mut sent = 0u64;
            while sent < total {
                let n = (total - sent).min(payload.len() as u64) as usize;
                channel.send_bytes(payload.slice(..n)).await?;
                sent += n as u64;
            }
            channel.close(CloseReason::Normal)?;
            Ok::<(), carrier_tokio::Error>(())
        }));
    }
    for f in fills {
        f.await.map_err(|_| DemoError::Stuck("a channel"))??;
    }
    while channels_closed < 2 {
        match bob_saw.recv().await {
            Some(BobSaw::Channel(n)) => {
                channel_bytes += n;
                channels_closed += 1;
            }
            Some(_) => {}
            None => return Err(DemoError::Stuck("the channels")),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "channels: 2 × {} MiB in {:.2} s = {:.0} MB/s, every byte before its close ({} bytes)",
        options.channel_bytes >> 20,
        secs,
        channel_bytes as f64 / secs / 1e6,
        channel_bytes
    );
    if channel_bytes != 2 * options.channel_bytes {
        return Err(DemoError::Stuck("every channel byte"));
    }

    session.close()?;
    println!("alice closes the session");
    for w in watchers {
        let _ = w.await;
    }
    bob_task.await.map_err(|_| DemoError::Stuck("bob"))??;
    let (a, b) = (alice.stats(), bob.stats());
    let io = alice.driver_stats().io;
    println!(
        "done in {:.2} s. alice sent {} packets ({} MB) in {} send calls; bob dropped {} (bad tag {}, replay {})",
        start.elapsed().as_secs_f64(),
        a.packets_sent,
        a.bytes_sent / 1_000_000,
        io.send_calls,
        b.dropped_bad_tag + b.dropped_replay + b.dropped_malformed + b.dropped_unexpected,
        b.dropped_bad_tag,
        b.dropped_replay
    );
    Ok(())
}

fn print_state(
    name: &str,
    start: WallClock,
    stream: StreamId,
    state: StreamState,
    reason: Option<carrier_tokio::StateReason>,
) {
    let why = reason.map(|r| format!(" ({r:?})")).unwrap_or_default();
    println!(
        "[{:>8.1} ms] {name}: {stream} → {state}{why}",
        start.elapsed().as_secs_f64() * 1e3
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_options_parse_and_bad_ones_are_errors() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("8m"), Some(8 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
        let args: Vec<String> = ["--bytes", "1M", "--channel-bytes", "64K"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            Options::parse(&args),
            Ok(Options {
                bytes: 1 << 20,
                channel_bytes: 64 << 10
            })
        );
        assert!(Options::parse(&["--bytes".to_string()]).is_err());
        assert!(Options::parse(&["--nope".to_string(), "1".to_string()]).is_err());
    }
}
