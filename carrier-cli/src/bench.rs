//! `carrier bench`: loopback setup time and goodput, encrypted and PLAIN, through the same
//! socket loop as `carrier demo` (one thread, one `send_to` per packet, no batching).

use std::time::{Duration, Instant as WallClock};

use bytes::Bytes;
use carrier_proto::{
    Event, Instant, Reply, RequestOutcome, StreamOptions, StreamState, StreamType,
};

use crate::demo::{DemoError, Peer, sized_flags};

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Sessions set up (and transfers made) per kind.
    pub runs: usize,
    /// Bytes per transfer.
    pub bytes: u64,
}

impl Options {
    /// Parses `[--runs N] [--bytes N]`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            runs: 5,
            bytes: 64 << 20,
        };
        for (flag, n) in sized_flags(args)? {
            match flag {
                "--runs" if n > 0 => options.runs = n as usize,
                "--bytes" if n > 0 => options.bytes = n,
                other => return Err(format!("bad option {other:?} (or a zero value)")),
            }
        }
        Ok(options)
    }
}

/// One session: request → Connected time, and the goodput of one reliable transfer.
fn one_run(options: StreamOptions, bytes: u64) -> Result<(Duration, f64), DemoError> {
    let start = WallClock::now();
    let clock = || Instant::from_nanos(start.elapsed().as_nanos() as u64);
    let mut alice = Peer::new("alice")?;
    let mut bob = Peer::new("bob")?;
    let sa = alice.endpoint.new_session("bob")?;
    let stream = alice
        .endpoint
        .session(sa)?
        .add_stream(StreamType::Application, options)?;
    let t0 = WallClock::now();
    let mut pending = Some(alice.endpoint.session(sa)?.request(clock(), "")?);
    let offer = pending
        .as_ref()
        .map(|p| p.offer().to_sdp_string())
        .unwrap_or_default();
    bob.endpoint.handle_offer("alice", &offer)?;
    let payload = Bytes::from(vec![0x42u8; 256 * 1024]);
    let (mut connected, mut transfer_start) = (None, None);
    let (mut written, mut received) = (0u64, 0u64);
    let mut events = Vec::new();
    while received < bytes {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(DemoError::Stuck("the benchmark transfer"));
        }
        let now = clock();
        let mut busy = alice.pump(now, &mut events)?;
        for e in events.drain(..) {
            if let Event::RequestComplete {
                outcome: RequestOutcome::Accepted(answer),
                ..
            } = e
            {
                if let Some(p) = pending.take() {
                    alice.endpoint.session(sa)?.start_with(now, p, answer)?;
                }
            }
        }
        busy |= bob.pump(now, &mut events)?;
        for e in events.drain(..) {
            match e {
                Event::SessionRequest { offer, .. } => {
                    let s = bob.endpoint.new_session("alice")?;
                    bob.endpoint
                        .session(s)?
                        .add_stream(StreamType::Application, options)?;
                    let answer = bob.endpoint.session(s)?.reply(&offer, Reply::Accept)?;
                    bob.endpoint.session(s)?.start(now)?;
                    alice.endpoint.handle_answer(&answer.to_sdp_string())?;
                }
                Event::StreamData { data, .. } => received += data.len() as u64,
                _ => {}
            }
        }
        let mut s = alice.endpoint.session(sa)?;
        if connected.is_none() && s.stream_state(stream)? == StreamState::Connected {
            connected = Some(t0.elapsed());
            transfer_start = Some(WallClock::now());
        }
        if connected.is_some() {
            while written < bytes {
                let n = (bytes - written).min(payload.len() as u64) as usize;
                match s.write_bytes(now, stream, payload.slice(..n)) {
                    Ok(k) => written += k as u64,
                    Err(carrier_proto::Error::WouldBlock) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let secs = transfer_start.map_or(1.0, |t| t.elapsed().as_secs_f64());
    Ok((connected.unwrap_or_default(), bytes as f64 / secs))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the benchmark and prints a table.
pub fn run(options: &Options) -> Result<(), DemoError> {
    println!(
        "carrier bench: {} sessions per kind over loopback UDP, {} MiB each",
        options.runs,
        options.bytes >> 20
    );
    println!("| kind | request → Connected (median) | goodput (median) |");
    println!("|---|---|---|");
    let kinds = [
        ("reliable, encrypted", StreamOptions::RELIABLE),
        (
            "reliable, PLAIN",
            StreamOptions::RELIABLE | StreamOptions::PLAIN,
        ),
    ];
    let mut setup = [Vec::new(), Vec::new()];
    let mut rate = [Vec::new(), Vec::new()];
    // Interleaved, so both kinds see the same machine.
    for _ in 0..options.runs {
        for (k, (_, opts)) in kinds.iter().enumerate() {
            let (t, r) = one_run(*opts, options.bytes)?;
            setup[k].push(t.as_secs_f64() * 1e3);
            rate[k].push(r);
        }
    }
    for (k, (name, _)) in kinds.iter().enumerate() {
        println!(
            "| {name} | {:.2} ms | {:.0} MB/s |",
            median(&mut setup[k]),
            median(&mut rate[k]) / 1e6
        );
    }
    Ok(())
}
