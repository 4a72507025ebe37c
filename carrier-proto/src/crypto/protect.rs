//! Sealing and opening packets of a protected session (AES-256-GCM from ring).
//!
//! The AAD is the packet's header (10–13 bytes, before header protection); the payload is
//! encrypted in place and a 16-byte tag replaces the CRC trailer; then header protection
//! masks the packet number (RFC 9001 §5.4). The nonce is the epoch IV XOR the packet number (in its
//! last 8 bytes), and each direction numbers its packets from 0 upward without reuse, so no
//! (key, nonce) pair repeats. Keys change with the epoch (`packet number >> 22`), below
//! AES-GCM's confidentiality limit of 2^23 packets per key (RFC 9001 §6.6).

use ring::aead::quic::{AES_256, HeaderProtectionKey};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::keys::{KEY_LEN, Secrets, epoch_key, hp_key};
use super::replay::ReplayWindow;
use crate::packet::{PN_LEN_BITS, PN_OFFSET};

/// Bytes of the authentication tag that ends a protected packet.
pub(crate) const TAG_LEN: usize = 16;

/// Packets per key: an epoch.
const EPOCH_BITS: u32 = 22;

/// The last packet number a session may send: the packet-number space (and the varints
/// that carry numbers in ACK frames) end at 2^62; the session stops cleanly before.
pub(crate) const MAX_PACKET_NUMBER: u64 = (1 << 62) - 1;

/// Failed authentications a session tolerates before it stops (AES-GCM's integrity limit,
/// RFC 9001 §6.6: 2^52; far beyond what a network can deliver, kept as a clean stop).
const MAX_FORGERIES: u64 = 1 << 52;

/// One epoch's key of one direction.
struct EpochKey {
    epoch: u64,
    key: LessSafeKey,
    iv: [u8; 12],
}

impl EpochKey {
    fn new(secret: &[u8; KEY_LEN], epoch: u64) -> Option<Self> {
        let (key, iv) = epoch_key(secret, epoch);
        let key = UnboundKey::new(&AES_256_GCM, &key).ok()?;
        Some(EpochKey {
            epoch,
            key: LessSafeKey::new(key),
            iv,
        })
    }

    fn nonce(&self, pn: u64) -> Nonce {
        let mut n = self.iv;
        for (b, p) in n[4..].iter_mut().zip(pn.to_be_bytes()) {
            *b ^= p;
        }
        Nonce::assume_unique_for_key(n)
    }
}

/// Why a packet could not be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SealError {
    /// The packet-number space is used up (or a key could not be made): the session must
    /// stop.
    Exhausted,
}

/// Why a received packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The tag did not verify: corrupted, forged, or sealed with another key.
    BadTag,
    /// The packet number was accepted before, or is too old to tell.
    Replay,
    /// Too many forgeries: the session must stop.
    Exhausted,
}

/// A protected session's keys, both directions, and its replay window.
pub(crate) struct Protection {
    /// Header protection, sending and receiving (RFC 9001 §5.4 with AES-256).
    seal_hp: HeaderProtectionKey,
    open_hp: HeaderProtectionKey,
    seal_secret: [u8; KEY_LEN],
    seal: EpochKey,
    open_secret: [u8; KEY_LEN],
    open: EpochKey,
    /// The previous epoch's key (packets reordered across a key change).
    open_prev: Option<EpochKey>,
    /// The next epoch's key, made once when the first packet of it arrives.
    open_next: Option<EpochKey>,
    replay: ReplayWindow,
    forgeries: u64,
}

/// Bytes sampled for the mask: they start 4 bytes past the packet number's start, as if
/// it were 4 bytes long.
const SAMPLE_OFFSET: usize = PN_OFFSET + 4;
const SAMPLE_LEN: usize = 16;

/// The 5-byte mask for `packet` under `key`.
fn mask_of(key: &HeaderProtectionKey, packet: &[u8]) -> Option<[u8; 5]> {
    let sample = packet.get(SAMPLE_OFFSET..SAMPLE_OFFSET + SAMPLE_LEN)?;
    key.new_mask(sample).ok()
}

