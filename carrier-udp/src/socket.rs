//! Batched UDP IO for any socket that lends its file descriptor: GSO on send, GRO on
//! receive where the OS has them (Linux), a plain `sendmsg` / `recvmsg` elsewhere.

use std::io::{self, IoSliceMut};

use bytes::{Bytes, BytesMut};
use carrier_proto::slab::Pool;
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};

use crate::engine::Engine;

/// Room for the largest read: GRO coalesces up to 64 KiB.
const RECV_BUF: usize = 64 * 1024;

/// Reads land in slabs of this size, split off per read.
const RECV_SLAB: usize = 1024 * 1024;

/// Used-up slabs kept for reuse (16 MiB): the oldest is reused once the application has
/// taken everything it held, so the pool must span the receive windows' worth of data a
/// reader may leave queued.
const RECV_POOL: usize = 16;

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

/// What one [`Socket::read`] got: bytes from `source`, one datagram every `stride`.
#[derive(Debug, Clone)]
pub struct Read {
    source: std::net::SocketAddr,
    data: Bytes,
    stride: usize,
}

/// Where reads land: zeroed slabs that each read's bytes are split off, so the endpoint
/// gets them as `Bytes` without a copy or an allocation per datagram.
///
/// The room is zeroed as reads use it (safe Rust reads only into initialized memory),
/// which costs less than copying what was read. Used-up slabs wait in a bounded pool and
/// the oldest is reclaimed — the same, already-touched memory — once nothing split from it
/// is held any more. (A fresh buffer per datagram cost a fifth of a loopback transfer in
/// page faults.)
#[derive(Debug)]
struct RecvSlab {
    /// Zeroed room for the next reads.
    room: BytesMut,
    /// Used-up slabs whose bytes may still be held.
    pool: Pool,
}

impl Default for RecvSlab {
    fn default() -> Self {
        RecvSlab {
            room: BytesMut::new(),
            pool: Pool::new(RECV_POOL),
        }
    }
}

impl RecvSlab {
    /// At least [`RECV_BUF`] bytes of room for a read.
    fn room(&mut self) -> &mut [u8] {
        if self.room.capacity() < RECV_BUF {
            self.pool.retire(std::mem::take(&mut self.room));
            self.room = self
                .pool
                .reclaim(RECV_SLAB)
                .unwrap_or_else(|| BytesMut::with_capacity(RECV_SLAB));
        }
        // Zeroed as it is used: what the last read took is topped up (a fresh slab's pages
        // are touched only as reads reach them).
        if self.room.len() < RECV_BUF {
            self.room.resize(RECV_BUF, 0);
        }
        &mut self.room[..RECV_BUF]
    }

    /// The first `len` bytes of the room, which a read just filled.
    fn take(&mut self, len: usize) -> Bytes {
        self.room.split_to(len.min(self.room.len())).freeze()
    }
}

/// The batching state of one UDP socket (the socket itself stays with the driver, which
/// lends it for each call as a [`UdpSockRef`]).
#[derive(Debug)]
pub struct Socket {
    state: UdpSocketState,
    /// Where reads land (one GRO read: many datagrams of one sender, coalesced).
    slab: RecvSlab,
}

impl Socket {
    /// Sets the socket up for batched IO (turns GRO on where the OS has it).
    pub fn new(socket: UdpSockRef<'_>) -> io::Result<Socket> {
        Ok(Socket {
            state: UdpSocketState::new(socket)?,
            slab: RecvSlab::default(),
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

    /// One receive call, without an engine (a driver that shares its engine behind a
    /// lock reads first, then locks to [`Socket::feed`]). `None`: an ICMP error for an
    /// earlier send, no datagram.
    pub fn read(&mut self, socket: UdpSockRef<'_>) -> io::Result<Option<Read>> {
        let mut meta = [RecvMeta::default()];
        let n = {
            let mut bufs = [IoSliceMut::new(self.slab.room())];
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
            data: self.slab.take(m.len),
            stride: m.stride.max(1),
        }))
    }

    /// Hands what [`Socket::read`] got to `engine`; returns how many datagrams.
    pub fn feed(&self, read: Read, engine: &mut Engine) -> usize {
        let count = read.data.len().div_ceil(read.stride);
        engine.receive_bytes(read.source, read.data, read.stride);
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "read" of `len` bytes of `fill` into the slab.
    fn read(slab: &mut RecvSlab, len: usize, fill: u8) -> Bytes {
        slab.room()[..len].fill(fill);
        slab.take(len)
    }

    #[test]
    fn reads_are_split_off_without_a_copy_and_held_bytes_are_never_reused() {
        let mut slab = RecvSlab::default();
        let first = read(&mut slab, 1000, 1);
        let second = read(&mut slab, 2000, 2);
        // Back to back in one slab: nothing was copied or allocated per read.
        assert_eq!(second.as_ptr(), first.as_ptr().wrapping_add(1000));
        // Fill the first slab and go on: a second slab; the first is held by `first`.
        let mut held = Vec::new();
        for i in 0..RECV_SLAB / RECV_BUF {
            held.push(read(&mut slab, RECV_BUF, 3 + i as u8));
        }
        let start = first.as_ptr();
        assert!(!held.last().unwrap().as_ptr_range().contains(&start));
        assert!(first.iter().all(|&b| b == 1) && second.iter().all(|&b| b == 2));
        // Once everything of the first slab is dropped, it is the next one used.
        drop((first, second));
        held.retain(|b| !(start..start.wrapping_add(RECV_SLAB)).contains(&b.as_ptr()));
        let mut reused = false;
        for _ in 0..RECV_SLAB / RECV_BUF + 1 {
            let b = read(&mut slab, RECV_BUF, 9);
            reused |= b.as_ptr() == start;
            held.push(b);
        }
        assert!(reused, "the first slab came back");
        // Everything still held kept its bytes.
        assert!(held.iter().all(|b| {
            let v = b[0];
            b.iter().all(|&x| x == v)
        }));
    }
}
