//! Received packet numbers, and the ACK frame that reports them (RFC 9000 §13.2, §19.3).
//!
//! [`AckRanges`] is the receiver's record: which packet numbers arrived, as ranges, so that
//! a replayed or duplicated packet is not processed twice and the next ACK can be built. The
//! ACK frame body is QUIC's, field for field (the caller writes the frame type byte):
//!
//! ```text
//! largest(v) ack_delay(v) range_count(v) first_range(v) [gap(v) range_len(v)]*
//! ```
//!
//! with `(v)` a [`varint`], `first_range` = largest − smallest of the top range,
//! and per further range (descending) `gap` = previous smallest − this largest − 2 and
//! `range_len` = this largest − this smallest. `ack_delay` is in microseconds (QUIC scales it
//! by an `ack_delay_exponent`; Carrier has no transport parameters, so it is fixed at 0).
//! `range_count` counts the ranges after the first.

use alloc::collections::VecDeque;
use core::ops::RangeInclusive;

use bytes::BytesMut;

use super::varint;
use crate::packet::PacketError;

/// The set of received packet numbers, as sorted, disjoint, non-adjacent inclusive ranges,
/// keeping at most `max_ranges` of them.
///
/// # What counts as new
/// Besides the ranges there is a `floor`: every packet number below it is treated as already
/// received, whether it was or not, because the record of it is gone. [`insert`] refuses
/// (returns `false`) anything below the floor, so a forgotten packet replayed by the network
/// or an attacker is never processed twice (RFC 9000 §13.2.3's "minimum packet number").
/// Refusing a packet that was in fact lost and only arrives very late is safe: it was never
/// acknowledged, so the sender declares it lost and sends its frames again in a new packet.
///
/// The floor rises in two ways:
/// - [`remove_below(pn)`](Self::remove_below): to `pn`;
/// - the bound: when a new range would make more than `max_ranges`, the lowest is dropped and
///   the floor rises to the start of the lowest range that remains (so the gap below it,
///   whose packets we can no longer tell apart from those of the dropped range, is closed
///   too). If the new range would itself be the lowest, it is the one that cannot be kept:
///   the insert is refused and nothing changes.
///
/// Packet numbers above [`varint::MAX`] are refused as well: an ACK frame cannot name them,
/// and refusing them keeps `pn + 1` from overflowing.
///
/// [`insert`]: Self::insert
#[derive(Clone, Debug)]
pub(crate) struct AckRanges {
    /// `(smallest, largest)` pairs, ascending; between two ranges at least one number is
    /// missing (touching ranges are merged).
    ranges: VecDeque<(u64, u64)>,
    /// At least 1 (a set that keeps no range could not acknowledge anything).
    max_ranges: usize,
    /// Packet numbers below this are treated as received. Never above the lowest range's start.
    floor: u64,
    /// How many ranges the bound has dropped so far.
    dropped: u64,
}

impl AckRanges {
    /// An empty set keeping at most `max_ranges` ranges (0 is taken as 1).
    pub(crate) fn new(max_ranges: usize) -> Self {
        AckRanges {
            ranges: VecDeque::new(),
            max_ranges: max_ranges.max(1),
            floor: 0,
            dropped: 0,
        }
    }

