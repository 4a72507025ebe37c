//! A raw UDP blast over loopback: no reliability, no congestion control, no crypto; what
//! the kernel can carry one datagram at a time (an upper bound for a userspace transport
//! that does one syscall per packet).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// The datagram payload size (a typical QUIC-sized packet).
pub const DATAGRAM: usize = 1200;

/// The SO_RCVBUF and SO_SNDBUF asked for (Linux caps them at `net.core.rmem_max` /
/// `wmem_max`, 4 MiB on the bench machine, and reports twice the granted value).
pub const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// The receiver gives up after this long without a datagram.
const IDLE: Duration = Duration::from_millis(200);

/// How long the receiver waits for the first datagram.
const FIRST_WAIT: Duration = Duration::from_secs(2);

/// A blocking UDP socket on 127.0.0.1 with the larger buffers.
fn socket() -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    socket.set_send_buffer_size(SOCKET_BUFFER)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    Ok(socket.into())
}

/// The receive and send buffer sizes the kernel granted a fresh socket (as it reports them).
pub fn granted_buffers() -> io::Result<(usize, usize)> {
    let s = Socket::from(socket()?);
    Ok((s.recv_buffer_size()?, s.send_buffer_size()?))
}

/// Sends `bytes` bytes as 1200-byte datagrams (the last one shorter) as fast as one thread
/// can, to a receiver on another thread that counts what arrives, stopping when everything
/// arrived or after 200 ms without a datagram. Returns the time from the first to the last
/// datagram received and the bytes received: the receive rate is their quotient.
pub async fn blast(bytes: usize) -> io::Result<(Duration, u64)> {
    let receiver = socket()?;
    let sender = socket()?;
    receiver.connect(sender.local_addr()?)?;
    sender.connect(receiver.local_addr()?)?;

    let expected = bytes as u64;
    let rx = tokio::task::spawn_blocking(move || -> io::Result<(Duration, u64)> {
        let mut buf = [0u8; 2048];
        let mut got = 0u64;
        let mut first = None;
        let mut last = Instant::now();
        receiver.set_read_timeout(Some(FIRST_WAIT))?;
        while got < expected {
            match receiver.recv(&mut buf) {
                Ok(n) => {
                    last = Instant::now();
                    if first.is_none() {
                        first = Some(last);
                        receiver.set_read_timeout(Some(IDLE))?;
                    }
                    got += n as u64;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let span = first.map_or(Duration::ZERO, |f| last.duration_since(f));
        Ok((span, got))
    });

    let tx = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let buf = [0x5Au8; DATAGRAM];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(DATAGRAM);
            match sender.send(&buf[..n]) {
                Ok(_) => left -= n,
                // The receiver's queue overflowing shows up as loss, not as an error; a
                // refused port (receiver gone) ends the blast.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });

    tx.await.map_err(io::Error::other)??;
    rx.await.map_err(io::Error::other)?
}
