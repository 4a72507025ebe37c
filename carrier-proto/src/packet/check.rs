//! Connectivity checks: the payloads of `Check` and `CheckAck` packets.
//!
//! ```text
//! Check    = source-id(8) transaction-id(12) ufrag-len(1) ufrag(ufrag-len)
//! CheckAck = transaction-id(12) family(1: 4|6) port(2) address(4|16)
//! ```
//!
//! A check proves the sender read our description: it carries our ICE ufrag. Its source id
//! tells us where to send the ack before we have the sender's description (the answerer may
//! start checking before the offerer has the answer). The ack echoes the transaction id and
//! reports the address the check came from, which is how a peer learns a server- or
//! peer-reflexive address of its own.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, BytesMut};

use super::PacketError;

/// Bytes in a transaction id (as in STUN).
pub const TRANSACTION_ID_LEN: usize = 12;

/// A connectivity check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check<'a> {
    /// The sender's connection id: where to address the ack.
    pub source: u64,
    /// Matches the ack to the check.
    pub transaction: [u8; TRANSACTION_ID_LEN],
    /// The receiver's ICE ufrag, as its description gave it.
    pub ufrag: &'a str,
}

impl<'a> Check<'a> {
    /// Parses a check payload.
    pub fn parse(payload: &'a [u8]) -> Result<Self, PacketError> {
        const WHAT: &str = "check";
        let source = payload
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or(PacketError::Malformed(WHAT))?;
        let transaction = payload
            .get(8..8 + TRANSACTION_ID_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(PacketError::Malformed(WHAT))?;
        let at = 8 + TRANSACTION_ID_LEN;
        let len = *payload.get(at).ok_or(PacketError::Malformed(WHAT))? as usize;
        let ufrag = payload
            .get(at + 1..)
            .filter(|rest| rest.len() == len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .ok_or(PacketError::Malformed(WHAT))?;
        Ok(Check {
            source,
            transaction,
            ufrag,
        })
    }

    /// Appends the payload to `out`. The ufrag is cut at 255 bytes (descriptions limit it to
    /// 256 `ice-char`s; ours are far shorter).
    pub fn emit(&self, out: &mut BytesMut) {
        let ufrag = &self.ufrag.as_bytes()[..self.ufrag.len().min(255)];
        out.put_u64(self.source);
        out.put_slice(&self.transaction);
        out.put_u8(ufrag.len() as u8);
        out.put_slice(ufrag);
    }
}

/// The answer to a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckAck {
    /// The check's transaction id.
    pub transaction: [u8; TRANSACTION_ID_LEN],
    /// The source address the check arrived from, as the acking peer saw it.
    pub observed: SocketAddr,
}

impl CheckAck {
    /// Parses a check-ack payload.
    pub fn parse(payload: &[u8]) -> Result<Self, PacketError> {
        const WHAT: &str = "check ack";
        let bad = PacketError::Malformed(WHAT);
        let transaction = payload
            .get(..TRANSACTION_ID_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(bad)?;
        let rest = payload.get(TRANSACTION_ID_LEN..).ok_or(bad)?;
        let (&family, rest) = rest.split_first().ok_or(bad)?;
        let port = rest
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(bad)?;
        let ip = match (family, rest.get(2..)) {
            (4, Some(b)) if b.len() == 4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            (6, Some(b)) if b.len() == 16 => {
                let octets: [u8; 16] = b.try_into().map_err(|_| bad)?;
                IpAddr::V6(Ipv6Addr::from(octets))
            }
            _ => return Err(bad),
        };
        Ok(CheckAck {
            transaction,
            observed: SocketAddr::new(ip, port),
        })
    }

    /// Appends the payload to `out`.
    pub fn emit(&self, out: &mut BytesMut) {
        out.put_slice(&self.transaction);
        match self.observed.ip() {
            IpAddr::V4(ip) => {
                out.put_u8(4);
                out.put_u16(self.observed.port());
                out.put_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.put_u8(6);
                out.put_u16(self.observed.port());
                out.put_slice(&ip.octets());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_round_trip() {
        let c = Check {
            source: 42,
            transaction: [7; 12],
            ufrag: "abcd",
        };
        let mut out = BytesMut::new();
        c.emit(&mut out);
        assert_eq!(out.len(), 8 + 12 + 1 + 4);
        assert_eq!(Check::parse(&out), Ok(c));
        assert!(Check::parse(&out[..out.len() - 1]).is_err());
    }

    #[test]
    fn ack_round_trip_v4_v6() {
        for addr in ["192.0.2.1:9", "[2001:db8::1]:65535"] {
            let a = CheckAck {
                transaction: [1; 12],
                observed: addr.parse().unwrap(),
            };
            let mut out = BytesMut::new();
            a.emit(&mut out);
            assert_eq!(CheckAck::parse(&out), Ok(a));
            assert!(CheckAck::parse(&out[..out.len() - 1]).is_err());
        }
    }
}
