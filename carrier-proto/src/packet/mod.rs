//! The wire format (version 2): every datagram the core sends or accepts.
//!
//! ```text
//! packet  = header payload trailer
//! header  = first-byte(1) destination-id(8) packet-number(1–4)              10–13 bytes
//! trailer = CRC-32 (IEEE) of header and payload, big-endian (plain sessions)   4 bytes
//!         | AES-256-GCM tag (protected sessions)                              16 bytes
//! ```
//!
//! The first byte is `0b11vv_ttll`: the two top bits set tell a Carrier packet apart from
//! STUN (0–3), DTLS (20–63), TURN ChannelData (64–79) and RTP/RTCP (128–191) per RFC 7983,
//! so one socket can carry them all; `vv` is the format (`01` in this version), `tt` the
//! [`PacketType`], `ll` the length of the packet number less one. The destination id routes
//! the packet to its session in O(1) (see `Endpoint`). The packet number is unique per
//! session and direction and is sent truncated to its low 1–4 bytes, as QUIC does (RFC 9000
//! §17.1): the receiver restores it from the largest it has taken. In a protected session
//! the `ll` bits and the packet-number bytes are masked (header protection, RFC 9001 §5.4),
//! so packet numbers are not visible on the wire.
//! docs/PROTOCOL.md has the byte layouts and a test vector per type.
//!
//! Each format is a plain `Repr` struct that is parsed from and emitted into bytes, in the
//! manner of smoltcp; parsing borrows from the input and never allocates.

mod check;
mod frame;

pub use crate::channel::ChannelFrame;
pub use crate::transport::ack::{AckFrame, AckFrameRanges};
pub use check::{Check, CheckAck, TRANSACTION_ID_LEN};
pub use frame::{Frame, FrameIter, MAX_ACK_RANGES, SESSION_SCOPE, frame_type};

use core::fmt;

use bytes::BytesMut;

/// The protocol version this crate speaks (the first byte's `vv` bits are `VERSION - 1`).
pub const VERSION: u8 = 2;
/// The first byte's format bits for [`VERSION`].
const FORMAT: u8 = 0b0001_0000;
/// The first byte's format mask.
const FORMAT_MASK: u8 = 0b0011_0000;
/// Where the packet number starts.
pub const PN_OFFSET: usize = 9;
/// The shortest header (a 1-byte packet number).
pub const MIN_HEADER_LEN: usize = PN_OFFSET + 1;
/// The longest header (a 4-byte packet number): what size computations assume.
pub const HEADER_LEN: usize = PN_OFFSET + 4;
/// Bytes after the payload of a plain packet (the checksum).
pub const TRAILER_LEN: usize = 4;
/// The most a plain packet costs on top of its payload (longest header plus trailer).
pub const OVERHEAD: usize = HEADER_LEN + TRAILER_LEN;
/// The first-byte bits that mark a Carrier packet.
const MARKER: u8 = 0b1100_0000;
/// The first-byte bits of the packet-number length (masked by header protection).
pub const PN_LEN_BITS: u8 = 0b0000_0011;

/// What a packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// A connectivity check on a candidate pair (payload: [`Check`]).
    Check = 0,
    /// The answer to a check (payload: [`CheckAck`]).
    CheckAck = 1,
    /// Frames for an established session (payload: [`Frame`]s).
    Data = 2,
}

impl PacketType {
    fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(PacketType::Check),
            1 => Some(PacketType::CheckAck),
            2 => Some(PacketType::Data),
            _ => None,
        }
    }
}

/// Why bytes are not a packet this endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than a header and trailer.
    #[error("packet of {0} bytes is too short")]
    TooShort(usize),
    /// The first byte is not a Carrier packet's (e.g. STUN or garbage).
    #[error("first byte {0:#04x} is not a Carrier packet")]
    NotCarrier(u8),
    /// A version this crate does not speak.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A packet type this crate does not know.
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    /// The checksum does not match: the packet was corrupted.
    #[error("checksum mismatch")]
    BadChecksum,
    /// The payload of a check or check ack is malformed.
    #[error("malformed {0} payload")]
    Malformed(&'static str),
    /// A frame type this crate does not know (frames carry no length, so the rest of the
    /// packet cannot be read).
    #[error("unknown frame type {0:#04x}")]
    UnknownFrame(u8),
    /// A frame runs past the end of the payload.
    #[error("truncated {0} frame")]
    TruncatedFrame(&'static str),
}

/// The fixed header of every packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// What the payload is.
    pub packet_type: PacketType,
    /// The receiving session's connection id.
    pub destination: u64,
    /// Unique per session and direction.
    pub packet_number: u64,
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} to {:016x} #{}",
            self.packet_type, self.destination, self.packet_number
        )
    }
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// True if the first byte marks a Carrier packet (RFC 7983 demultiplexing).
pub fn is_carrier_packet(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| b & MARKER == MARKER)
}

