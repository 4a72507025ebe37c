//! Batched UDP IO for any socket that lends its file descriptor: GSO on send, GRO on
//! receive where the OS has them (Linux), a plain `sendmsg` / `recvmsg` elsewhere.

use std::io::{self, IoSliceMut};

use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};

use crate::engine::Engine;

/// Room for the largest read: GRO coalesces up to 64 KiB.
const RECV_BUF: usize = 64 * 1024;

/// The socket buffers drivers ask for (the OS may grant less: Linux caps them at
/// `net.core.rmem_max` / `wmem_max`). The defaults (about 200 KiB) hold only a few dozen
/// full-size datagrams, and a burst beyond that is lost at the receiver.
pub const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Asks for [`SOCKET_BUFFER`]-sized send and receive buffers on `socket`; an OS that refuses
/// keeps its defaults (not an error: the transport still works, with more losses).
pub fn tune_buffers(socket: socket2::SockRef<'_>) {
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
}

/// What one [`Socket::read`] got: `len` bytes from `source`, one datagram every `stride`.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    source: std::net::SocketAddr,
    len: usize,
    stride: usize,
}

/// The batching state of one UDP socket (the socket itself stays with the driver, which
/// lends it for each call as a [`UdpSockRef`]).
#[derive(Debug)]
pub struct Socket {
    state: UdpSocketState,
    /// Room for one GRO read: many datagrams of one sender, coalesced.
    buf: Vec<u8>,
}

impl Socket {
    /// Sets the socket up for batched IO (turns GRO on where the OS has it).
    pub fn new(socket: UdpSockRef<'_>) -> io::Result<Socket> {
        Ok(Socket {
            state: UdpSocketState::new(socket)?,
            buf: vec![0; RECV_BUF],
        })
    }

    /// How many datagrams one send may carry (1 without GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// How many datagrams one receive may return (1 without GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Sends one transmit of [`Engine::poll`]. `WouldBlock` means the socket is full: wait
    /// until it is writable and send the same transmit again.
    pub fn send(
        &self,
        socket: UdpSockRef<'_>,
        transmit: &quinn_udp::Transmit<'_>,
    ) -> io::Result<()> {
        self.state.send(socket, transmit)
    }

    /// Reads what one receive call returns (one datagram, or several coalesced) into
    /// `engine`. Returns how many datagrams; `WouldBlock` when nothing is waiting. An ICMP
    /// error for an earlier send (`ConnectionRefused`) is no datagram: `Ok(0)`.
    pub fn recv(&mut self, socket: UdpSockRef<'_>, engine: &mut Engine) -> io::Result<usize> {
        let Some(read) = self.read(socket)? else {
            return Ok(0);
        };
        Ok(self.feed(read, engine))
    }

    /// One receive call into this socket's buffer, without an engine (a driver that
    /// shares its engine behind a lock reads first, then locks to [`Socket::feed`]).
    /// `None`: an ICMP error for an earlier send, no datagram.
    pub fn read(&mut self, socket: UdpSockRef<'_>) -> io::Result<Option<Read>> {
        let mut meta = [RecvMeta::default()];
        let n = {
            let mut bufs = [IoSliceMut::new(&mut self.buf)];
            match self.state.recv(socket, &mut bufs, &mut meta) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let m = &meta[0];
        Ok(Some(Read {
            source: m.addr,
            len: m.len,
            stride: m.stride.max(1),
        }))
    }

    /// Hands what [`Socket::read`] got to `engine`; returns how many datagrams.
    pub fn feed(&self, read: Read, engine: &mut Engine) -> usize {
        engine.receive_segments(read.source, &self.buf[..read.len], read.stride);
        read.len.div_ceil(read.stride)
    }
}
