//! A set of byte offsets as sorted, disjoint, half-open ranges: which parts of a stream
//! were acknowledged, need retransmission, or have arrived.

use alloc::vec::Vec;
use core::ops::Range;

/// Sorted, disjoint, non-adjacent half-open ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<Range<u64>>,
}

impl RangeSet {
    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The lowest range.
    pub(crate) fn first(&self) -> Option<Range<u64>> {
        self.ranges.first().cloned()
    }

    /// The ranges, lowest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().cloned()
    }

    /// Adds `r`, merging with ranges it overlaps or touches.
    pub(crate) fn insert(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        // Fast path: appending at (or after) the top, the in-order case.
        if let Some(last) = self.ranges.last_mut() {
            if r.start >= last.start && r.start <= last.end {
                last.end = last.end.max(r.end);
                return;
            }
            if r.start > last.end {
                self.ranges.push(r);
                return;
            }
        } else {
            self.ranges.push(r);
            return;
        }
        // General case: find the first range that ends at or after r.start.
        let i = self.ranges.partition_point(|x| x.end < r.start);
        let mut j = i;
        let (mut start, mut end) = (r.start, r.end);
        while j < self.ranges.len() && self.ranges[j].start <= end {
            start = start.min(self.ranges[j].start);
            end = end.max(self.ranges[j].end);
            j += 1;
        }
        self.ranges.splice(i..j, core::iter::once(start..end));
    }

    /// Removes `r` from the set, splitting a range if needed.
    pub(crate) fn remove(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        let i = self.ranges.partition_point(|x| x.end <= r.start);
        let mut j = i;
        let mut keep: [Option<Range<u64>>; 2] = [None, None];
        while j < self.ranges.len() && self.ranges[j].start < r.end {
            let x = &self.ranges[j];
            if x.start < r.start {
                keep[0] = Some(x.start..r.start);
            }
            if x.end > r.end {
                keep[1] = Some(r.end..x.end);
            }
            j += 1;
        }
        self.ranges.splice(i..j, keep.into_iter().flatten());
    }

    /// Removes and returns up to `max` bytes from the start of the lowest range.
    pub(crate) fn pop_front(&mut self, max: u64) -> Option<Range<u64>> {
        let first = self.ranges.first_mut()?;
        let end = first.end.min(first.start.saturating_add(max));
        let taken = first.start..end;
        first.start = end;
        if first.start >= first.end {
            self.ranges.remove(0);
        }
        Some(taken)
    }

    /// Whether every offset of `r` is in the set.
    // Inspection for tests and diagnostics; the send/receive paths do not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn contains_range(&self, r: Range<u64>) -> bool {
        if r.start >= r.end {
            return true;
        }
        let i = self.ranges.partition_point(|x| x.end <= r.start);
        self.ranges
            .get(i)
            .is_some_and(|x| x.start <= r.start && x.end >= r.end)
    }

    /// Removes everything below `offset`.
    pub(crate) fn remove_below(&mut self, offset: u64) {
        self.remove(0..offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    #[test]
    fn insert_merges_and_remove_splits() {
        let mut s = RangeSet::default();
        s.insert(10..20);
        s.insert(30..40);
        s.insert(20..30);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![10..40]);
        s.remove(15..25);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![10..15, 25..40]);
        s.insert(0..5);
        assert_eq!(s.first(), Some(0..5));
        assert!(s.contains_range(26..40));
        assert!(!s.contains_range(14..16));
        assert_eq!(s.pop_front(3), Some(0..3));
        assert_eq!(s.pop_front(100), Some(3..5));
        s.remove_below(30);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![30..40]);
    }

    proptest! {
        #[test]
        fn matches_a_bitmap(ops in proptest::collection::vec((any::<bool>(), 0u64..200, 0u64..40), 0..60)) {
            let mut s = RangeSet::default();
            let mut bits = [false; 240];
            for (add, start, len) in ops {
                let r = start..start + len;
                if add { s.insert(r.clone()) } else { s.remove(r.clone()) }
                for b in &mut bits[r.start as usize..r.end as usize] { *b = add; }
            }
            let mut expect = Vec::new();
            let mut i = 0;
            while i < bits.len() {
                if bits[i] {
                    let start = i;
                    while i < bits.len() && bits[i] { i += 1; }
                    expect.push(start as u64..i as u64);
                } else { i += 1; }
            }
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), expect);
        }
    }
}
