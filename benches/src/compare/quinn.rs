//! quinn 0.11 over loopback: the QUIC contender, with its defaults (rustls + ring, default
//! `TransportConfig`) and in its best configuration found here ([`Tuning::Best`]: 4 MiB
//! socket buffers, 16 MiB stream and send windows).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::rustls::RootCertStore;
use quinn::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use quinn::{ClientConfig, Connection, Endpoint, ServerConfig};

use super::WRITE_CHUNK;

/// The server name in the self-signed certificate and in `connect`.
const SERVER_NAME: &str = "localhost";

/// How long closing may wait for the endpoints to drain (not timed).
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How the quinn endpoints are set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// quinn's defaults throughout.
    Defaults,
    /// 4 MiB SO_RCVBUF/SO_SNDBUF and 16 MiB stream/send windows: what moves quinn fastest
    /// over loopback here.
    Best,
}

/// Socket buffers of [`Tuning::Best`].
const BEST_SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Stream receive and send windows of [`Tuning::Best`].
const BEST_WINDOW: u32 = 16 * 1024 * 1024;

/// A UDP socket on 127.0.0.1 with `buffer`-byte kernel buffers.
fn big_socket(buffer: usize) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_recv_buffer_size(buffer)?;
    socket.set_send_buffer_size(buffer)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    Ok(socket.into())
}

/// An endpoint on a socket with big buffers (`server` config if a server).
fn tuned_endpoint(server: Option<ServerConfig>) -> io::Result<Endpoint> {
    let runtime = quinn::default_runtime().ok_or_else(|| io::Error::other("no runtime"))?;
    Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        big_socket(BEST_SOCKET_BUFFER)?,
        runtime,
    )
}

/// The transport configuration of [`Tuning::Best`].
fn best_transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(quinn::VarInt::from_u32(BEST_WINDOW))
        .receive_window(quinn::VarInt::from_u32(BEST_WINDOW))
        .send_window(u64::from(BEST_WINDOW));
    Arc::new(t)
}

/// A server and a client endpoint on 127.0.0.1, the client trusting the server's fresh
/// self-signed certificate. Both use quinn's default transport configuration.
struct EndpointPair {
    server: Endpoint,
    client: Endpoint,
    server_addr: SocketAddr,
}

impl EndpointPair {
    /// Must be called inside a tokio runtime (quinn spawns its endpoint drivers).
    fn new(tuning: Tuning) -> io::Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
            .map_err(io::Error::other)?;
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let mut server_config = ServerConfig::with_single_cert(vec![cert.clone()], key.into())
            .map_err(io::Error::other)?;
        let mut roots = RootCertStore::empty();
        roots.add(cert).map_err(io::Error::other)?;
        let mut client_config =
            ClientConfig::with_root_certificates(Arc::new(roots)).map_err(io::Error::other)?;

        let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let (server, mut client) = match tuning {
            Tuning::Defaults => (
                Endpoint::server(server_config, localhost)?,
                Endpoint::client(localhost)?,
            ),
            Tuning::Best => {
                server_config.transport_config(best_transport());
                client_config.transport_config(best_transport());
                (tuned_endpoint(Some(server_config))?, tuned_endpoint(None)?)
            }
        };
        let server_addr = server.local_addr()?;
        client.set_default_client_config(client_config);
        Ok(Self {
            server,
            client,
            server_addr,
        })
    }

    /// Accepts one connection on the server endpoint.
    async fn accept(server: Endpoint) -> io::Result<Connection> {
        let incoming = server
            .accept()
            .await
            .ok_or_else(|| io::Error::other("quinn: server endpoint closed"))?;
        incoming.await.map_err(io::Error::other)
    }

    /// Connects the client to the server; returns the client's and the server's connection.
    async fn connect(&self) -> io::Result<(Connection, Connection)> {
        let accept = tokio::spawn(Self::accept(self.server.clone()));
        let client = self
            .client
            .connect(self.server_addr, SERVER_NAME)
            .map_err(io::Error::other)?
            .await
            .map_err(io::Error::other)?;
        let server = accept.await.map_err(io::Error::other)??;
        Ok((client, server))
    }

    /// Closes both connections and waits (bounded) for the endpoints to go idle.
    async fn close(self, connections: &[&Connection]) {
        for c in connections {
            c.close(0u32.into(), b"done");
        }
        let idle = async {
            tokio::join!(self.client.wait_idle(), self.server.wait_idle());
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, idle).await;
    }
}

/// Moves `bytes` bytes over one unidirectional stream of a fresh (already established)
/// connection: the client writes 64 KiB chunks (zero-copy slices of one reusable buffer) and
/// finishes the stream; the server reads it to the end. Returns the time from opening the
/// stream to the server having read everything.
pub async fn goodput(bytes: usize, tuning: Tuning) -> io::Result<Duration> {
    let pair = EndpointPair::new(tuning)?;
    let (client, server) = pair.connect().await?;

    let reader = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut recv = server.accept_uni().await.map_err(io::Error::other)?;
            let mut got = 0usize;
            while let Some(chunk) = recv
                .read_chunk(usize::MAX, true)
                .await
                .map_err(io::Error::other)?
            {
                got += chunk.bytes.len();
            }
            Ok::<_, io::Error>((got, Instant::now()))
        })
    };

    let buf = Bytes::from(vec![0x5Au8; WRITE_CHUNK]);
    let start = Instant::now();
    let mut send = client.open_uni().await.map_err(io::Error::other)?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len());
        send.write_chunk(buf.slice(..n))
            .await
            .map_err(io::Error::other)?;
        left -= n;
    }
    send.finish().map_err(io::Error::other)?;
    let (got, end) = reader.await.map_err(io::Error::other)??;

    pair.close(&[&client, &server]).await;
    if got != bytes {
        return Err(io::Error::other(format!(
            "quinn: server read {got} of {bytes} bytes"
        )));
    }
    Ok(end.duration_since(start))
}

/// The handshake: the time from `connect()` on a fresh client endpoint to the client's
/// connection being established (the endpoints and certificates are made before timing).
pub async fn setup_time() -> io::Result<Duration> {
    let pair = EndpointPair::new(Tuning::Defaults)?;
    let accept = tokio::spawn(EndpointPair::accept(pair.server.clone()));
    let start = Instant::now();
    let client = pair
        .client
        .connect(pair.server_addr, SERVER_NAME)
        .map_err(io::Error::other)?
        .await
        .map_err(io::Error::other)?;
    let elapsed = start.elapsed();
    let server = accept.await.map_err(io::Error::other)??;
    pair.close(&[&client, &server]).await;
    Ok(elapsed)
}