    /// Records `pn` as received. Returns `true` if the packet is new and recorded (process
    /// it), `false` if it must be ignored: a duplicate, below the floor, above
    /// [`varint::MAX`], or refused by the bound (see the type's docs).
    ///
    /// O(1) when `pn` extends or follows the top range (packets arriving in order), O(number
    /// of ranges) otherwise.
    pub(crate) fn insert(&mut self, pn: u64) -> bool {
        if pn < self.floor || pn > varint::MAX {
            return false;
        }
        // Fast path: the in-order case. `hi <= varint::MAX`, so `hi + 1` cannot overflow.
        match self.ranges.back_mut() {
            None => {
                self.ranges.push_back((pn, pn));
                return true;
            }
            Some((_, hi)) if pn == *hi + 1 => {
                *hi = pn;
                return true;
            }
            Some((_, hi)) if pn > *hi + 1 => {
                self.ranges.push_back((pn, pn));
                self.enforce_bound();
                return true;
            }
            Some(_) => {}
        }
        // `pn` is at or below the top range's largest, so some range ends at or above it.
        let i = self.ranges.partition_point(|&(_, hi)| hi < pn);
        let Some(&(lo, _)) = self.ranges.get(i) else {
            return false; // unreachable: see above
        };
        if lo <= pn {
            return false;
        }
        let joins_next = pn + 1 == lo;
        let joins_prev = i
            .checked_sub(1)
            .and_then(|p| self.ranges.get(p))
            .is_some_and(|&(_, hi)| hi + 1 == pn);
        match (joins_prev, joins_next) {
            (true, true) => {
                // `pn` fills the only hole between two ranges: they become one.
                if let Some((_, hi)) = self.ranges.remove(i) {
                    if let Some(prev) = self.ranges.get_mut(i - 1) {
                        prev.1 = hi;
                    }
                }
            }
            (true, false) => {
                if let Some(prev) = self.ranges.get_mut(i - 1) {
                    prev.1 = pn;
                }
            }
            (false, true) => {
                if let Some(next) = self.ranges.get_mut(i) {
                    next.0 = pn;
                }
            }
            (false, false) => {
                if i == 0 && self.ranges.len() >= self.max_ranges {
                    // The new range would be the lowest and dropped at once.
                    return false;
                }
                self.ranges.insert(i, (pn, pn));
                self.enforce_bound();
            }
        }
        true
    }

    /// Drops the lowest ranges while there are more than `max_ranges`, raising the floor.
    fn enforce_bound(&mut self) {
        if self.ranges.len() <= self.max_ranges {
            return;
        }
        while self.ranges.len() > self.max_ranges {
            self.ranges.pop_front();
            self.dropped += 1;
        }
        if let Some(&(lo, _)) = self.ranges.front() {
            self.floor = lo;
        }
    }

    /// Whether `pn` is in one of the ranges (a number below the floor is not, even though
    /// [`insert`](Self::insert) refuses it).
    pub(crate) fn contains(&self, pn: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < pn);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= pn)
    }

    /// The largest packet number received, if any range remains.
    pub(crate) fn largest(&self) -> Option<u64> {
        self.ranges.back().map(|&(_, hi)| hi)
    }

    /// The ranges, highest first (the order of an ACK frame).
    pub(crate) fn iter_desc(
        &self,
    ) -> impl DoubleEndedIterator<Item = RangeInclusive<u64>> + ExactSizeIterator + '_ {
        self.ranges.iter().rev().map(|&(lo, hi)| lo..=hi)
    }

    /// The number of ranges.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether no range remains (nothing to acknowledge).
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Forgets every packet number below `pn` and raises the floor to it, so they are not
    /// accepted again. Used once the peer has seen an ACK covering them (RFC 9000 §13.2.4):
    /// they need not be reported any more.
    // Inspection for tests and diagnostics; the send/receive paths do not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn remove_below(&mut self, pn: u64) {
        if pn <= self.floor {
            return;
        }
        self.floor = pn;
        while let Some(front) = self.ranges.front_mut() {
            if front.1 < pn {
                self.ranges.pop_front();
            } else {
                front.0 = front.0.max(pn);
                break;
            }
        }
    }

    /// Packet numbers below this are treated as already received.
    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }

    /// How many ranges have been dropped because of the `max_ranges` bound.
    // Inspection for tests and diagnostics; the send/receive paths do not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn dropped_ranges(&self) -> u64 {
        self.dropped
    }
}

/// A parsed ACK frame body, borrowing its ranges from the packet; they decode lazily via
/// [`ranges`](Self::ranges), which cannot fail on a frame that parsing accepted.
///
/// Public because [`Frame::Ack`](crate::packet::Frame::Ack) carries it; only the crate
/// parses and emits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckFrame<'a> {
    /// The largest packet number acknowledged.
    pub(crate) largest: u64,
    /// How long the peer held the ACK back after receiving `largest`, in microseconds.
    pub(crate) ack_delay_micros: u64,
    /// Number of ranges, the first included (at least 1).
    range_count: usize,
    /// `largest` − smallest of the first range.
    first_range: u64,
    /// Exactly the encoded `(gap, range_len)` pairs.
    rest: &'a [u8],
}

