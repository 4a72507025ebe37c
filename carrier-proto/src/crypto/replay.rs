//! The replay window: which packet numbers were already accepted (WireGuard's sliding
//! bitmap, RFC 6479). A number too far below the highest seen is refused too.

/// Packet numbers the window remembers below the highest.
pub(crate) const WINDOW: u64 = 2048;

const WORDS: usize = (WINDOW / 64) as usize;

/// Accepted packet numbers of one direction.
#[derive(Clone, Debug)]
pub(crate) struct ReplayWindow {
    /// One more than the highest number accepted (0: none yet).
    top: u64,
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            top: 0,
            bits: [0; WORDS],
        }
    }
}

impl ReplayWindow {
    /// Whether `pn` would be new (not seen, not too old). Does not record it.
    pub(crate) fn is_new(&self, pn: u64) -> bool {
        if pn >= self.top {
            return true;
        }
        if self.top - pn > WINDOW {
            return false;
        }
        let (w, b) = Self::slot(pn);
        self.bits[w] & (1 << b) == 0
    }

    /// Records `pn` as accepted (call after `is_new` and authentication).
    pub(crate) fn insert(&mut self, pn: u64) {
        if pn >= self.top {
            // Clear the slots the window slides over.
            let advance = pn + 1 - self.top;
            if advance >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for n in self.top..=pn {
                    let (w, b) = Self::slot(n);
                    self.bits[w] &= !(1 << b);
                }
            }
            self.top = pn + 1;
        } else if self.top - pn > WINDOW {
            return;
        }
        let (w, b) = Self::slot(pn);
        self.bits[w] |= 1 << b;
    }

    fn slot(pn: u64) -> (usize, u32) {
        let i = pn % WINDOW;
        ((i / 64) as usize, (i % 64) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_number_is_accepted_once_and_old_ones_never() {
        let mut w = ReplayWindow::default();
        for pn in [5u64, 3, 9, 4, 2000, 10] {
            assert!(w.is_new(pn), "{pn}");
            w.insert(pn);
            assert!(!w.is_new(pn), "{pn} twice");
        }
        assert!(w.is_new(6));
        // Far ahead: everything more than WINDOW below is refused from now on.
        w.insert(10_000);
        assert!(!w.is_new(10_000 - WINDOW - 1));
        assert!(w.is_new(10_000 - WINDOW + 1));
        assert!(!w.is_new(2000));
        // Against a model, over a random walk.
        let mut w = ReplayWindow::default();
        let mut seen = alloc::collections::BTreeSet::new();
        let mut top = 0u64;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pn = (top + 50).saturating_sub(x % 3000);
            let expect = !seen.contains(&pn) && (pn >= top || top - pn <= WINDOW);
            assert_eq!(w.is_new(pn), expect, "pn {pn} top {top}");
            if expect {
                w.insert(pn);
                seen.insert(pn);
                top = top.max(pn + 1);
            }
        }
    }
}
