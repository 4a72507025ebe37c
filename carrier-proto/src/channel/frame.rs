//! The channel frames: channel control and per-channel data, inside a `Data` packet next to
//! the transport's frames (types 0x00–0x09 are in `packet::frame`).
//!
//! ```text
//! OPEN             = 0x0A stream(1) channel(v) cookie-length(v) cookie
//! ACCEPT           = 0x0B stream(1) channel(v)
//! CLOSE            = 0x0C stream(1) channel(v) reason(1: Normal 0, Timeout 1, Error 2)
//! DATA             = 0x0D stream(1) channel(v) flags(1: FIN=0x01) offset(v) length(v) data
//! PEND             = 0x0E stream(1) channel(v)
//! RESUME           = 0x0F stream(1) channel(v)
//! MAX_CHANNEL_DATA = 0x10 stream(1) channel(v) max(v)
//! DATAGRAM         = 0x11 stream(1) channel(v) length(v) data   (unreliable streams)
//! KEEPALIVE        = 0x12 stream(1) channel(v)                  (unreliable streams)
//! ```
//!
//! OPEN, ACCEPT, CLOSE, PEND and RESUME are *control records*: they never stand alone in a
//! packet but travel inside the stream's ordered control stream (the CONTROL frame of
//! `packet::frame`), so they arrive reliably and in the order they were sent. DATA,
//! MAX_CHANNEL_DATA, DATAGRAM and KEEPALIVE are packet frames.
//!
//! `(v)` is a QUIC varint. `channel` is never 0 (channel 0 is the stream's plain data, carried
//! by STREAM frames) and never above the `max_channel_id` the caller parses with. DATA has
//! its own offset space per channel, so each channel is a byte stream of its own and a loss
//! on one channel does not hold up another (the Carrier SDK's single shared byte stream did).
//!
//! Parsing is strict, as for the transport's frames: unknown close reasons, unknown DATA
//! flag bits and out-of-range lengths are errors, so that a frame has exactly one meaning.
//! Parsing borrows and never allocates; a cookie length is checked against `max_cookie`
//! before anything else looks at it.

use bytes::{BufMut, BytesMut};

use crate::packet::PacketError;
use crate::transport::varint;
use crate::types::CloseReason;

/// OPEN: the sender opens a channel, with a cookie for the receiving application.
pub(crate) const OPEN: u8 = 0x0A;
/// ACCEPT: the receiver of an OPEN accepted the channel.
pub(crate) const ACCEPT: u8 = 0x0B;
/// CLOSE: the channel is gone (closed, refused, or never existed).
pub(crate) const CLOSE: u8 = 0x0C;
/// DATA: bytes of a channel at an offset.
pub(crate) const DATA: u8 = 0x0D;
/// PEND: "stop sending on this channel".
pub(crate) const PEND: u8 = 0x0E;
/// RESUME: "you may send on this channel again".
pub(crate) const RESUME: u8 = 0x0F;
/// MAX_CHANNEL_DATA: channel-level flow-control credit.
pub(crate) const MAX_CHANNEL_DATA: u8 = 0x10;
/// DATAGRAM: one unreliable datagram on a channel of an unreliable stream.
pub(crate) const DATAGRAM: u8 = 0x11;
/// KEEPALIVE: "this channel is still open" on an unreliable stream, sent when idle.
pub(crate) const KEEPALIVE: u8 = 0x12;

/// The FIN bit of a DATA frame's flags: the channel's data ends after these bytes.
const FIN: u8 = 0x01;

/// The largest channel id the wire can carry (a varint): the default bound for parsing.
pub(crate) const MAX_CHANNEL_ID: u64 = varint::MAX;

/// The error for every malformed channel frame (one label keeps `PacketError` unchanged).
const MALFORMED: PacketError = PacketError::Malformed("channel");
/// The error for every channel frame that runs past the end of the payload.
const TRUNCATED: PacketError = PacketError::TruncatedFrame("channel");

/// True if `ty` is one of the channel frame types (how a frame loop picks this parser).
pub(crate) const fn is_channel_frame(ty: u8) -> bool {
    matches!(ty, OPEN..=KEEPALIVE)
}

