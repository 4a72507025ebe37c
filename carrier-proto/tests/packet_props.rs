//! Property tests of the packet decoders: arbitrary bytes never panic, and whatever decodes
//! re-encodes to the same bytes (the formats have exactly one encoding).

use bytes::BytesMut;
use carrier_proto::CloseReason;
use carrier_proto::packet::{
    Check, CheckAck, Frame, FrameIter, Header, PacketType, TRAILER_LEN, packet_number_len,
    peek_destination, write_packet,
};
use proptest::prelude::*;

fn frame() -> impl Strategy<Value = (u8, u8, Vec<u8>)> {
    (
        0u8..4,
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
}

fn build<'a>(kind: u8, x: u8, data: &'a [u8]) -> Frame<'a> {
    match kind {
        0 => Frame::Padding,
        1 => Frame::Ping,
        2 => Frame::Datagram { stream: x, data },
        _ => Frame::Close {
            scope: x,
            reason: CloseReason::from_u8(x % 3).expect("0..3"),
        },
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Header::parse(&data, None);
        let _ = Header::parse(&data, Some(u64::MAX >> 2));
        let _ = Header::parse_protected(&data, 16);
        let _ = peek_destination(&data);
        let _ = Check::parse(&data);
        let _ = CheckAck::parse(&data);
        let frames: Vec<_> = FrameIter::new(&data).collect();
        // The iterator stops at the first error and never yields more items than bytes.
        prop_assert!(frames.len() <= data.len());
        if let Some(i) = frames.iter().position(|f| f.is_err()) {
            prop_assert_eq!(i, frames.len() - 1);
        }
    }

    #[test]
    fn frames_round_trip(frames in proptest::collection::vec(frame(), 0..20)) {
        let built: Vec<Frame<'_>> = frames.iter().map(|(k, x, d)| build(*k, *x, d)).collect();
        let mut out = BytesMut::new();
        for f in &built {
            f.emit(&mut out);
        }
        let back: Vec<Frame<'_>> = FrameIter::new(&out).collect::<Result<_, _>>().expect("valid");
        // Consecutive PADDING bytes come back as one run.
        let mut expected = built.clone();
        expected.dedup_by(|b, a| *a == Frame::Padding && *b == Frame::Padding);
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn packets_round_trip_and_any_flip_is_caught(
        ty in 0u8..3,
        destination in any::<u64>(),
        largest in 0u64..(1 << 60),
        ahead in 1u64..5000,
        lag in 0u64..5000,
        payload in proptest::collection::vec(any::<u8>(), 0..1200),
        flip in any::<usize>(),
    ) {
        // The sender is `ahead` past what the receiver has taken, and knows it acked up to
        // `lag` before that: the truncated number must come back whole.
        let packet_type = [PacketType::Check, PacketType::CheckAck, PacketType::Data][ty as usize];
        let packet_number = largest + ahead;
        let header = Header { packet_type, destination, packet_number };
        let pn_len = packet_number_len(packet_number, Some(largest.saturating_sub(lag)));
        let mut out = BytesMut::new();
        write_packet(&mut out, &header, pn_len, |o| o.extend_from_slice(&payload));
        prop_assert_eq!(out.len(), Header::len(pn_len) + payload.len() + TRAILER_LEN);
        prop_assert_eq!(peek_destination(&out), Some(destination));
        let (h, p) = Header::parse(&out, Some(largest)).expect("valid");
        prop_assert_eq!(h, header);
        prop_assert_eq!(p, &payload[..]);
        let bit = flip % (out.len() * 8);
        out[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Header::parse(&out, Some(largest)).is_err());
    }

    #[test]
    fn checks_round_trip(source in any::<u64>(), t in any::<[u8; 12]>(), ufrag in "[A-Za-z0-9+/]{4,64}") {
        let c = Check { source, transaction: t, ufrag: &ufrag };
        let mut out = BytesMut::new();
        c.emit(&mut out);
        prop_assert_eq!(Check::parse(&out), Ok(c));
    }
}
