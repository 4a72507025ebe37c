//! The sending half of a reliable stream: a fixed-size ring buffer of bytes the application
//! wrote and the peer has not acknowledged, and the bookkeeping of which offsets were sent,
//! acknowledged, or lost and due again.
//!
//! ```text
//!  base            acked ranges…        sent                write end
//!   │ unacked / retransmit-due │ acked │ unacked │ never sent │
//!   └──────────────── ring buffer (capacity = send buffer) ─┘
//! ```
//! Everything below `base` is acknowledged and gone from the buffer. Writes copy into the
//! ring and take only what fits (back-pressure); packets copy out of it. The ring is a
//! queue of 16 KiB blocks from a pool: memory follows what is buffered (a thousand mostly
//! idle channels hold little), the channels of a stream share warm blocks, and
//! steady-state sending allocates nothing.

use alloc::collections::VecDeque;
use bytes::{BufMut, Bytes, BytesMut};
use core::ops::Range;

use super::range_set::RangeSet;

/// The size of one block of a send buffer.
const BLOCK: usize = 16 * 1024;

/// Emptied blocks kept for the next write, most recently freed first (so the block a
/// writer gets is the one most likely still in the cache). The channels of one stream share
/// one pool; a plain stream has its own.
#[derive(Debug, Default)]
pub(crate) struct BlockPool {
    blocks: alloc::vec::Vec<BytesMut>,
    max: usize,
}

impl BlockPool {
    /// A pool that keeps at most `max` blocks (the rest go back to the allocator).
    pub(crate) fn new(max: usize) -> Self {
        BlockPool {
            blocks: alloc::vec::Vec::new(),
            max,
        }
    }

    fn take(&mut self) -> BytesMut {
        self.blocks
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(BLOCK))
    }

    fn put(&mut self, mut block: BytesMut) {
        block.clear();
        // Only whole blocks are kept (an advanced tail may have lost some of its room).
        if self.blocks.len() < self.max && block.try_reclaim(BLOCK) {
            self.blocks.push(block);
        }
    }

    /// A sealed segment whose bytes were acknowledged: back into the pool if it is one of
    /// our blocks and nothing else holds it (the application's `Bytes` are just dropped).
    fn recycle(&mut self, segment: Bytes) {
        if let Ok(block) = segment.try_into_mut() {
            if block.capacity() >= BLOCK {
                self.put(block);
            }
        }
    }
}

/// A byte queue of bounded capacity, kept as a list of segments: blocks of [`BLOCK`] bytes
/// that copying writes fill (taken from a [`BlockPool`], given back once acknowledged),
/// and the application's own [`Bytes`] handed over without a copy.
///
/// Memory follows what is buffered, not the capacity, so a thousand mostly idle channels
/// hold little; a block freed by one channel's acknowledgement is the one the next writer
/// gets, so the bytes on their way stay warm in the cache; and a zero-copy write leaves the
/// bytes where the application keeps them. In steady state nothing is allocated.
#[derive(Debug, Default)]
struct Ring {
    /// Sealed segments in order, each with the ring position of its first byte.
    segments: VecDeque<(u64, Bytes)>,
    /// The block copying writes fill, after the segments; its first byte is at `tail_at`.
    tail: BytesMut,
    tail_at: u64,
    /// Ring position of the first byte held (positions count every byte ever pushed).
    front: u64,
    /// Bytes held (at most `capacity`).
    len: usize,
    /// The most bytes the ring holds (the send buffer size).
    capacity: usize,
}

impl Ring {
    fn new(capacity: usize) -> Self {
        Ring {
            capacity,
            ..Ring::default()
        }
    }

    fn free(&self) -> usize {
        self.capacity - self.len
    }

    /// The position after the last byte held.
    fn end(&self) -> u64 {
        self.front + self.len as u64
    }

