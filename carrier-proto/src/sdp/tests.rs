//! Unit tests of the SDP parser and writer.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::{MediaDescription, Refusal, SdpError, SdpErrorKind, SessionDescription};
use crate::config::SdpLimits;
use crate::types::{Candidate, CandidateType, StreamOptions, StreamType};

const UFRAG: &str = "abcd";
const PWD: &str = "0123456789abcdef012345";

/// A hand-written description using every feature the parser knows, with LF endings and
/// attributes it must ignore.
const FULL: &str = "v=0
o=- 4858 2 IN IP4 0.0.0.0
s=carrier
t=0 0
a=group:BUNDLE 0 1
a=ice-ufrag:abcd
a=ice-pwd:0123456789abcdef012345
a=x-carrier-bundle:filetransfer
a=x-carrier-reply-to:77
a=x-carrier-key:00ff10
a=x-carrier-identity:ABCDEF
m=text 9 UDP 12
c=IN IP4 0.0.0.0
a=mid:0
a=sendrecv
a=candidate:1 1 udp 2130706431 192.0.2.7 4000 typ host
a=candidate:2 1 UDP 1694498815 2001:db8::1 5000 typ srflx raddr fe80::1 rport 4000 generation 0
m=message 0 UDP 0
c=IN IP6 ::
";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn limits() -> SdpLimits {
    SdpLimits::default()
}

fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse(text, &limits())
}

fn full_expected() -> SessionDescription {
    let mut desc = SessionDescription::new(4858, UFRAG, PWD);
    desc.session_version = 2;
    desc.bundle = Some("filetransfer".into());
    desc.reply_to = Some(77);
    desc.key = Some(vec![0x00, 0xff, 0x10]);
    desc.identity = Some(vec![0xab, 0xcd, 0xef]);
    desc.media = vec![
        MediaDescription {
            stream_type: StreamType::Text,
            options: StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
            rejected: false,
            candidates: vec![
                Candidate {
                    foundation: "1".into(),
                    component: 1,
                    priority: 2130706431,
                    address: addr("192.0.2.7:4000"),
                    kind: CandidateType::Host,
                    related: None,
                },
                Candidate {
                    foundation: "2".into(),
                    component: 1,
                    priority: 1694498815,
                    address: addr("[2001:db8::1]:5000"),
                    kind: CandidateType::ServerReflexive,
                    related: Some(addr("[fe80::1]:4000")),
                },
            ],
        },
        MediaDescription {
            stream_type: StreamType::Message,
            options: StreamOptions::empty(),
            rejected: true,
            candidates: vec![],
        },
    ];
    desc
}

