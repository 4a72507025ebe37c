//! Seeded randomness.
//!
//! Connection ids, ICE credentials and transaction ids are drawn from a ChaCha20 stream
//! seeded by [`Config::seed`](crate::Config::seed), so a run replays bit for bit. The driver
//! supplies real entropy as the seed in production; the core never asks the OS.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// The core's deterministic random source.
#[derive(Debug, Clone)]
pub(crate) struct Rng(ChaCha20Rng);

/// Characters for ICE ufrag/pwd (RFC 8839 `ice-char`: ALPHA / DIGIT / "+" / "/").
const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Rng {
    pub(crate) fn from_seed(seed: [u8; 32]) -> Self {
        Rng(ChaCha20Rng::from_seed(seed))
    }

    pub(crate) fn u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    pub(crate) fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        self.0.fill_bytes(out)
    }

    /// A random ICE credential string of `len` characters.
    pub(crate) fn ice_string(&mut self, len: usize) -> alloc::string::String {
        (0..len)
            .map(|_| ICE_CHARS[(self.u32() % ICE_CHARS.len() as u32) as usize] as char)
            .collect()
    }
}