impl<'a> AckFrame<'a> {
    /// Parses an ACK frame body (after the type byte) from the front of `input`, advancing
    /// it past the frame.
    ///
    /// The whole frame is checked: every field present, no range reaching below 0, and at
    /// most `max_ranges` ranges (0 is taken as 1), so a peer cannot make the caller walk an
    /// unbounded list. On error `input` is left as it was.
    pub(crate) fn parse(input: &mut &'a [u8], max_ranges: usize) -> Result<Self, PacketError> {
        let trunc = PacketError::TruncatedFrame("ack");
        let malformed = PacketError::Malformed("ack");
        let mut cur = *input;
        let largest = varint::read(&mut cur).ok_or(trunc)?;
        let ack_delay_micros = varint::read(&mut cur).ok_or(trunc)?;
        let extra = varint::read(&mut cur).ok_or(trunc)?;
        let first_range = varint::read(&mut cur).ok_or(trunc)?;
        // `extra < max_ranges` keeps `extra + 1` ranges within the bound and in a usize.
        let extra = match usize::try_from(extra) {
            Ok(n) if n < max_ranges.max(1) => n,
            _ => return Err(malformed),
        };
        let rest = cur;
        let mut smallest = largest.checked_sub(first_range).ok_or(malformed)?;
        for _ in 0..extra {
            smallest = next_range(&mut cur, smallest)?.0;
        }
        let used = rest.len() - cur.len();
        let frame = AckFrame {
            largest,
            ack_delay_micros,
            range_count: extra + 1,
            first_range,
            rest: &rest[..used],
        };
        *input = cur;
        Ok(frame)
    }

    /// The largest packet number acknowledged (the `largest` field, for use outside the
    /// crate).
    pub fn largest(&self) -> u64 {
        self.largest
    }

    /// How long the peer held the ACK back, in microseconds.
    pub fn ack_delay_micros(&self) -> u64 {
        self.ack_delay_micros
    }

    /// Number of ranges, the first included.
    pub fn range_count(&self) -> usize {
        self.range_count
    }

    /// The acknowledged ranges, highest first. Yields an error and stops at a range that
    /// would reach below 0 (which a parsed frame never has).
    pub fn ranges(&self) -> AckFrameRanges<'a> {
        AckFrameRanges {
            rest: self.rest,
            largest: self.largest,
            first_range: Some(self.first_range),
            smallest: 0,
            failed: false,
        }
    }
}

impl AckFrame<'_> {
    /// Appends this frame's body to `out` (the caller has written the frame type): the
    /// fixed fields in their shortest form, the ranges as they were received.
    pub(crate) fn emit(&self, out: &mut BytesMut) {
        for v in self.head() {
            varint::write(out, v);
        }
        out.extend_from_slice(self.rest);
    }

    /// Bytes [`emit`](Self::emit) appends.
    pub(crate) fn encoded_len(&self) -> usize {
        self.head()
            .into_iter()
            .map(varint::encoded_len)
            .sum::<usize>()
            + self.rest.len()
    }

    /// The fields before the `(gap, range_len)` pairs. All came from varints, so all fit one.
    fn head(&self) -> [u64; 4] {
        [
            self.largest,
            self.ack_delay_micros,
            self.range_count.saturating_sub(1) as u64,
            self.first_range,
        ]
    }
}

/// Reads one `(gap, range_len)` pair below a range starting at `prev_smallest`; returns the
/// new range's `(smallest, largest)`.
fn next_range(input: &mut &[u8], prev_smallest: u64) -> Result<(u64, u64), PacketError> {
    let trunc = PacketError::TruncatedFrame("ack");
    let malformed = PacketError::Malformed("ack");
    let gap = varint::read(input).ok_or(trunc)?;
    let len = varint::read(input).ok_or(trunc)?;
    // A gap of 0 still means one missing number: ranges never touch.
    let largest = prev_smallest
        .checked_sub(gap)
        .and_then(|v| v.checked_sub(2))
        .ok_or(malformed)?;
    let smallest = largest.checked_sub(len).ok_or(malformed)?;
    Ok((smallest, largest))
}