/// A valid description as CRLF text, one entry per line (without terminator).
fn base_lines() -> Vec<String> {
    full_expected()
        .to_sdp_string()
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn join(lines: &[String]) -> String {
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    text
}

/// The base description with line `n` (1-based) replaced by `replacement` (which may hold
/// several lines, or none).
fn replace_line(n: usize, replacement: &str) -> String {
    let mut lines = base_lines();
    let new: Vec<String> = if replacement.is_empty() {
        vec![]
    } else {
        replacement.split("\r\n").map(String::from).collect()
    };
    lines.splice(n - 1..n, new);
    join(&lines)
}

/// The 1-based number of the first base line starting with `prefix`.
fn line_of(prefix: &str) -> usize {
    base_lines()
        .iter()
        .position(|l| l.starts_with(prefix))
        .expect("line in base")
        + 1
}

#[track_caller]
fn assert_error(text: &str, line: usize, kind: SdpErrorKind) {
    assert_eq!(parse(text), Err(SdpError { line, kind }), "input:\n{text}");
}

#[test]
fn full_example_parses() {
    assert_eq!(parse(FULL), Ok(full_expected()));
}

#[test]
fn module_example_round_trips() {
    let mut desc = SessionDescription::new(0x1234_5678, UFRAG, "0123456789abcdef01234567");
    desc.bundle = Some("filetransfer".into());
    desc.media.push(MediaDescription {
        stream_type: StreamType::Text,
        options: StreamOptions::RELIABLE | StreamOptions::MULTIPLEXING,
        rejected: false,
        candidates: vec![Candidate::host(addr("192.0.2.7:4000"), 65535)],
    });
    let text = desc.to_sdp_string();
    assert!(text.contains("m=text 9 UDP 12\r\n"));
    assert_eq!(parse(&text), Ok(desc));
}

#[test]
fn writer_layout_is_exact() {
    let mut desc = full_expected();
    desc.refusal = Some(Refusal {
        status: -3,
        reason: "no such bundle".into(),
    });
    let expected = "v=0\r\n\
        o=- 4858 2 IN IP4 0.0.0.0\r\n\
        s=carrier\r\n\
        t=0 0\r\n\
        a=ice-ufrag:abcd\r\n\
        a=ice-pwd:0123456789abcdef012345\r\n\
        a=x-carrier-bundle:filetransfer\r\n\
        a=x-carrier-reply-to:77\r\n\
        a=x-carrier-refuse:-3 no such bundle\r\n\
        a=x-carrier-key:00ff10\r\n\
        a=x-carrier-identity:abcdef\r\n\
        m=text 9 UDP 12\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=mid:0\r\n\
        a=candidate:1 1 udp 2130706431 192.0.2.7 4000 typ host\r\n\
        a=candidate:2 1 udp 1694498815 2001:db8::1 5000 typ srflx raddr fe80::1 rport 4000\r\n\
        m=message 0 UDP 0\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=mid:1\r\n";
    let text = desc.to_sdp_string();
    assert_eq!(text, expected);
    assert_eq!(desc.sdp_len(), expected.len());
    assert_eq!(
        text.capacity(),
        text.len(),
        "allocated exactly once, exactly"
    );
    assert_eq!(desc.validate(), Ok(()));
    assert_eq!(parse(&text), Ok(desc.clone()));

    let mut out = String::from("prefix\r\n");
    desc.write_to(&mut out);
    assert_eq!(out.strip_prefix("prefix\r\n"), Some(expected));
}

#[test]
fn minimal_description() {
    let desc = SessionDescription::new(0, UFRAG, PWD);
    let text = desc.to_sdp_string();
    assert_eq!(text.lines().count(), 6);
    assert_eq!(parse(&text), Ok(desc));
}

#[test]
fn crlf_lf_and_missing_final_newline() {
    let lf = FULL;
    let crlf = FULL.replace('\n', "\r\n");
    let mixed: String = FULL
        .split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| {
            if i % 2 == 0 {
                l.replace('\n', "\r\n")
            } else {
                l.to_string()
            }
        })
        .collect();
    let unterminated = FULL.trim_end_matches('\n');
    let unterminated_crlf = crlf.trim_end_matches("\r\n");
    for text in [lf, &crlf, &mixed, unterminated, unterminated_crlf] {
        assert_eq!(parse(text), Ok(full_expected()));
    }
}

#[test]
fn parse_bytes_checks_utf8() {
    assert_eq!(
        SessionDescription::parse_bytes(FULL.as_bytes(), &limits()),
        Ok(full_expected())
    );
    let mut bytes = FULL.as_bytes().to_vec();
    let s_line = FULL.find("s=carrier").expect("s= line");
    bytes[s_line + 3] = 0xFF;
    assert_eq!(
        SessionDescription::parse_bytes(&bytes, &limits()),
        Err(SdpError::new(3, SdpErrorKind::NotUtf8))
    );
}

#[test]
fn size_is_checked_first() {
    // 1 MiB of bytes that are neither UTF-8 nor lines: only the size is looked at.
    let big = vec![0xFFu8; 1 << 20];
    let err = SdpError::new(
        0,
        SdpErrorKind::TooLarge {
            len: 1 << 20,
            max: 16 * 1024,
        },
    );
    assert_eq!(
        SessionDescription::parse_bytes(&big, &limits()),
        Err(err.clone())
    );
    let big_text = "a".repeat(1 << 20);
    assert_eq!(parse(&big_text), Err(err));
    assert_eq!(
        parse(&big_text).map_err(|e| e.to_string()),
        Err("description too large: 1048576 bytes, limit 16384".into())
    );
}

#[test]
fn line_limits() {
    let text = join(&base_lines());
    let n = base_lines().len();
    let tight = SdpLimits {
        max_lines: n - 1,
        ..limits()
    };
    assert_eq!(
        SessionDescription::parse(&text, &tight),
        Err(SdpError::new(n, SdpErrorKind::TooManyLines { max: n - 1 }))
    );
    let exact = SdpLimits {
        max_lines: n,
        ..limits()
    };
    assert!(SessionDescription::parse(&text, &exact).is_ok());

    // Unknown attributes are ignored but still count.
    let padded = replace_line(5, "a=sendrecv\r\na=ice-ufrag:abcd");
    assert_eq!(parse(&padded), Ok(full_expected()));
    assert_eq!(
        SessionDescription::parse(&padded, &exact),
        Err(SdpError::new(n + 1, SdpErrorKind::TooManyLines { max: n }))
    );

    // On one line, the limits come before the syntax.
    let long = alloc::format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nS\r{}\r\n",
        "x".repeat(700)
    );
    assert_error(&long, 3, SdpErrorKind::LineTooLong { len: 702, max: 640 });
    // The first offending line is reported.
    let long = alloc::format!("V=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns={}\r\n", "x".repeat(700));
    assert_error(
        &long,
        1,
        SdpErrorKind::BadLineSyntax("the type must be one lowercase letter"),
    );
}

