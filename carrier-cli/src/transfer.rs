//! `carrier send FILE --to ADDR` and `carrier recv --listen ADDR [--out DIR]`: one file over
//! an encrypted reliable multiplexing stream, with direct signaling (the offer goes to the
//! receiver's address over UDP; no other service is needed).
//!
//! The file travels on a channel whose cookie is `file:<size>:<name>`. When its bytes are
//! through, the sender opens a second channel with cookie `sha256:<hex>`: the receiver
//! closes it Normal if the file it wrote hashes the same, Error if not, and both report it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant as WallClock};

use carrier_mio::{Driver, EventSink};
use carrier_proto::{
    ChannelId, CloseReason, Config, Endpoint, Event, Offer, PendingOffer, Reply, RequestOutcome,
    SessionId, StreamId, StreamOptions, StreamState, StreamType,
};
use mio::{Events, Poll, Token};
use sha2::{Digest, Sha256};

/// The stream both sides add.
const STREAM: (StreamType, StreamOptions) = (
    StreamType::Application,
    StreamOptions::RELIABLE.union(StreamOptions::MULTIPLEXING),
);

/// Why a transfer failed.
#[derive(Debug)]
pub enum TransferError {
    /// A file or socket call failed.
    Io(io::Error),
    /// The core refused a call.
    Carrier(carrier_proto::Error),
    /// The receiver refused the session.
    Refused(i32, String),
    /// Nothing answered in time.
    Timeout(String),
    /// The bytes arrived but do not hash the same.
    HashMismatch,
    /// The peer sent something this tool does not understand.
    Protocol(String),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Io(e) => write!(f, "{e}"),
            TransferError::Carrier(e) => write!(f, "{e}"),
            TransferError::Refused(status, reason) => {
                write!(f, "the receiver refused (status {status}: {reason})")
            }
            TransferError::Timeout(what) => write!(f, "timed out: {what}"),
            TransferError::HashMismatch => write!(f, "the file arrived but its SHA-256 differs"),
            TransferError::Protocol(what) => write!(f, "unexpected from the peer: {what}"),
        }
    }
}

impl std::error::Error for TransferError {}

impl From<io::Error> for TransferError {
    fn from(e: io::Error) -> Self {
        TransferError::Io(e)
    }
}

impl From<carrier_proto::Error> for TransferError {
    fn from(e: carrier_proto::Error) -> Self {
        TransferError::Carrier(e)
    }
}

fn config() -> Result<Config, TransferError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| TransferError::Io(io::Error::other(format!("no randomness: {e}"))))?;
    Ok(Config::default().with_seed(seed))
}

/// Events a side keeps for its loop.
#[derive(Default)]
struct Inbox {
    events: Vec<Event>,
}

impl EventSink for Inbox {
    fn on_event(&mut self, _endpoint: &mut Endpoint, event: Event) {
        self.events.push(event);
    }
}

/// One poll round for one driver: waits at most `cap`, feeds it, returns its events.
fn turn(
    poll: &mut Poll,
    events: &mut Events,
    driver: &mut Driver,
    inbox: &mut Inbox,
    cap: Duration,
) -> io::Result<Vec<Event>> {
    let wait = driver.poll_timeout().unwrap_or(cap).min(cap);
    poll.poll(events, Some(wait))?;
    if !events.is_empty() {
        driver.on_readable(inbox)?;
    }
    driver.on_timeout(inbox)?;
    Ok(std::mem::take(&mut inbox.events))
}

/// A progress line on stderr: bar, percentage, rate, ETA.
struct Progress<W: Write = io::Stderr> {
    total: u64,
    start: WallClock,
    last: WallClock,
    out: W,
    /// A progress line is on the terminal without its newline.
    open: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress::to(total, io::stderr())
    }
}

impl<W: Write> Progress<W> {
    fn to(total: u64, out: W) -> Self {
        let now = WallClock::now();
        Progress {
            total,
            start: now,
            // The first line shows at once.
            last: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
            out,
            open: false,
        }
    }

