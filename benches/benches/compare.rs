//! The comparison harness: carrier against kernel TCP, quinn (defaults) and a raw UDP blast,
//! all over 127.0.0.1 in one process on a 2-worker tokio runtime.
//!
//! `cargo bench -p carrier-benches --bench compare -- [--rounds N] [--mib M]`
//!
//! Each round runs every contender once, interleaved (tcp, quinn, udp, carrier, carrier
//! PLAIN, then the setup times), so that noise on the machine hits them all alike; the
//! table shows the medians over the rounds. A contender that fails prints "n/a".

use std::future::Future;
use std::io;
use std::time::Duration;

use carrier_benches::compare::stats::{Table, median};
use carrier_benches::compare::{carrier, quinn, tcp, udp};

/// Target: carrier (encrypted) goodput over quinn's.
const TARGET_CARRIER_OVER_QUINN: f64 = 1.5;
/// Informational rows, path MTU discovery off: carrier's base packet size, and the size
/// quinn's discovery settles at by default (its ceiling, 1452). The targets use carrier's
/// defaults: discovery on, which on this loopback path goes up to
/// `Config::loopback_mtu_ceiling` (65,507); quinn's stops at its ceiling, 1452, on every
/// path. The 1452 row is carrier held to quinn's packet size.
const FIXED: usize = 1200;
/// See [`FIXED`].
const QUINN_MTU: usize = 1452;
/// Target: carrier (encrypted) held to quinn's 1452-byte packets over quinn in its best
/// configuration, same run.
const TARGET_AT_1452_OVER_QUINN_BEST: f64 = 2.0;

/// Target: carrier PLAIN goodput over kernel TCP's.
const TARGET_PLAIN_OVER_TCP: f64 = 1.0;
/// Target: carrier's request→Connected time, in milliseconds.
const TARGET_CARRIER_SETUP_MS: f64 = 2.0;

struct Args {
    rounds: usize,
    mib: usize,
}

fn parse_args() -> Args {
    let mut args = Args { rounds: 7, mib: 64 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let slot = match name.as_str() {
            "--rounds" => &mut args.rounds,
            "--mib" => &mut args.mib,
            _ => continue, // `--bench` and whatever else cargo passes.
        };
        match inline.or_else(|| it.next()).and_then(|v| v.parse().ok()) {
            Some(v) if v > 0 => *slot = v,
            _ => eprintln!("ignoring {name}: expects a positive integer"),
        }
    }
    args
}

/// One contender's results over the rounds.
struct Series {
    name: &'static str,
    /// Goodput in bytes per second, or setup time in seconds, of each successful run.
    values: Vec<f64>,
    /// The first error, if any run failed.
    error: Option<String>,
    failures: usize,
}

impl Series {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            values: Vec::new(),
            error: None,
            failures: 0,
        }
    }

    fn record(&mut self, result: io::Result<f64>) -> String {
        match result {
            Ok(v) => {
                self.values.push(v);
                String::new()
            }
            Err(e) => {
                self.failures += 1;
                let msg = e.to_string();
                self.error.get_or_insert_with(|| msg.clone());
                msg
            }
        }
    }

    fn median(&self) -> Option<f64> {
        (!self.values.is_empty()).then(|| median(&mut self.values.clone()))
    }

    fn runs(&self) -> String {
        format!(
            "{}/{}",
            self.values.len(),
            self.values.len() + self.failures
        )
    }
}

fn rate(bytes: u64, time: Duration) -> io::Result<f64> {
    let secs = time.as_secs_f64();
    if secs > 0.0 {
        Ok(bytes as f64 / secs)
    } else {
        Err(io::Error::other("zero-length run"))
    }
}

async fn timed_rate(
    bytes: usize,
    run: impl Future<Output = io::Result<Duration>>,
) -> io::Result<f64> {
    rate(bytes as u64, run.await?)
}