fn candidate_line(i: usize) -> String {
    alloc::format!("a=candidate:{i} 1 udp {i} 192.0.2.1 {} typ host", 1000 + i)
}

#[test]
fn stream_and_candidate_limits() {
    let mut desc = SessionDescription::new(1, UFRAG, PWD);
    for _ in 0..17 {
        desc.media.push(MediaDescription {
            stream_type: StreamType::Application,
            options: StreamOptions::empty(),
            rejected: false,
            candidates: vec![],
        });
    }
    let text = desc.to_sdp_string();
    // 6 session lines, 3 per media: the 17th m= is line 6 + 16 * 3 + 1.
    assert_error(&text, 55, SdpErrorKind::TooManyStreams { max: 16 });
    desc.media.pop();
    assert_eq!(parse(&desc.to_sdp_string()), Ok(desc.clone()));

    let candidates: Vec<String> = (1..=33).map(candidate_line).collect();
    let mid = line_of("a=mid:0");
    let mut lines = base_lines();
    lines.splice(mid..mid, candidates.iter().cloned());
    assert_error(
        &join(&lines),
        mid + 33,
        SdpErrorKind::TooManyCandidates { max: 32 },
    );
    lines.drain(mid..mid + 3);
    let parsed = parse(&join(&lines)).expect("32 candidates are fine");
    assert_eq!(parsed.media[0].candidates.len(), 32);
    // Another section has its own count.
    let second = lines.iter().position(|l| l == "a=mid:1").expect("mid 1") + 1;
    lines.splice(second..second, candidates[..32].iter().cloned());
    let parsed = parse(&join(&lines)).expect("32 candidates in each");
    assert_eq!(parsed.media[1].candidates.len(), 32);
}

#[test]
fn ipv6_candidates_with_raddr() {
    let mut desc = SessionDescription::new(9, UFRAG, PWD);
    let candidates = vec![
        Candidate {
            foundation: "a+/Z9".into(),
            component: 256,
            priority: u32::MAX,
            address: addr("[2001:db8:0:1::42]:65535"),
            kind: CandidateType::Relayed,
            related: Some(addr("[::ffff:192.0.2.1]:1")),
        },
        Candidate {
            foundation: "x".repeat(32),
            component: 1,
            priority: 0,
            address: addr("[::]:0"),
            kind: CandidateType::PeerReflexive,
            related: Some(addr("192.0.2.9:7")),
        },
        Candidate {
            foundation: "4".into(),
            component: 1,
            priority: 7,
            address: addr("198.51.100.1:9"),
            kind: CandidateType::ServerReflexive,
            related: Some(addr("[fe80::1:2:3:4]:99")),
        },
    ];
    desc.media.push(MediaDescription {
        stream_type: StreamType::Video,
        options: StreamOptions::all(),
        rejected: false,
        candidates,
    });
    let text = desc.to_sdp_string();
    assert!(text.contains(
        "a=candidate:a+/Z9 256 udp 4294967295 2001:db8:0:1::42 65535 typ relay raddr ::ffff:192.0.2.1 rport 1\r\n"
    ));
    assert!(!text.contains('['));
    assert_eq!(parse(&text), Ok(desc));
}

#[test]
fn refusal_reasons() {
    for reason in [
        "",
        "busy",
        "  spaces  inside and around ",
        "ünïcödé\ttab",
        "a:b=c",
    ] {
        let mut desc = SessionDescription::new(3, UFRAG, PWD);
        desc.reply_to = Some(u64::MAX);
        desc.refusal = Some(Refusal {
            status: i32::MIN,
            reason: reason.into(),
        });
        assert_eq!(desc.validate(), Ok(()));
        assert_eq!(parse(&desc.to_sdp_string()), Ok(desc));
    }
    // Without the space, the reason is empty.
    let text = replace_line(
        6,
        "a=ice-pwd:0123456789abcdef012345\r\na=x-carrier-refuse:42",
    );
    let parsed = parse(&text).expect("refusal without reason");
    assert_eq!(
        parsed.refusal,
        Some(Refusal {
            status: 42,
            reason: String::new()
        })
    );
}