/// True if `ty` is a control record (carried only inside the ordered control stream).
pub(crate) const fn is_control_record(ty: u8) -> bool {
    matches!(ty, OPEN | ACCEPT | CLOSE | PEND | RESUME)
}

/// One channel frame, borrowing its cookie or data from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelFrame<'a> {
    /// The sender opens `channel` (an id of its parity, see `ChannelTable`).
    Open {
        /// The stream's index in the session.
        stream: u8,
        /// The new channel's id.
        channel: u64,
        /// Opaque bytes for the receiving application (e.g. a service name).
        cookie: &'a [u8],
    },
    /// The receiver of an OPEN accepts the channel.
    Accept {
        /// The stream's index in the session.
        stream: u8,
        /// The accepted channel.
        channel: u64,
    },
    /// The channel is closed (also: an OPEN refused, or a frame for an unknown channel).
    Close {
        /// The stream's index in the session.
        stream: u8,
        /// The closed channel.
        channel: u64,
        /// Why.
        reason: CloseReason,
    },
    /// Bytes of a channel at an offset in the channel's own byte stream.
    Data {
        /// The stream's index in the session.
        stream: u8,
        /// The channel.
        channel: u64,
        /// Channel offset of the first byte.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
        /// The channel's data ends after these bytes.
        fin: bool,
    },
    /// The sender asks the receiver to stop sending on the channel.
    Pend {
        /// The stream's index in the session.
        stream: u8,
        /// The channel.
        channel: u64,
    },
    /// The sender lets the receiver send on the channel again.
    Resume {
        /// The stream's index in the session.
        stream: u8,
        /// The channel.
        channel: u64,
    },
    /// Channel-level credit: the receiver of this frame may send offsets below `max`.
    MaxChannelData {
        /// The stream's index in the session.
        stream: u8,
        /// The channel.
        channel: u64,
        /// The new limit.
        max: u64,
    },
    /// One datagram on a channel of an unreliable stream.
    Datagram {
        /// The stream's index in the session.
        stream: u8,
        /// The channel.
        channel: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// The channel is still open (an unreliable stream's idle channel says so now and then).
    KeepAlive {
        /// The stream's index in the session.
        stream: u8,
        /// The channel.
        channel: u64,
    },
}

