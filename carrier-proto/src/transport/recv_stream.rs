//! The receiving half of a reliable stream: reassembly of out-of-order data, in-order
//! delivery, the final size, and the flow-control credit we grant.
//!
//! In-order data is delivered as zero-copy slices of the received datagrams. Data that
//! arrives ahead of a gap waits in `segments` (also slices, so no copy), bounded in bytes by
//! the credit we granted and in count by `max_segments` (a peer sending 1-byte segments
//! cannot pin unbounded datagram memory: past the limit a segment is refused with
//! [`RecvError::Busy`], and the session then leaves the whole packet unacknowledged, so
//! the peer sends it again: nothing is lost).

use alloc::collections::BTreeMap;
use bytes::Bytes;

/// Why a STREAM frame was refused (the peer broke the protocol): the frame is ignored and
/// counted; the rest of its packet is still processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// Data beyond the credit we granted.
    FlowControl,
    /// Data beyond, or a FIN that contradicts, the final size.
    FinalSize,
    /// Out-of-order data with no room to hold it: not taken. The packet must not be
    /// acknowledged, so that the peer sends the data again.
    Busy,
}

/// The receiving half of a reliable stream.
#[derive(Debug)]
pub(crate) struct RecvStream {
    /// Bytes delivered to the application, in order.
    delivered: u64,
    /// Data ahead of `delivered`, keyed by offset; no two overlap.
    segments: BTreeMap<u64, Bytes>,
    max_segments: usize,
    final_size: Option<u64>,
    /// The end-of-stream was reported.
    finished: bool,
    /// Bytes the application has taken out of the event queue.
    consumed: u64,
    /// The credit we granted: the peer may send offsets below this.
    pub(crate) max_data: u64,
    window: u64,
}

impl RecvStream {
    pub(crate) fn new(window: u64, max_segments: usize) -> Self {
        RecvStream {
            delivered: 0,
            segments: BTreeMap::new(),
            max_segments,
            final_size: None,
            finished: false,
            consumed: 0,
            max_data: window,
            window,
        }
    }

    /// Takes a STREAM frame's data; calls `deliver` with each in-order piece now available.
    /// Returns whether the stream's end was reached by this frame.
    pub(crate) fn on_data(
        &mut self,
        offset: u64,
        data: Bytes,
        fin: bool,
        mut deliver: impl FnMut(Bytes),
    ) -> Result<bool, RecvError> {
        let end = offset + data.len() as u64;
        if end > self.max_data {
            return Err(RecvError::FlowControl);
        }
        match self.final_size {
            Some(f) if end > f || (fin && end != f) => return Err(RecvError::FinalSize),
            None if fin && self.highest_seen() > end => return Err(RecvError::FinalSize),
            _ => {}
        }
        if fin {
            self.final_size = Some(end);
        }
        // Trim what was delivered already.
        let data = if offset < self.delivered {
            let skip = (self.delivered - offset).min(data.len() as u64) as usize;
            data.slice(skip..)
        } else {
            data
        };
        let offset = offset.max(self.delivered);
        if !data.is_empty() {
            if offset == self.delivered {
                self.delivered += data.len() as u64;
                deliver(data);
                self.drain(&mut deliver);
            } else if !self.store(offset, data) {
                return Err(RecvError::Busy);
            }
        }
        Ok(self.check_finished())
    }

    fn highest_seen(&self) -> u64 {
        self.segments
            .iter()
            .next_back()
            .map_or(self.delivered, |(o, d)| o + d.len() as u64)
    }

    /// Keeps out-of-order data: every part of it that no segment holds yet, cut around the
    /// segments already there, so segments never overlap. (A retransmission may coalesce
    /// ranges the receiver holds in pieces with bytes it lacks, beyond them: those bytes
    /// must be kept, since the packet is acknowledged.) Returns false if new data had to
    /// be refused (no room for another segment); what was stored stays.
    fn store(&mut self, offset: u64, data: Bytes) -> bool {
        let end = offset + data.len() as u64;
        let mut at = offset;
        if let Some((&o, d)) = self.segments.range(..=at).next_back() {
            at = at.max(o + d.len() as u64);
        }
        while at < end {
            let next = self
                .segments
                .range(at..)
                .next()
                .map(|(&o, d)| (o, o + d.len() as u64));
            let gap_end = next.map_or(end, |(o, _)| o.min(end));
            if gap_end > at {
                if self.segments.len() >= self.max_segments {
                    return false;
                }
                let piece = data.slice((at - offset) as usize..(gap_end - offset) as usize);
                self.segments.insert(at, piece);
            }
            match next {
                Some((o, e)) if o < end => at = e,
                _ => break,
            }
        }
        true
    }

    fn drain(&mut self, deliver: &mut impl FnMut(Bytes)) {
        while let Some(entry) = self.segments.first_entry() {
            let o = *entry.key();
            if o > self.delivered {
                break;
            }
            let d = entry.remove();
            let end = o + d.len() as u64;
            if end > self.delivered {
                let piece = d.slice((self.delivered - o) as usize..);
                self.delivered = end;
                deliver(piece);
            }
        }
    }

    fn check_finished(&mut self) -> bool {
        if !self.finished && self.final_size == Some(self.delivered) {
            self.finished = true;
            return true;
        }
        false
    }

    /// All data up to the FIN has been delivered.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// The application took `n` delivered bytes. Returns a new credit to advertise when
    /// the remaining credit fell below half a window.
    pub(crate) fn on_consumed(&mut self, n: u64) -> Option<u64> {
        self.consumed = (self.consumed + n).min(self.delivered);
        if self.final_size.is_some() {
            return None;
        }
        let target = self.consumed + self.window;
        if target - self.max_data.min(target) >= self.window / 2 {
            self.max_data = target;
            return Some(target);
        }
        None
    }

