//! A slab allocator for packet buffers: bytes are written into one large buffer and split
//! off as [`Bytes`], so that building (or receiving, or decrypting) packets allocates a
//! slab now and then instead of a buffer per packet.
//!
//! Used-up slabs are kept in a bounded pool; once everything split from the oldest one is
//! dropped, it is reclaimed — the same, already-touched memory — so a steady flow does not
//! allocate at all. (A fresh buffer per datagram costs more than its copy: the allocator
//! hands back memory it returned to the OS, and every page faults in again.)
//!
//! ```
//! use carrier_proto::slab::Slab;
//!
//! let mut slab = Slab::new(4096, 8);
//! slab.reserve(5);
//! slab.buf().extend_from_slice(b"hello");
//! let packet = slab.split();
//! assert_eq!(&packet[..], b"hello");
//! ```

use alloc::collections::VecDeque;
use bytes::{Bytes, BytesMut};

/// Packet buffers split off large shared allocations (see the [module](self) docs).
#[derive(Debug)]
pub struct Slab {
    buf: BytesMut,
    /// Used-up slabs whose bytes may still be held.
    pool: Pool,
    /// Bytes allocated at a time (more when one write needs more).
    size: usize,
}

/// Used-up slabs waiting for everything split from them to be dropped, oldest first, at
/// most a given number (the oldest is let go beyond that).
#[derive(Debug)]
pub struct Pool {
    slabs: VecDeque<BytesMut>,
    max: usize,
}

impl Pool {
    /// A pool of at most `max` slabs.
    pub fn new(max: usize) -> Pool {
        Pool {
            slabs: VecDeque::new(),
            max,
        }
    }

    /// Keeps a used-up slab (whatever is left of it) for reuse.
    pub fn retire(&mut self, slab: BytesMut) {
        if slab.capacity() == 0 || self.max == 0 {
            return;
        }
        if self.slabs.len() >= self.max {
            self.slabs.pop_front();
        }
        self.slabs.push_back(slab);
    }

    /// The oldest slab as an empty buffer of at least `size` bytes of capacity, if nothing
    /// split from it is held any more (its memory is reused in place, no allocation).
    pub fn reclaim(&mut self, size: usize) -> Option<BytesMut> {
        let mut oldest = self.slabs.pop_front()?;
        oldest.clear();
        if oldest.try_reclaim(size) {
            return Some(oldest);
        }
        self.slabs.push_front(oldest);
        None
    }
}

impl Slab {
    /// Slabs of `size` bytes; at most `max_pool` used-up ones are kept for reuse (so at
    /// most `size · max_pool` bytes are held for reuse beyond what callers hold).
    pub fn new(size: usize, max_pool: usize) -> Slab {
        Slab {
            buf: BytesMut::new(),
            pool: Pool::new(max_pool),
            size,
        }
    }

    /// Room for at least `one` more bytes in [`Slab::buf`]. When short, a whole slab is
    /// taken: the oldest pooled one if everything split from it is dropped, else a new one.
    /// Bytes written but not yet split are kept.
    pub fn reserve(&mut self, one: usize) {
        if self.buf.capacity() - self.buf.len() >= one {
            return;
        }
        let pending = self.buf.len();
        let size = self.size.max(one + pending);
        let old = core::mem::take(&mut self.buf);
        let mut next = self
            .pool
            .reclaim(size)
            .unwrap_or_else(|| BytesMut::with_capacity(size));
        next.extend_from_slice(&old);
        self.pool.retire(old);
        self.buf = next;
    }

    /// The buffer to write into (call [`Slab::reserve`] first).
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// What was written since the last split, as one [`Bytes`].
    pub fn split(&mut self) -> Bytes {
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slab_is_reused_once_its_bytes_are_dropped_and_not_before() {
        let mut slab = Slab::new(1000, 4);
        slab.reserve(600);
        slab.buf().extend_from_slice(&[1; 600]);
        let first = slab.split();
        let start = first.as_ptr();
        // 600 more do not fit the first slab's 400 left: a second slab.
        slab.reserve(600);
        slab.buf().extend_from_slice(&[2; 600]);
        let second = slab.split();
        assert!(!first.as_ptr_range().contains(&second.as_ptr()));
        drop(first);
        // The first slab is free again: the third write reuses its memory.
        slab.reserve(600);
        slab.buf().extend_from_slice(&[3; 600]);
        let third = slab.split();
        assert_eq!(third.as_ptr(), start, "reclaimed");
        assert_eq!(
            (&second[..], &third[..]),
            (&[2u8; 600][..], &[3u8; 600][..])
        );
        // Held bytes are never reused: the second slab stays as it was.
        slab.reserve(900);
        slab.buf().extend_from_slice(&[4; 900]);
        assert!(second.iter().all(|&b| b == 2));
    }

    #[test]
    fn unsplit_bytes_survive_a_new_slab_and_big_writes_get_a_big_one() {
        let mut slab = Slab::new(100, 2);
        slab.reserve(60);
        slab.buf().extend_from_slice(&[7; 60]);
        slab.reserve(5000);
        slab.buf().extend_from_slice(&[8; 5000]);
        let all = slab.split();
        assert_eq!(all.len(), 5060);
        assert!(all[..60].iter().all(|&b| b == 7) && all[60..].iter().all(|&b| b == 8));
    }
}
