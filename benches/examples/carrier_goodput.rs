//! Runs only the carrier contender of the comparison harness, for profiling:
//! `cargo run --release -p carrier-benches --example carrier_goodput -- [plain] [rounds]
//! [size=BYTES] [mib=N] [log]`. With `log`, a `tracing` subscriber at the default (INFO)
//! level is installed first: the cost of logging left on.
//! Prints each run's goodput and the process's CPU use over it (cores busy on average).

use std::time::Instant;

use carrier_benches::compare::carrier;

/// User + system CPU seconds of this process so far (from /proc/self/stat; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plain = args.iter().any(|a| a == "plain");
    if args.iter().any(|a| a == "log") {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::stderr)
            .init();
    }
    let rounds = args
        .iter()
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(5);
    // `size=N`: fixed N-byte packets (path MTU discovery off).
    let size = args
        .iter()
        .find_map(|a| a.strip_prefix("size=")?.parse::<usize>().ok());
    // `mib=N`: bytes per run (256 MiB unless given).
    let mib = args
        .iter()
        .find_map(|a| a.strip_prefix("mib=")?.parse::<usize>().ok())
        .unwrap_or(256);
    let bytes = mib << 20;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for _ in 0..rounds {
            let cpu = cpu_seconds();
            let wall = Instant::now();
            let run = carrier::goodput_run(bytes, plain, size).await?;
            let time = run.time;
            let cores = (cpu_seconds() - cpu) / wall.elapsed().as_secs_f64();
            println!(
                "carrier{}: {:.0} MB/s, {cores:.2} cores busy",
                if plain { " PLAIN" } else { "" },
                bytes as f64 / time.as_secs_f64() / 1e6
            );
            for (side, (e, d)) in [("sender", &run.sender), ("receiver", &run.receiver)] {
                println!(
                    "  {side}: {} packets sent in {} send calls ({} refused), {} received",
                    e.packets_sent, d.io.send_calls, d.io.send_drops, e.packets_received
                );
            }
        }
        Ok(())
    })
}