impl<'a> ChannelFrame<'a> {
    /// Parses the body of a channel frame of type `ty` (the type byte already read) from the
    /// front of `input`, and advances `input` past it. On error `input` is left as it was.
    ///
    /// A channel id of 0 or above `max_channel_id`, and a cookie longer than `max_cookie`,
    /// are malformed: the bounds are checked before any length is used, so a peer cannot
    /// make us look past them. A type that is not a channel frame is
    /// [`PacketError::UnknownFrame`].
    pub(crate) fn parse(
        ty: u8,
        input: &mut &'a [u8],
        max_channel_id: u64,
        max_cookie: usize,
    ) -> Result<ChannelFrame<'a>, PacketError> {
        if !is_channel_frame(ty) {
            return Err(PacketError::UnknownFrame(ty));
        }
        // Work on a copy so that a failed parse consumes nothing.
        let mut rest = *input;
        let (&stream, tail) = rest.split_first().ok_or(TRUNCATED)?;
        rest = tail;
        let channel = varint::read(&mut rest).ok_or(TRUNCATED)?;
        if channel == 0 || channel > max_channel_id {
            return Err(MALFORMED);
        }
        let frame = match ty {
            OPEN => {
                let len = varint::read(&mut rest).ok_or(TRUNCATED)?;
                // Compare as u64 first: the length is the peer's, and must not be trusted to
                // fit a usize or the payload.
                if len > max_cookie as u64 {
                    return Err(MALFORMED);
                }
                let (cookie, tail) = rest.split_at_checked(len as usize).ok_or(TRUNCATED)?;
                rest = tail;
                ChannelFrame::Open {
                    stream,
                    channel,
                    cookie,
                }
            }
            ACCEPT => ChannelFrame::Accept { stream, channel },
            PEND => ChannelFrame::Pend { stream, channel },
            RESUME => ChannelFrame::Resume { stream, channel },
            CLOSE => {
                let (&reason, tail) = rest.split_first().ok_or(TRUNCATED)?;
                rest = tail;
                let reason = CloseReason::from_u8(reason).ok_or(MALFORMED)?;
                ChannelFrame::Close {
                    stream,
                    channel,
                    reason,
                }
            }
            DATA => {
                let (&flags, tail) = rest.split_first().ok_or(TRUNCATED)?;
                rest = tail;
                if flags & !FIN != 0 {
                    return Err(MALFORMED);
                }
                // The end offset must be a varint too, as for STREAM frames: otherwise the
                // final size could not be written back.
                let (offset, data) = varint::read_range(&mut rest)
                    .map_err(|truncated| if truncated { TRUNCATED } else { MALFORMED })?;
                ChannelFrame::Data {
                    stream,
                    channel,
                    offset,
                    data,
                    fin: flags & FIN != 0,
                }
            }
            DATAGRAM => {
                let len = varint::read(&mut rest).ok_or(TRUNCATED)?;
                let len = usize::try_from(len).map_err(|_| TRUNCATED)?;
                let (data, tail) = rest.split_at_checked(len).ok_or(TRUNCATED)?;
                rest = tail;
                ChannelFrame::Datagram {
                    stream,
                    channel,
                    data,
                }
            }
            KEEPALIVE => ChannelFrame::KeepAlive { stream, channel },
            // MAX_CHANNEL_DATA: the only type left in the range checked above.
            _ => {
                let max = varint::read(&mut rest).ok_or(TRUNCATED)?;
                ChannelFrame::MaxChannelData {
                    stream,
                    channel,
                    max,
                }
            }
        };
        *input = rest;
        Ok(frame)
    }

    /// The frame's type byte.
    pub(crate) const fn frame_type(&self) -> u8 {
        match self {
            ChannelFrame::Open { .. } => OPEN,
            ChannelFrame::Accept { .. } => ACCEPT,
            ChannelFrame::Close { .. } => CLOSE,
            ChannelFrame::Data { .. } => DATA,
            ChannelFrame::Pend { .. } => PEND,
            ChannelFrame::Resume { .. } => RESUME,
            ChannelFrame::MaxChannelData { .. } => MAX_CHANNEL_DATA,
            ChannelFrame::Datagram { .. } => DATAGRAM,
            ChannelFrame::KeepAlive { .. } => KEEPALIVE,
        }
    }

    /// The stream the frame belongs to (the caller routes the frame to that stream's table).
    pub(crate) const fn stream(&self) -> u8 {
        match *self {
            ChannelFrame::Open { stream, .. }
            | ChannelFrame::Accept { stream, .. }
            | ChannelFrame::Close { stream, .. }
            | ChannelFrame::Data { stream, .. }
            | ChannelFrame::Pend { stream, .. }
            | ChannelFrame::Resume { stream, .. }
            | ChannelFrame::MaxChannelData { stream, .. }
            | ChannelFrame::Datagram { stream, .. }
            | ChannelFrame::KeepAlive { stream, .. } => stream,
        }
    }

    /// The channel the frame is about.
    pub(crate) const fn channel(&self) -> u64 {
        match *self {
            ChannelFrame::Open { channel, .. }
            | ChannelFrame::Accept { channel, .. }
            | ChannelFrame::Close { channel, .. }
            | ChannelFrame::Data { channel, .. }
            | ChannelFrame::Pend { channel, .. }
            | ChannelFrame::Resume { channel, .. }
            | ChannelFrame::MaxChannelData { channel, .. }
            | ChannelFrame::Datagram { channel, .. }
            | ChannelFrame::KeepAlive { channel, .. } => channel,
        }
    }

    /// Bytes this frame occupies on the wire, type byte included.
    pub(crate) fn encoded_len(&self) -> usize {
        // type + stream + channel: what every channel frame starts with.
        let head = 2 + varint::encoded_len(self.channel());
        match *self {
            ChannelFrame::Open { cookie, .. } => {
                head + varint::encoded_len(cookie.len() as u64) + cookie.len()
            }
            ChannelFrame::Accept { .. }
            | ChannelFrame::Pend { .. }
            | ChannelFrame::Resume { .. }
            | ChannelFrame::KeepAlive { .. } => head,
            ChannelFrame::Datagram { data, .. } => {
                head + varint::encoded_len(data.len() as u64) + data.len()
            }
            ChannelFrame::Close { .. } => head + 1,
            ChannelFrame::Data {
                channel,
                offset,
                data,
                ..
            } => Self::data_overhead(channel, offset, data.len()) + data.len(),
            ChannelFrame::MaxChannelData { max, .. } => head + varint::encoded_len(max),
        }
    }

    /// Bytes a DATA frame adds to `len` bytes of `channel`'s data at `offset` (what a sender
    /// subtracts from the room left in a packet).
    pub(crate) fn data_overhead(channel: u64, offset: u64, len: usize) -> usize {
        3 + varint::encoded_len(channel)
            + varint::encoded_len(offset)
            + varint::encoded_len(len as u64)
    }

    /// Writes a DATA frame's header; the caller appends exactly `len` bytes of data (the
    /// send path copies channel bytes straight from the channel's buffer into the packet).
    pub(crate) fn emit_data_header(
        out: &mut BytesMut,
        stream: u8,
        channel: u64,
        offset: u64,
        len: usize,
        fin: bool,
    ) {
        out.put_u8(DATA);
        out.put_u8(stream);
        varint::write(out, channel);
        out.put_u8(if fin { FIN } else { 0 });
        varint::write(out, offset);
        varint::write(out, len as u64);
    }

    /// Appends the frame, type byte first, to `out`.
    pub(crate) fn emit(&self, out: &mut BytesMut) {
        out.put_u8(self.frame_type());
        out.put_u8(self.stream());
        varint::write(out, self.channel());
        match *self {
            ChannelFrame::Open { cookie, .. } => {
                varint::write(out, cookie.len() as u64);
                out.put_slice(cookie);
            }
            ChannelFrame::Accept { .. }
            | ChannelFrame::Pend { .. }
            | ChannelFrame::Resume { .. }
            | ChannelFrame::KeepAlive { .. } => {}
            ChannelFrame::Datagram { data, .. } => {
                varint::write(out, data.len() as u64);
                out.put_slice(data);
            }
            ChannelFrame::Close { reason, .. } => out.put_u8(reason as u8),
            ChannelFrame::Data {
                offset, data, fin, ..
            } => {
                out.put_u8(if fin { FIN } else { 0 });
                varint::write(out, offset);
                varint::write(out, data.len() as u64);
                out.put_slice(data);
            }
            ChannelFrame::MaxChannelData { max, .. } => varint::write(out, max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Limits generous enough for every generated frame.
    const COOKIE: usize = 64;

    /// Parses a whole buffer of channel frames with the given limits.
    fn parse_all(
        mut input: &[u8],
        max_channel_id: u64,
        max_cookie: usize,
    ) -> Result<Vec<ChannelFrame<'_>>, PacketError> {
        let mut frames = Vec::new();
        while let Some((&ty, body)) = input.split_first() {
            input = body;
            frames.push(ChannelFrame::parse(
                ty,
                &mut input,
                max_channel_id,
                max_cookie,
            )?);
        }
        Ok(frames)
    }

    fn emit_all(frames: &[ChannelFrame<'_>]) -> BytesMut {
        let mut out = BytesMut::new();
        for f in frames {
            let before = out.len();
            f.emit(&mut out);
            assert_eq!(out.len() - before, f.encoded_len(), "{f:?}");
        }
        out
    }

    fn reason() -> impl Strategy<Value = CloseReason> {
        prop_oneof![
            Just(CloseReason::Normal),
            Just(CloseReason::Timeout),
            Just(CloseReason::Error),
        ]
    }

    /// The fields of one arbitrary frame: kind, stream, channel, offset or max, bytes, fin,
    /// reason. Owned, so that the test body can build frames that borrow the bytes.
    type Spec = (u8, u8, u64, u64, Vec<u8>, bool, CloseReason);

    fn spec() -> impl Strategy<Value = Spec> {
        (
            0..9u8,
            any::<u8>(),
            1..=MAX_CHANNEL_ID,
            0..=varint::MAX - COOKIE as u64,
            proptest::collection::vec(any::<u8>(), 0..=COOKIE),
            any::<bool>(),
            reason(),
        )
    }

    fn build(spec: &Spec) -> ChannelFrame<'_> {
        let (kind, stream, channel, n, ref bytes, fin, reason) = *spec;
        match kind {
            0 => ChannelFrame::Open {
                stream,
                channel,
                cookie: bytes,
            },
            1 => ChannelFrame::Accept { stream, channel },
            2 => ChannelFrame::Close {
                stream,
                channel,
                reason,
            },
            3 => ChannelFrame::Data {
                stream,
                channel,
                offset: n,
                data: bytes,
                fin,
            },
            4 => ChannelFrame::Pend { stream, channel },
            5 => ChannelFrame::Resume { stream, channel },
            6 => ChannelFrame::Datagram {
                stream,
                channel,
                data: bytes,
            },
            7 => ChannelFrame::KeepAlive { stream, channel },
            _ => ChannelFrame::MaxChannelData {
                stream,
                channel,
                max: n,
            },
        }
    }

    #[test]
    fn every_type_round_trips() {
        let frames = [
            ChannelFrame::Open {
                stream: 1,
                channel: 1,
                cookie: b"ssh",
            },
            ChannelFrame::Accept {
                stream: 1,
                channel: 2,
            },
            ChannelFrame::Close {
                stream: 1,
                channel: 3,
                reason: CloseReason::Timeout,
            },
            ChannelFrame::Data {
                stream: 2,
                channel: 2047,
                offset: 1 << 40,
                data: b"bytes",
                fin: true,
            },
            ChannelFrame::Pend {
                stream: 0,
                channel: 64,
            },
            ChannelFrame::Resume {
                stream: 0,
                channel: 1 << 20,
            },
            ChannelFrame::MaxChannelData {
                stream: 9,
                channel: MAX_CHANNEL_ID,
                max: 1 << 16,
            },
            ChannelFrame::Datagram {
                stream: 4,
                channel: 3,
                data: b"dgram",
            },
            ChannelFrame::KeepAlive {
                stream: 4,
                channel: 5,
            },
        ];
        let out = emit_all(&frames);
        assert_eq!(parse_all(&out, MAX_CHANNEL_ID, COOKIE).unwrap(), frames);
        for f in &frames {
            assert!(is_channel_frame(f.frame_type()));
        }
    }

    #[test]
    fn wire_layout_is_as_documented() {
        let mut out = BytesMut::new();
        ChannelFrame::Open {
            stream: 3,
            channel: 65,
            cookie: b"ab",
        }
        .emit(&mut out);
        assert_eq!(&out[..], [0x0A, 3, 0x40, 65, 2, b'a', b'b']);
        out.clear();
        ChannelFrame::Data {
            stream: 1,
            channel: 2,
            offset: 7,
            data: b"x",
            fin: true,
        }
        .emit(&mut out);
        assert_eq!(&out[..], [0x0D, 1, 2, 0x01, 7, 1, b'x']);
        out.clear();
        ChannelFrame::Close {
            stream: 0,
            channel: 5,
            reason: CloseReason::Error,
        }
        .emit(&mut out);
        assert_eq!(&out[..], [0x0C, 0, 5, 2]);
        out.clear();
        ChannelFrame::Datagram {
            stream: 2,
            channel: 3,
            data: b"hi",
        }
        .emit(&mut out);
        assert_eq!(&out[..], [0x11, 2, 3, 2, b'h', b'i']);
        out.clear();
        ChannelFrame::KeepAlive {
            stream: 2,
            channel: 3,
        }
        .emit(&mut out);
        assert_eq!(&out[..], [0x12, 2, 3]);
    }

    #[test]
    fn limits_and_strictness() {
        fn parse(
            bytes: &[u8],
            max_id: u64,
            max_cookie: usize,
        ) -> Result<ChannelFrame<'_>, PacketError> {
            let (&ty, mut body) = bytes.split_first().unwrap();
            let before = body;
            let r = ChannelFrame::parse(ty, &mut body, max_id, max_cookie);
            if r.is_err() {
                // A failed parse consumes nothing.
                assert_eq!(body, before);
            }
            r
        }
        let open = [OPEN, 0, 5, 3, b'a', b'b', b'c'];
        assert!(parse(&open, 5, 3).is_ok());
        // Cookie one byte over the limit.
        assert_eq!(parse(&open, 5, 2), Err(MALFORMED));
        // Channel id over the limit.
        assert_eq!(parse(&open, 4, 3), Err(MALFORMED));
        // Channel 0 is the stream's plain data, never a channel.
        assert_eq!(parse(&[ACCEPT, 0, 0], 9, 0), Err(MALFORMED));
        // A huge cookie length is refused before it is used (no allocation, no overflow).
        let huge = [OPEN, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(parse(&huge, 9, usize::MAX), Err(TRUNCATED));
        assert_eq!(parse(&huge, 9, 1024), Err(MALFORMED));
        // Unknown close reason, unknown DATA flag bits.
        assert_eq!(parse(&[CLOSE, 0, 1, 3], 9, 0), Err(MALFORMED));
        assert_eq!(parse(&[DATA, 0, 1, 0x02, 0, 0], 9, 0), Err(MALFORMED));
        // DATA whose end offset is past 2^62 - 1.
        let mut far = BytesMut::new();
        far.extend_from_slice(&[DATA, 0, 1, 0]);
        varint::write(&mut far, varint::MAX);
        far.extend_from_slice(&[1, b'x']);
        assert_eq!(parse(&far, 9, 0), Err(MALFORMED));
        // Truncations.
        assert_eq!(parse(&[DATA, 0, 1, 0, 0, 2, b'x'], 9, 0), Err(TRUNCATED));
        assert_eq!(parse(&[CLOSE, 0, 1], 9, 0), Err(TRUNCATED));
        assert_eq!(parse(&[PEND, 0], 9, 0), Err(TRUNCATED));
        assert_eq!(parse(&[PEND], 9, 0), Err(TRUNCATED));
        // Not a channel type.
        assert_eq!(
            parse(&[0x13, 0, 1], 9, 0),
            Err(PacketError::UnknownFrame(0x13))
        );
        assert_eq!(
            parse(&[0x05, 0, 1], 9, 0),
            Err(PacketError::UnknownFrame(0x05))
        );
    }

    proptest! {
        #[test]
        fn arbitrary_frames_round_trip(
            specs in proptest::collection::vec(spec(), 1..8),
        ) {
            let frames: Vec<_> = specs.iter().map(build).collect();
            let out = emit_all(&frames);
            prop_assert_eq!(out.len(), frames.iter().map(ChannelFrame::encoded_len).sum::<usize>());
            prop_assert_eq!(parse_all(&out, MAX_CHANNEL_ID, COOKIE).unwrap(), frames);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            ty in any::<u8>(),
            body in proptest::collection::vec(any::<u8>(), 0..40),
            max_id in any::<u64>(),
            max_cookie in 0usize..64,
        ) {
            let mut input = &body[..];
            match ChannelFrame::parse(ty, &mut input, max_id, max_cookie) {
                Ok(frame) => {
                    // What parsed re-emits to a frame that parses back the same.
                    prop_assert!(frame.channel() != 0 && frame.channel() <= max_id);
                    let mut out = BytesMut::new();
                    frame.emit(&mut out);
                    prop_assert_eq!(out.len(), frame.encoded_len());
                    let mut again = &out[1..];
                    prop_assert_eq!(
                        ChannelFrame::parse(ty, &mut again, max_id, max_cookie),
                        Ok(frame)
                    );
                    prop_assert!(again.is_empty());
                }
                Err(_) => prop_assert_eq!(input, &body[..]),
            }
        }
    }
}
