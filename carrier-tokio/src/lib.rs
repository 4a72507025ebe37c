//! carrier-rs on tokio: [`bind`] a [`Manager`] to a UDP address; its driver runs as a tokio
//! task. Everything else is [`carrier_async`]'s API (re-exported here), with tokio's
//! `AsyncRead` / `AsyncWrite` on reliable streams and channels.
//!
//! ```
//! use carrier_tokio::{Config, StreamOptions, StreamType};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let seed = |n| Config::default().with_seed([n; 32]); // real entropy in production
//! let alice = carrier_tokio::bind("127.0.0.1:0".parse()?, seed(1))?;
//! let bob = carrier_tokio::bind("127.0.0.1:0".parse()?, seed(2))?;
//! let kind = (StreamType::Application, StreamOptions::RELIABLE);
//!
//! // Bob answers whatever comes in (the offer arrives straight over UDP).
//! let mut incoming = bob.incoming();
//! let answering = tokio::spawn(async move {
//!     let request = incoming.next().await.expect("a request");
//!     let (_session, streams, _answer) = request.accept(&[kind]).expect("accepted");
//!     let mut stream = streams.into_iter().next().expect("one stream");
//!     let mut text = String::new();
//!     stream.read_to_string(&mut text).await.expect("read");
//!     text
//! });
//!
//! let session = alice.new_session("bob")?;
//! let mut stream = session.add_stream(kind.0, kind.1)?;
//! session.request_direct(bob.local_addr(), "chat")?.await?;
//! stream.connected().await?;
//! stream.write_all(b"hello over carrier").await?;
//! stream.shutdown().await?;
//! assert_eq!(answering.await?, "hello over carrier");
//! # Ok(())
//! # }
//! ```

pub use carrier_async::*;

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Binds a UDP socket to `addr`, makes a [`Manager`] on it and spawns its driver on the
/// current tokio runtime (call it inside one).
pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Manager> {
    let (manager, driver) = Manager::new(TokioRuntime, UdpSocket::bind(addr)?, config)?;
    tokio::spawn(driver);
    Ok(manager)
}

/// As [`bind`], with every event going to `handler`'s callbacks (the Carrier SDK's style).
pub fn bind_with_handler(
    addr: SocketAddr,
    config: Config,
    handler: impl Callbacks,
) -> io::Result<Manager> {
    let (manager, driver) =
        Manager::with_handler(TokioRuntime, UdpSocket::bind(addr)?, config, handler)?;
    tokio::spawn(driver);
    Ok(manager)
}