fn show_rate(r: &io::Result<f64>) -> String {
    match r {
        Ok(v) => format!("{:.0} MB/s", v / 1e6),
        Err(_) => "n/a".into(),
    }
}

fn show_ms(r: &io::Result<f64>) -> String {
    match r {
        Ok(v) => format!("{:.3} ms", v * 1e3),
        Err(_) => "n/a".into(),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() -> io::Result<()> {
    let args = parse_args();
    let bytes = args.mib * 1024 * 1024;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let mut tcp_s = Series::new("TCP (kernel, TCP_NODELAY)");
    let mut quinn_s = Series::new("quinn 0.11 (defaults)");
    let mut quinn_best_s = Series::new("quinn 0.11 (best: 4 MiB socket buffers, 16 MiB windows)");
    let mut udp_s = Series::new("raw UDP blast (receive rate)");
    let mut carrier_s = Series::new("carrier (encrypted)");
    let mut plain_s = Series::new("carrier PLAIN");
    let mut carrier_mtu_s = Series::new("carrier, fixed 1200-byte packets (info)");
    let mut plain_big_s = Series::new("carrier, fixed 1452-byte packets (info)");
    let mut quinn_setup = Series::new("quinn handshake");
    let mut carrier_setup = Series::new("carrier request→Connected");
    let mut udp_delivered = Vec::new();

    let (rcv, snd) = udp::granted_buffers()?;
    println!(
        "compare: {} MiB per run, {} rounds, 127.0.0.1, tokio multi-thread (2 workers); \
         UDP blast SO_RCVBUF/SO_SNDBUF asked {} MiB, granted {rcv}/{snd} (as reported)",
        args.mib,
        args.rounds,
        udp::SOCKET_BUFFER >> 20
    );
    runtime.block_on(async {
        for round in 1..=args.rounds {
            let r = timed_rate(bytes, tcp::goodput(bytes)).await;
            let mut line = format!("round {round}: tcp {}", show_rate(&r));
            tcp_s.record(r);

            let r = timed_rate(bytes, quinn::goodput(bytes, quinn::Tuning::Defaults)).await;
            line += &format!(", quinn {}", show_rate(&r));
            quinn_s.record(r);

            let r = timed_rate(bytes, quinn::goodput(bytes, quinn::Tuning::Best)).await;
            line += &format!(", quinn-best {}", show_rate(&r));
            quinn_best_s.record(r);

            let r = udp::blast(bytes).await.and_then(|(span, got)| {
                udp_delivered.push(got as f64 / bytes as f64);
                rate(got, span)
            });
            line += &format!(", udp {}", show_rate(&r));
            if let Some(d) = udp_delivered.last() {
                line += &format!(" ({:.1}% delivered)", d * 100.0);
            }
            udp_s.record(r);

            let r = timed_rate(bytes, carrier::goodput(bytes, false, None)).await;
            line += &format!(", carrier {}", show_rate(&r));
            carrier_s.record(r);

            let r = timed_rate(bytes, carrier::goodput(bytes, true, None)).await;
            line += &format!(", carrier PLAIN {}", show_rate(&r));
            plain_s.record(r);

            let r = timed_rate(bytes, carrier::goodput(bytes, false, Some(FIXED))).await;
            line += &format!(", carrier@{FIXED} {}", show_rate(&r));
            carrier_mtu_s.record(r);

            let r = timed_rate(bytes, carrier::goodput(bytes, false, Some(QUINN_MTU))).await;
            line += &format!(", carrier@{QUINN_MTU} {}", show_rate(&r));
            plain_big_s.record(r);

            let r = quinn::setup_time().await.map(|d| d.as_secs_f64());
            line += &format!(", quinn setup {}", show_ms(&r));
            quinn_setup.record(r);

            let r = carrier::setup_time().await.map(|d| d.as_secs_f64());
            line += &format!(", carrier setup {}", show_ms(&r));
            carrier_setup.record(r);

            println!("{line}");
        }
    });

    println!();
    let mut goodput = Table::new(["goodput (median)", "MB/s", "Mbit/s", "runs ok"]);
    for s in [
        &tcp_s,
        &quinn_s,
        &quinn_best_s,
        &udp_s,
        &carrier_s,
        &plain_s,
        &carrier_mtu_s,
        &plain_big_s,
    ] {
        let (mb, mbit) = match s.median() {
            Some(m) => (format!("{:.0}", m / 1e6), format!("{:.0}", m * 8.0 / 1e6)),
            None => ("n/a".into(), "n/a".into()),
        };
        goodput.row([s.name.to_owned(), mb, mbit, s.runs()]);
    }
    print!("{goodput}");
    if !udp_delivered.is_empty() {
        println!(
            "(UDP blast delivered a median {:.1}% of the bytes sent)",
            median(&mut udp_delivered) * 100.0
        );
    }

    println!();
    let mut setup = Table::new(["setup (median)", "ms", "runs ok"]);
    for s in [&quinn_setup, &carrier_setup] {
        let ms = s
            .median()
            .map_or("n/a".into(), |m| format!("{:.3}", m * 1e3));
        setup.row([s.name.to_owned(), ms, s.runs()]);
    }
    print!("{setup}");

    println!();
    let mut targets = Table::new(["target", "value", "goal", "verdict"]);
    let ratio = |a: &Series, b: &Series| Some(a.median()? / b.median()?);
    match ratio(&carrier_s, &quinn_s) {
        Some(r) => targets.row([
            "carrier / quinn goodput".into(),
            format!("{r:.2}x"),
            format!(">= {TARGET_CARRIER_OVER_QUINN}x"),
            verdict(r >= TARGET_CARRIER_OVER_QUINN).to_owned(),
        ]),
        None => targets.row(["carrier / quinn goodput", "n/a", ">= 1.5x", "n/a"]),
    };
    match ratio(&plain_s, &tcp_s) {
        Some(r) => targets.row([
            "carrier PLAIN / TCP goodput".into(),
            format!("{r:.2}x"),
            format!(">= {TARGET_PLAIN_OVER_TCP}x"),
            verdict(r >= TARGET_PLAIN_OVER_TCP).to_owned(),
        ]),
        None => targets.row(["carrier PLAIN / TCP goodput", "n/a", ">= 1.0x", "n/a"]),
    };
    match ratio(&plain_big_s, &quinn_best_s) {
        Some(r) => targets.row([
            format!("carrier@{QUINN_MTU} / quinn-best goodput"),
            format!("{r:.2}x"),
            format!(">= {TARGET_AT_1452_OVER_QUINN_BEST}x"),
            verdict(r >= TARGET_AT_1452_OVER_QUINN_BEST).to_owned(),
        ]),
        None => targets.row([
            format!("carrier@{QUINN_MTU} / quinn-best goodput"),
            "n/a".into(),
            format!(">= {TARGET_AT_1452_OVER_QUINN_BEST}x"),
            "n/a".into(),
        ]),
    };
    match carrier_setup.median().map(|s| s * 1e3) {
        Some(ms) => targets.row([
            "carrier request→Connected".into(),
            format!("{ms:.3} ms"),
            format!("<= {TARGET_CARRIER_SETUP_MS} ms"),
            verdict(ms <= TARGET_CARRIER_SETUP_MS).to_owned(),
        ]),
        None => targets.row(["carrier request→Connected", "n/a", "<= 2 ms", "n/a"]),
    };
    print!("{targets}");

    let errors: Vec<_> = [
        &tcp_s,
        &quinn_s,
        &quinn_best_s,
        &udp_s,
        &carrier_s,
        &plain_s,
        &quinn_setup,
        &carrier_setup,
    ]
    .into_iter()
    .filter_map(|s| Some((s.name, s.error.as_ref()?)))
    .collect();
    if !errors.is_empty() {
        println!();
        for (name, e) in errors {
            println!("{name}: n/a: {e}");
        }
    }
    Ok(())
}
