//! Interop: the SDP we write, read by an independent and widely used parser, the `sdp`
//! crate of webrtc-rs.
//!
//! The exact bytes we write must be accepted: no substitution, no leniency flags. Our `m=`
//! lines use the registered proto `UDP` ("an unspecified protocol running over UDP", RFC 8866
//! §5.14) — an unregistered token such as `UDP/CARRIER` is refused by both `sdp` (it checks
//! protos against the registered list) and Mozilla's `webrtc-sdp` (it drops the `m=` line).

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use carrier_proto::sdp::{MediaDescription, Refusal, SessionDescription};
use carrier_proto::{Candidate, CandidateType, SdpLimits, StreamOptions, StreamType};

const UFRAG: &str = "Xy9+";
const PWD: &str = "abcdefghijklmnopqrstuv0123/+";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// Eight candidates, IPv4 and IPv6, every type, with and without related addresses.
fn candidates(stream: u16) -> Vec<Candidate> {
    let port = |n: u16| 40000 + stream * 100 + n;
    let c = |foundation: &str, kind, address: SocketAddr, related: Option<SocketAddr>| Candidate {
        foundation: foundation.into(),
        component: 1,
        priority: Candidate::compute_priority(kind, 65535 - stream, 1),
        address,
        kind,
        related,
    };
    vec![
        Candidate::host(addr(&format!("192.0.2.10:{}", port(0))), 65535),
        Candidate::host(addr(&format!("[2001:db8::10]:{}", port(1))), 65534),
        c(
            "3",
            CandidateType::Host,
            addr(&format!("[fe80::1:2ff:fe03:405]:{}", port(2))),
            None,
        ),
        c(
            "4",
            CandidateType::ServerReflexive,
            addr(&format!("203.0.113.4:{}", port(3))),
            Some(addr(&format!("192.0.2.10:{}", port(0)))),
        ),
        c(
            "5",
            CandidateType::ServerReflexive,
            addr(&format!("[2001:db8:ffff::5]:{}", port(4))),
            Some(addr(&format!("[2001:db8::10]:{}", port(1)))),
        ),
        c(
            "6",
            CandidateType::PeerReflexive,
            addr(&format!("198.51.100.6:{}", port(5))),
            Some(addr(&format!("192.0.2.10:{}", port(0)))),
        ),
        c(
            "7+/",
            CandidateType::Relayed,
            addr(&format!("203.0.113.7:{}", port(6))),
            Some(addr(&format!("203.0.113.4:{}", port(3)))),
        ),
        c(
            "8",
            CandidateType::Relayed,
            addr(&format!("[2001:db8:1::8]:{}", port(7))),
            Some(addr(&format!("[2001:db8:ffff::5]:{}", port(4)))),
        ),
    ]
}

fn streams() -> [(StreamType, StreamOptions); 4] {
    [
        (
            StreamType::Text,
            StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
        ),
        (StreamType::Message, StreamOptions::RELIABLE),
        (
            StreamType::Application,
            StreamOptions::RELIABLE | StreamOptions::PORT_FORWARDING.normalized(),
        ),
        (
            StreamType::Video,
            StreamOptions::PLAIN | StreamOptions::COMPRESS,
        ),
    ]
}

fn offer() -> SessionDescription {
    let mut desc = SessionDescription::new(0xDEAD_BEEF_0000_0001, UFRAG, PWD);
    desc.session_version = 3;
    desc.bundle = Some("file/transfer:v1".into());
    desc.key = Some((0..32).collect());
    desc.identity = Some((0..64).map(|b: u8| b.wrapping_mul(37)).collect());
    desc.media = streams()
        .into_iter()
        .zip(0..)
        .map(|((stream_type, options), i)| MediaDescription {
            stream_type,
            options,
            rejected: false,
            candidates: candidates(i),
        })
        .collect();
    desc
}

/// A refusal answers every offered stream with port 0 (RFC 3264 keeps the m= lines).
fn refusal_answer() -> SessionDescription {
    let mut desc = SessionDescription::new(77, "Answ", "answerpasswordanswer/+");
    desc.reply_to = Some(offer().session_id);
    desc.refusal = Some(Refusal {
        status: 486,
        reason: "busy here: try again later".into(),
    });
    desc.media = streams()
        .into_iter()
        .map(|(stream_type, options)| MediaDescription {
            stream_type,
            options,
            rejected: true,
            candidates: vec![],
        })
        .collect();
    desc
}

fn unmarshal(text: &str) -> Result<sdp::SessionDescription, sdp::Error> {
    sdp::SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
}

/// Reads `text` with the `sdp` crate; it must accept it exactly as written.
fn read_with_sdp_crate(text: &str) -> sdp::SessionDescription {
    unmarshal(text).unwrap_or_else(|e| panic!("the sdp crate refused our SDP: {e}\n{text}"))
}