    fn show(&mut self, done: u64, force: bool) {
        if !force && self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = WallClock::now();
        let secs = self.start.elapsed().as_secs_f64().max(1e-6);
        let rate = done as f64 / secs;
        let frac = if self.total == 0 {
            1.0
        } else {
            done as f64 / self.total as f64
        };
        let eta = if rate > 0.0 {
            (self.total.saturating_sub(done)) as f64 / rate
        } else {
            0.0
        };
        let filled = (frac * 30.0) as usize;
        // A terminal that went away is no reason to stop the transfer.
        let _ = write!(
            self.out,
            "\r[{}{}] {:5.1}% {:8.1} MB/s ETA {:5.1} s",
            "#".repeat(filled),
            " ".repeat(30 - filled.min(30)),
            frac * 100.0,
            rate / 1e6,
            eta
        );
        self.open = true;
        if force {
            let _ = writeln!(self.out);
            self.open = false;
        }
    }
}

impl<W: Write> Drop for Progress<W> {
    /// A transfer that ends early (an error) ends the progress line first, so the error
    /// gets a line of its own.
    fn drop(&mut self) {
        if self.open {
            let _ = writeln!(self.out);
        }
    }
}

/// The local address to bind for reaching `to`: the interface the OS would use.
fn local_ip_for(to: SocketAddr) -> io::Result<SocketAddr> {
    let any: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().map_err(io::Error::other)?
    } else {
        "[::]:0".parse().map_err(io::Error::other)?
    };
    let probe = UdpSocket::bind(any)?;
    probe.connect(to)?;
    let mut local = probe.local_addr()?;
    local.set_port(0);
    Ok(local)
}

/// `carrier send`: sends `path` to the receiver at `to`.
pub fn send(path: &Path, to: SocketAddr, timeout: Duration) -> Result<(), TransferError> {
    let mut file = File::open(path).map_err(|e| {
        TransferError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    })?;
    let size = file.metadata()?.len();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| TransferError::Protocol("the file name is not UTF-8".into()))?
        .to_string();
    let mut driver = Driver::bind(local_ip_for(to)?, config()?.with_request_timeout(timeout))?;
    let mut poll = Poll::new()?;
    driver.register(poll.registry(), Token(0))?;
    let mut events = Events::with_capacity(64);
    let mut inbox = Inbox::default();

    let now = driver.now();
    let session = driver.endpoint().new_session(&to.to_string())?;
    let stream = driver
        .endpoint()
        .session(session)?
        .add_stream(STREAM.0, STREAM.1)?;
    let pending = driver
        .endpoint()
        .session(session)?
        .request(now, "carrier-file")?;
    driver.request_direct(to, &pending);
    eprintln!("sending {name} ({size} bytes) to {to}");
    let mut pending: Option<PendingOffer> = Some(pending);

    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut file_channel, mut hash_channel): (Option<ChannelId>, Option<ChannelId>) = (None, None);
    let (mut sent, mut read_ahead) = (0u64, Vec::new());
    let mut progress = Progress::new(size);
    let mut digest_hex = String::new();
    let started = WallClock::now();
    loop {
        for e in turn(
            &mut poll,
            &mut events,
            &mut driver,
            &mut inbox,
            Duration::from_millis(5),
        )? {
            match e {
                Event::RequestComplete { outcome, .. } => match outcome {
                    RequestOutcome::Accepted(answer) => {
                        let now = driver.now();
                        if let Some(p) = pending.take() {
                            driver
                                .endpoint()
                                .session(session)?
                                .start_with(now, p, answer)?;
                        }
                    }
                    RequestOutcome::Refused(r) => {
                        return Err(TransferError::Refused(r.status, r.reason));
                    }
                    RequestOutcome::TimedOut => {
                        return Err(TransferError::Timeout(format!(
                            "no answer from {to} within {} s (is `carrier recv` listening there?)",
                            timeout.as_secs()
                        )));
                    }
                },
                Event::StateChanged {
                    state: StreamState::Connected,
                    ..
                } => {
                    let now = driver.now();
                    let cookie = format!("file:{size}:{name}");
                    file_channel = Some(driver.endpoint().session(session)?.open_channel(
                        now,
                        stream,
                        cookie.as_bytes(),
                    )?);
                }
                // Before the answer, the request's own outcome (refused, timed out) says more.
                Event::StateChanged {
                    state: StreamState::Failed | StreamState::Closed,
                    reason,
                    ..
                } if pending.is_none() => {
                    return Err(TransferError::Protocol(format!(
                        "the stream ended: {reason:?}"
                    )));
                }
                Event::ChannelClosed {
                    channel, reason, ..
                } if Some(channel) == hash_channel => {
                    progress.show(sent, true);
                    let now = driver.now();
                    driver.endpoint().close_session(now, session)?;
                    driver.flush(&mut inbox)?;
                    return match reason {
                        CloseReason::Normal => {
                            eprintln!(
                                "done: {size} bytes in {:.2} s, SHA-256 {digest_hex} verified by the receiver",
                                started.elapsed().as_secs_f64()
                            );
                            Ok(())
                        }
                        _ => Err(TransferError::HashMismatch),
                    };
                }
                Event::ChannelClosed {
                    channel, reason, ..
                } if Some(channel) == file_channel && sent < size => {
                    return Err(TransferError::Protocol(format!(
                        "the receiver closed the file ({reason:?})"
                    )));
                }
                _ => {}
            }
        }
        if start_timeout(&pending, started, timeout) {
            return Err(TransferError::Timeout(format!("no answer from {to}")));
        }
        let Some(channel) = file_channel else {
            continue;
        };
        if hash_channel.is_some() {
            continue;
        }
        // Feed the channel: read ahead from the file, write what the channel takes.
        let now = driver.now();
        loop {
            if read_ahead.is_empty() {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                read_ahead.extend_from_slice(&buf[..n]);
            }
            match driver.endpoint().session(session)?.write_channel(
                now,
                stream,
                channel,
                &read_ahead,
            ) {
                Ok(k) => {
                    sent += k as u64;
                    read_ahead.drain(..k);
                }
                Err(carrier_proto::Error::WouldBlock) => break,
                Err(carrier_proto::Error::Channel(carrier_proto::ChannelError::WrongState {
                    ..
                })) => break,
                Err(e) => return Err(e.into()),
            }
        }
        progress.show(sent, false);
        if sent == size && read_ahead.is_empty() && hash_channel.is_none() {
            let mut s = driver.endpoint().session(session)?;
            s.close_channel(now, stream, channel, CloseReason::Normal)?;
            digest_hex = hex(&hasher.clone().finalize());
            hash_channel =
                Some(s.open_channel(now, stream, format!("sha256:{digest_hex}").as_bytes())?);
        }
        driver.flush(&mut inbox)?;
    }
}

