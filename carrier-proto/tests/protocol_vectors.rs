//! The test vectors in docs/PROTOCOL.md: each one is built by the encoder and must equal the
//! bytes in the document, and each one decodes back to the values the document states.
//!
//! A vector in the document is a fenced block tagged `hex` right after a line
//! `<!-- vector: NAME -->`.

use bytes::BytesMut;
use carrier_proto::CloseReason;
use carrier_proto::packet::{
    ChannelFrame, Check, CheckAck, Frame, FrameIter, Header, PacketError, PacketType,
    SESSION_SCOPE, write_packet,
};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// The bytes of the vector called `name` in the document.
fn vector(name: &str) -> Vec<u8> {
    let marker = format!("<!-- vector: {name} -->");
    let start = DOC
        .find(&marker)
        .unwrap_or_else(|| panic!("vector {name} missing from PROTOCOL.md"));
    let rest = &DOC[start + marker.len()..];
    let open = rest.find("```hex").expect("a hex block follows the marker") + "```hex".len();
    let close = rest[open..].find("```").expect("the hex block ends") + open;
    rest[open..close]
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

fn packet(header: Header, payload: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut out = BytesMut::new();
    // Small packet numbers, nothing acknowledged: one byte.
    write_packet(&mut out, &header, 1, payload);
    out.to_vec()
}

const TXID: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

#[test]
fn check_vector() {
    let header = Header {
        packet_type: PacketType::Check,
        destination: 0x1122_3344_5566_7788,
        packet_number: 1,
    };
    let check = Check {
        source: 0x0102_0304_0506_0708,
        transaction: TXID,
        ufrag: "abcd",
    };
    let bytes = packet(header, |o| check.emit(o));
    assert_eq!(bytes, vector("check"));
    let (h, p) = Header::parse(&bytes, None).unwrap();
    assert_eq!((h, Check::parse(p).unwrap()), (header, check));
}

#[test]
fn check_ack_vector() {
    let header = Header {
        packet_type: PacketType::CheckAck,
        destination: 0x0102_0304_0506_0708,
        packet_number: 0,
    };
    let ack = CheckAck {
        transaction: TXID,
        observed: "192.0.2.1:7000".parse().unwrap(),
    };
    let bytes = packet(header, |o| ack.emit(o));
    assert_eq!(bytes, vector("check-ack"));
    let (h, p) = Header::parse(&bytes, None).unwrap();
    assert_eq!((h, CheckAck::parse(p).unwrap()), (header, ack));
}

fn data_vector(name: &str, frames: &[Frame<'_>]) {
    let header = Header {
        packet_type: PacketType::Data,
        destination: 0x1122_3344_5566_7788,
        packet_number: 2,
    };
    let bytes = packet(header, |o| frames.iter().for_each(|f| f.emit(o)));
    assert_eq!(bytes, vector(name), "{name}");
    let (h, p) = Header::parse(&bytes, None).unwrap();
    assert_eq!(h, header);
    let back: Vec<_> = FrameIter::new(p).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, frames);
}

#[test]
fn data_vectors() {
    data_vector(
        "data-datagram",
        &[Frame::Datagram {
            stream: 0,
            data: b"hello",
        }],
    );
    data_vector("data-ping", &[Frame::Ping]);
    data_vector(
        "data-close",
        &[Frame::Close {
            scope: SESSION_SCOPE,
            reason: CloseReason::Normal,
        }],
    );
}

#[test]
fn the_check_vector_matches_a_hand_written_layout() {
    // Independent of the encoder: the layout spelled out byte by byte.
    let v = vector("check");
    assert_eq!(
        v[0], 0xD0,
        "marker 0b11, format 0b01, type 0, one-byte packet number"
    );
    assert_eq!(&v[1..9], &0x1122_3344_5566_7788u64.to_be_bytes());
    assert_eq!(v[9], 1, "packet number");
    assert_eq!(&v[10..18], &0x0102_0304_0506_0708u64.to_be_bytes());
    assert_eq!(&v[18..30], &TXID);
    assert_eq!(v[30], 4);
    assert_eq!(&v[31..35], b"abcd");
    assert_eq!(v.len(), 35 + 4);
    assert_eq!(
        &v[35..],
        &crc32fast::hash(&v[..35]).to_be_bytes(),
        "CRC-32 of header and payload"
    );
}

#[test]
fn data_stream_vector() {
    let header = Header {
        packet_type: PacketType::Data,
        destination: 0x1122_3344_5566_7788,
        packet_number: 3,
    };
    let frame = Frame::Stream {
        stream: 1,
        offset: 1000,
        data: b"hi",
        fin: true,
    };
    let bytes = packet(header, |o| frame.emit(o));
    assert_eq!(bytes, vector("data-stream"));
    // The offset is a two-byte varint: 0x4000 | 1000.
    assert_eq!(
        &bytes[10..18],
        &[0x05, 0x01, 0x01, 0x43, 0xe8, 0x02, b'h', b'i']
    );
    let (h, p) = Header::parse(&bytes, None).unwrap();
    assert_eq!(h, header);
    let back: Vec<_> = FrameIter::new(p).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, [frame]);
}