/// Masks (or unmasks: XOR) the length bits and the `pn_len` packet-number bytes.
fn apply_mask(packet: &mut [u8], mask: &[u8; 5], pn_len: usize) {
    packet[0] ^= mask[0] & PN_LEN_BITS;
    for (b, m) in packet[PN_OFFSET..PN_OFFSET + pn_len]
        .iter_mut()
        .zip(&mask[1..])
    {
        *b ^= m;
    }
}

impl core::fmt::Debug for Protection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Protection")
            .field("seal_epoch", &self.seal.epoch)
            .field("open_epoch", &self.open.epoch)
            .field("forgeries", &self.forgeries)
            .finish_non_exhaustive()
    }
}

impl Protection {
    /// Keys for the offerer's side (`offerer`) or the answerer's.
    pub(crate) fn new(secrets: &Secrets, offerer: bool) -> Option<Self> {
        let (seal_secret, open_secret) = if offerer {
            (secrets.offerer, secrets.answerer)
        } else {
            (secrets.answerer, secrets.offerer)
        };
        Some(Protection {
            seal_hp: HeaderProtectionKey::new(&AES_256, &hp_key(&seal_secret)).ok()?,
            open_hp: HeaderProtectionKey::new(&AES_256, &hp_key(&open_secret)).ok()?,
            seal: EpochKey::new(&seal_secret, 0)?,
            open: EpochKey::new(&open_secret, 0)?,
            seal_secret,
            open_secret,
            open_prev: None,
            open_next: None,
            replay: ReplayWindow::default(),
            forgeries: 0,
        })
    }