/// True once the request has waited longer than the timeout (the core's own request
/// timeout reports it too; this is the CLI's bound on the whole wait).
fn start_timeout(pending: &Option<PendingOffer>, started: WallClock, timeout: Duration) -> bool {
    pending.is_some() && started.elapsed() > timeout + Duration::from_secs(1)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a `file:<size>:<name>` cookie; the name must be a plain file name.
fn parse_file_cookie(cookie: &[u8]) -> Option<(u64, String)> {
    let text = std::str::from_utf8(cookie).ok()?.strip_prefix("file:")?;
    let (size, name) = text.split_once(':')?;
    let name = name.to_string();
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    plain.then_some((size.parse().ok()?, name))
}

/// `carrier recv`: waits for one file at `listen` and writes it into `out`.
pub fn recv(listen: SocketAddr, out: &Path) -> Result<PathBuf, TransferError> {
    if listen.ip().is_unspecified() {
        return Err(TransferError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "give a specific address to listen on (the sender must reach it), not 0.0.0.0 or ::",
        )));
    }
    let mut driver = Driver::bind(listen, config()?)?;
    let mut poll = Poll::new()?;
    driver.register(poll.registry(), Token(0))?;
    let mut events = Events::with_capacity(64);
    let mut inbox = Inbox::default();
    eprintln!("listening on {}", driver.local_addr());
    let mut session: Option<(SessionId, StreamId)> = None;
    let mut file: Option<(ChannelId, File, PathBuf, u64, Sha256, u64)> = None;
    let mut progress: Option<Progress> = None;
    let mut done: Option<PathBuf> = None;
    let mut hash: Option<(ChannelId, Vec<u8>)> = None;
    let mut file_closed = false;
    loop {
        for e in turn(
            &mut poll,
            &mut events,
            &mut driver,
            &mut inbox,
            Duration::from_millis(50),
        )? {
            let now = driver.now();
            match e {
                Event::SessionRequest { peer, offer, .. } => {
                    if session.is_some() {
                        continue; // one transfer at a time
                    }
                    eprintln!("request from {peer}");
                    let s = accept(&mut driver, &peer, &offer)?;
                    session = Some(s);
                }
                Event::ChannelOpen {
                    channel, cookie, ..
                } => {
                    let Some((s, stream)) = session else { continue };
                    if let Some((size, name)) = parse_file_cookie(&cookie) {
                        let path = out.join(&name);
                        let f = File::create(&path)?;
                        eprintln!("receiving {name} ({size} bytes) into {}", path.display());
                        progress = Some(Progress::new(size));
                        file = Some((channel, f, path, size, Sha256::new(), 0));
                        driver
                            .endpoint()
                            .session(s)?
                            .accept_channel(now, stream, channel)?;
                    } else if let Some(expected) = cookie.strip_prefix(b"sha256:") {
                        // Checked once the file's channel is closed (its close comes only
                        // after all its bytes).
                        hash = Some((channel, expected.to_vec()));
                    } else {
                        driver
                            .endpoint()
                            .session(s)?
                            .refuse_channel(now, stream, channel)?;
                    }
                }
                Event::ChannelClosed { channel, .. }
                    if file.as_ref().is_some_and(|f| f.0 == channel) =>
                {
                    file_closed = true;
                }
                Event::ChannelData { channel, data, .. } => {
                    if let Some((id, f, _, _, hasher, got)) = file.as_mut() {
                        if *id == channel {
                            f.write_all(&data)?;
                            hasher.update(&data);
                            *got += data.len() as u64;
                            if let Some(p) = progress.as_mut() {
                                p.show(*got, false);
                            }
                        }
                    }
                }
                Event::StateChanged {
                    state: StreamState::Closed | StreamState::Failed,
                    reason,
                    ..
                } => {
                    return match done.take() {
                        Some(path) => Ok(path),
                        None => Err(TransferError::Protocol(format!(
                            "the session ended before the file was through: {reason:?}"
                        ))),
                    };
                }
                _ => {}
            }
        }
        if let (true, Some((channel, expected)), Some((s, stream))) = (file_closed, &hash, session)
        {
            let channel = *channel;
            let Some((_, mut f, path, size, hasher, got)) = file.take() else {
                return Err(TransferError::Protocol("a hash without a file".into()));
            };
            f.flush()?;
            let ok = got == size && hex(&hasher.finalize()).as_bytes() == expected.as_slice();
            if let Some(p) = progress.as_mut() {
                p.show(got, true);
            }
            let reason = if ok {
                CloseReason::Normal
            } else {
                CloseReason::Error
            };
            let now = driver.now();
            driver
                .endpoint()
                .session(s)?
                .close_channel(now, stream, channel, reason)?;
            driver.flush(&mut inbox)?;
            if !ok {
                return Err(TransferError::HashMismatch);
            }
            eprintln!("done: {} ({size} bytes), SHA-256 verified", path.display());
            hash = None;
            file_closed = false;
            done = Some(path);
        }
        driver.flush(&mut inbox)?;
    }
}