#[test]
fn data_ack_vector() {
    let header = Header {
        packet_type: PacketType::Data,
        destination: 0x1122_3344_5566_7788,
        packet_number: 3,
    };
    // ACK of {90..=100, 80..=85, 5}, delay 25 µs (docs/PROTOCOL.md §2.5).
    let bytes = packet(header, |o| {
        o.extend_from_slice(&[
            0x04, 0x40, 0x64, 0x19, 0x02, 0x0a, 0x03, 0x05, 0x40, 0x49, 0x00,
        ])
    });
    assert_eq!(bytes, vector("data-ack"));
    let (h, p) = Header::parse(&bytes, None).unwrap();
    assert_eq!(h, header);
    let back: Vec<_> = FrameIter::new(p).collect::<Result<_, _>>().unwrap();
    let [Frame::Ack(ack)] = back.as_slice() else {
        panic!("expected one ACK frame, got {back:?}");
    };
    assert_eq!(
        (ack.largest(), ack.ack_delay_micros(), ack.range_count()),
        (100, 25, 3)
    );
    let ranges: Vec<_> = ack.ranges().collect::<Result<_, _>>().unwrap();
    assert_eq!(ranges, [90..=100, 80..=85, 5..=5]);
}

#[test]
fn channel_control_vector() {
    let header = Header {
        packet_type: PacketType::Data,
        destination: 0x1122_3344_5566_7788,
        packet_number: 4,
    };
    // The record bytes, written out by hand (docs/PROTOCOL.md §2.8): the record parser is
    // crate-private, and OPEN and PEND are not packet frames, so they are checked here
    // against the layout rather than decoded by `FrameIter`.
    let open: &[u8] = &[0x0a, 0x01, 0x01, 0x03, b's', b's', b'h'];
    let pend: &[u8] = &[0x0e, 0x01, 0x01];
    let records = [open, pend].concat();
    // The crate writes records with the channel frame encoder: it agrees with the layout.
    let encoded: Vec<u8> = [
        ChannelFrame::Open {
            stream: 1,
            channel: 1,
            cookie: b"ssh",
        },
        ChannelFrame::Pend {
            stream: 1,
            channel: 1,
        },
    ]
    .iter()
    .flat_map(|r| {
        let mut out = BytesMut::new();
        Frame::Channel(*r).emit(&mut out);
        assert_eq!(out.len(), Frame::Channel(*r).encoded_len());
        out.to_vec()
    })
    .collect();
    assert_eq!(encoded, records);
    let frame = Frame::Control {
        stream: 1,
        offset: 0,
        data: &records,
    };
    let bytes = packet(header, |o| frame.emit(o));
    assert_eq!(bytes, vector("channel-control"));
    // type, stream 1, offset 0, length 10, then the records.
    assert_eq!(&bytes[10..14], &[0x13, 0x01, 0x00, 0x0a]);
    assert_eq!(&bytes[14..24], &records[..]);
    let (h, p) = Header::parse(&bytes, None).unwrap();
    assert_eq!(h, header);
    let back: Vec<_> = FrameIter::new(p).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, [frame]);
    // A control record is never a packet frame: loose in a payload it is malformed.
    let loose: Vec<_> = FrameIter::new(open).collect();
    assert_eq!(loose, [Err(PacketError::UnknownFrame(0x0a))]);
    let loose: Vec<_> = FrameIter::new(pend).collect();
    assert_eq!(loose, [Err(PacketError::UnknownFrame(0x0e))]);
}

