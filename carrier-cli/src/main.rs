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

use std::process::ExitCode;

const USAGE: &str = "\
usage: carrier <command>

commands:
  demo [--bytes N] [--channel-bytes N]
        two peers on this machine over loopback UDP: a session with an encrypted
        unreliable stream and an encrypted reliable multiplexing stream; datagrams,
        a reliable transfer of N bytes (default 64 MiB) and two channels of N bytes
        each (default 8 MiB), printing states and throughput.
  bench [--runs N] [--bytes N]
        loopback setup time (request → Connected) and goodput of one reliable
        stream, encrypted and PLAIN, median of N runs (default 5) of N bytes
        (default 64 MiB).
  N takes an optional K, M or G suffix (powers of 1024).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
