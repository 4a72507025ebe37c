//! `carrier demo` end to end: the binary runs two peers over real loopback UDP and
//! reports each step; a bad command line is a usage error.

use std::process::Command;

fn carrier(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carrier"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn the_demo_runs_the_whole_flow_over_loopback() {
    let out = carrier(&["demo", "--bytes", "4M", "--channel-bytes", "512K"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "alice: stream 1 → Connected",
        "bob: stream 1 → Connected",
        "every packet sealed",
        "bob: datagram \"hello 1 from alice\"",
        "reliable stream: 4 MiB",
        "bob: channel 1 closed (Normal)",
        "bob: channel 3 closed (Normal)",
        "every byte before its close (1048576 bytes)",
        "bob: stream 1 → Closed (ClosedByPeer(Normal))",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let out = carrier(&["demo", "--bytes", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad size"));
    let out = carrier(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = carrier(&["--help"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("carrier demo")
            || String::from_utf8_lossy(&out.stdout).contains("demo [")
    );
}

#[test]
fn the_bench_reports_setup_time_and_goodput_for_both_kinds() {
    let out = carrier(&["bench", "--runs", "1", "--bytes", "2M"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in ["| reliable, encrypted | ", "| reliable, PLAIN | "] {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains(" ms | ") && line.ends_with(" MB/s |"),
            "{line}"
        );
    }
}