/// Everything the other parser saw must be what we meant.
fn check(ours: &SessionDescription, theirs: &sdp::SessionDescription) {
    assert_eq!(theirs.version, 0);
    assert_eq!(theirs.origin.session_id, ours.session_id);
    assert_eq!(theirs.origin.session_version, ours.session_version);
    assert_eq!(theirs.origin.network_type, "IN");
    assert_eq!(theirs.session_name, "carrier");
    assert_eq!(theirs.time_descriptions.len(), 1);

    let session = |key: &str| theirs.attribute(key).map(String::as_str);
    assert_eq!(session("ice-ufrag"), Some(ours.ice_ufrag.as_str()));
    assert_eq!(session("ice-pwd"), Some(ours.ice_pwd.as_str()));
    assert_eq!(session("x-carrier-bundle"), ours.bundle.as_deref());
    assert_eq!(
        session("x-carrier-reply-to"),
        ours.reply_to.map(|r| r.to_string()).as_deref()
    );
    let refusal = ours
        .refusal
        .as_ref()
        .map(|r| format!("{} {}", r.status, r.reason));
    assert_eq!(session("x-carrier-refuse"), refusal.as_deref());
    let hex = |b: &Vec<u8>| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        session("x-carrier-key"),
        ours.key.as_ref().map(hex).as_deref()
    );
    assert_eq!(
        session("x-carrier-identity"),
        ours.identity.as_ref().map(hex).as_deref()
    );
    assert!(
        !theirs.has_attribute("candidate"),
        "no candidate at session level"
    );

    assert_eq!(theirs.media_descriptions.len(), ours.media.len());
    for (i, (m, t)) in ours
        .media
        .iter()
        .zip(&theirs.media_descriptions)
        .enumerate()
    {
        assert_eq!(t.media_name.media, m.stream_type.sdp_media());
        assert_eq!(t.media_name.port.value, if m.rejected { 0 } else { 9 });
        assert_eq!(t.media_name.port.range, None);
        assert_eq!(t.media_name.protos, ["UDP"]);
        assert_eq!(t.media_name.formats, [m.options.bits().to_string()]);
        let c = t
            .connection_information
            .as_ref()
            .expect("c= in every section");
        assert_eq!(
            (c.network_type.as_str(), c.address_type.as_str()),
            ("IN", "IP4")
        );
        assert_eq!(t.attribute("mid"), Some(Some(i.to_string().as_str())));

        let seen: Vec<&str> = t
            .attributes
            .iter()
            .filter(|a| a.is_ice_candidate())
            .map(|a| a.value.as_deref().expect("candidate value"))
            .collect();
        assert_eq!(seen.len(), m.candidates.len(), "candidates of section {i}");
        for (value, c) in seen.iter().zip(&m.candidates) {
            check_candidate(value, c);
        }
    }
}

/// Reads an RFC 8839 candidate value with std parsing only, and compares it field by field.
fn check_candidate(value: &str, c: &Candidate) {
    let tokens: Vec<&str> = value.split(' ').collect();
    assert!(tokens.len() == 8 || tokens.len() == 12, "{value}");
    assert_eq!(tokens[0], c.foundation);
    assert_eq!(tokens[1].parse::<u16>().ok(), Some(c.component));
    assert!(tokens[2].eq_ignore_ascii_case("udp"));
    assert_eq!(tokens[3].parse::<u32>().ok(), Some(c.priority));
    assert!(!tokens[4].contains('['), "RFC 8839: no brackets: {value}");
    assert_eq!(tokens[4].parse::<IpAddr>().ok(), Some(c.address.ip()));
    assert_eq!(tokens[5].parse::<u16>().ok(), Some(c.address.port()));
    assert_eq!(tokens[6], "typ");
    assert_eq!(tokens[7], c.kind.sdp_name());
    match c.related {
        None => assert_eq!(tokens.len(), 8),
        Some(related) => {
            assert_eq!(tokens[8], "raddr");
            assert_eq!(tokens[9].parse::<IpAddr>().ok(), Some(related.ip()));
            assert_eq!(tokens[10], "rport");
            assert_eq!(tokens[11].parse::<u16>().ok(), Some(related.port()));
        }
    }
}

/// What the `sdp` crate writes back must parse, with our strict parser, to
/// the description we started from.
fn check_rewrite(ours: &SessionDescription, theirs: &sdp::SessionDescription) {
    let text = theirs.marshal();
    assert_eq!(
        SessionDescription::parse(&text, &SdpLimits::default()).as_ref(),
        Ok(ours),
        "our parser on the sdp crate's output:\n{text}"
    );
}

#[test]
fn offer_with_four_streams_is_understood() {
    let ours = offer();
    let text = ours.to_sdp_string();
    assert_eq!(
        SessionDescription::parse(&text, &SdpLimits::default()).as_ref(),
        Ok(&ours)
    );
    let theirs = read_with_sdp_crate(&text);
    check(&ours, &theirs);
    check_rewrite(&ours, &theirs);
}

#[test]
fn refusal_answer_is_understood() {
    let ours = refusal_answer();
    let text = ours.to_sdp_string();
    let theirs = read_with_sdp_crate(&text);
    check(&ours, &theirs);
    check_rewrite(&ours, &theirs);
}

#[test]
fn refusal_without_media_is_understood() {
    let mut ours = refusal_answer();
    ours.media.clear();
    let text = ours.to_sdp_string();
    let theirs = read_with_sdp_crate(&text);
    check(&ours, &theirs);
    check_rewrite(&ours, &theirs);
}
