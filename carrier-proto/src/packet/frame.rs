//! Frames: the contents of a `Data` packet, one after another.
//!
//! ```text
//! PADDING  = 0x00
//! PING     = 0x01                                   (elicits nothing; keeps the path alive)
//! DATAGRAM = 0x02 stream(1) length(2) data(length)  (an unreliable stream's write)
//! CLOSE    = 0x03 scope(1) reason(1)                (scope: a stream index, or 0xFF = session)
//! ACK      = 0x04 largest(v) delay-µs(v) extra-ranges(v) first-range(v) (gap(v) len(v))*
//! STREAM   = 0x05 stream(1) flags(1: FIN=1) offset(v) length(v) data(length)
//! MAX_DATA = 0x06 max(v)                            (connection credit: total new bytes)
//! MAX_STREAM_DATA     = 0x07 stream(1) max(v)       (stream credit: highest offset)
//! DATA_BLOCKED        = 0x08 limit(v)               (sender blocked by connection credit)
//! STREAM_DATA_BLOCKED = 0x09 stream(1) limit(v)     (sender blocked by stream credit)
//! DATA (channel) 0x0D, MAX_CHANNEL_DATA 0x10, DATAGRAM (channel) 0x11, KEEPALIVE 0x12:
//!                      see `ChannelFrame`
//! CONTROL          = 0x13 stream(1) offset(v) length(v) records(length)
//!                                                   (the stream's ordered channel control)
//! MAX_CONTROL_DATA = 0x14 stream(1) max(v)          (control stream credit)
//! ```
//!
//! `(v)` is a QUIC variable-length integer (RFC 9000 §16). Types 0x0A, 0x0B, 0x0C, 0x0E and
//! 0x0F are channel *control records*: they are valid only inside a CONTROL frame's byte
//! stream, never as packet frames. Types 0x15–0x3F are reserved. A frame has no generic
//! length field, so an unknown type ends parsing and the packet is dropped.

use bytes::{BufMut, BytesMut};

use super::PacketError;
use crate::channel::{ChannelFrame, MAX_CHANNEL_ID, is_channel_frame, is_control_record};
use crate::transport::ack::AckFrame;
use crate::transport::varint;
use crate::types::CloseReason;

/// The CLOSE scope that means the whole session rather than one stream.
pub const SESSION_SCOPE: u8 = 0xFF;

/// The type byte of each DATA-packet frame (docs/PROTOCOL.md §2.3); the channel frames
/// (0x0A–0x12) are in [`ChannelFrame`](crate::packet::ChannelFrame).
pub mod frame_type {
    /// PADDING.
    pub const PADDING: u8 = 0x00;
    /// PING.
    pub const PING: u8 = 0x01;
    /// DATAGRAM.
    pub const DATAGRAM: u8 = 0x02;
    /// CLOSE.
    pub const CLOSE: u8 = 0x03;
    /// ACK.
    pub const ACK: u8 = 0x04;
    /// STREAM.
    pub const STREAM: u8 = 0x05;
    /// MAX_DATA.
    pub const MAX_DATA: u8 = 0x06;
    /// MAX_STREAM_DATA.
    pub const MAX_STREAM_DATA: u8 = 0x07;
    /// DATA_BLOCKED.
    pub const DATA_BLOCKED: u8 = 0x08;
    /// STREAM_DATA_BLOCKED.
    pub const STREAM_DATA_BLOCKED: u8 = 0x09;
    /// CONTROL.
    pub const CONTROL: u8 = 0x13;
    /// MAX_CONTROL_DATA.
    pub const MAX_CONTROL_DATA: u8 = 0x14;
}
use frame_type::*;
/// The FIN bit of a STREAM frame's flags.
const FIN: u8 = 0x01;
/// Most ranges accepted in one ACK frame (a peer cannot make us walk a longer list).
pub const MAX_ACK_RANGES: usize = 64;