#[test]
fn channel_data_vector() {
    let header = Header {
        packet_type: PacketType::Data,
        destination: 0x1122_3344_5566_7788,
        packet_number: 5,
    };
    let frames = [
        Frame::Channel(ChannelFrame::Data {
            stream: 1,
            channel: 2,
            offset: 1000,
            data: b"hello",
            fin: true,
        }),
        Frame::Channel(ChannelFrame::MaxChannelData {
            stream: 1,
            channel: 3,
            max: 65536,
        }),
    ];
    let bytes = packet(header, |o| frames.iter().for_each(|f| f.emit(o)));
    assert_eq!(bytes, vector("channel-data"));
    // DATA: type, stream, channel, FIN, offset 1000 as `43 e8`, length 5, then the bytes;
    // MAX_CHANNEL_DATA: type, stream, channel, 65536 as the 4-byte varint `80 01 00 00`.
    assert_eq!(&bytes[10..17], &[0x0d, 0x01, 0x02, 0x01, 0x43, 0xe8, 0x05]);
    assert_eq!(&bytes[17..22], b"hello");
    assert_eq!(&bytes[22..29], &[0x10, 0x01, 0x03, 0x80, 0x01, 0x00, 0x00]);
    let (h, p) = Header::parse(&bytes, None).unwrap();
    assert_eq!(h, header);
    let back: Vec<_> = FrameIter::new(p).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, frames);
}

// --- Packet protection (docs/PROTOCOL.md §2.9) ---------------------------------------------
//
// The vectors were computed outside the crate (Python, pyca/cryptography); here the crate's
// key schedule and sealing must reproduce them byte for byte.

/// The vector `name` as a fixed-size array.
fn array<const N: usize>(name: &str) -> [u8; N] {
    vector(name)
        .try_into()
        .unwrap_or_else(|v: Vec<u8>| panic!("vector {name} has {} bytes, not {N}", v.len()))
}

/// The schedule for the document's two secrets.
fn doc_schedule() -> carrier_proto::KeySchedule {
    carrier_proto::derive_schedule(array("ks-offerer-secret"), array("ks-answerer-secret"))
        .expect("the document's secrets agree on a non-zero shared secret")
}

/// A DATA packet's header to `0x1122334455667788` with packet number `pn`.
fn data_header(pn: u64) -> Header {
    Header {
        packet_type: PacketType::Data,
        destination: 0x1122_3344_5566_7788,
        packet_number: pn,
    }
}

/// The header's bytes with a `pn_len`-byte packet number, written by the crate's encoder.
fn header_bytes(header: &Header, pn_len: usize) -> Vec<u8> {
    let mut out = vec![0u8; Header::len(pn_len)];
    header.emit(&mut out, pn_len);
    out
}

/// Header protection spelled out (RFC 9001 §5.4.1): the mask is AES-256 of the 16 bytes
/// from byte 13; XOR the first byte's low 2 bits and the packet-number bytes.
fn protect_with(hp: &[u8; 32], mut packet: Vec<u8>, pn_len: usize) -> Vec<u8> {
    use ring::aead::quic::{AES_256, HeaderProtectionKey};
    let key = HeaderProtectionKey::new(&AES_256, hp).unwrap();
    let mask = key.new_mask(&packet[13..29]).unwrap();
    packet[0] ^= mask[0] & 0x03;
    for i in 0..pn_len {
        packet[9 + i] ^= mask[1 + i];
    }
    packet
}

/// AES-256-GCM sealing spelled out from a key and IV, without the crate's schedule: the
/// nonce is `iv XOR (4 zero bytes ‖ pn)`; returns header ‖ ciphertext ‖ tag.
fn seal_with(key: &[u8; 32], iv: &[u8; 12], pn: u64, header: &[u8], payload: &[u8]) -> Vec<u8> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let mut nonce = *iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
    let mut body = payload.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(header),
            &mut body,
        )
        .unwrap();
    [header, &body, tag.as_ref()].concat()
}

/// The first packet number of epoch 1.
const EPOCH1: u64 = 1 << 22;