/// The destination connection id, read without checking anything else: what the endpoint
/// routes on before it spends time on the checksum or the tag.
pub fn peek_destination(datagram: &[u8]) -> Option<u64> {
    if datagram.len() < MIN_HEADER_LEN + TRAILER_LEN || !is_carrier_packet(datagram) {
        return None;
    }
    be_u64(datagram, 1)
}

/// How many bytes of packet number `pn` to send (RFC 9000 §17.1, A.2): enough that the
/// receiver, which has seen up to about `largest_acked`, can tell it from every packet
/// number within twice the distance.
pub fn packet_number_len(pn: u64, largest_acked: Option<u64>) -> usize {
    let unacked = match largest_acked {
        Some(acked) => pn.saturating_sub(acked),
        None => pn.saturating_add(1),
    };
    let needed = u64::BITS - unacked.leading_zeros() + 1;
    (needed.div_ceil(8) as usize).clamp(1, 4)
}

/// The full packet number from its low `len` bytes `truncated`, given the largest packet
/// number received so far (RFC 9000 A.3).
pub fn decode_packet_number(largest: Option<u64>, truncated: u64, len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let window = 1u64 << (8 * len as u32);
    let half = window / 2;
    let mask = window - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(half) <= expected && candidate < (1 << 62) - window {
        candidate + window
    } else if candidate > expected.saturating_add(half) && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

/// A protected packet's header as it stands on the wire, before header protection is
/// removed: what can be read without the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SealedHeader {
    /// What the payload is.
    pub packet_type: PacketType,
    /// The receiving session's connection id.
    pub destination: u64,
}

/// Checks the marker, format and type of a first byte.
fn parse_first(first: u8) -> Result<PacketType, PacketError> {
    if first & MARKER != MARKER {
        return Err(PacketError::NotCarrier(first));
    }
    if first & FORMAT_MASK != FORMAT {
        return Err(PacketError::UnsupportedVersion(
            ((first & FORMAT_MASK) >> 4) + 1,
        ));
    }
    let bits = (first >> 2) & 0b11;
    PacketType::from_bits(bits).ok_or(PacketError::UnknownType(bits))
}

