//! `carrier`: the command-line tool.
//!
//! ```text
//! carrier demo [--bytes N] [--channel-bytes N]
//! carrier bench [--runs N] [--bytes N]
//! ```
//!
//! `demo` runs two peers in one process over real loopback UDP through the seed's whole
//! flow — request, reply, start; an unreliable and a reliable multiplexing stream, both
//! encrypted; datagrams, a bulk transfer, two channels — printing every state change and
//! the throughput. The driver is a plain `std::net::UdpSocket` loop around the sans-IO core
//! (`demo.rs`); the runtime adapters replace it in real programs.

mod bench;
mod demo;
mod transfer;

use std::process::ExitCode;

const USAGE: &str = "\
usage: carrier [-v | -vv] <command>

  -v, -vv  log what the sessions do on stderr (info, debug); RUST_LOG, when set,
           takes precedence (e.g. RUST_LOG=carrier=debug).

commands:
  demo [--bytes N] [--channel-bytes N]
        two peers on this machine over loopback UDP: a session with an encrypted
        unreliable stream and an encrypted reliable multiplexing stream; datagrams,
        a reliable transfer of N bytes (default 64 MiB) and two channels of N bytes
        each (default 8 MiB), printing states and throughput.
  send FILE --to ADDR [--timeout SECS]
        sends FILE to a `carrier recv` at ADDR (direct signaling over UDP: no
        other service needed), encrypted, with progress, rate and ETA, and a
        SHA-256 check by the receiver at the end.
  recv --listen ADDR [--out DIR]
        waits for one file at ADDR (a specific address the sender can reach)
        and writes it into DIR (default: the current directory).
  bench [--runs N] [--bytes N]
        loopback setup time (request → Connected) and goodput of one reliable
        stream, encrypted and PLAIN, median of N runs (default 5) of N bytes
        (default 64 MiB).
  N takes an optional K, M or G suffix (powers of 1024).
";

fn main() -> ExitCode {
    let (verbosity, args) = verbosity(std::env::args().skip(1).collect());
    init_logging(verbosity);
    match args.first().map(String::as_str) {
        Some("demo") => match demo::Options::parse(&args[1..]) {
            Ok(options) => match demo::run(&options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("carrier demo: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("carrier demo: {e}\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("send") => match parse_send(&args[1..]) {
            Ok((file, to, timeout)) => {
                report("send", transfer::send(&file, to, timeout).map(|_| ()))
            }
            Err(e) => usage_error("send", &e),
        },
        Some("recv") => match parse_recv(&args[1..]) {
            Ok((listen, out)) => report("recv", transfer::recv(listen, &out).map(|_| ())),
            Err(e) => usage_error("recv", &e),
        },
        Some("bench") => match bench::Options::parse(&args[1..]) {
            Ok(options) => match bench::run(&options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("carrier bench: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("carrier bench: {e}\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("carrier: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn report<E: std::fmt::Display>(what: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carrier {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(what: &str, e: &str) -> ExitCode {
    eprintln!("carrier {what}: {e}\n\n{USAGE}");
    ExitCode::from(2)
}

fn parse_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("bad address {s:?}: give IP:PORT, e.g. 127.0.0.1:7000"))
}

/// `FILE --to ADDR [--timeout SECS]`.
fn parse_send(
    args: &[String],
) -> Result<
    (
        std::path::PathBuf,
        std::net::SocketAddr,
        std::time::Duration,
    ),
    String,
> {
    let (mut file, mut to, mut timeout) = (None, None, std::time::Duration::from_secs(10));
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--to" => to = Some(parse_addr(it.next().ok_or("--to needs an address")?)?),
            "--timeout" => {
                let v = it.next().ok_or("--timeout needs seconds")?;
                let secs: u64 = v.parse().map_err(|_| format!("bad timeout {v:?}"))?;
                timeout = std::time::Duration::from_secs(secs.max(1));
            }
            other if file.is_none() && !other.starts_with("--") => file = Some(other.into()),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    Ok((
        file.ok_or("which file?")?,
        to.ok_or("--to ADDR is required")?,
        timeout,
    ))
}

/// `--listen ADDR [--out DIR]`.
fn parse_recv(args: &[String]) -> Result<(std::net::SocketAddr, std::path::PathBuf), String> {
    let (mut listen, mut out) = (None, std::path::PathBuf::from("."));
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => listen = Some(parse_addr(it.next().ok_or("--listen needs an address")?)?),
            "--out" => out = it.next().ok_or("--out needs a directory")?.into(),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    Ok((listen.ok_or("--listen ADDR is required")?, out))
}

/// Takes `-v` / `-vv` / `--verbose` out of the arguments: how many levels to show.
fn verbosity(args: Vec<String>) -> (usize, Vec<String>) {
    let mut level = 0;
    let rest = args
        .into_iter()
        .filter(|a| match a.as_str() {
            "-v" | "--verbose" => {
                level += 1;
                false
            }
            "-vv" => {
                level += 2;
                false
            }
            _ => true,
        })
        .collect();
    (level, rest)
}

/// Logs to stderr: RUST_LOG if set, else warnings, or carrier's info (-v) or debug (-vv).
fn init_logging(verbosity: usize) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(match verbosity {
            0 => "warn",
            1 => "warn,carrier=info",
            _ => "warn,carrier=debug",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod verbosity_tests {
    #[test]
    fn v_flags_count_and_leave_the_command() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(super::verbosity(args(&["demo"])), (0, args(&["demo"])));
        assert_eq!(
            super::verbosity(args(&["-v", "demo", "--bytes", "1M"])),
            (1, args(&["demo", "--bytes", "1M"]))
        );
        assert_eq!(
            super::verbosity(args(&["-vv", "demo"])),
            (2, args(&["demo"]))
        );
    }
}
