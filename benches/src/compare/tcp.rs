//! Kernel TCP over loopback: the reference for a reliable byte stream.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::WRITE_CHUNK;

/// The server's read buffer.
const READ_BUF: usize = 256 * 1024;

/// Moves `bytes` bytes over a fresh TCP connection on 127.0.0.1 (TCP_NODELAY on both ends):
/// the client writes them in 64 KiB writes from one reusable buffer and shuts its side down;
/// the server reads to EOF. Returns the time from the connection being made to the server
/// having read everything.
pub async fn goodput(bytes: usize) -> io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let mut buf = vec![0u8; READ_BUF];
        let mut got = 0usize;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok::<_, io::Error>((got, Instant::now()))
    });

    let mut client = TcpStream::connect(addr).await?;
    client.set_nodelay(true)?;
    let start = Instant::now();
    let buf = vec![0x5Au8; WRITE_CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len());
        client.write_all(&buf[..n]).await?;
        left -= n;
    }
    client.shutdown().await?;
    let (got, end) = server.await.map_err(io::Error::other)??;
    if got != bytes {
        return Err(io::Error::other(format!(
            "tcp: server read {got} of {bytes} bytes"
        )));
    }
    Ok(end.duration_since(start))
}
