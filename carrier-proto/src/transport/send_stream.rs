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
//! ring and take only what fits (back-pressure); packets copy out of it, so steady-state
//! sending allocates nothing. The ring's memory grows on demand (doubling, from 4 KiB) up to
//! its capacity, so a thousand mostly idle channels do not each hold a full buffer.

use alloc::vec::Vec;
use bytes::{BufMut, BytesMut};
use core::ops::Range;

use super::range_set::RangeSet;

/// The first allocation of a ring that is written to.
const RING_MIN: usize = 4096;

/// A byte ring of bounded capacity; `buf` grows towards it as needed.
#[derive(Debug, Default)]
struct Ring {
    buf: Vec<u8>,
    /// The most `buf` may grow to (the send buffer size).
    capacity: usize,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(capacity: usize) -> Self {
        Ring {
            buf: Vec::new(),
            capacity,
            head: 0,
            len: 0,
        }
    }

    fn free(&self) -> usize {
        self.capacity - self.len
    }

    /// Grows `buf` (doubling, within `capacity`) until `need` bytes fit, unrolling the ring
    /// so the data starts at 0 again.
    fn reserve(&mut self, need: usize) {
        let have = self.buf.len();
        if need <= have || have >= self.capacity {
            return;
        }
        let mut size = have.max(RING_MIN);
        while size < need {
            size = size.saturating_mul(2);
        }
        let size = size.min(self.capacity);
        let mut grown = Vec::with_capacity(size);
        if self.len > 0 {
            let first = self.len.min(have - self.head);
            grown.extend_from_slice(&self.buf[self.head..self.head + first]);
            grown.extend_from_slice(&self.buf[..self.len - first]);
        }
        grown.resize(size, 0);
        self.buf = grown;
        self.head = 0;
    }

    /// Appends as much of `data` as fits; returns how much.
    fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.reserve(self.len + n);
        let size = self.buf.len();
        let tail = (self.head + self.len) % size;
        let first = n.min(size - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % self.buf.len().max(1);
        self.len -= n;
    }

    /// Appends bytes `[at, at + len)` (relative to the head) to `out`.
    fn copy_out(&self, at: usize, len: usize, out: &mut BytesMut) {
        debug_assert!(at + len <= self.len);
        if len == 0 {
            return;
        }
        let size = self.buf.len();
        let start = (self.head + at) % size;
        let first = len.min(size - start);
        out.put_slice(&self.buf[start..start + first]);
        out.put_slice(&self.buf[..len - first]);
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
        if self.fin.is_some() {
            return 0;
        }
        self.ring.push(data)
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
                self.ring.consume(advance as usize);
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
    fn the_ring_grows_on_demand_and_keeps_the_bytes_in_order() {
        // Random writes and in-order acks against a model: the ring wraps and grows (from
        // 4 KiB towards 100 KB) and every chunk still reads back the bytes written.
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
        for round in 0..400 {
            let n = next(6000);
            let data: Vec<u8> = (0..n).map(|i| (round * 31 + i) as u8).collect();
            let took = s.write(&data);
            assert_eq!(took, n.min(100_000 - (model.len() - acked)));
            model.extend_from_slice(&data[..took]);
            while let Some(c) = s.next_chunk(1500, u64::MAX) {
                let at = c.offset as usize;
                assert_eq!(bytes(&s, c), &model[at..at + c.len]);
            }
            let ack = next(model.len() - acked + 1);
            s.on_acked(acked as u64, ack, false);
            acked += ack;
        }
        assert!(s.ring.buf.len() <= 100_000);
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
