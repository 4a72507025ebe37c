//! Packet decode: the header (with and without a valid checksum), every frame, checks and
//! acks. Nothing panics; whatever decodes re-encodes to the same bytes.
#![no_main]

use bytes::BytesMut;
use carrier_proto::packet::{Check, CheckAck, FrameIter, Header, PacketType, write_packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Header::parse(data, None);
    let _ = Header::parse(data, Some(1 << 40));
    let _ = Header::parse_protected(data, 16);
    // The same bytes as a payload behind a valid header, so the checksum does not stop them.
    let header = Header { packet_type: PacketType::Data, destination: 1, packet_number: 2 };
    let mut packet = BytesMut::new();
    write_packet(&mut packet, &header, 1, |o| o.extend_from_slice(data));
    let (parsed, payload) = Header::parse(&packet, None).expect("a packet we wrote parses");
    assert_eq!(parsed, header);
    let frames: Vec<_> = FrameIter::new(payload).collect();
    if frames.iter().all(|f| f.is_ok()) {
        // Re-encoding may be shorter (varints are read in any length, written minimal), so
        // the check is semantic: what we write parses back to the same frames.
        let mut out = BytesMut::new();
        for f in frames.iter().flatten() {
            f.emit(&mut out);
        }
        let again: Vec<_> = FrameIter::new(&out).collect();
        assert_eq!(again.len(), frames.len(), "frame count after re-encoding");
        for (a, b) in again.iter().zip(&frames) {
            match (a, b) {
                (Ok(carrier_proto::packet::Frame::Ack(x)), Ok(carrier_proto::packet::Frame::Ack(y))) => {
                    let xr: Vec<_> = x.ranges().collect();
                    let yr: Vec<_> = y.ranges().collect();
                    assert_eq!((x.largest(), x.ack_delay_micros(), xr), (y.largest(), y.ack_delay_micros(), yr));
                }
                (a, b) => assert_eq!(a, b, "frame changed by re-encoding"),
            }
        }
    }
    if let Ok(c) = Check::parse(data) {
        let mut out = BytesMut::new();
        c.emit(&mut out);
        assert_eq!(&out[..], data);
    }
    if let Ok(a) = CheckAck::parse(data) {
        let mut out = BytesMut::new();
        a.emit(&mut out);
        assert_eq!(&out[..], data);
    }
});