    /// Ends the tail block (it becomes a sealed segment) so that a new segment can follow.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            let block = core::mem::take(&mut self.tail).freeze();
            self.segments.push_back((self.tail_at, block));
        }
        self.tail_at = self.end();
    }

    /// Appends as much of `data` as fits, copying it into blocks; returns how much.
    fn push(&mut self, data: &[u8], pool: &mut BlockPool) -> usize {
        let n = data.len().min(self.free());
        let mut rest = &data[..n];
        while !rest.is_empty() {
            let room = self.tail.capacity() - self.tail.len();
            if room == 0 {
                self.seal();
                self.tail = pool.take();
                continue;
            }
            let take = room.min(rest.len());
            self.tail.extend_from_slice(&rest[..take]);
            self.len += take;
            rest = &rest[take..];
        }
        n
    }

    /// Appends as much of `data` as fits without copying it; returns how much.
    fn push_bytes(&mut self, mut data: Bytes) -> usize {
        let n = data.len().min(self.free());
        data.truncate(n);
        if n > 0 {
            self.seal();
            self.segments.push_back((self.tail_at, data));
            self.len += n;
            self.tail_at = self.end();
        }
        n
    }

    /// Drops the first `n` bytes; emptied blocks go back to the pool.
    fn consume(&mut self, n: usize, pool: &mut BlockPool) {
        let n = n.min(self.len);
        self.len -= n;
        self.front += n as u64;
        while let Some((at, seg)) = self.segments.front() {
            if at + seg.len() as u64 > self.front {
                break;
            }
            if let Some((_, seg)) = self.segments.pop_front() {
                pool.recycle(seg);
            }
        }
        if self.front > self.tail_at {
            // Into the tail block: drop its consumed prefix in place.
            let k = ((self.front - self.tail_at) as usize).min(self.tail.len());
            bytes::Buf::advance(&mut self.tail, k);
            self.tail_at += k as u64;
        }
        if self.len == 0 && self.tail.capacity() < BLOCK / 2 {
            // Nearly used up by consumed prefixes: a fresh block next time.
            let tail = core::mem::take(&mut self.tail);
            pool.put(tail);
        }
    }

    /// Appends bytes `[at, at + len)` (relative to the first byte held) to `out`.
    fn copy_out(&self, at: usize, len: usize, out: &mut BytesMut) {
        debug_assert!(at + len <= self.len);
        let mut pos = self.front + at as u64;
        let mut left = len;
        // The segment holding `pos`: the last one starting at or before it.
        let mut i = self
            .segments
            .partition_point(|&(start, _)| start <= pos)
            .saturating_sub(1);
        while left > 0 {
            let (start, seg, in_tail): (u64, &[u8], bool) = match self.segments.get(i) {
                Some((start, seg)) if *start <= pos => (*start, seg, false),
                _ => (self.tail_at, &self.tail, true),
            };
            let from = (pos - start) as usize;
            let avail = seg.len().saturating_sub(from);
            if avail == 0 {
                // `pos` is where this piece ends: the data goes on in the next one.
                if in_tail {
                    return;
                }
                i += 1;
                continue;
            }
            let take = left.min(avail);
            out.put_slice(&seg[from..from + take]);
            pos += take as u64;
            left -= take;
            i += 1;
        }
    }

    /// Bytes of memory the ring holds now (blocks counted whole).
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.segments.len() * BLOCK + self.tail.capacity()
    }
}

/// What a write hands over: bytes to copy into the send buffer, or the application's own
/// [`Bytes`], kept as they are (no copy; the send path copies from them into packets).
#[derive(Clone, Debug)]
pub(crate) enum Payload<'a> {
    /// Copy these bytes.
    Copy(&'a [u8]),
    /// Keep these bytes.
    Owned(Bytes),
}

impl Payload<'_> {
    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Copy(data) => data,
            Payload::Owned(data) => data,
        }
    }
}