#[test]
fn key_schedule_vectors() {
    // The inputs are the bytes 00..1f and 20..3f, unclamped.
    let offerer: [u8; 32] = core::array::from_fn(|i| i as u8);
    let answerer: [u8; 32] = core::array::from_fn(|i| 0x20 + i as u8);
    assert_eq!(array::<32>("ks-offerer-secret"), offerer);
    assert_eq!(array::<32>("ks-answerer-secret"), answerer);

    let s = doc_schedule();
    assert_eq!(s.offerer_public, array("ks-offerer-public"));
    assert_eq!(s.answerer_public, array("ks-answerer-public"));
    assert_eq!(s.shared, array("ks-shared"));
    assert_eq!(s.offerer_traffic, array("ks-offerer-traffic"));
    assert_eq!(s.answerer_traffic, array("ks-answerer-traffic"));
    assert_eq!(
        s.offerer_key0,
        (array("ks-offerer-key0"), array("ks-offerer-iv0"))
    );
    assert_eq!(
        s.answerer_key0,
        (array("ks-answerer-key0"), array("ks-answerer-iv0"))
    );
    // The two directions differ at every level.
    assert_ne!(s.offerer_traffic, s.answerer_traffic);
    assert_ne!(s.offerer_key0.0, s.answerer_key0.0);
    assert_ne!(s.offerer_key0.1, s.answerer_key0.1);

    // The intermediate PRK: HKDF-Extract with the salt gives it, and the traffic secrets
    // expand from it with the labels and both public keys.
    let (prk, hk) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(b"carrier v1"), &s.shared);
    assert_eq!(prk.as_slice(), vector("ks-prk"));
    let mut t = [0u8; 32];
    let transcript = [s.offerer_public, s.answerer_public].concat();
    hk.expand_multi_info(&[b"answerer traffic", &transcript], &mut t)
        .unwrap();
    assert_eq!(t, s.answerer_traffic);

    // The same exchange from the answerer's side: the roles are not symmetric (swapping them
    // swaps the public keys in the HKDF info), but the shared secret is.
    let swapped = carrier_proto::derive_schedule(answerer, offerer).unwrap();
    assert_eq!(swapped.shared, s.shared);
    assert_eq!(swapped.offerer_public, s.answerer_public);
    assert_ne!(swapped.offerer_traffic, s.answerer_traffic);
}

#[test]
fn sealed_packet_vectors() {
    let s = doc_schedule();
    assert_eq!(s.offerer_hp, array("ks-offerer-hp"));
    assert_eq!(s.answerer_hp, array("ks-answerer-hp"));
    let hp = array::<32>("ks-offerer-hp");
    let (key0, iv0) = (array("ks-offerer-key0"), array("ks-offerer-iv0"));

    // Packet number 5 in one byte: epoch 0.
    let header = data_header(5);
    let head = header_bytes(&header, 1);
    assert_eq!(
        head,
        [0xd8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x05]
    );
    let payload = [&[0x01][..], b"hello"].concat();
    let pn5 = s.offerer_packet(&header, 1, &payload);
    assert_eq!(pn5, vector("sealed-pn5"));
    assert_eq!(pn5.len(), 10 + payload.len() + 16);
    assert_eq!(&pn5[1..9], &head[1..9], "the destination goes in clear");
    assert_ne!(pn5[9], 5, "the packet number does not");
    // The document's epoch-0 key and IV, with the nonce and the mask spelled out, give the
    // same bytes.
    let sealed = seal_with(&key0, &iv0, 5, &head, &payload);
    assert_eq!(protect_with(&hp, sealed, 1), pn5);

    // Packet number 2^22 in three bytes: the first of epoch 1.
    let header = data_header(EPOCH1);
    let head = header_bytes(&header, 3);
    assert_eq!(&head[9..], &[0x40, 0, 0]);
    let e1 = s.offerer_packet(&header, 3, &[0x01]);
    assert_eq!(e1, vector("sealed-epoch1"));
    assert_eq!(e1.len(), 12 + 1 + 16);
    // It is sealed with the document's epoch-1 key and IV ...
    let (key1, iv1) = (array("ks-offerer-key1"), array("ks-offerer-iv1"));
    assert_eq!(
        protect_with(&hp, seal_with(&key1, &iv1, EPOCH1, &head, &[0x01]), 3),
        e1
    );
    // ... and not with epoch 0's: the key changed with the epoch.
    assert_ne!(key1, key0);
    assert_ne!(iv1, iv0);
    assert_ne!(
        protect_with(&hp, seal_with(&key0, &iv0, EPOCH1, &head, &[0x01]), 3),
        e1
    );
    // The last packet of epoch 0 still uses epoch 0's key.
    let last = data_header(EPOCH1 - 1);
    let last_head = header_bytes(&last, 3);
    assert_eq!(
        s.offerer_packet(&last, 3, &[0x01]),
        protect_with(
            &hp,
            seal_with(&key0, &iv0, EPOCH1 - 1, &last_head, &[0x01]),
            3
        )
    );
}
