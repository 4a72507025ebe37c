//! Property tests of the SDP parser and writer: every valid description survives a round
//! trip, and no input, however broken, makes the parser panic.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use carrier_proto::sdp::{MediaDescription, Refusal, SdpErrorKind, SessionDescription};
use carrier_proto::{Candidate, CandidateType, SdpLimits, StreamOptions, StreamType};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

/// Limits roomy enough for every description the strategy makes: 16 sections of 8 IPv6
/// candidates with related addresses exceed the default 16 KiB, and a 256-byte identity in
/// hex makes a 533-byte line.
fn roomy() -> SdpLimits {
    SdpLimits {
        max_bytes: 64 * 1024,
        max_line_len: 1024,
        ..SdpLimits::default()
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(
            Ipv4Addr::from(ip),
            port
        )
        .into()),
        (any::<u128>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        )
        .into()),
        // Mapped and unspecified addresses have their own textual forms.
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| {
            SocketAddrV6::new(Ipv4Addr::from(ip).to_ipv6_mapped(), port, 0, 0).into()
        }),
        any::<u16>().prop_map(|port| SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into()),
        // Runs of zero groups, for `::` in every place.
        (
            proptest::array::uniform8(prop_oneof![Just(0u16), Just(0), any::<u16>()]),
            any::<u16>()
        )
            .prop_map(|(groups, port)| SocketAddrV6::new(
                Ipv6Addr::from(groups),
                port,
                0,
                0
            )
            .into()),
    ]
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        "[A-Za-z0-9+/]{1,32}",
        1u16..=256,
        any::<u32>(),
        socket_addr(),
        select(CandidateType::ALL.to_vec()),
        option::of(socket_addr()),
    )
        .prop_map(
            |(foundation, component, priority, address, kind, related)| Candidate {
                foundation,
                component,
                priority,
                address,
                kind,
                related,
            },
        )
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        select(StreamType::ALL.to_vec()),
        any::<u8>(),
        any::<bool>(),
        vec(candidate(), 0..=8),
    )
        .prop_map(
            |(stream_type, bits, rejected, candidates)| MediaDescription {
                stream_type,
                options: StreamOptions::from_bits_truncate(bits),
                rejected,
                candidates,
            },
        )
}

fn refusal() -> impl Strategy<Value = Refusal> {
    (
        any::<i32>().prop_filter("non-zero", |s| *s != 0),
        "[^\\r\\n\\x00]{0,64}",
    )
        .prop_map(|(status, reason)| Refusal { status, reason })
}

fn description() -> impl Strategy<Value = SessionDescription> {
    (
        (any::<u64>(), any::<u64>()),
        ("[A-Za-z0-9+/]{4,256}", "[A-Za-z0-9+/]{22,256}"),
        (
            option::of("[!-~]{1,255}"),
            option::of(any::<u64>()),
            option::of(refusal()),
        ),
        (
            option::of(vec(any::<u8>(), 1..=256)),
            option::of(vec(any::<u8>(), 1..=256)),
        ),
        vec(media(), 0..=16),
    )
        .prop_map(
            |((id, version), (ufrag, pwd), (bundle, reply_to, refusal), (key, identity), media)| {
                let mut desc = SessionDescription::new(id, ufrag, pwd);
                desc.session_version = version;
                desc.bundle = bundle;
                desc.reply_to = reply_to;
                desc.refusal = refusal;
                desc.key = key;
                desc.identity = identity;
                desc.media = media;
                desc
            },
        )
}

