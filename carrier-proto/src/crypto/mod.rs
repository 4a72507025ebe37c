//! Packet protection: key agreement, the key schedule, sealing and opening packets, and the
//! replay window.
//!
//! - `keys.rs`: an ephemeral X25519 key per session, carried in the offer and the answer
//!   (`a=x-carrier-key`); HKDF-SHA256 turns the shared secret into one traffic secret per
//!   direction, bound to both public keys.
//! - `protect.rs`: AES-256-GCM (ring) over every packet of a protected session. The nonce
//!   is the epoch IV XOR the packet number, and a packet number is never used twice in a
//!   direction, so no nonce repeats under a key. Keys change every 2^22 packets (an
//!   *epoch*, derived from the traffic secret and the epoch number, so both sides switch
//!   without a message), below AES-GCM's confidentiality limit; the session stops cleanly
//!   before the packet-number space runs out.
//! - `replay.rs`: a sliding window of packet numbers seen, checked after authentication.
//!
//! A session is protected unless every stream it carries is PLAIN. docs/SECURITY.md gives
//! the threat model; docs/PROTOCOL.md §2.9 the exact schedule, with test vectors.

pub(crate) mod identity;
mod keys;
mod protect;
mod replay;

pub(crate) use keys::{Ephemeral, KEY_LEN, Secrets};
pub use keys::{KeySchedule, derive_schedule};
pub(crate) use protect::{OpenError, Protection, TAG_LEN};
