//! The ephemeral key exchange and the key schedule.
//!
//! ```text
//! shared  = X25519(our secret, peer public)            (all-zero result: refused)
//! prk     = HKDF-Extract(salt = "carrier v1", shared)
//! c2s     = HKDF-Expand(prk, "offerer traffic"  ‖ offerer public ‖ answerer public, 32)
//! s2c     = HKDF-Expand(prk, "answerer traffic" ‖ offerer public ‖ answerer public, 32)
//! epoch e of a traffic secret t (e as 8 bytes, big-endian):
//! key(e)  = HKDF-Expand(t, "key" ‖ e, 32)              (AES-256-GCM)
//! iv(e)   = HKDF-Expand(t, "iv"  ‖ e, 12)
//! ```

use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::rng::Rng;

/// Bytes of an X25519 public key (and of a traffic secret).
pub(crate) const KEY_LEN: usize = 32;

const SALT: &[u8] = b"carrier v1";

/// One side's ephemeral X25519 key pair, made for one session from the endpoint's seeded
/// randomness.
pub(crate) struct Ephemeral {
    secret: StaticSecret,
    public: [u8; KEY_LEN],
}

impl core::fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Ephemeral")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Ephemeral {
    pub(crate) fn generate(rng: &mut Rng) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill(&mut bytes);
        Self::from_secret(bytes)
    }

    pub(crate) fn from_secret(bytes: [u8; KEY_LEN]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey::from(&secret).to_bytes();
        Ephemeral { secret, public }
    }

    pub(crate) fn public(&self) -> [u8; KEY_LEN] {
        self.public
    }

    /// The shared secret with the peer's public key; `None` for a low-order key (the
    /// result would be known to an attacker).
    pub(crate) fn agree(&self, peer: &[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer));
        shared.was_contributory().then(|| shared.to_bytes())
    }
}

/// The two traffic secrets of a session.
#[derive(Clone)]
pub(crate) struct Secrets {
    /// Protects what the offerer sends.
    pub(crate) offerer: [u8; KEY_LEN],
    /// Protects what the answerer sends.
    pub(crate) answerer: [u8; KEY_LEN],
}

impl core::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// The key schedule from a shared secret and both public keys.
    pub(crate) fn derive(
        shared: &[u8; KEY_LEN],
        offerer: &[u8; KEY_LEN],
        answerer: &[u8; KEY_LEN],
    ) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(SALT), shared);
        let expand = |label: &[u8]| {
            let mut out = [0u8; KEY_LEN];
            // 32 bytes is far below HKDF-SHA256's limit of 255 × 32: this cannot fail.
            let _ = hk.expand_multi_info(&[label, offerer, answerer], &mut out);
            out
        };
        Secrets {
            offerer: expand(b"offerer traffic"),
            answerer: expand(b"answerer traffic"),
        }
    }
}

/// The key and IV of one epoch of a traffic secret.
pub(crate) fn epoch_key(secret: &[u8; KEY_LEN], epoch: u64) -> ([u8; KEY_LEN], [u8; 12]) {
    let mut key = [0u8; KEY_LEN];
    let mut iv = [0u8; 12];
    // A 32-byte secret is a valid PRK; the lengths are within HKDF's limit.
    if let Ok(hk) = Hkdf::<Sha256>::from_prk(secret) {
        let e = epoch.to_be_bytes();
        let _ = hk.expand_multi_info(&[b"key", &e], &mut key);
        let _ = hk.expand_multi_info(&[b"iv", &e], &mut iv);
    }
    (key, iv)
}

/// The header-protection key of a traffic secret (one for the session's life: the mask
/// hides packet numbers, it does not protect data, so it needs no epochs).
pub(crate) fn hp_key(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    if let Ok(hk) = Hkdf::<Sha256>::from_prk(secret) {
        let _ = hk.expand_multi_info(&[b"hp"], &mut key);
    }
    key
}

/// Every value of the key schedule for given inputs (for test vectors and audits; the
/// protocol itself never exposes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySchedule {
    /// The offerer's ephemeral public key.
    pub offerer_public: [u8; 32],
    /// The answerer's ephemeral public key.
    pub answerer_public: [u8; 32],
    /// The X25519 shared secret.
    pub shared: [u8; 32],
    /// The offerer's traffic secret.
    pub offerer_traffic: [u8; 32],
    /// The answerer's traffic secret.
    pub answerer_traffic: [u8; 32],
    /// Epoch 0 key and IV of the offerer's direction.
    pub offerer_key0: ([u8; 32], [u8; 12]),
    /// Epoch 0 key and IV of the answerer's direction.
    pub answerer_key0: ([u8; 32], [u8; 12]),
    /// The header-protection key of the offerer's direction.
    pub offerer_hp: [u8; 32],
    /// The header-protection key of the answerer's direction.
    pub answerer_hp: [u8; 32],
}

impl KeySchedule {
    /// The bytes of a packet the offerer sends, exactly as the protocol sends them (for
    /// test vectors): `header` with a `pn_len`-byte packet number (the AAD), `payload`
    /// sealed under the header's packet number, the tag, then header protection applied.
    /// Empty if the payload is too short to sample (packet number and payload need 4
    /// bytes; the protocol pads).
    pub fn offerer_packet(
        &self,
        header: &crate::packet::Header,
        pn_len: usize,
        payload: &[u8],
    ) -> alloc::vec::Vec<u8> {
        let secrets = Secrets {
            offerer: self.offerer_traffic,
            answerer: self.answerer_traffic,
        };
        let head = crate::packet::Header::len(pn_len);
        let mut out = alloc::vec![0u8; head];
        header.emit(&mut out, pn_len);
        out.extend_from_slice(payload);
        let Some(mut p) = super::Protection::new(&secrets, true) else {
            return alloc::vec::Vec::new();
        };
        let (aad, body) = out.split_at_mut(head);
        let Ok(tag) = p.seal(header.packet_number, aad, body) else {
            return alloc::vec::Vec::new();
        };
        out.extend_from_slice(&tag);
        if !p.protect_header(&mut out) {
            return alloc::vec::Vec::new();
        }
        out
    }
}

/// Runs the key schedule from two ephemeral secrets (see docs/PROTOCOL.md §2.9). `None` if
/// the shared secret would be all zeros.
///
/// ```
/// let s = carrier_proto::derive_schedule([1; 32], [2; 32]).unwrap();
/// assert_ne!(s.offerer_traffic, s.answerer_traffic);
/// ```
pub fn derive_schedule(offerer_secret: [u8; 32], answerer_secret: [u8; 32]) -> Option<KeySchedule> {
    let o = Ephemeral::from_secret(offerer_secret);
    let a = Ephemeral::from_secret(answerer_secret);
    let shared = o.agree(&a.public())?;
    let secrets = Secrets::derive(&shared, &o.public(), &a.public());
    Some(KeySchedule {
        offerer_public: o.public(),
        answerer_public: a.public(),
        shared,
        offerer_key0: epoch_key(&secrets.offerer, 0),
        answerer_key0: epoch_key(&secrets.answerer, 0),
        offerer_hp: hp_key(&secrets.offerer),
        answerer_hp: hp_key(&secrets.answerer),
        offerer_traffic: secrets.offerer,
        answerer_traffic: secrets.answerer,
    })
}
