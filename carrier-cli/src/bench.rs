//! `carrier bench`: loopback setup time and goodput, encrypted and PLAIN, through two
//! `carrier-mio` drivers on one thread (batched socket IO where the OS has it).

use std::time::{Duration, Instant as WallClock};

use bytes::Bytes;
use carrier_mio::Driver;
use carrier_proto::{Config, Event, Reply, RequestOutcome, StreamOptions, StreamState, StreamType};
use mio::{Events, Poll, Token};

use crate::demo::{DemoError, sized_flags};

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

/// A side's events, for the loop.
#[derive(Default)]
struct Inbox(Vec<Event>);

impl carrier_mio::EventSink for Inbox {
    fn on_event(&mut self, _endpoint: &mut carrier_proto::Endpoint, event: Event) {
        self.0.push(event);
    }
}

fn seeded() -> Result<Config, DemoError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(DemoError::Entropy)?;
    Ok(Config::default().with_seed(seed))
}

/// One session through two `carrier-mio` drivers (batched socket IO where the OS has it):
/// request → Connected time, and the goodput of one reliable transfer.
fn one_run(options: StreamOptions, bytes: u64) -> Result<(Duration, f64), DemoError> {
    let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut a = Driver::bind(any, seeded()?)?;
    let mut b = Driver::bind(any, seeded()?)?;
    let mut poll = Poll::new()?;
    a.register(poll.registry(), Token(0))?;
    b.register(poll.registry(), Token(1))?;
    let (mut ia, mut ib) = (Inbox::default(), Inbox::default());
    let start = WallClock::now();
    let sa = a.endpoint().new_session("bob")?;
    let stream = a
        .endpoint()
        .session(sa)?
        .add_stream(StreamType::Application, options)?;
    let now = a.now();
    let mut pending = Some(a.endpoint().session(sa)?.request(now, "")?);
    let offer = pending
        .as_ref()
        .map(|p| p.offer().to_sdp_string())
        .unwrap_or_default();
    b.endpoint().handle_offer("alice", &offer)?;
    b.flush(&mut ib)?;
    let payload = Bytes::from(vec![0x42u8; 1 << 20]);
    let (mut connected, mut transfer_start) = (None, None);
    let (mut written, mut received) = (0u64, 0u64);
    let mut events = Events::with_capacity(64);
    while received < bytes {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(DemoError::Stuck("the benchmark transfer"));
        }
        carrier_mio::turn(
            &mut poll,
            &mut events,
            &mut [(&mut a, &mut ia), (&mut b, &mut ib)],
            Duration::from_millis(1),
        )?;
        for e in std::mem::take(&mut ib.0) {
            match e {
                Event::SessionRequest { offer, .. } => {
                    let now = b.now();
                    let s = b.endpoint().new_session("alice")?;
                    b.endpoint()
                        .session(s)?
                        .add_stream(StreamType::Application, options)?;
                    let answer = b.endpoint().session(s)?.reply(&offer, Reply::Accept)?;
                    b.endpoint().session(s)?.start(now)?;
                    a.endpoint().handle_answer(&answer.to_sdp_string())?;
                }
                Event::StreamData { data, .. } => received += data.len() as u64,
                _ => {}
            }
        }
        for e in std::mem::take(&mut ia.0) {
            if let Event::RequestComplete {
                outcome: RequestOutcome::Accepted(answer),
                ..
            } = e
            {
                let now = a.now();
                if let Some(p) = pending.take() {
                    a.endpoint().session(sa)?.start_with(now, p, answer)?;
                }
            }
        }
        let now = a.now();
        let mut s = a.endpoint().session(sa)?;
        if connected.is_none() && s.stream_state(stream)? == StreamState::Connected {
            connected = Some(start.elapsed());
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
        a.flush(&mut ia)?;
        b.flush(&mut ib)?;
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