/// The low `len` bytes of a packet number, read big-endian.
fn read_truncated(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

impl Header {
    /// The header's length with a `pn_len`-byte packet number.
    pub const fn len(pn_len: usize) -> usize {
        PN_OFFSET + pn_len
    }

    /// Checks a plain packet (marker, format, type, checksum) and returns the header, with
    /// the packet number restored against `largest` (the largest this side has taken),
    /// and the payload between header and trailer.
    pub fn parse(datagram: &[u8], largest: Option<u64>) -> Result<(Header, &[u8]), PacketError> {
        let len = datagram.len();
        if len < MIN_HEADER_LEN + TRAILER_LEN {
            return Err(PacketError::TooShort(len));
        }
        let (body, trailer) = datagram.split_at(len - TRAILER_LEN);
        let packet_type = parse_first(body[0])?;
        let pn_len = usize::from(body[0] & PN_LEN_BITS) + 1;
        if body.len() < Header::len(pn_len) {
            return Err(PacketError::TooShort(len));
        }
        let expected = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if crc32fast::hash(body) != expected {
            return Err(PacketError::BadChecksum);
        }
        let truncated = read_truncated(&body[PN_OFFSET..PN_OFFSET + pn_len]);
        let header = Header {
            packet_type,
            destination: be_u64(body, 1).ok_or(PacketError::TooShort(len))?,
            packet_number: decode_packet_number(largest, truncated, pn_len),
        };
        Ok((header, &body[Header::len(pn_len)..]))
    }

    /// Reads what a protected packet shows without the keys (marker, format, type,
    /// destination), and checks it is long enough for header protection's sample and a
    /// tag of `tag_len` bytes. The packet number is read once header protection is
    /// removed (by whoever holds the keys).
    pub fn parse_protected(datagram: &[u8], tag_len: usize) -> Result<SealedHeader, PacketError> {
        let len = datagram.len();
        if len < PN_OFFSET + 4 + tag_len.max(16) {
            return Err(PacketError::TooShort(len));
        }
        Ok(SealedHeader {
            packet_type: parse_first(datagram[0])?,
            destination: be_u64(datagram, 1).ok_or(PacketError::TooShort(len))?,
        })
    }

    /// Writes the header with a `pn_len`-byte packet number (1–4) into the first
    /// [`Header::len`]`(pn_len)` bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than that (a bug in the caller, never peer input).
    pub fn emit(&self, out: &mut [u8], pn_len: usize) {
        let pn_len = pn_len.clamp(1, 4);
        out[0] = MARKER | FORMAT | ((self.packet_type as u8) << 2) | (pn_len as u8 - 1);
        out[1..9].copy_from_slice(&self.destination.to_be_bytes());
        let pn = self.packet_number.to_be_bytes();
        out[PN_OFFSET..PN_OFFSET + pn_len].copy_from_slice(&pn[8 - pn_len..]);
    }
}

/// Appends a whole plain packet to `out`: the header with a `pn_len`-byte packet number,
/// whatever `payload` writes, then the checksum.
///
/// `out` is the endpoint's reusable send buffer, so building a packet allocates nothing once
/// the buffer has grown to its working size.
pub fn write_packet(
    out: &mut BytesMut,
    header: &Header,
    pn_len: usize,
    payload: impl FnOnce(&mut BytesMut),
) {
    let start = out.len();
    let head = Header::len(pn_len.clamp(1, 4));
    out.resize(start + head, 0);
    header.emit(&mut out[start..], pn_len);
    payload(out);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn sample() -> Vec<u8> {
        let mut out = BytesMut::new();
        let h = Header {
            packet_type: PacketType::Data,
            destination: 0x0102_0304_0506_0708,
            packet_number: 9,
        };
        write_packet(&mut out, &h, 1, |o| o.extend_from_slice(&[0x01]));
        out.to_vec()
    }

    #[test]
    fn round_trip_and_peek() {
        let p = sample();
        assert_eq!(p.len(), MIN_HEADER_LEN + TRAILER_LEN + 1);
        assert_eq!(peek_destination(&p), Some(0x0102_0304_0506_0708));
        let (h, payload) = Header::parse(&p, None).unwrap();
        assert_eq!(h.packet_number, 9);
        assert_eq!(payload, &[0x01]);
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let p = sample();
        for bit in 0..p.len() * 8 {
            let mut q = p.clone();
            q[bit / 8] ^= 1 << (bit % 8);
            assert!(Header::parse(&q, None).is_err(), "bit {bit} flip accepted");
        }
    }

    #[test]
    fn stun_is_not_carrier() {
        let mut stun = [0u8; 40];
        stun[1] = 0x01; // binding request
        assert!(!is_carrier_packet(&stun));
        assert_eq!(Header::parse(&stun, None), Err(PacketError::NotCarrier(0)));
        assert_eq!(peek_destination(&stun), None);
    }

    #[test]
    fn packet_numbers_truncate_and_restore_as_rfc_9000_says() {
        // RFC 9000 A.2: 0xac5c02 with 0xabe8b3 acknowledged needs 2 bytes; A.3's example.
        assert_eq!(packet_number_len(0xac5c02, Some(0xabe8b3)), 2);
        assert_eq!(packet_number_len(0xace8fe, Some(0xabe8b3)), 3);
        assert_eq!(
            decode_packet_number(Some(0xa82f30ea), 0x9b32, 2),
            0xa82f9b32
        );
        assert_eq!(packet_number_len(0, None), 1);
        assert_eq!(packet_number_len(200, None), 2);
        assert_eq!(packet_number_len(u64::MAX >> 2, None), 4);
        // Every number near the expected one comes back from its truncation.
        for largest in [0u64, 5, 250, 255, 256, 65_530, 1 << 30, (1 << 40) + 17] {
            for pn in largest.saturating_sub(100)..largest + 100 {
                let len = packet_number_len(pn, Some(largest.saturating_sub(20)));
                let truncated = pn & ((1u64 << (8 * len)) - 1);
                assert_eq!(
                    decode_packet_number(Some(largest), truncated, len),
                    pn,
                    "{largest} {pn}"
                );
            }
        }
    }
}