/// A chunk of the stream to put in a STREAM frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) offset: u64,
    pub(crate) len: usize,
    pub(crate) fin: bool,
    /// Bytes beyond anything sent before (they count against flow control).
    pub(crate) new_bytes: usize,
}

/// The sending half of a reliable stream.
#[derive(Debug)]
pub(crate) struct SendStream {
    ring: Ring,
    /// Blocks for `write` / `on_acked` (the `_pooled` variants use a shared pool instead).
    own_pool: BlockPool,
    /// Offset of the ring's first byte; everything below is acknowledged.
    base: u64,
    /// Everything below has been sent at least once.
    sent: u64,
    /// Lost ranges to send again, below `sent`.
    retransmit: RangeSet,
    /// Acknowledged ranges above `base`.
    acked: RangeSet,
    /// The final size, once the application closed the stream.
    fin: Option<u64>,
    fin_sent: bool,
    fin_acked: bool,
    /// The peer's credit: we may send offsets below this.
    pub(crate) max_data: u64,
}

impl SendStream {
    pub(crate) fn new(buffer: usize, initial_credit: u64) -> Self {
        SendStream {
            ring: Ring::new(buffer),
            own_pool: BlockPool::new(buffer.div_ceil(BLOCK)),
            base: 0,
            sent: 0,
            retransmit: RangeSet::default(),
            acked: RangeSet::default(),
            fin: None,
            fin_sent: false,
            fin_acked: false,
            max_data: initial_credit,
        }
    }

    /// The stream offset after the last byte written.
    pub(crate) fn write_end(&self) -> u64 {
        self.base + self.ring.len as u64
    }

    /// Room in the send buffer.
    pub(crate) fn free(&self) -> usize {
        if self.fin.is_some() {
            0
        } else {
            self.ring.free()
        }
    }