/// Accepts a request: the same stream, a reply sent back directly, start.
fn accept(
    driver: &mut Driver,
    peer: &str,
    offer: &Offer,
) -> Result<(SessionId, StreamId), TransferError> {
    let now = driver.now();
    let s = driver.endpoint().new_session(peer)?;
    let stream = driver
        .endpoint()
        .session(s)?
        .add_stream(STREAM.0, STREAM.1)?;
    let answer = driver.endpoint().session(s)?.reply(offer, Reply::Accept)?;
    driver.endpoint().session(s)?.start(now)?;
    driver.reply_direct(offer, &answer);
    Ok((s, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_cookies_carry_a_size_and_a_plain_name_only() {
        assert_eq!(
            parse_file_cookie(b"file:12:a.txt"),
            Some((12, "a.txt".into()))
        );
        assert_eq!(
            parse_file_cookie(b"file:12:with spaces.pdf"),
            Some((12, "with spaces.pdf".into()))
        );
        assert_eq!(parse_file_cookie(b"file:12:../etc/passwd"), None);
        assert_eq!(parse_file_cookie(b"file:12:.."), None);
        assert_eq!(parse_file_cookie(b"file:x:a"), None);
        assert_eq!(parse_file_cookie(b"sha256:00"), None);
    }
}

#[cfg(test)]
mod progress_tests {
    use super::Progress;

    #[test]
    fn a_progress_line_cut_short_ends_before_the_error() {
        let mut out = Vec::new();
        {
            let mut p = Progress::to(100, &mut out);
            p.show(40, false);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\r[") && text.ends_with('\n'), "{text:?}");
        let mut out = Vec::new();
        {
            let mut p = Progress::to(100, &mut out);
            p.show(100, true);
        }
        assert_eq!(String::from_utf8(out).unwrap().matches('\n').count(), 1);
    }
}
