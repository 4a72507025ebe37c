//! The wire format: every datagram the core sends or accepts.
//!
//! ```text
//! packet  = header payload trailer
//! header  = first-byte(1) version(1) destination-id(8) packet-number(8)      18 bytes
//! trailer = CRC-32 (IEEE) of header and payload, big-endian                   4 bytes
//! ```
//!
//! The first byte is `0b11tt_tttt`: the two top bits set tell a Carrier packet apart from
//! STUN (0–3), DTLS (20–63), TURN ChannelData (64–79) and RTP/RTCP (128–191) per RFC 7983,
//! so one socket can carry them all. The low six bits are the [`PacketType`]. The
//! destination id routes the packet to its session in O(1) (see `Endpoint`); the packet
//! number is unique per session and direction (the reliability and crypto layers build on it).
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

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 18;
/// Bytes after the payload (the checksum).
pub const TRAILER_LEN: usize = 4;
/// Header plus trailer: what every packet costs on top of its payload.
pub const OVERHEAD: usize = HEADER_LEN + TRAILER_LEN;
/// The first-byte bits that mark a Carrier packet.
const MARKER: u8 = 0b1100_0000;

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
    #[error("packet of {0} bytes is shorter than the {OVERHEAD}-byte minimum")]
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
/// routes on before it spends time on the checksum.
pub fn peek_destination(datagram: &[u8]) -> Option<u64> {
    if datagram.len() < OVERHEAD || !is_carrier_packet(datagram) {
        return None;
    }
    be_u64(datagram, 2)
}

impl Header {
    /// Checks the whole packet (marker, version, type, checksum) and returns the header and
    /// the payload between header and trailer.
    pub fn parse(datagram: &[u8]) -> Result<(Header, &[u8]), PacketError> {
        let len = datagram.len();
        if len < OVERHEAD {
            return Err(PacketError::TooShort(len));
        }
        let (body, trailer) = datagram.split_at(len - TRAILER_LEN);
        let first = body[0];
        if first & MARKER != MARKER {
            return Err(PacketError::NotCarrier(first));
        }
        if body[1] != VERSION {
            return Err(PacketError::UnsupportedVersion(body[1]));
        }
        let packet_type = PacketType::from_bits(first & !MARKER)
            .ok_or(PacketError::UnknownType(first & !MARKER))?;
        let expected = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if crc32fast::hash(body) != expected {
            return Err(PacketError::BadChecksum);
        }
        let header = Header {
            packet_type,
            destination: be_u64(body, 2).ok_or(PacketError::TooShort(len))?,
            packet_number: be_u64(body, 10).ok_or(PacketError::TooShort(len))?,
        };
        Ok((header, &body[HEADER_LEN..]))
    }

    /// Parses the header of a packet whose trailer is an authentication tag of `tag_len`
    /// bytes (a protected session's): checks the marker, version, type and length only;
    /// the tag is verified by whoever holds the keys.
    pub fn parse_protected(datagram: &[u8], tag_len: usize) -> Result<Header, PacketError> {
        let len = datagram.len();
        if len < HEADER_LEN + tag_len {
            return Err(PacketError::TooShort(len));
        }
        let first = datagram[0];
        if first & MARKER != MARKER {
            return Err(PacketError::NotCarrier(first));
        }
        if datagram[1] != VERSION {
            return Err(PacketError::UnsupportedVersion(datagram[1]));
        }
        let packet_type = PacketType::from_bits(first & !MARKER)
            .ok_or(PacketError::UnknownType(first & !MARKER))?;
        Ok(Header {
            packet_type,
            destination: be_u64(datagram, 2).ok_or(PacketError::TooShort(len))?,
            packet_number: be_u64(datagram, 10).ok_or(PacketError::TooShort(len))?,
        })
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than [`HEADER_LEN`] (a bug in the caller, never peer input).
    pub fn emit(&self, out: &mut [u8]) {
        out[0] = MARKER | self.packet_type as u8;
        out[1] = VERSION;
        out[2..10].copy_from_slice(&self.destination.to_be_bytes());
        out[10..18].copy_from_slice(&self.packet_number.to_be_bytes());
    }
}

/// Appends a whole packet to `out`: the header, whatever `payload` writes, then the checksum.
///
/// `out` is the endpoint's reusable send buffer, so building a packet allocates nothing once
/// the buffer has grown to its working size.
pub fn write_packet(out: &mut BytesMut, header: &Header, payload: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    header.emit(&mut out[start..]);
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
        write_packet(&mut out, &h, |o| o.extend_from_slice(&[0x01]));
        out.to_vec()
    }

    #[test]
    fn round_trip_and_peek() {
        let p = sample();
        assert_eq!(p.len(), OVERHEAD + 1);
        assert_eq!(peek_destination(&p), Some(0x0102_0304_0506_0708));
        let (h, payload) = Header::parse(&p).unwrap();
        assert_eq!(h.packet_number, 9);
        assert_eq!(payload, &[0x01]);
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let p = sample();
        for bit in 0..p.len() * 8 {
            let mut q = p.clone();
            q[bit / 8] ^= 1 << (bit % 8);
            assert!(Header::parse(&q).is_err(), "bit {bit} flip accepted");
        }
    }

    #[test]
    fn stun_is_not_carrier() {
        let mut stun = [0u8; 40];
        stun[1] = 0x01; // binding request
        assert!(!is_carrier_packet(&stun));
        assert_eq!(Header::parse(&stun), Err(PacketError::NotCarrier(0)));
        assert_eq!(peek_destination(&stun), None);
    }
}