/// One frame, borrowing its data from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Nothing: one zero byte when written; when parsed, a whole run of them (each byte is
    /// a PADDING frame on the wire, and [`FrameIter`] yields a run as one).
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
    /// Packet numbers the sender received.
    Ack(AckFrame<'a>),
    /// Bytes of a reliable stream at an offset.
    Stream {
        /// The stream's index in the session.
        stream: u8,
        /// Stream offset of the first byte.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
        /// The stream ends after these bytes.
        fin: bool,
    },
    /// Connection-level credit: the peer may send this many new stream bytes in total.
    MaxData(u64),
    /// Stream-level credit: the peer may send offsets below this.
    MaxStreamData {
        /// The stream's index.
        stream: u8,
        /// The new limit.
        max: u64,
    },
    /// The sender has data but no connection credit beyond `limit`.
    DataBlocked(u64),
    /// The sender has data on `stream` but no credit beyond `limit`.
    StreamDataBlocked {
        /// The stream's index.
        stream: u8,
        /// The credit it is stuck at.
        limit: u64,
    },
    /// A channel's data, credit, datagram or keepalive (multiplexing streams).
    Channel(ChannelFrame<'a>),
    /// Bytes of a stream's channel control stream (OPEN, ACCEPT, CLOSE, PEND and RESUME
    /// records, in order) at an offset.
    Control {
        /// The stream's index.
        stream: u8,
        /// Control-stream offset of the first byte.
        offset: u64,
        /// The record bytes (a record may span frames).
        data: &'a [u8],
    },
    /// Control-stream credit: the peer may send control offsets below `max`.
    MaxControlData {
        /// The stream's index.
        stream: u8,
        /// The new limit.
        max: u64,
    },
}

impl Frame<'_> {
    /// Bytes this frame occupies on the wire.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Padding | Frame::Ping => 1,
            Frame::Datagram { data, .. } => Self::DATAGRAM_OVERHEAD + data.len(),
            Frame::Close { .. } => 3,
            Frame::Ack(a) => 1 + a.encoded_len(),
            Frame::Stream { offset, data, .. } => {
                Self::stream_overhead(*offset, data.len()) + data.len()
            }
            Frame::MaxData(v) | Frame::DataBlocked(v) => 1 + varint::encoded_len(*v),
            Frame::MaxStreamData { max: v, .. }
            | Frame::StreamDataBlocked { limit: v, .. }
            | Frame::MaxControlData { max: v, .. } => 2 + varint::encoded_len(*v),
            Frame::Channel(c) => c.encoded_len(),
            Frame::Control { offset, data, .. } => {
                Self::control_overhead(*offset, data.len()) + data.len()
            }
        }
    }

    /// Bytes a STREAM frame adds to `len` bytes of data at `offset`.
    pub fn stream_overhead(offset: u64, len: usize) -> usize {
        3 + varint::encoded_len(offset) + varint::encoded_len(len as u64)
    }

    /// Bytes a CONTROL frame adds to `len` record bytes at `offset`.
    pub fn control_overhead(offset: u64, len: usize) -> usize {
        2 + varint::encoded_len(offset) + varint::encoded_len(len as u64)
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
            Frame::Ack(a) => {
                out.put_u8(ACK);
                a.emit(out);
            }
            Frame::Stream {
                stream,
                offset,
                data,
                fin,
            } => {
                Self::emit_stream_header(out, stream, offset, data.len(), fin);
                out.put_slice(data);
            }
            Frame::MaxData(v) => {
                out.put_u8(MAX_DATA);
                varint::write(out, v);
            }
            Frame::MaxStreamData { stream, max } => {
                out.put_u8(MAX_STREAM_DATA);
                out.put_u8(stream);
                varint::write(out, max);
            }
            Frame::DataBlocked(v) => {
                out.put_u8(DATA_BLOCKED);
                varint::write(out, v);
            }
            Frame::StreamDataBlocked { stream, limit } => {
                out.put_u8(STREAM_DATA_BLOCKED);
                out.put_u8(stream);
                varint::write(out, limit);
            }
            Frame::Channel(c) => c.emit(out),
            Frame::Control {
                stream,
                offset,
                data,
            } => {
                Self::emit_control_header(out, stream, offset, data.len());
                out.put_slice(data);
            }
            Frame::MaxControlData { stream, max } => {
                out.put_u8(MAX_CONTROL_DATA);
                out.put_u8(stream);
                varint::write(out, max);
            }
        }
    }

    /// Writes a CONTROL frame's header; the caller appends exactly `len` record bytes.
    pub fn emit_control_header(out: &mut BytesMut, stream: u8, offset: u64, len: usize) {
        out.put_u8(CONTROL);
        out.put_u8(stream);
        varint::write(out, offset);
        varint::write(out, len as u64);
    }

    /// Writes a STREAM frame's header; the caller appends exactly `len` bytes of data (this
    /// is how the send path copies stream bytes straight from its buffer into the packet).
    pub fn emit_stream_header(out: &mut BytesMut, stream: u8, offset: u64, len: usize, fin: bool) {
        out.put_u8(STREAM);
        out.put_u8(stream);
        out.put_u8(if fin { FIN } else { 0 });
        varint::write(out, offset);
        varint::write(out, len as u64);
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
            // A run of PADDING is taken at once: an MTU probe is tens of thousands of them,
            // and one frame per byte cost ~0.7 ms per 64 KiB probe.
            PADDING => (
                Frame::Padding,
                body.iter().take_while(|&&b| b == PADDING).count(),
            ),
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
            ACK => {
                let mut rest = body;
                let ack = AckFrame::parse(&mut rest, MAX_ACK_RANGES)?;
                (Frame::Ack(ack), body.len() - rest.len())
            }
            STREAM => {
                let trunc = PacketError::TruncatedFrame("stream");
                let (&stream, rest) = body.split_first().ok_or(trunc)?;
                let (&flags, mut rest) = rest.split_first().ok_or(trunc)?;
                if flags & !FIN != 0 {
                    return Err(PacketError::Malformed("stream"));
                }
                let (offset, data) = varint::read_range(&mut rest).map_err(|truncated| {
                    if truncated {
                        trunc
                    } else {
                        PacketError::Malformed("stream")
                    }
                })?;
                let frame = Frame::Stream {
                    stream,
                    offset,
                    data,
                    fin: flags & FIN != 0,
                };
                (frame, body.len() - rest.len())
            }
            MAX_DATA | DATA_BLOCKED => {
                let mut rest = body;
                let v = varint::read(&mut rest).ok_or(PacketError::TruncatedFrame("credit"))?;
                let frame = if ty == MAX_DATA {
                    Frame::MaxData(v)
                } else {
                    Frame::DataBlocked(v)
                };
                (frame, body.len() - rest.len())
            }
            MAX_STREAM_DATA | STREAM_DATA_BLOCKED => {
                let trunc = PacketError::TruncatedFrame("stream credit");
                let (&stream, mut rest) = body.split_first().ok_or(trunc)?;
                let v = varint::read(&mut rest).ok_or(trunc)?;
                let frame = if ty == MAX_STREAM_DATA {
                    Frame::MaxStreamData { stream, max: v }
                } else {
                    Frame::StreamDataBlocked { stream, limit: v }
                };
                (frame, body.len() - rest.len())
            }
            CONTROL => {
                let trunc = PacketError::TruncatedFrame("control");
                let (&stream, mut rest) = body.split_first().ok_or(trunc)?;
                let (offset, data) = varint::read_range(&mut rest).map_err(|truncated| {
                    if truncated {
                        trunc
                    } else {
                        PacketError::Malformed("control")
                    }
                })?;
                let frame = Frame::Control {
                    stream,
                    offset,
                    data,
                };
                (frame, body.len() - rest.len())
            }
            MAX_CONTROL_DATA => {
                let trunc = PacketError::TruncatedFrame("control credit");
                let (&stream, mut rest) = body.split_first().ok_or(trunc)?;
                let max = varint::read(&mut rest).ok_or(trunc)?;
                (
                    Frame::MaxControlData { stream, max },
                    body.len() - rest.len(),
                )
            }
            // Control records belong inside a CONTROL frame, never loose in a packet.
            t if is_channel_frame(t) && !is_control_record(t) => {
                let mut rest = body;
                let frame = ChannelFrame::parse(t, &mut rest, MAX_CHANNEL_ID, 0)?;
                (Frame::Channel(frame), body.len() - rest.len())
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
    fn a_run_of_padding_is_one_frame() {
        // An MTU probe: PING, then 64 KiB of PADDING, then (say) a PING again.
        let mut p = alloc::vec![PING];
        p.resize(1 + 65_000, PADDING);
        p.push(PING);
        let frames: Vec<_> = FrameIter::new(&p).collect();
        assert_eq!(
            frames,
            [Ok(Frame::Ping), Ok(Frame::Padding), Ok(Frame::Ping)]
        );
    }

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
            Frame::Stream {
                stream: 1,
                offset: 1 << 40,
                data: b"reliable",
                fin: true,
            },
            Frame::MaxData(1 << 20),
            Frame::MaxStreamData { stream: 2, max: 77 },
            Frame::DataBlocked(5),
            Frame::StreamDataBlocked {
                stream: 3,
                limit: 1 << 30,
            },
            Frame::Channel(ChannelFrame::Data {
                stream: 1,
                channel: 3,
                offset: 9,
                data: b"chan",
                fin: false,
            }),
            Frame::Channel(ChannelFrame::MaxChannelData {
                stream: 1,
                channel: 4,
                max: 1 << 20,
            }),
            Frame::Channel(ChannelFrame::Datagram {
                stream: 2,
                channel: 5,
                data: b"dg",
            }),
            Frame::Channel(ChannelFrame::KeepAlive {
                stream: 2,
                channel: 5,
            }),
            Frame::Control {
                stream: 1,
                offset: 300,
                data: &[0x0B, 1, 3],
            },
            Frame::MaxControlData {
                stream: 1,
                max: 1 << 16,
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
        let r: Vec<_> = FrameIter::new(&[STREAM, 0, 0x02, 0, 0]).collect();
        assert_eq!(r, [Err(PacketError::Malformed("stream"))]);
        let r: Vec<_> = FrameIter::new(&[STREAM, 0, 0, 0, 5, 1]).collect();
        assert_eq!(r, [Err(PacketError::TruncatedFrame("stream"))]);
        let r: Vec<_> = FrameIter::new(&[0x3F, 1, 2]).collect();
        assert_eq!(r, [Err(PacketError::UnknownFrame(0x3F))]);
        let r: Vec<_> = FrameIter::new(&[CLOSE, 0, 9]).collect();
        assert_eq!(r, [Err(PacketError::Malformed("close"))]);
        // A control record (here ACCEPT) outside a CONTROL frame is not a packet frame.
        let r: Vec<_> = FrameIter::new(&[0x0B, 1, 3]).collect();
        assert_eq!(r, [Err(PacketError::UnknownFrame(0x0B))]);
    }
}