#[test]
fn unknown_attributes_and_lines_are_ignored() {
    let session = line_of("a=ice-ufrag");
    let text = replace_line(
        session,
        "a=ice-ufrag:abcd\r\na=sendrecv\r\na=ice-options:trickle\r\na=msid-semantic: WMS",
    );
    let media = text
        .split("\r\n")
        .position(|l| l == "a=mid:0")
        .expect("mid")
        + 1;
    let mut lines: Vec<String> = text.split("\r\n").map(String::from).collect();
    lines.pop();
    lines.splice(
        media..media,
        [
            "a=rtcp-mux".to_string(),
            "a=fmtp:12 x=y".to_string(),
            "a=end-of-candidates".to_string(),
        ],
    );
    assert_eq!(parse(&join(&lines)), Ok(full_expected()));

    // Optional RFC 8866 lines in their places.
    let text = "v=0\r\no=jdoe 1 1 IN IP6 ::1\r\ns= \r\ni=info\r\nu=http://x\r\n\
        e=a@b\r\ne=c@d\r\np=+1\r\nc=IN IP4 224.2.1.1/127\r\nb=AS:1\r\n\
        t=1 2\r\nr=7d 1h 0 25h\r\nt=0 0\r\nz=2882844526 -1h\r\nk=prompt\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n\
        m=audio 5000 UDP 2\r\ni=media info\r\nb=AS:2\r\nk=prompt\r\na=recvonly\r\n";
    let parsed = parse(text).expect("optional lines");
    assert_eq!(parsed.session_id, 1);
    assert_eq!(parsed.media.len(), 1);
    assert!(!parsed.media[0].rejected, "any non-zero port is active");
    assert_eq!(parsed.media[0].options, StreamOptions::PLAIN);
}

#[test]
fn duplicates() {
    let ufrag = line_of("a=ice-ufrag");
    assert_error(
        &replace_line(ufrag, "a=ice-ufrag:abcd\r\na=ice-ufrag:efgh"),
        ufrag + 1,
        SdpErrorKind::DuplicateAttribute("ice-ufrag"),
    );
    let key = line_of("a=x-carrier-key");
    assert_error(
        &replace_line(key, "a=x-carrier-key:00\r\na=x-carrier-key:00"),
        key + 1,
        SdpErrorKind::DuplicateAttribute("x-carrier-key"),
    );
    let mid = line_of("a=mid:0");
    assert_error(
        &replace_line(mid, "a=mid:0\r\na=mid:0"),
        mid + 1,
        SdpErrorKind::DuplicateAttribute("mid"),
    );
}

#[test]
fn misplaced_attributes() {
    let ufrag = line_of("a=ice-ufrag");
    assert_error(
        &replace_line(
            ufrag,
            &alloc::format!("a=ice-ufrag:abcd\r\n{}", candidate_line(1)),
        ),
        ufrag + 1,
        SdpErrorKind::MisplacedAttribute("candidate"),
    );
    assert_error(
        &replace_line(ufrag, "a=ice-ufrag:abcd\r\na=mid:0"),
        ufrag + 1,
        SdpErrorKind::MisplacedAttribute("mid"),
    );
    let mid = line_of("a=mid:0");
    assert_error(
        &replace_line(mid, "a=mid:0\r\na=ice-pwd:0123456789abcdef012345"),
        mid + 1,
        SdpErrorKind::MisplacedAttribute("ice-pwd"),
    );
}

#[test]
fn line_syntax_errors() {
    use SdpErrorKind::BadLineSyntax as B;
    let cases: &[(usize, &str, SdpErrorKind)] = &[
        (1, "v =0", B("expected <type>=<value>")),
        (1, "V=0", B("the type must be one lowercase letter")),
        (3, "s=car\rrier", B("CR not followed by LF")),
        (3, "s=car\0rier", B("NUL character")),
        (4, "t= 0 0", B("whitespace after '='")),
        (4, "t=", B("empty value")),
        (5, "a=:abcd", B("the attribute name is not a token")),
        (
            5,
            "a=ice ufrag:abcd",
            B("the attribute name is not a token"),
        ),
    ];
    for (line, replacement, kind) in cases {
        assert_error(&replace_line(*line, replacement), *line, kind.clone());
    }
    // A CR at the very end (no LF) is a lone CR.
    let text = alloc::format!("{}\r", FULL.trim_end_matches('\n'));
    assert_error(&text, 19, B("CR not followed by LF"));
    // An empty line.
    let mut lines = base_lines();
    lines.insert(2, String::new());
    assert_error(&join(&lines), 3, B("empty line"));
    // `s= ` (one space) is the one value that may start with a space.
    assert!(parse(&replace_line(3, "s= ")).is_ok());
}