/// The ranges of an [`AckFrame`], highest first.
#[derive(Clone, Debug)]
pub struct AckFrameRanges<'a> {
    /// The `(gap, range_len)` pairs not read yet.
    rest: &'a [u8],
    /// The frame's largest, for the first range.
    largest: u64,
    /// `Some` until the first range has been yielded.
    first_range: Option<u64>,
    /// The smallest of the range yielded last.
    smallest: u64,
    /// Set after an error, so iteration stops there.
    failed: bool,
}

impl Iterator for AckFrameRanges<'_> {
    type Item = Result<RangeInclusive<u64>, PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = if let Some(first) = self.first_range.take() {
            self.largest
                .checked_sub(first)
                .map(|lo| (lo, self.largest))
                .ok_or(PacketError::Malformed("ack"))
        } else if self.rest.is_empty() {
            return None;
        } else {
            next_range(&mut self.rest, self.smallest)
        };
        match item {
            Ok((lo, hi)) => {
                self.smallest = lo;
                Some(Ok(lo..=hi))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The varints of an ACK frame body for the highest `max_ranges` ranges of `ranges`, in
/// order. [`encode`] and [`encoded_len`] share it so they cannot disagree.
fn fields(
    ranges: &AckRanges,
    ack_delay_micros: u64,
    max_ranges: usize,
) -> impl Iterator<Item = u64> + '_ {
    let count = ranges.len().min(max_ranges.max(1));
    let mut desc = ranges.iter_desc().take(count);
    let first = desc.next();
    let head = first.as_ref().map(|r| {
        [
            *r.end(),
            ack_delay_micros.min(varint::MAX),
            count.saturating_sub(1) as u64,
            r.end() - r.start(),
        ]
    });
    let start = first.map_or(0, |r| *r.start());
    // `AckRanges` keeps at least one missing number between ranges, so the gap is >= 0.
    let tail = desc.scan(start, |prev_smallest, r| {
        let gap = *prev_smallest - r.end() - 2;
        *prev_smallest = *r.start();
        Some([gap, r.end() - r.start()])
    });
    head.into_iter().flatten().chain(tail.flatten())
}

/// Appends the ACK frame body for the highest `max_ranges` ranges of `ranges` (0 is taken as
/// 1) to `out`. The caller has written the frame type.
///
/// `ack_delay_micros` saturates at [`varint::MAX`]. An empty `ranges` has nothing to
/// acknowledge and is a caller bug (check [`AckRanges::is_empty`] first): debug builds
/// assert, release builds write nothing.
pub(crate) fn encode(
    out: &mut BytesMut,
    ranges: &AckRanges,
    ack_delay_micros: u64,
    max_ranges: usize,
) {
    debug_assert!(!ranges.is_empty(), "an ACK frame needs at least one range");
    for v in fields(ranges, ack_delay_micros, max_ranges) {
        varint::write(out, v);
    }
}

/// Bytes [`encode`] would append for the same arguments (0 for an empty `ranges`).
pub(crate) fn encoded_len(ranges: &AckRanges, ack_delay_micros: u64, max_ranges: usize) -> usize {
    fields(ranges, ack_delay_micros, max_ranges)
        .map(varint::encoded_len)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn asc(r: &AckRanges) -> Vec<(u64, u64)> {
        r.ranges.iter().copied().collect()
    }

    fn set(max: usize, pns: &[u64]) -> AckRanges {
        let mut r = AckRanges::new(max);
        for &pn in pns {
            r.insert(pn);
        }
        r
    }

    fn parsed(bytes: &[u8], max: usize) -> Result<Vec<RangeInclusive<u64>>, PacketError> {
        let mut input = bytes;
        let frame = AckFrame::parse(&mut input, max)?;
        assert!(input.is_empty());
        frame.ranges().collect()
    }

    #[test]
    fn insert_merges_touching_ranges() {
        let mut r = AckRanges::new(8);
        assert!(r.insert(1));
        assert!(r.insert(3));
        assert_eq!(asc(&r), [(1, 1), (3, 3)]);
        assert!(r.insert(2));
        assert_eq!(asc(&r), [(1, 3)]);
        // Extending a range downwards, and from below.
        assert!(r.insert(0));
        assert!(r.insert(10));
        assert!(r.insert(9));
        assert!(r.insert(5));
        assert!(r.insert(6));
        assert_eq!(asc(&r), [(0, 3), (5, 6), (9, 10)]);
        assert_eq!(r.len(), 3);
        assert!(r.contains(5) && r.contains(0) && r.contains(10));
        assert!(!r.contains(4) && !r.contains(7) && !r.contains(11));
        assert_eq!(r.largest(), Some(10));
        assert_eq!(r.iter_desc().collect::<Vec<_>>(), [9..=10, 5..=6, 0..=3]);
    }

    #[test]
    fn duplicates_are_refused() {
        let mut r = set(8, &[1, 2, 3, 7, 8]);
        for pn in [1, 2, 3, 7, 8] {
            assert!(!r.insert(pn), "{pn}");
        }
        assert_eq!(asc(&r), [(1, 3), (7, 8)]);
        assert!(!r.insert(varint::MAX + 1));
        assert!(r.insert(varint::MAX));
        assert!(!r.insert(varint::MAX));
    }

    #[test]
    fn in_order_extends_the_top_range() {
        let mut r = AckRanges::new(1);
        for pn in 0..1000 {
            assert!(r.insert(pn));
        }
        assert_eq!(asc(&r), [(0, 999)]);
        assert_eq!(r.dropped_ranges(), 0);
        // A jump starts a new range; with max 1 the old one goes.
        assert!(r.insert(1002));
        assert_eq!(asc(&r), [(1002, 1002)]);
        assert_eq!(r.floor(), 1002);
        assert_eq!(r.dropped_ranges(), 1);
    }

    #[test]
    fn bound_drops_the_lowest_range_and_raises_the_floor() {
        let mut r = set(3, &[1, 2, 5, 9]);
        assert_eq!(asc(&r), [(1, 2), (5, 5), (9, 9)]);
        assert!(r.insert(12));
        assert_eq!(asc(&r), [(5, 5), (9, 9), (12, 12)]);
        assert_eq!((r.floor(), r.dropped_ranges()), (5, 1));
        // Below the floor: forgotten (1), or never seen but no longer told apart (3, 4).
        for pn in [0, 1, 3, 4] {
            assert!(!r.insert(pn), "{pn}");
        }
        // A new range in the middle drops the lowest.
        assert!(r.insert(7));
        assert_eq!(asc(&r), [(7, 7), (9, 9), (12, 12)]);
        assert_eq!((r.floor(), r.dropped_ranges()), (7, 2));
        // Filling a hole needs no new range, so nothing is dropped.
        assert!(r.insert(8));
        assert_eq!(asc(&r), [(7, 9), (12, 12)]);
        assert_eq!(r.dropped_ranges(), 2);
    }

    #[test]
    fn a_full_set_refuses_a_new_lowest_range() {
        let mut r = set(2, &[10, 20]);
        r.remove_below(5);
        // 6 would be a third range below both: kept it would be dropped at once.
        assert!(!r.insert(6));
        assert_eq!(asc(&r), [(10, 10), (20, 20)]);
        assert_eq!((r.floor(), r.dropped_ranges()), (5, 0));
        // Joining the lowest range is fine.
        assert!(r.insert(9));
        assert_eq!(asc(&r), [(9, 10), (20, 20)]);
    }

    #[test]
    fn remove_below_forgets_and_refuses() {
        let mut r = set(8, &[1, 2, 3, 5, 6, 9]);
        r.remove_below(2);
        assert_eq!(asc(&r), [(2, 3), (5, 6), (9, 9)]);
        r.remove_below(4);
        assert_eq!(asc(&r), [(5, 6), (9, 9)]);
        assert_eq!(r.floor(), 4);
        assert!(!r.insert(3) && !r.insert(1));
        assert!(r.insert(4));
        // Never lowers the floor.
        r.remove_below(0);
        assert_eq!(r.floor(), 4);
        r.remove_below(100);
        assert!(r.is_empty());
        assert_eq!(r.largest(), None);
        assert!(!r.insert(99));
        assert!(r.insert(100));
        assert_eq!(asc(&r), [(100, 100)]);
    }

    /// RFC 9000 §19.3.1 layout, byte for byte.
    const EXAMPLE: [u8; 10] = [
        0x40, 0x64, // largest = 100
        0x19, // ack_delay = 25
        0x02, // range_count = 2 (after the first)
        0x0a, // first_range = 100 - 90
        0x03, 0x05, // gap = 90 - 85 - 2, range_len = 85 - 80
        0x40, 0x49, 0x00, // gap = 80 - 5 - 2 = 73, range_len = 0
    ];

    fn example() -> AckRanges {
        let mut r = AckRanges::new(16);
        for pn in (80..=85).chain(90..=100).chain([5]) {
            r.insert(pn);
        }
        r
    }

    #[test]
    fn encode_matches_the_example_layout() {
        let r = example();
        let mut out = BytesMut::new();
        encode(&mut out, &r, 25, 16);
        assert_eq!(&out[..], EXAMPLE);
        assert_eq!(encoded_len(&r, 25, 16), EXAMPLE.len());

        let mut input = &EXAMPLE[..];
        let frame = AckFrame::parse(&mut input, 3).unwrap();
        assert!(input.is_empty());
        assert_eq!((frame.largest, frame.ack_delay_micros), (100, 25));
        assert_eq!(frame.range_count(), 3);
        let ranges: Vec<_> = frame.ranges().collect::<Result<_, _>>().unwrap();
        assert_eq!(ranges, [90..=100, 80..=85, 5..=5]);
    }

    #[test]
    fn encode_keeps_the_highest_ranges() {
        let r = example();
        let mut out = BytesMut::new();
        encode(&mut out, &r, 25, 2);
        assert_eq!(&out[..], [0x40, 0x64, 0x19, 0x01, 0x0a, 0x03, 0x05]);
        assert_eq!(encoded_len(&r, 25, 2), out.len());
        assert_eq!(parsed(&out, 2), Ok(vec![90..=100, 80..=85]));
        // 0 is taken as 1: just the first range.
        out.clear();
        encode(&mut out, &r, 25, 0);
        assert_eq!(&out[..], [0x40, 0x64, 0x19, 0x00, 0x0a]);
    }

    #[test]
    fn a_parsed_frame_re_emits() {
        let frame = AckFrame::parse(&mut &EXAMPLE[..], 8).unwrap();
        let mut out = BytesMut::new();
        frame.emit(&mut out);
        assert_eq!(&out[..], EXAMPLE);
        assert_eq!(frame.encoded_len(), EXAMPLE.len());
        // Non-minimal fixed fields come out minimal; the ranges are copied as they were.
        let padded = [
            0x80, 0, 0, 0x64, 0x40, 0x19, 0x02, 0x0a, 0x03, 0x05, 0x40, 0x49, 0x00,
        ];
        let frame = AckFrame::parse(&mut &padded[..], 8).unwrap();
        assert_eq!((frame.largest(), frame.ack_delay_micros()), (100, 25));
        out.clear();
        frame.emit(&mut out);
        assert_eq!(&out[..], EXAMPLE);
        assert_eq!(frame.encoded_len(), EXAMPLE.len());
    }

    #[test]
    fn parse_leaves_what_follows() {
        let mut bytes = EXAMPLE.to_vec();
        bytes.extend_from_slice(&[0x01, 0x02]);
        let mut input = &bytes[..];
        AckFrame::parse(&mut input, 8).unwrap();
        assert_eq!(input, [0x01, 0x02]);
    }

    #[test]
    fn parse_rejects_truncation() {
        for cut in 0..EXAMPLE.len() {
            let mut input = &EXAMPLE[..cut];
            assert_eq!(
                AckFrame::parse(&mut input, 8),
                Err(PacketError::TruncatedFrame("ack")),
                "cut at {cut}"
            );
            assert_eq!(input.len(), cut, "input must not move on error");
        }
    }

    #[test]
    fn parse_rejects_underflow() {
        let malformed = Err(PacketError::Malformed("ack"));
        // first_range > largest.
        assert_eq!(parsed(&[0x05, 0x00, 0x00, 0x06], 8), malformed);
        // gap reaches below 0: smallest 5, gap 4 → 5 - 4 - 2 < 0.
        assert_eq!(parsed(&[0x0a, 0x00, 0x01, 0x05, 0x04, 0x00], 8), malformed);
        // gap exactly to 0 is fine, range_len past it is not.
        assert_eq!(
            parsed(&[0x0a, 0x00, 0x01, 0x05, 0x03, 0x00], 8),
            Ok(vec![5..=10, 0..=0])
        );
        assert_eq!(parsed(&[0x0a, 0x00, 0x01, 0x05, 0x03, 0x01], 8), malformed);
    }

    #[test]
    fn parse_rejects_too_many_ranges() {
        let mut input = &EXAMPLE[..];
        assert_eq!(
            AckFrame::parse(&mut input, 2),
            Err(PacketError::Malformed("ack"))
        );
        assert_eq!(input.len(), EXAMPLE.len());
        // A huge range_count is refused before anything is read for it.
        let huge = [
            0x0a, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
        ];
        assert_eq!(
            AckFrame::parse(&mut &huge[..], usize::MAX),
            Err(PacketError::TruncatedFrame("ack"))
        );
        assert_eq!(
            AckFrame::parse(&mut &huge[..], 64),
            Err(PacketError::Malformed("ack"))
        );
    }

    #[test]
    fn unvalidated_iteration_stops_at_the_first_error() {
        let frame = AckFrame {
            largest: 10,
            ack_delay_micros: 0,
            range_count: 3,
            first_range: 2,
            rest: &[0x00, 0x00, 0x3f, 0x00, 0x00, 0x00],
        };
        let r: Vec<_> = frame.ranges().collect();
        assert_eq!(
            r,
            [Ok(8..=10), Ok(6..=6), Err(PacketError::Malformed("ack"))]
        );
    }

    /// The sorted set as inclusive ranges, highest first.
    fn compress_desc(pns: &BTreeSet<u64>) -> Vec<RangeInclusive<u64>> {
        let mut out: Vec<RangeInclusive<u64>> = Vec::new();
        for &pn in pns.iter().rev() {
            match out.last_mut() {
                Some(r) if *r.start() == pn + 1 => *r = pn..=*r.end(),
                _ => out.push(pn..=pn),
            }
        }
        out
    }

    /// Packet numbers in arbitrary order: dense (many merges) or spread over the u32 range.
    fn shuffled_pns() -> impl Strategy<Value = Vec<u64>> {
        let dense = proptest::collection::btree_set(0u64..300, 0..200);
        let sparse = proptest::collection::btree_set(0..=u64::from(u32::MAX), 0..100);
        prop_oneof![dense, sparse]
            .prop_map(|s| s.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        RemoveBelow(u64),
    }

    proptest! {
        #[test]
        fn ranges_match_the_set_and_round_trip(pns in shuffled_pns(), delay in 0..=varint::MAX) {
            let mut r = AckRanges::new(usize::MAX);
            let mut model = BTreeSet::new();
            for &pn in &pns {
                prop_assert_eq!(r.insert(pn), model.insert(pn));
                // Duplicates are refused.
                prop_assert!(!r.insert(pn));
            }
            let expect = compress_desc(&model);
            prop_assert_eq!(r.iter_desc().collect::<Vec<_>>(), expect.clone());
            prop_assert_eq!(r.largest(), model.last().copied());
            if r.is_empty() {
                return Ok(());
            }
            let mut out = BytesMut::new();
            encode(&mut out, &r, delay, usize::MAX);
            prop_assert_eq!(out.len(), encoded_len(&r, delay, usize::MAX));
            let mut input = &out[..];
            let frame = AckFrame::parse(&mut input, expect.len()).unwrap();
            prop_assert!(input.is_empty());
            prop_assert_eq!(frame.ack_delay_micros, delay);
            prop_assert_eq!(frame.range_count(), expect.len());
            let back: Vec<_> = frame.ranges().collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(back, expect.clone());
            // Fewer ranges allowed: the highest ones.
            let k = 1 + expect.len() / 2;
            out.clear();
            encode(&mut out, &r, delay, k);
            let back: Vec<_> = AckFrame::parse(&mut &out[..], k).unwrap().ranges().collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(&back[..], &expect[..k]);
        }

        /// A small bound and `remove_below` against a model that keeps single numbers.
        #[test]
        fn bounded_set_matches_a_model(
            max in 1usize..5,
            ops in proptest::collection::vec(prop_oneof![
                4 => (0u64..120).prop_map(Op::Insert),
                1 => (0u64..120).prop_map(Op::RemoveBelow),
            ], 0..80),
        ) {
            let mut r = AckRanges::new(max);
            let mut model = BTreeSet::new();
            let mut floor = 0;
            for op in ops {
                match op {
                    Op::Insert(pn) => {
                        let fresh = pn >= floor && !model.contains(&pn);
                        let mut accepted = fresh;
                        if fresh {
                            model.insert(pn);
                            let ranges = compress_desc(&model);
                            if ranges.len() > max {
                                let lowest = ranges[ranges.len() - 1].clone();
                                if lowest == (pn..=pn) {
                                    model.remove(&pn);
                                    accepted = false;
                                } else {
                                    for n in lowest { model.remove(&n); }
                                    floor = *ranges[ranges.len() - 2].start();
                                }
                            }
                        }
                        prop_assert_eq!(r.insert(pn), accepted, "insert {}", pn);
                    }
                    Op::RemoveBelow(pn) => {
                        r.remove_below(pn);
                        floor = floor.max(pn);
                        model.retain(|&n| n >= pn);
                    }
                }
                prop_assert_eq!(r.iter_desc().collect::<Vec<_>>(), compress_desc(&model));
                prop_assert_eq!(r.floor(), floor);
                prop_assert!(r.len() <= max);
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40), max in 0usize..8) {
            check_parse(&bytes, max)?;
        }

        /// Random bytes rarely get past `range_count`; this builds frames field by field, with
        /// small values (underflows at every step) and random bytes or cuts after them.
        #[test]
        fn parse_checks_built_frames(
            fields in proptest::collection::vec(prop_oneof![0u64..4, 0u64..100, 0..=varint::MAX], 0..14),
            count in 0u64..7,
            tail in proptest::collection::vec(any::<u8>(), 0..4),
            cut in any::<prop::sample::Index>(),
            max in 0usize..8,
        ) {
            let mut out = BytesMut::new();
            for (i, &v) in fields.iter().enumerate() {
                varint::write(&mut out, if i == 2 { count } else { v });
            }
            out.extend_from_slice(&tail);
            let cut = cut.index(out.len() + 1);
            check_parse(&out[..cut], max)?;
        }
    }

    /// A parse either fails leaving `bytes` alone, or yields a well-formed frame.
    fn check_parse(bytes: &[u8], max: usize) -> Result<(), TestCaseError> {
        let mut input = bytes;
        match AckFrame::parse(&mut input, max) {
            Ok(frame) => {
                prop_assert!(input.len() + 4 <= bytes.len());
                prop_assert!(frame.range_count() <= max.max(1));
                let ranges: Vec<_> = frame.ranges().collect::<Result<_, _>>().unwrap();
                prop_assert_eq!(ranges.len(), frame.range_count());
                prop_assert_eq!(*ranges[0].end(), frame.largest);
                // Re-emitting gives the same frame, never longer than what was read.
                let mut out = BytesMut::new();
                frame.emit(&mut out);
                prop_assert_eq!(out.len(), frame.encoded_len());
                prop_assert!(out.len() <= bytes.len() - input.len());
                let again = AckFrame::parse(&mut &out[..], max).unwrap();
                prop_assert_eq!(
                    again.ranges().collect::<Result<Vec<_>, _>>().unwrap(),
                    ranges.clone()
                );
                // Descending, with at least one missing number between ranges.
                for w in ranges.windows(2) {
                    prop_assert!(*w[1].end() + 1 < *w[0].start());
                }
            }
            Err(_) => prop_assert_eq!(input, bytes),
        }
        Ok(())
    }
}
