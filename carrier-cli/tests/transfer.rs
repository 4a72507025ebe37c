//! `carrier send` and `carrier recv` as two processes over loopback UDP: the file arrives
//! intact and the receiver's SHA-256 check passes; bad input gives clear errors.

use std::process::{Command, Stdio};
use std::time::Duration;

fn carrier() -> Command {
    Command::new(env!("CARGO_BIN_EXE_carrier"))
}

/// A loopback port nobody is using right now.
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("carrier-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_file_goes_from_send_to_recv_intact() {
    let dir = scratch("ok");
    let (src, out) = (dir.join("with spaces.bin"), dir.join("out"));
    std::fs::create_dir_all(&out).unwrap();
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i * 7 + i / 1000) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let recv = carrier()
        .args(["recv", "--listen", &addr, "--out"])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let send = carrier()
        .arg("send")
        .arg(&src)
        .args(["--to", &addr])
        .output()
        .unwrap();
    let send_err = String::from_utf8_lossy(&send.stderr).to_string();
    assert!(send.status.success(), "{send_err}");
    assert!(send_err.contains("verified by the receiver"), "{send_err}");
    let recv_out = recv.wait_with_output().unwrap();
    let recv_err = String::from_utf8_lossy(&recv_out.stderr).to_string();
    assert!(recv_out.status.success(), "{recv_err}");
    assert!(recv_err.contains("SHA-256 verified"), "{recv_err}");
    assert_eq!(std::fs::read(out.join("with spaces.bin")).unwrap(), data);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_addresses_missing_files_and_silence_are_clear_errors() {
    let dir = scratch("err");
    let src = dir.join("f");
    std::fs::write(&src, b"x").unwrap();
    let out = carrier()
        .args(["send", "f", "--to", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad address \"nowhere\""));
    let out = carrier()
        .arg("send")
        .arg(dir.join("missing"))
        .args(["--to", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    let addr = format!("127.0.0.1:{}", free_port());
    let out = carrier()
        .arg("send")
        .arg(&src)
        .args(["--to", &addr, "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timed out: no answer from"), "{err}");
    let out = carrier()
        .args(["recv", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("specific address"));
    let _ = std::fs::remove_dir_all(&dir);
}