#[test]
fn order_errors() {
    let unexpected = |expected, found| SdpErrorKind::UnexpectedLine { expected, found };
    // An unknown line type after t=.
    assert_error(
        &replace_line(4, "t=0 0\r\nx=1"),
        5,
        unexpected("t=, r=, z=, k=, a= or m=", 'x'),
    );
    // A known type out of place.
    assert_error(
        &replace_line(5, "a=ice-ufrag:abcd\r\ns=again"),
        6,
        unexpected("a= or m=", 's'),
    );
    // r= before any t=.
    assert_error(
        &replace_line(4, "r=1 1 0"),
        4,
        unexpected("i=, u=, e=, p=, c=, b= or t=", 'r'),
    );
    // i= twice.
    assert_error(
        &replace_line(4, "i=one\r\ni=two\r\nt=0 0"),
        5,
        unexpected("u=, e=, p=, c=, b= or t=", 'i'),
    );
    // c= after a= in a media section.
    let mid = line_of("a=mid:0");
    assert_error(
        &replace_line(mid, "a=mid:0\r\nc=IN IP4 0.0.0.0"),
        mid + 1,
        unexpected("a= or m=", 'c'),
    );
    // v= twice.
    assert_error(&replace_line(2, "v=0"), 2, unexpected("o=", 'v'));
    assert_error(
        &replace_line(1, "o=- 1 1 IN IP4 0.0.0.0\r\nv=0"),
        1,
        SdpErrorKind::MissingLine("v="),
    );
}

#[test]
fn missing_lines() {
    let missing = SdpErrorKind::MissingLine;
    assert_error("", 0, missing("v="));
    assert_error("v=0\r\n", 0, missing("o="));
    assert_error("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", 0, missing("s="));
    assert_error("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=x\n", 0, missing("t="));
    // Removing o=: the s= in its place tells it is missing.
    assert_error(&replace_line(2, ""), 2, missing("o="));
    assert_error(&replace_line(4, ""), 4, missing("t="));
    assert_error(
        &replace_line(line_of("a=ice-ufrag"), ""),
        0,
        missing("a=ice-ufrag"),
    );
    assert_error(
        &replace_line(line_of("a=ice-pwd"), ""),
        0,
        missing("a=ice-pwd"),
    );
    let text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\na=ice-ufrag:abcd\r\n";
    assert_error(text, 0, missing("a=ice-pwd"));
    // c= missing in a media section, and no session-level c=.
    let m = line_of("m=text");
    assert_error(&replace_line(m + 1, ""), m, missing("c="));
    // ... but a session-level c= covers every section.
    let mut lines = base_lines();
    lines.retain(|l| !l.starts_with("c="));
    lines.insert(3, "c=IN IP4 0.0.0.0".into());
    assert_eq!(parse(&join(&lines)), Ok(full_expected()));
}