    /// Takes as much of `data` as fits the buffer; returns how much.
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        self.write_payload(Payload::Copy(data))
    }

    /// Takes as much of `data` as fits the buffer (copied, or kept without a copy);
    /// returns how much.
    pub(crate) fn write_payload(&mut self, data: Payload<'_>) -> usize {
        let mut pool = core::mem::take(&mut self.own_pool);
        let n = self.write_pooled(data, &mut pool);
        self.own_pool = pool;
        n
    }

    /// [`Self::write_payload`] with blocks from a shared pool.
    pub(crate) fn write_pooled(&mut self, data: Payload<'_>, pool: &mut BlockPool) -> usize {
        if self.fin.is_some() {
            return 0;
        }
        match data {
            Payload::Copy(data) => self.ring.push(data, pool),
            Payload::Owned(data) => self.ring.push_bytes(data),
        }
    }

    /// No more writes: a FIN follows the data.
    pub(crate) fn finish(&mut self) {
        if self.fin.is_none() {
            self.fin = Some(self.write_end());
        }
    }

    pub(crate) fn is_finishing(&self) -> bool {
        self.fin.is_some()
    }

    /// Everything written has been acknowledged (nothing buffered).
    pub(crate) fn all_acked(&self) -> bool {
        self.ring.len == 0
    }

    /// All data and the FIN are acknowledged.
    pub(crate) fn is_done(&self) -> bool {
        self.fin_acked && self.ring.len == 0
    }

    /// Whether there is something to send (retransmission, new data within `credit` new
    /// bytes of connection-level flow control, or a FIN).
    pub(crate) fn wants_to_send(&self, conn_credit: u64) -> bool {
        !self.retransmit.is_empty()
            || (self.sent < self.write_end() && self.sent < self.max_data && conn_credit > 0)
            || (self.fin == Some(self.sent) && !self.fin_sent)
    }

    /// Whether new data waits only for the peer's stream credit.
    pub(crate) fn blocked_by_peer(&self) -> bool {
        self.retransmit.is_empty() && self.sent < self.write_end() && self.sent >= self.max_data
    }

    /// The next chunk to send, at most `max_len` bytes, with at most `conn_credit` new
    /// bytes. Retransmissions go first. Marks it sent.
    pub(crate) fn next_chunk(&mut self, max_len: usize, conn_credit: u64) -> Option<Chunk> {
        if let Some(r) = self.retransmit.pop_front(max_len as u64) {
            let len = (r.end - r.start) as usize;
            let fin = self.fin == Some(r.end) && self.sent == r.end;
            if fin {
                self.fin_sent = true;
            }
            return Some(Chunk {
                offset: r.start,
                len,
                fin,
                new_bytes: 0,
            });
        }
        let limit = self
            .write_end()
            .min(self.max_data)
            .min(self.sent.saturating_add(conn_credit));
        let len = (limit.saturating_sub(self.sent) as usize).min(max_len);
        let fin = self.fin.is_some_and(|f| self.sent + len as u64 == f);
        if len == 0 && (!fin || self.fin_sent) {
            return None;
        }
        let chunk = Chunk {
            offset: self.sent,
            len,
            fin,
            new_bytes: len,
        };
        self.sent += len as u64;
        if fin {
            self.fin_sent = true;
        }
        Some(chunk)
    }

    /// Copies the bytes of a chunk (previously returned by `next_chunk`) into `out`.
    pub(crate) fn copy_chunk(&self, offset: u64, len: usize, out: &mut BytesMut) {
        self.ring.copy_out((offset - self.base) as usize, len, out);
    }

    /// The peer acknowledged `[offset, offset + len)` (and the FIN, if `fin`).
    pub(crate) fn on_acked(&mut self, offset: u64, len: usize, fin: bool) {
        let mut pool = core::mem::take(&mut self.own_pool);
        self.on_acked_pooled(offset, len, fin, &mut pool);
        self.own_pool = pool;
    }

    /// [`Self::on_acked`] giving emptied blocks to a shared pool.
    pub(crate) fn on_acked_pooled(
        &mut self,
        offset: u64,
        len: usize,
        fin: bool,
        pool: &mut BlockPool,
    ) {
        if fin {
            self.fin_acked = true;
        }
        let r = offset.max(self.base)..offset + len as u64;
        if r.start >= r.end {
            return;
        }
        self.acked.insert(r.clone());
        self.retransmit.remove(r);
        // Release the acknowledged prefix.
        if let Some(first) = self.acked.first() {
            if first.start <= self.base {
                let advance = first.end - self.base;
                self.ring.consume(advance as usize, pool);
                self.base = first.end;
                self.acked.remove_below(self.base);
            }
        }
    }

    /// `[offset, offset + len)` (and the FIN, if `fin`) may be lost: send it again, except
    /// what has been acknowledged since.
    pub(crate) fn on_lost(&mut self, offset: u64, len: usize, fin: bool) {
        // A lost FIN is sent again: bare if its data made it, else with the last range.
        if fin && !self.fin_acked {
            self.fin_sent = false;
        }
        let r: Range<u64> = offset.max(self.base)..offset + len as u64;
        if r.start >= r.end {
            return;
        }
        self.retransmit.insert(r);
        for acked in self.acked.iter() {
            self.retransmit.remove(acked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn bytes(s: &SendStream, c: Chunk) -> Vec<u8> {
        let mut out = BytesMut::new();
        s.copy_chunk(c.offset, c.len, &mut out);
        out.to_vec()
    }

    #[test]
    fn writes_take_what_fits_and_acks_free_room() {
        let mut s = SendStream::new(10, 1000);
        assert_eq!(s.write(b"0123456789abc"), 10);
        assert_eq!(s.free(), 0);
        let c = s.next_chunk(4, 100).unwrap();
        assert_eq!((c.offset, c.len, c.fin), (0, 4, false));
        assert_eq!(bytes(&s, c), b"0123");
        s.on_acked(0, 4, false);
        assert_eq!(s.free(), 4);
        assert_eq!(s.write(b"abcdef"), 4);
        // The ring wraps; the next chunks read across the wrap.
        let c = s.next_chunk(100, 100).unwrap();
        assert_eq!((c.offset, c.len), (4, 10));
        assert_eq!(bytes(&s, c), b"456789abcd");
    }

    #[test]
    fn the_ring_keeps_the_bytes_in_order_whatever_the_writes() {
        // Random copying and zero-copy writes and in-order acks against a model: blocks
        // fill, seal and recycle, the tail is consumed in place, and every chunk still
        // reads back the bytes written.
        let mut s = SendStream::new(100_000, u64::MAX);
        let mut model: Vec<u8> = Vec::new();
        let mut acked = 0usize;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        for round in 0..600 {
            let n = next(6000);
            let data: Vec<u8> = (0..n).map(|i| (round * 31 + i) as u8).collect();
            let took = if next(3) == 0 {
                s.write_payload(Payload::Owned(Bytes::from(data.clone())))
            } else {
                s.write(&data)
            };
            assert_eq!(took, n.min(100_000 - (model.len() - acked)));
            model.extend_from_slice(&data[..took]);
            while let Some(c) = s.next_chunk(1 + next(1500), u64::MAX) {
                let at = c.offset as usize;
                assert_eq!(bytes(&s, c), &model[at..at + c.len]);
            }
            // Read back anything still held, at a random place.
            let held = model.len() - acked;
            if held > 0 {
                let from = next(held);
                let len = 1 + next(held - from);
                let mut out = BytesMut::new();
                s.copy_chunk((acked + from) as u64, len, &mut out);
                assert_eq!(&out[..], &model[acked + from..acked + from + len]);
            }
            let ack = next(held + 1);
            s.on_acked(acked as u64, ack, false);
            acked += ack;
        }
        assert!(s.ring.allocated() <= 100_000 + 4 * BLOCK + 600 * 6000);
    }

    #[test]
    fn lost_ranges_go_first_minus_what_was_acked() {
        let mut s = SendStream::new(100, 1000);
        s.write(&[7; 30]);
        let a = s.next_chunk(10, 100).unwrap();
        let b = s.next_chunk(10, 100).unwrap();
        let _c = s.next_chunk(10, 100).unwrap();
        s.on_acked(b.offset, b.len, false);
        s.on_lost(0, 20, false); // a packet covering a and (already acked) b
        let r = s.next_chunk(100, 100).unwrap();
        assert_eq!((r.offset, r.len, r.new_bytes), (a.offset, 10, 0));
        assert!(s.next_chunk(100, 100).is_none());
    }

    #[test]
    fn flow_control_limits_new_data() {
        let mut s = SendStream::new(100, 15);
        s.write(&[1; 50]);
        assert_eq!(s.next_chunk(100, 100).unwrap().len, 15);
        assert!(s.blocked_by_peer());
        assert!(s.next_chunk(100, 100).is_none());
        s.max_data = 40;
        assert_eq!(s.next_chunk(100, 3).unwrap().len, 3, "connection credit");
    }

    #[test]
    fn fin_is_sent_acked_and_resent_if_lost() {
        let mut s = SendStream::new(100, 1000);
        s.write(b"hello");
        s.finish();
        assert_eq!(s.write(b"more"), 0);
        let c = s.next_chunk(100, 100).unwrap();
        assert!(c.fin);
        s.on_lost(c.offset, c.len, c.fin);
        let again = s.next_chunk(100, 100).unwrap();
        assert_eq!((again.offset, again.len, again.fin), (0, 5, true));
        s.on_acked(0, 5, true);
        assert!(s.is_done());
        // An empty stream closes with a bare FIN.
        let mut e = SendStream::new(100, 1000);
        e.finish();
        let c = e.next_chunk(100, 100).unwrap();
        assert_eq!((c.len, c.fin), (0, true));
        e.on_acked(0, 0, true);
        assert!(e.is_done());
    }
}