    /// Encrypts `payload` in place under packet number `pn` with `header` as AAD; returns
    /// the tag to append.
    pub(crate) fn seal(
        &mut self,
        pn: u64,
        header: &[u8],
        payload: &mut [u8],
    ) -> Result<[u8; TAG_LEN], SealError> {
        if pn > MAX_PACKET_NUMBER {
            return Err(SealError::Exhausted);
        }
        let epoch = pn >> EPOCH_BITS;
        if epoch != self.seal.epoch {
            self.seal = EpochKey::new(&self.seal_secret, epoch).ok_or(SealError::Exhausted)?;
        }
        let tag = self
            .seal
            .key
            .seal_in_place_separate_tag(self.seal.nonce(pn), Aad::from(header), payload)
            .map_err(|_| SealError::Exhausted)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Authenticates and decrypts `body` (ciphertext then tag) in place; returns the
    /// plaintext length. A packet number seen before, or too old, is refused before any
    /// work. The number is not recorded here: the caller calls [`Protection::accept`] once
    /// the packet was processed, so a dropped packet (an authentic copy from an address
    /// that is not the peer's) leaves no mark and its original is still taken.
    pub(crate) fn open(
        &mut self,
        pn: u64,
        header: &[u8],
        body: &mut [u8],
    ) -> Result<usize, OpenError> {
        if !self.replay.is_new(pn) {
            return Err(OpenError::Replay);
        }
        let epoch = pn >> EPOCH_BITS;
        let which = if epoch == self.open.epoch {
            0
        } else if self.open_prev.as_ref().is_some_and(|k| k.epoch == epoch) {
            1
        } else if epoch == self.open.epoch + 1 {
            if self.open_next.as_ref().is_none_or(|k| k.epoch != epoch) {
                self.open_next = EpochKey::new(&self.open_secret, epoch);
            }
            2
        } else {
            return Err(self.forged());
        };
        let key = match which {
            0 => Some(&self.open),
            1 => self.open_prev.as_ref(),
            _ => self.open_next.as_ref(),
        };
        let Some(key) = key else {
            return Err(self.forged());
        };
        let opened = key
            .key
            .open_in_place(key.nonce(pn), Aad::from(header), body)
            .map(|plain| plain.len());
        let Ok(len) = opened else {
            return Err(self.forged());
        };
        if which == 2 {
            // The peer moved to the next epoch: keep the old key for stragglers.
            if let Some(next) = self.open_next.take() {
                self.open_prev = Some(core::mem::replace(&mut self.open, next));
            }
        }
        Ok(len)
    }

    /// Applies header protection to a sealed packet (header, ciphertext, tag): masks the
    /// first byte's packet-number length and the packet-number bytes with AES of a sample
    /// of the ciphertext (RFC 9001 §5.4.1, §5.4.3). False if the packet is too short to
    /// sample (the sender pads so that it never is).
    pub(crate) fn protect_header(&self, packet: &mut [u8]) -> bool {
        let Some(mask) = mask_of(&self.seal_hp, packet) else {
            return false;
        };
        let pn_len = usize::from(packet[0] & PN_LEN_BITS) + 1;
        apply_mask(packet, &mask, pn_len);
        true
    }

    /// Removes header protection in place; returns the packet-number length. `None`: too
    /// short to hold a sample.
    pub(crate) fn unprotect_header(&self, packet: &mut [u8]) -> Option<usize> {
        let mask = mask_of(&self.open_hp, packet)?;
        let pn_len = usize::from((packet[0] ^ mask[0]) & PN_LEN_BITS) + 1;
        apply_mask(packet, &mask, pn_len);
        Some(pn_len)
    }

    /// Records `pn` in the replay window: its packet authenticated and was processed.
    pub(crate) fn accept(&mut self, pn: u64) {
        self.replay.insert(pn);
    }

    fn forged(&mut self) -> OpenError {
        self.forgeries += 1;
        if self.forgeries >= MAX_FORGERIES {
            OpenError::Exhausted
        } else {
            OpenError::BadTag
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn pair() -> (Protection, Protection) {
        let secrets = Secrets {
            offerer: [1; 32],
            answerer: [2; 32],
        };
        (
            Protection::new(&secrets, true).unwrap(),
            Protection::new(&secrets, false).unwrap(),
        )
    }

    fn sealed(p: &mut Protection, pn: u64, msg: &[u8]) -> Vec<u8> {
        let mut body = msg.to_vec();
        let tag = p.seal(pn, b"header", &mut body).unwrap();
        body.extend_from_slice(&tag);
        body
    }

    #[test]
    fn round_trip_each_bit_flip_and_replay() {
        let (mut a, mut b) = pair();
        let msg = b"attack at dawn";
        let body = sealed(&mut a, 7, msg);
        assert_ne!(&body[..msg.len()], msg, "encrypted");
        // Every single-bit flip of body or header is refused.
        for i in 0..body.len() * 8 {
            let mut bad = body.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(b.open(7, b"header", &mut bad), Err(OpenError::BadTag));
        }
        for i in 0..6 * 8 {
            let mut h = *b"header";
            h[i / 8] ^= 1 << (i % 8);
            assert_eq!(b.open(7, &h, &mut body.clone()), Err(OpenError::BadTag));
        }
        // Another packet number (so another nonce) does not verify either.
        assert_eq!(
            b.open(8, b"header", &mut body.clone()),
            Err(OpenError::BadTag)
        );
        let mut good = body.clone();
        assert_eq!(b.open(7, b"header", &mut good), Ok(msg.len()));
        assert_eq!(&good[..msg.len()], msg);
        // Not yet accepted (the session may still drop it): it opens again.
        assert_eq!(b.open(7, b"header", &mut body.clone()), Ok(msg.len()));
        b.accept(7);
        // The same packet again, once accepted, is a replay.
        assert_eq!(
            b.open(7, b"header", &mut body.clone()),
            Err(OpenError::Replay)
        );
        // The other direction uses the other key.
        let mut own = sealed(&mut a, 9, msg);
        assert_eq!(a.open(9, b"header", &mut own), Err(OpenError::BadTag));
    }

    #[test]
    fn keys_change_by_epoch_and_stragglers_still_open() {
        let (mut a, mut b) = pair();
        let e1 = 1u64 << EPOCH_BITS;
        let late = sealed(&mut a, e1 - 1, b"last of epoch 0");
        let first = sealed(&mut a, e1, b"first of epoch 1");
        let mut f = first.clone();
        assert_eq!(b.open(e1, b"header", &mut f), Ok(16));
        let mut l = late.clone();
        assert_eq!(b.open(e1 - 1, b"header", &mut l), Ok(15));
        // Two epochs ahead is refused (no such jump happens: numbers go one by one).
        let far = sealed(&mut a, 3 * e1, b"far");
        assert_eq!(
            b.open(3 * e1, b"header", &mut far.clone()),
            Err(OpenError::BadTag)
        );
        // The end of the packet-number space: a clean stop, never a reused nonce.
        assert_eq!(
            a.seal(MAX_PACKET_NUMBER + 1, b"h", &mut []),
            Err(SealError::Exhausted)
        );
    }
}