#[test]
fn field_errors() {
    use SdpErrorKind::*;
    let ufrag = line_of("a=ice-ufrag");
    let pwd = line_of("a=ice-pwd");
    let bundle = line_of("a=x-carrier-bundle");
    let reply = line_of("a=x-carrier-reply-to");
    let key = line_of("a=x-carrier-key");
    let m = line_of("m=text");
    let mid = line_of("a=mid:0");
    let cand = line_of("a=candidate:1 ");
    let long_key = alloc::format!("a=x-carrier-key:{}", "ab".repeat(257));
    let cases: Vec<(usize, &str, SdpErrorKind)> = vec![
        (1, "v=1", BadVersion),
        (
            2,
            "o=- 1 1 IN IP4",
            BadOrigin("expected six fields separated by single spaces"),
        ),
        (
            2,
            "o=- 1 1 IN IP4 0.0.0.0 x",
            BadOrigin("expected six fields separated by single spaces"),
        ),
        (
            2,
            "o=-  1 1 IN IP4 0.0.0.0",
            BadOrigin("expected six fields separated by single spaces"),
        ),
        (
            2,
            "o=- +1 1 IN IP4 0.0.0.0",
            BadOrigin("sess-id is not a decimal 64-bit number"),
        ),
        (
            2,
            "o=- 18446744073709551616 1 IN IP4 0.0.0.0",
            BadOrigin("sess-id is not a decimal 64-bit number"),
        ),
        (
            2,
            "o=- 1 x IN IP4 0.0.0.0",
            BadOrigin("sess-version is not a decimal 64-bit number"),
        ),
        (
            2,
            "o=- 1 1 ATM IP4 0.0.0.0",
            BadOrigin("the network type must be IN"),
        ),
        (
            2,
            "o=- 1 1 IN IP5 0.0.0.0",
            BadOrigin("the address type must be IP4 or IP6"),
        ),
        (
            4,
            "t=0",
            BadTiming("expected two decimal times separated by a space"),
        ),
        (
            4,
            "t=0 x",
            BadTiming("expected two decimal times separated by a space"),
        ),
        (
            ufrag,
            "a=ice-ufrag:abc",
            BadIceCredential("ice-ufrag must be 4 to 256 ice-chars"),
        ),
        (
            ufrag,
            "a=ice-ufrag:ab-cd",
            BadIceCredential("ice-ufrag must be 4 to 256 ice-chars"),
        ),
        (ufrag, "a=ice-ufrag", BadIceCredential("no value")),
        (
            pwd,
            "a=ice-pwd:0123456789abcdef01234",
            BadIceCredential("ice-pwd must be 22 to 256 ice-chars"),
        ),
        (bundle, "a=x-carrier-bundle:", BadBundle("empty")),
        (
            bundle,
            "a=x-carrier-bundle:file transfer",
            BadBundle("a byte outside visible ASCII (0x21..=0x7E)"),
        ),
        (
            bundle,
            "a=x-carrier-bundle:caf\u{e9}",
            BadBundle("a byte outside visible ASCII (0x21..=0x7E)"),
        ),
        (
            reply,
            "a=x-carrier-reply-to:-1",
            BadNumber("x-carrier-reply-to is not a decimal 64-bit number"),
        ),
        (
            reply,
            "a=x-carrier-refuse:0 fine",
            BadRefusal("the status must not be 0"),
        ),
        (
            reply,
            "a=x-carrier-refuse:four oh four",
            BadRefusal("the status is not a decimal 32-bit number"),
        ),
        (
            reply,
            "a=x-carrier-refuse:2147483648 big",
            BadRefusal("the status is not a decimal 32-bit number"),
        ),
        (reply, "a=x-carrier-refuse", BadRefusal("no value")),
        (
            key,
            "a=x-carrier-key:abc",
            BadHex {
                attribute: "x-carrier-key",
                reason: "odd number of digits",
            },
        ),
        (
            key,
            "a=x-carrier-key:",
            BadHex {
                attribute: "x-carrier-key",
                reason: "must be 1 to 256 bytes",
            },
        ),
        (
            key,
            "a=x-carrier-key:0g",
            BadHex {
                attribute: "x-carrier-key",
                reason: "not a hex digit",
            },
        ),
        (
            key,
            "a=x-carrier-key:+1",
            BadHex {
                attribute: "x-carrier-key",
                reason: "not a hex digit",
            },
        ),
        (
            key,
            &long_key,
            BadHex {
                attribute: "x-carrier-key",
                reason: "must be 1 to 256 bytes",
            },
        ),
        (
            m,
            "m=image 9 UDP 12",
            BadMedia("the media must be audio, video, text, application or message"),
        ),
        (
            m,
            "m=Text 9 UDP 12",
            BadMedia("the media must be audio, video, text, application or message"),
        ),
        (
            m,
            "m=text 9/2 UDP 12",
            BadMedia("port ranges are not supported"),
        ),
        (
            m,
            "m=text 65536 UDP 12",
            BadMedia("the port is not a decimal 16-bit number"),
        ),
        (m, "m=text 9 RTP/AVP 12", UnsupportedProto),
        (m, "m=text 9 udp/carrier 12", UnsupportedProto),
        (m, "m=text 9", BadMedia("no transport protocol")),
        (m, "m=text 9 UDP", BadMedia("no format")),
        (m, "m=text 9 UDP 12 4", BadMedia("more than one format")),
        (
            m,
            "m=text 9 UDP 256",
            BadMedia("the format is not a decimal 8-bit number"),
        ),
        (
            m,
            "m=text 9 UDP 0x0c",
            BadMedia("the format is not a decimal 8-bit number"),
        ),
        (m, "m=text 9 UDP 32", UnknownOptions(32)),
        (m, "m=text 9 UDP 255", UnknownOptions(255)),
        (
            m + 1,
            "c=IN IP4",
            BadConnection("expected three fields separated by single spaces"),
        ),
        (
            m + 1,
            "c=ATM NSAP x",
            BadConnection("the network type must be IN"),
        ),
        (
            m + 1,
            "c=IN IPX x",
            BadConnection("the address type must be IP4 or IP6"),
        ),
        (mid, "a=mid:1", BadMid { expected: 0 }),
        (mid, "a=mid:00", BadMid { expected: 0 }),
        (mid, "a=mid", BadMid { expected: 0 }),
        (mid, "a=mid:audio", BadMid { expected: 0 }),
    ];
    for (line, replacement, kind) in cases {
        let text = replace_line(line, replacement);
        let big = SdpLimits {
            max_line_len: 1024,
            ..limits()
        };
        assert_eq!(
            SessionDescription::parse(&text, &big),
            Err(SdpError { line, kind }),
            "replacing line {line} by {replacement:?}"
        );
    }
    // a=mid may be absent.
    let parsed = parse(&replace_line(mid, "")).expect("no a=mid");
    assert_eq!(parsed, full_expected());

    let bad = |reason: &'static str, candidate: &str| {
        assert_error(
            &replace_line(cand, &alloc::format!("a=candidate:{candidate}")),
            cand,
            BadCandidate(reason),
        );
    };
    bad("no foundation", "");
    assert_error(
        &replace_line(cand, "a=candidate"),
        cand,
        BadCandidate("no value"),
    );
    bad("no component", "1");
    bad(
        "the foundation must be 1 to 32 ice-chars",
        &alloc::format!("{} 1 udp 1 192.0.2.1 1 typ host", "f".repeat(33)),
    );
    bad(
        "the foundation must be 1 to 32 ice-chars",
        "f-1 1 udp 1 192.0.2.1 1 typ host",
    );
    bad("no foundation", " 1 udp 1 192.0.2.1 1 typ host");
    bad(
        "the component must be 1 to 256",
        "1 0 udp 1 192.0.2.1 1 typ host",
    );
    bad(
        "the component must be 1 to 256",
        "1 257 udp 1 192.0.2.1 1 typ host",
    );
    bad(
        "the transport must be UDP",
        "1 1 tcp 1 192.0.2.1 1 typ host",
    );
    bad(
        "the priority is not a decimal 32-bit number",
        "1 1 udp 4294967296 192.0.2.1 1 typ host",
    );
    bad(
        "the priority is not a decimal 32-bit number",
        "1 1 udp -1 192.0.2.1 1 typ host",
    );
    bad(
        "the address is not an IPv4 or IPv6 literal",
        "1 1 udp 1 host.example 1 typ host",
    );
    bad(
        "the address is not an IPv4 or IPv6 literal",
        "1 1 udp 1 [2001:db8::1] 1 typ host",
    );
    bad(
        "the address is not an IPv4 or IPv6 literal",
        "1 1 udp 1 fe80::1%eth0 1 typ host",
    );
    bad(
        "the port is not a decimal 16-bit number",
        "1 1 udp 1 192.0.2.1 65536 typ host",
    );
    bad("no `typ`", "1 1 udp 1 192.0.2.1 1");
    bad(
        "expected `typ` after the port",
        "1 1 udp 1 192.0.2.1 1 type host",
    );
    bad("no candidate type", "1 1 udp 1 192.0.2.1 1 typ");
    bad(
        "the type must be host, srflx, prflx or relay",
        "1 1 udp 1 192.0.2.1 1 typ HOST",
    );
    bad(
        "raddr without rport",
        "1 1 udp 1 192.0.2.1 1 typ srflx raddr 192.0.2.2 generation 0",
    );
    bad(
        "rport is not a decimal 16-bit number",
        "1 1 udp 1 192.0.2.1 1 typ srflx raddr 192.0.2.2 rport x",
    );
    bad(
        "rport is not a decimal 16-bit number",
        "1 1 udp 1 192.0.2.1 1 typ srflx raddr 192.0.2.2 rport",
    );
    bad(
        "raddr and rport must come as a pair right after the type",
        "1 1 udp 1 192.0.2.1 1 typ srflx rport 2",
    );
    bad(
        "raddr and rport must come as a pair right after the type",
        "1 1 udp 1 192.0.2.1 1 typ srflx generation 0 raddr 192.0.2.2 rport 2",
    );
    bad(
        "the address is not an IPv4 or IPv6 literal",
        "1 1 udp 1 192.0.2.1 1 typ srflx raddr example.org rport 2",
    );
    bad(
        "an extension without a value",
        "1 1 udp 1 192.0.2.1 1 typ host generation",
    );
    bad(
        "an empty extension name",
        "1 1 udp 1 192.0.2.1 1 typ host  0",
    );

    // Extensions after the pair are ignored; transport is case-insensitive.
    let text = replace_line(
        cand,
        "a=candidate:1 1 Udp 2130706431 192.0.2.7 4000 typ host generation 0 network-id 1",
    );
    assert_eq!(parse(&text), Ok(full_expected()));
}

