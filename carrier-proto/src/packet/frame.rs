//! Frames: the contents of a `Data` packet, one after another.
//!
//! ```text
//! PADDING  = 0x00
//! PING     = 0x01                                   (elicits nothing; keeps the path alive)
//! DATAGRAM = 0x02 stream(1) length(2) data(length)  (an unreliable stream's write)
//! CLOSE    = 0x03 scope(1) reason(1)                (scope: a stream index, or 0xFF = session)
//! ```
//!
//! Types 0x04–0x3F are reserved for the layers still to come (ACK ranges, reliable stream
//! data with offsets, channel control, flow-control credit). A frame has no generic length
//! field, so an unknown type ends parsing and the packet is dropped.

use bytes::{BufMut, BytesMut};

use super::PacketError;
use crate::types::CloseReason;

/// The CLOSE scope that means the whole session rather than one stream.
pub const SESSION_SCOPE: u8 = 0xFF;

const PADDING: u8 = 0x00;
const PING: u8 = 0x01;
const DATAGRAM: u8 = 0x02;
const CLOSE: u8 = 0x03;

/// One frame, borrowing its data from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One byte of nothing.
    Padding,
    /// Proof of life.
    Ping,
    /// An unreliable stream's datagram.
    Datagram {
        /// The stream's index in the session.
        stream: u8,
        /// The bytes the peer wrote.
        data: &'a [u8],
    },
    /// A stream (or, with [`SESSION_SCOPE`], the whole session) is closed.
    Close {
        /// Stream index, or [`SESSION_SCOPE`].
        scope: u8,
        /// Why.
        reason: CloseReason,
    },
}

impl Frame<'_> {
    /// Bytes this frame occupies on the wire.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Padding | Frame::Ping => 1,
            Frame::Datagram { data, .. } => Self::DATAGRAM_OVERHEAD + data.len(),
            Frame::Close { .. } => 3,
        }
    }

    /// Bytes a DATAGRAM frame adds to its data.
    pub const DATAGRAM_OVERHEAD: usize = 4;

    /// Appends the frame to `out`.
    ///
    /// A datagram longer than `u16::MAX` is a caller bug (the session checks sizes against
    /// the path MTU first); it is cut rather than written with a wrong length.
    pub fn emit(&self, out: &mut BytesMut) {
        match *self {
            Frame::Padding => out.put_u8(PADDING),
            Frame::Ping => out.put_u8(PING),
            Frame::Datagram { stream, data } => {
                let data = &data[..data.len().min(u16::MAX as usize)];
                out.put_u8(DATAGRAM);
                out.put_u8(stream);
                out.put_u16(data.len() as u16);
                out.put_slice(data);
            }
            Frame::Close { scope, reason } => {
                out.put_u8(CLOSE);
                out.put_u8(scope);
                out.put_u8(reason as u8);
            }
        }
    }
}

/// Iterates over the frames of a payload; yields an error and stops at the first bad frame.
#[derive(Clone, Debug)]
pub struct FrameIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> FrameIter<'a> {
    /// Frames of `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        FrameIter {
            rest: payload,
            failed: false,
        }
    }

    fn next_frame(&mut self) -> Result<Frame<'a>, PacketError> {
        let (&ty, body) = self
            .rest
            .split_first()
            .ok_or(PacketError::TruncatedFrame("empty"))?;
        let (frame, used) = match ty {
            PADDING => (Frame::Padding, 0),
            PING => (Frame::Ping, 0),
            DATAGRAM => {
                let trunc = PacketError::TruncatedFrame("datagram");
                let (&stream, body) = body.split_first().ok_or(trunc)?;
                let len = body.get(..2).ok_or(trunc)?;
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                let data = body.get(2..2 + len).ok_or(trunc)?;
                (Frame::Datagram { stream, data }, 3 + len)
            }
            CLOSE => {
                let b = body.get(..2).ok_or(PacketError::TruncatedFrame("close"))?;
                let reason = CloseReason::from_u8(b[1]).ok_or(PacketError::Malformed("close"))?;
                (
                    Frame::Close {
                        scope: b[0],
                        reason,
                    },
                    2,
                )
            }
            other => return Err(PacketError::UnknownFrame(other)),
        };
        self.rest = &body[used..];
        Ok(frame)
    }
}

impl<'a> Iterator for FrameIter<'a> {
    type Item = Result<Frame<'a>, PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let item = self.next_frame();
        self.failed = item.is_err();
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn frames_round_trip() {
        let frames = [
            Frame::Ping,
            Frame::Datagram {
                stream: 3,
                data: b"hello",
            },
            Frame::Padding,
            Frame::Close {
                scope: SESSION_SCOPE,
                reason: CloseReason::Timeout,
            },
        ];
        let mut out = BytesMut::new();
        for f in &frames {
            f.emit(&mut out);
        }
        assert_eq!(
            out.len(),
            frames.iter().map(Frame::encoded_len).sum::<usize>()
        );
        let back: Vec<_> = FrameIter::new(&out).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, frames);
    }

    #[test]
    fn truncation_and_unknown_types_are_errors() {
        let mut out = BytesMut::new();
        Frame::Datagram {
            stream: 0,
            data: b"abc",
        }
        .emit(&mut out);
        let r: Vec<_> = FrameIter::new(&out[..out.len() - 1]).collect();
        assert_eq!(r, [Err(PacketError::TruncatedFrame("datagram"))]);
        let r: Vec<_> = FrameIter::new(&[0x3F, 1, 2]).collect();
        assert_eq!(r, [Err(PacketError::UnknownFrame(0x3F))]);
        let r: Vec<_> = FrameIter::new(&[CLOSE, 0, 9]).collect();
        assert_eq!(r, [Err(PacketError::Malformed("close"))]);
    }
}