    /// Bytes delivered in order so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Out-of-order segments held.
    pub(crate) fn buffered_segments(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn a_segment_spanning_held_pieces_keeps_the_bytes_beyond_them() {
        // The receiver holds 100..200 and 200..210 out of order; a retransmission that
        // coalesced them with 210..220 must not lose 210..220 (its packet is acknowledged).
        let mut r = RecvStream::new(1 << 20, 64);
        let data: Vec<u8> = (0..220u32).map(|i| i as u8).collect();
        let whole = Bytes::from(data.clone());
        let mut got = Vec::new();
        let mut take = |b: Bytes| got.extend_from_slice(&b);
        r.on_data(100, whole.slice(100..200), false, &mut take)
            .unwrap();
        r.on_data(200, whole.slice(200..210), false, &mut take)
            .unwrap();
        r.on_data(90, whole.slice(90..220), false, &mut take)
            .unwrap();
        r.on_data(0, whole.slice(0..90), false, &mut take).unwrap();
        assert_eq!(r.delivered(), 220);
        assert_eq!(got, data);
    }

    #[test]
    fn gaps_between_many_held_pieces_are_all_filled() {
        let mut r = RecvStream::new(1 << 20, 64);
        let whole = Bytes::from((0..100u8).collect::<Vec<u8>>());
        let mut got = Vec::new();
        let mut take = |b: Bytes| got.extend_from_slice(&b);
        for (a, b) in [(10, 20), (30, 40), (50, 60)] {
            r.on_data(a, whole.slice(a as usize..b), false, &mut take)
                .unwrap();
        }
        r.on_data(5, whole.slice(5..70), false, &mut take).unwrap();
        assert_eq!(
            r.buffered_segments(),
            7,
            "three held and the four gaps around them"
        );
        r.on_data(0, whole.slice(0..5), false, &mut take).unwrap();
        assert_eq!(r.delivered(), 70);
        assert_eq!(got, whole[..70].to_vec());
    }

    fn run(r: &mut RecvStream, offset: u64, data: &[u8], fin: bool) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let done = r
            .on_data(offset, Bytes::copy_from_slice(data), fin, |b| {
                out.extend_from_slice(&b)
            })
            .unwrap();
        (out, done)
    }

    #[test]
    fn out_of_order_data_past_the_segment_limit_is_refused_not_lost() {
        let mut r = RecvStream::new(1 << 20, 2);
        let mut got = Vec::new();
        let mut take = |b: Bytes| got.extend_from_slice(&b);
        assert_eq!(
            r.on_data(10, Bytes::from_static(b"b"), false, &mut take),
            Ok(false)
        );
        assert_eq!(
            r.on_data(20, Bytes::from_static(b"c"), false, &mut take),
            Ok(false)
        );
        assert_eq!(
            r.on_data(30, Bytes::from_static(b"d"), false, &mut take),
            Err(RecvError::Busy)
        );
        // Data already held, or in order, is still taken.
        assert_eq!(
            r.on_data(10, Bytes::from_static(b"b"), false, &mut take),
            Ok(false)
        );
        assert_eq!(
            r.on_data(0, Bytes::from_static(b"aaaaaaaaaa"), false, &mut take),
            Ok(false)
        );
        assert_eq!(r.buffered_segments(), 1);
        // The refused segment comes again and fits now.
        assert_eq!(
            r.on_data(30, Bytes::from_static(b"d"), false, &mut take),
            Ok(false)
        );
    }

    #[test]
    fn reassembles_out_of_order_and_overlapping_data() {
        let mut r = RecvStream::new(1000, 16);
        assert_eq!(run(&mut r, 5, b"56789", false).0, b"");
        assert_eq!(run(&mut r, 3, b"3456", false).0, b"");
        assert_eq!(r.buffered_segments(), 2);
        assert_eq!(
            run(&mut r, 0, b"012", false).0,
            b"3456789".iter().fold(b"012".to_vec(), |mut v, b| {
                v.push(*b);
                v
            })
        );
        // Duplicates deliver nothing.
        assert_eq!(run(&mut r, 0, b"0123", false).0, b"");
        let (out, done) = run(&mut r, 10, b"ab", true);
        assert_eq!((out, done), (b"ab".to_vec(), true));
        assert!(r.is_finished());
    }

    #[test]
    fn limits_are_enforced() {
        let mut r = RecvStream::new(10, 2);
        let e = r.on_data(5, Bytes::from_static(b"123456"), false, |_| {});
        assert_eq!(e, Err(RecvError::FlowControl));
        run(&mut r, 2, b"a", false);
        run(&mut r, 4, b"b", false);
        // Over the segment limit: refused (the packet goes unacknowledged, so it is resent).
        let e = r.on_data(6, Bytes::from_static(b"c"), false, |_| {});
        assert_eq!(e, Err(RecvError::Busy));
        assert_eq!(r.buffered_segments(), 2);
        run(&mut r, 0, b"xy", false);
        assert!(
            r.on_data(0, Bytes::from_static(b"xyz"), true, |_| {})
                .is_err(),
            "fin below data seen"
        );
    }

    #[test]
    fn credit_is_renewed_at_half_a_window() {
        let mut r = RecvStream::new(100, 16);
        run(&mut r, 0, &[0; 60], false);
        assert_eq!(r.on_consumed(40), None);
        assert_eq!(r.on_consumed(20), Some(160));
        assert_eq!(r.max_data, 160);
    }
}