#[test]
fn error_display() {
    let err = parse(&replace_line(
        line_of("a=candidate:1 "),
        "a=candidate:1 1 tcp 1 192.0.2.1 1 typ host",
    ))
    .expect_err("tcp");
    assert_eq!(
        err.to_string(),
        alloc::format!(
            "line {}: bad candidate: the transport must be UDP",
            line_of("a=candidate:1 ")
        )
    );
    let err = parse("").expect_err("empty");
    assert_eq!(err.to_string(), "missing v= line");
    let err = parse(&replace_line(4, "t=0 0\r\nx=1")).expect_err("x=");
    assert_eq!(
        err.to_string(),
        "line 5: unexpected `x=` line, expected t=, r=, z=, k=, a= or m="
    );
}

#[test]
fn validate_names_the_written_line() {
    let mut desc = full_expected();
    assert_eq!(desc.validate(), Ok(()));

    desc.media[1].options = StreamOptions::from_bits_retain(0x40);
    assert_eq!(
        desc.validate(),
        Err(SdpError::new(
            line_of("m=message"),
            SdpErrorKind::UnknownOptions(0x40)
        ))
    );
    desc.media[1].options = StreamOptions::empty();

    desc.media[0].candidates[1].address =
        core::net::SocketAddrV6::new("fe80::1".parse().expect("ip"), 1, 0, 3).into();
    let err = desc.validate().expect_err("scope id");
    assert_eq!(err.line, line_of("a=candidate:2 "));
    desc.media[0].candidates[1].address = addr("[fe80::1]:1");

    desc.media[0].candidates[0].component = 0;
    let err = desc.validate().expect_err("component 0");
    assert_eq!(err.line, line_of("a=candidate:1 "));
    desc.media[0].candidates[0].component = 1;

    desc.refusal = Some(Refusal {
        status: 1,
        reason: "two\r\nlines".into(),
    });
    let err = desc.validate().expect_err("CRLF in reason");
    assert_eq!(err.line, line_of("a=x-carrier-reply-to") + 1);
    desc.refusal = None;

    desc.identity = Some(vec![0; 257]);
    let err = desc.validate().expect_err("257 bytes");
    assert_eq!(err.line, line_of("a=x-carrier-identity"));
    desc.identity = Some(vec![]);
    assert!(desc.validate().is_err());
    desc.identity = None;

    desc.bundle = Some("has space".into());
    assert_eq!(
        desc.validate().map_err(|e| e.line),
        Err(line_of("a=x-carrier-bundle"))
    );
    desc.bundle = None;

    desc.ice_pwd = "short".into();
    assert_eq!(desc.validate().map_err(|e| e.line), Err(6));
}