/// A change to a serialized description.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    FlipByte(usize, u8),
    InsertByte(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<usize>().prop_map(Mutation::DeleteLine),
        2 => any::<usize>().prop_map(Mutation::DuplicateLine),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        // Mostly flips that keep ASCII text ASCII, so that the parser gets past UTF-8.
        3 => (any::<usize>(), 1..=0x7Fu8).prop_map(|(i, x)| Mutation::FlipByte(i, x)),
        1 => (any::<usize>(), 0x80..=u8::MAX).prop_map(|(i, x)| Mutation::FlipByte(i, x)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    // Lines with their LF, so that deleting and duplicating keep the rest intact.
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let n = lines.len().max(1);
    match *mutation {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i % n);
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let line = lines[i % n].clone();
            lines.insert(i % n, line);
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
        Mutation::FlipByte(i, x) if !bytes.is_empty() => {
            let len = bytes.len();
            bytes[i % len] ^= x;
            return;
        }
        Mutation::InsertByte(i, b) => {
            let at = i % (bytes.len() + 1);
            bytes.insert(at, b);
            return;
        }
        Mutation::Truncate(i) => {
            bytes.truncate(i % (bytes.len() + 1));
            return;
        }
        _ => return,
    }
    *bytes = lines.concat();
}

/// What the parser must guarantee of anything it accepts: a valid description that writes
/// back to text parsing to the same value.
fn check_accepted(desc: &SessionDescription, limits: &SdpLimits) -> Result<(), TestCaseError> {
    prop_assert_eq!(desc.validate(), Ok(()));
    let text = desc.to_sdp_string();
    let again = SessionDescription::parse(&text, limits);
    // Re-writing can lengthen a line (a=mid and c= are always written), so only a limit
    // may stop the second parse.
    if let Err(e) = &again {
        prop_assert!(
            matches!(
                e.kind,
                SdpErrorKind::TooLarge { .. }
                    | SdpErrorKind::LineTooLong { .. }
                    | SdpErrorKind::TooManyLines { .. }
            ),
            "re-parse failed: {}",
            e
        );
    } else {
        prop_assert_eq!(again.as_ref(), Ok(desc));
    }
    Ok(())
}

/// Lines that look like SDP, to get further into the parser than random bytes do.
const SDP_LIKE_LINE: &str = concat!(
    "[a-z]=[ -~]{0,60}",
    "|a=candidate:[0-9a-z :.]{0,80}",
    "|m=[a-z]{4,11} [0-9]{1,5} UDP [0-9]{1,3}",
);

proptest! {
    #[test]
    fn round_trip(desc in description()) {
        prop_assert_eq!(desc.validate(), Ok(()));
        let text = desc.to_sdp_string();
        prop_assert_eq!(text.len(), desc.sdp_len());
        prop_assert!(text.ends_with("\r\n"));
        prop_assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
        let parsed = SessionDescription::parse(&text, &roomy());
        prop_assert_eq!(parsed.as_ref(), Ok(&desc));
        // Addresses are written as `Display` writes them, without brackets.
        for c in desc.media.iter().flat_map(|m| &m.candidates) {
            let address = format!(" {} {} typ ", c.address.ip(), c.address.port());
            prop_assert!(text.contains(&address), "{} not in\n{}", address, text);
        }

        // LF-only endings read the same.
        let lf = text.replace("\r\n", "\n");
        let parsed = SessionDescription::parse(&lf, &roomy());
        prop_assert_eq!(parsed.as_ref(), Ok(&desc));

        // Under the default limits: the same description, or a limit error.
        match SessionDescription::parse(&text, &SdpLimits::default()) {
            Ok(parsed) => prop_assert_eq!(parsed, desc),
            Err(e) => prop_assert!(
                matches!(e.kind, SdpErrorKind::TooLarge { .. } | SdpErrorKind::LineTooLong { .. }),
                "{}",
                e
            ),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        let _ = SessionDescription::parse_bytes(&bytes, &SdpLimits::default());
    }

    #[test]
    fn arbitrary_sdp_like_text_never_panics(
        lines in vec(SDP_LIKE_LINE, 0..40),
        crlf in any::<bool>(),
    ) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        if let Ok(desc) = SessionDescription::parse(&text, &SdpLimits::default()) {
            check_accepted(&desc, &SdpLimits::default())?;
        }
    }

    #[test]
    fn mutations_never_panic(desc in description(), mutations in vec(mutation(), 1..8)) {
        let mut bytes = desc.to_sdp_string().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let limits = roomy();
        if let Ok(parsed) = SessionDescription::parse_bytes(&bytes, &limits) {
            check_accepted(&parsed, &limits)?;
        }
    }
}
