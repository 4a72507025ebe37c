//! carrier-rs on async-io, the reactor async-std and smol run on: [`bind`] a [`Manager`]
//! to a UDP address and spawn its [`Driver`] on your executor
//! (`async_std::task::spawn(driver)`, `smol::spawn(driver).detach()`). Everything else is
//! [`carrier_async`]'s API (re-exported here), with futures' `AsyncRead` / `AsyncWrite` on
//! reliable streams and channels.
//!
//! ```
//! use carrier_async_std::{Config, StreamOptions, StreamType};
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let seed = |n| Config::default().with_seed([n; 32]); // real entropy in production
//!     let (alice, driver) = carrier_async_std::bind("127.0.0.1:0".parse()?, seed(1))?;
//!     smol::spawn(driver).detach();
//!     let (bob, driver) = carrier_async_std::bind("127.0.0.1:0".parse()?, seed(2))?;
//!     smol::spawn(driver).detach();
//!     let kind = (StreamType::Application, StreamOptions::RELIABLE);
//!
//!     let mut incoming = bob.incoming();
//!     let answering = smol::spawn(async move {
//!         let request = incoming.next().await.expect("a request");
//!         let (_session, streams, _) = request.accept(&[kind]).expect("accepted");
//!         let mut stream = streams.into_iter().next().expect("one stream");
//!         let mut text = String::new();
//!         stream.read_to_string(&mut text).await.expect("read");
//!         text
//!     });
//!
//!     let session = alice.new_session("bob")?;
//!     let mut stream = session.add_stream(kind.0, kind.1)?;
//!     session.request_direct(bob.local_addr(), "chat")?.await?;
//!     stream.connected().await?;
//!     stream.write_all(b"hello over carrier").await?;
//!     stream.close()?; // a graceful close: the reader sees the end after the data
//!     assert_eq!(answering.await, "hello over carrier");
//!     Ok(())
//! })
//! # }
//! ```

pub use carrier_async::*;

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Binds a UDP socket to `addr` and makes a [`Manager`] on it; spawn the returned
/// [`Driver`] on your executor.
pub fn bind(addr: SocketAddr, config: Config) -> io::Result<(Manager, Driver<AsyncIoRuntime>)> {
    Manager::new(AsyncIoRuntime, UdpSocket::bind(addr)?, config)
}

/// As [`bind`], with every event going to `handler`'s callbacks (the Carrier SDK's style).
pub fn bind_with_handler(
    addr: SocketAddr,
    config: Config,
    handler: impl Callbacks,
) -> io::Result<(Manager, Driver<AsyncIoRuntime>)> {
    Manager::with_handler(AsyncIoRuntime, UdpSocket::bind(addr)?, config, handler)
}