mod ip_text {
    use alloc::string::ToString;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::super::parse::parse_ip;

    proptest! {
        /// The fast IPv4 path accepts exactly what `IpAddr::from_str` accepts.
        #[test]
        fn parse_ip_agrees_with_std(s in "[0-9.]{0,20}|[0-9a-fA-F:.]{0,45}|[0-9]{1,4}(\\.[0-9]{1,4}){3}") {
            prop_assert_eq!(parse_ip(&s).ok(), s.parse::<IpAddr>().ok());
        }

        #[test]
        fn parse_ip_reads_std_text(v4 in any::<u32>(), v6 in any::<[u16; 8]>(), zeros in any::<u8>()) {
            let v4 = IpAddr::V4(Ipv4Addr::from(v4));
            prop_assert_eq!(parse_ip(&v4.to_string()), Ok(v4));
            // Zero some groups, to get `::` in every place.
            let mut groups = v6;
            for (i, g) in groups.iter_mut().enumerate() {
                if zeros & (1 << i) != 0 {
                    *g = 0;
                }
            }
            let v6 = IpAddr::V6(Ipv6Addr::from(groups));
            prop_assert_eq!(parse_ip(&v6.to_string()), Ok(v6));
        }
    }

    #[test]
    fn parse_ip_edge_cases() {
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "1.2.3.4",
            "::",
            "::1",
            "::ffff:1.2.3.4",
        ] {
            assert_eq!(parse_ip(s).ok(), s.parse::<IpAddr>().ok(), "{s}");
            assert!(parse_ip(s).is_ok(), "{s}");
        }
        for s in [
            "",
            ".",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.256",
            "1..3.4",
            "1.2.3.0004",
            "[::1]",
            "::1%1",
            "1.2.3.4 ",
            "example.org",
            "::g",
        ] {
            assert!(parse_ip(s).is_err(), "{s}");
        }
    }
}
