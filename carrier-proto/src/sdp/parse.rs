//! The strict SDP parser.
//!
//! One pass over the text, line by line. Each line is checked against [`SdpLimits`]
//! (line count, line length, and for `m=` and `a=candidate` lines the number of media
//! sections and of candidates) before anything is done with it, so nothing is allocated
//! for input over a limit; then its RFC 8866 place in the order and its grammar are
//! checked, and the [`SessionDescription`] is built as the lines go.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{MediaDescription, Refusal, SdpError, SdpErrorKind, SessionDescription};
use crate::config::SdpLimits;
use crate::types::{Candidate, CandidateType, StreamOptions, StreamType};

/// The `m=` transport protocol of every Carrier media section.
pub(super) const PROTO: &str = "UDP";
/// The `m=` port of an active media section (RFC 8839 §4.2.3's dummy port).
pub(super) const ACTIVE_PORT: u16 = 9;

pub(super) const ATTR_UFRAG: &str = "ice-ufrag";
pub(super) const ATTR_PWD: &str = "ice-pwd";
pub(super) const ATTR_BUNDLE: &str = "x-carrier-bundle";
pub(super) const ATTR_REPLY_TO: &str = "x-carrier-reply-to";
pub(super) const ATTR_REFUSE: &str = "x-carrier-refuse";
pub(super) const ATTR_KEY: &str = "x-carrier-key";
pub(super) const ATTR_IDENTITY: &str = "x-carrier-identity";
pub(super) const ATTR_SIGNATURE: &str = "x-carrier-signature";
/// The attributes that belong at session level.
const SESSION_ATTRIBUTES: [&str; 8] = [
    ATTR_UFRAG,
    ATTR_PWD,
    ATTR_BUNDLE,
    ATTR_REPLY_TO,
    ATTR_REFUSE,
    ATTR_KEY,
    ATTR_IDENTITY,
    ATTR_SIGNATURE,
];
pub(super) const ATTR_MID: &str = "mid";
pub(super) const ATTR_CANDIDATE: &str = "candidate";

/// Shortest and longest `a=ice-ufrag` (RFC 8839 §5.4).
pub(super) const UFRAG_LEN: (usize, usize) = (4, 256);
/// Shortest and longest `a=ice-pwd` (RFC 8839 §5.4).
pub(super) const PWD_LEN: (usize, usize) = (22, 256);
pub(super) const UFRAG_RULE: &str = "ice-ufrag must be 4 to 256 ice-chars";
pub(super) const PWD_RULE: &str = "ice-pwd must be 22 to 256 ice-chars";
/// Longest candidate foundation (RFC 8839 §5.1).
pub(super) const MAX_FOUNDATION_LEN: usize = 32;
/// Highest ICE component id (RFC 8839 §5.1).
pub(super) const MAX_COMPONENT: u16 = 256;
/// Longest `a=x-carrier-bundle`.
pub(super) const MAX_BUNDLE_LEN: usize = 255;
/// Longest decoded hex attribute.
pub(super) const MAX_HEX_BYTES: usize = 256;

impl SessionDescription {
    /// Parses a session description received from a peer.
    ///
    /// Strict RFC 8866: `<type>=<value>` lines with a single lowercase letter type and no
    /// space around `=`, ended by CRLF or LF (the last line may lack its terminator; a CR
    /// not followed by LF is an error), in the order `v o s [i] [u] e* p* [c] b* (t r*)+
    /// [z] [k] a*` then per media section `m [i] [c] b* [k] a*`. The input's size is checked
    /// first; then, line by line, the line count and length, and on `m=` and `a=candidate`
    /// lines the section and candidate counts, before anything is allocated for the line.
    ///
    /// Beyond the grammar:
    /// - `o=` has six fields, decimal `u64` sess-id and sess-version, `IN`, `IP4`/`IP6`;
    ///   `c=` is present at session level or in every media section;
    /// - `a=ice-ufrag` and `a=ice-pwd` are required at session level; `a=x-carrier-*`
    ///   attributes are session-level, `a=mid` and `a=candidate` media-level; a known
    ///   attribute at the wrong level or twice at one level is an error, unknown attributes
    ///   (`a=sendrecv`, `a=group:BUNDLE 0`, …) are ignored;
    /// - `m=` names one of the five [`StreamType`] media, proto `UDP`, one format
    ///   token: the [`StreamOptions`] bits in decimal; port 0 means rejected, any other port
    ///   active;
    /// - `a=mid`, when present, is the section's 0-based index (it may be absent);
    /// - `a=candidate` follows RFC 8839 with transport `UDP`, an IP literal (no FQDN, IPv6
    ///   without brackets), an optional `raddr <ip> rport <port>` pair right after the type
    ///   and ignored extension pairs (`generation 0`) after that.
    ///
    /// The error names the offending line (1-based) or 0 for the whole input.
    pub fn parse(text: &str, limits: &SdpLimits) -> Result<Self, SdpError> {
        if text.len() > limits.max_bytes {
            return Err(SdpError::new(
                0,
                SdpErrorKind::TooLarge {
                    len: text.len(),
                    max: limits.max_bytes,
                },
            ));
        }
        Parser::new(limits).run(text)
    }

    /// [`parse`](Self::parse) for raw bytes: checks the size limit, then that the bytes are
    /// UTF-8 ([`SdpErrorKind::NotUtf8`] names the line of the first bad byte).
    pub fn parse_bytes(bytes: &[u8], limits: &SdpLimits) -> Result<Self, SdpError> {
        if bytes.len() > limits.max_bytes {
            return Err(SdpError::new(
                0,
                SdpErrorKind::TooLarge {
                    len: bytes.len(),
                    max: limits.max_bytes,
                },
            ));
        }
        match core::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text, limits),
            Err(e) => {
                let before = bytes.get(..e.valid_up_to()).unwrap_or(bytes);
                let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
                Err(SdpError::new(line, SdpErrorKind::NotUtf8))
            }
        }
    }
}

/// The lines of a description: split on LF, a CR right before the LF dropped. The last
/// line may lack its LF.
struct Lines<'a> {
    rest: &'a str,
    number: usize,
}

/// One line, without its terminator.
struct Line<'a> {
    /// 1-based.
    number: usize,
    text: &'a str,
    /// A CR not followed by LF, or a NUL, somewhere in the line.
    bad_byte: Option<&'static str>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            rest: text,
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        self.number += 1;
        let bytes = self.rest.as_bytes();
        let (mut end, mut next) = (bytes.len(), bytes.len());
        let mut bad_byte = None;
        // Skip eight bytes at a time while none is LF, CR or NUL, then look byte by byte.
        let skip = bytes
            .chunks_exact(8)
            .take_while(|chunk| {
                <[u8; 8]>::try_from(*chunk)
                    .is_ok_and(|word| !has_special_byte(u64::from_le_bytes(word)))
            })
            .count()
            * 8;
        for (i, &b) in bytes.iter().enumerate().skip(skip) {
            match b {
                b'\n' => {
                    (end, next) = (i, i + 1);
                    break;
                }
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    (end, next) = (i, i + 2);
                    break;
                }
                b'\r' => bad_byte = bad_byte.or(Some("CR not followed by LF")),
                0 => bad_byte = bad_byte.or(Some("NUL character")),
                _ => {}
            }
        }
        // `end` and `next` sit at ASCII bytes or the end, so both splits are on char
        // boundaries.
        let text = self.rest.get(..end).unwrap_or(self.rest);
        self.rest = self.rest.get(next..).unwrap_or("");
        Some(Line {
            number: self.number,
            text,
            bad_byte,
        })
    }
}

/// Whether any of the eight bytes of `word` is LF, CR or NUL (the classic "has a zero
/// byte" test, on `word` and on `word` xor-ed with each byte sought).
const fn has_special_byte(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const fn has_zero(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    (has_zero(word)
        | has_zero(word ^ (ONES * b'\n' as u64))
        | has_zero(word ^ (ONES * b'\r' as u64)))
        != 0
}

/// `str::split_once` for an ASCII delimiter, by a plain byte loop: the lines and fields
/// here are short, where `char` patterns cost more than they save.
fn split_once_byte(s: &str, delimiter: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == delimiter)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `str::split(' ')`, by [`split_once_byte`].
#[derive(Clone)]
struct Fields<'a> {
    rest: Option<&'a str>,
}

fn split_fields(s: &str) -> Fields<'_> {
    Fields { rest: Some(s) }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once_byte(rest, b' ') {
            Some((field, tail)) => {
                self.rest = Some(tail);
                Some(field)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// One position in the RFC 8866 order: the line types it takes and how many.
struct Slot {
    /// The type letters this slot takes (`t` and `r` share one: a time description).
    letters: &'static [u8],
    /// The slot's name in [`SdpErrorKind::MissingLine`].
    name: &'static str,
    /// Fewest lines (0 or 1).
    min: usize,
    /// Whether the slot takes more than one line.
    repeat: bool,
    /// The line types allowed when the slot is still empty.
    expect: &'static str,
    /// The line types allowed once the slot has a line (repeatable slots only).
    expect_more: &'static str,
}

const fn slot(
    letters: &'static [u8],
    name: &'static str,
    min: usize,
    repeat: bool,
    expect: &'static str,
) -> Slot {
    Slot {
        letters,
        name,
        min,
        repeat,
        expect,
        expect_more: expect,
    }
}

/// Session level, RFC 8866 §9: `v o s [i] [u] e* p* [c] b* (t r*)+ [z] [k] a*`.
const SESSION_SLOTS: [Slot; 13] = [
    slot(b"v", "v=", 1, false, "v="),
    slot(b"o", "o=", 1, false, "o="),
    slot(b"s", "s=", 1, false, "s="),
    slot(b"i", "i=", 0, false, "i=, u=, e=, p=, c=, b= or t="),
    slot(b"u", "u=", 0, false, "u=, e=, p=, c=, b= or t="),
    slot(b"e", "e=", 0, true, "e=, p=, c=, b= or t="),
    slot(b"p", "p=", 0, true, "p=, c=, b= or t="),
    slot(b"c", "c=", 0, false, "c=, b= or t="),
    slot(b"b", "b=", 0, true, "b= or t="),
    Slot {
        letters: b"tr",
        name: "t=",
        min: 1,
        repeat: true,
        expect: "t=",
        expect_more: "t=, r=, z=, k=, a= or m=",
    },
    slot(b"z", "z=", 0, false, "z=, k=, a= or m="),
    slot(b"k", "k=", 0, false, "k=, a= or m="),
    slot(b"a", "a=", 0, true, "a= or m="),
];

/// Media level, after its `m=`: `[i] [c] b* [k] a*`.
const MEDIA_SLOTS: [Slot; 5] = [
    slot(b"i", "i=", 0, false, "i=, c=, b=, k=, a= or m="),
    slot(b"c", "c=", 0, false, "c=, b=, k=, a= or m="),
    slot(b"b", "b=", 0, true, "b=, k=, a= or m="),
    slot(b"k", "k=", 0, false, "k=, a= or m="),
    slot(b"a", "a=", 0, true, "a= or m="),
];

/// Where the parser is in the line order.
#[derive(Clone, Copy)]
struct Position {
    /// Index into the slot table.
    slot: usize,
    /// Lines taken by that slot so far.
    count: usize,
}

impl Position {
    const START: Position = Position { slot: 0, count: 0 };

    /// Moves to the slot taking `letter`, or explains why no slot can. `Ok(false)` means
    /// the line is an `m=` that ends this section.
    fn advance(&mut self, slots: &[Slot], letter: u8) -> Result<bool, SdpErrorKind> {
        let found = char::from(letter);
        let mut slot = self.slot;
        let mut count = self.count;
        // What could come here, for the error message.
        let expected = match slots.get(slot) {
            Some(s) if count == 0 => s.expect,
            Some(s) if s.repeat => s.expect_more,
            Some(_) => slots.get(slot + 1).map_or("m=", |s| s.expect),
            None => "m=",
        };
        while let Some(s) = slots.get(slot) {
            let takes = s.letters.contains(&letter)
                && (count == 0 || s.repeat)
                // A time description starts with its t=.
                && !(letter == b'r' && count == 0);
            if takes {
                *self = Position {
                    slot,
                    count: count + 1,
                };
                return Ok(true);
            }
            if count < s.min {
                let later = letter == b'm'
                    || slots
                        .get(slot + 1..)
                        .is_some_and(|rest| rest.iter().any(|s| s.letters.contains(&letter)));
                return Err(if later {
                    SdpErrorKind::MissingLine(s.name)
                } else {
                    SdpErrorKind::UnexpectedLine { expected, found }
                });
            }
            slot += 1;
            count = 0;
        }
        if letter == b'm' {
            Ok(false)
        } else {
            Err(SdpErrorKind::UnexpectedLine { expected, found })
        }
    }

    /// The first required slot not yet filled, if any.
    fn missing(&self, slots: &[Slot]) -> Option<&'static str> {
        let rest = slots.get(self.slot..)?;
        rest.iter()
            .enumerate()
            .find(|(i, s)| {
                let count = if *i == 0 { self.count } else { 0 };
                count < s.min
            })
            .map(|(_, s)| s.name)
    }
}

/// The media section being parsed.
struct Media {
    desc: MediaDescription,
    /// Line number of its `m=`.
    line: usize,
    has_connection: bool,
    has_mid: bool,
}

/// The description being parsed.
struct Parser<'l> {
    limits: &'l SdpLimits,
    session_id: u64,
    session_version: u64,
    ufrag: Option<String>,
    pwd: Option<String>,
    bundle: Option<String>,
    reply_to: Option<u64>,
    refusal: Option<Refusal>,
    key: Option<Vec<u8>>,
    identity: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    session_connection: bool,
    media: Vec<MediaDescription>,
    current: Option<Media>,
}

impl<'l> Parser<'l> {
    fn new(limits: &'l SdpLimits) -> Self {
        Parser {
            limits,
            session_id: 0,
            session_version: 0,
            ufrag: None,
            pwd: None,
            bundle: None,
            reply_to: None,
            refusal: None,
            key: None,
            identity: None,
            signature: None,
            session_connection: false,
            media: Vec::new(),
            current: None,
        }
    }

    fn run(mut self, text: &str) -> Result<SessionDescription, SdpError> {
        let mut position = Position::START;
        for line in Lines::new(text) {
            let number = line.number;
            let at = |kind| SdpError::new(number, kind);
            self.check_line(&line).map_err(at)?;
            let (letter, value) = split_line(line.text).map_err(at)?;
            let slots: &[Slot] = if self.current.is_some() {
                &MEDIA_SLOTS
            } else {
                &SESSION_SLOTS
            };
            if !position.advance(slots, letter).map_err(at)? {
                // An m= line: a new media section.
                if self.current.is_none() {
                    self.end_session()?;
                }
                self.end_media()?;
                if self.media.len() >= self.limits.max_streams {
                    let max = self.limits.max_streams;
                    return Err(at(SdpErrorKind::TooManyStreams { max }));
                }
                let desc = parse_media_line(value).map_err(at)?;
                self.current = Some(Media {
                    desc,
                    line: number,
                    has_connection: false,
                    has_mid: false,
                });
                position = Position::START;
                continue;
            }
            self.line(letter, value).map_err(at)?;
        }
        if self.current.is_none() {
            if let Some(name) = position.missing(&SESSION_SLOTS) {
                return Err(SdpError::new(0, SdpErrorKind::MissingLine(name)));
            }
            self.end_session()?;
        }
        self.end_media()?;
        let missing = |name| move || SdpError::new(0, SdpErrorKind::MissingLine(name));
        Ok(SessionDescription {
            session_id: self.session_id,
            session_version: self.session_version,
            ice_ufrag: self.ufrag.ok_or_else(missing("a=ice-ufrag"))?,
            ice_pwd: self.pwd.ok_or_else(missing("a=ice-pwd"))?,
            bundle: self.bundle,
            reply_to: self.reply_to,
            refusal: self.refusal,
            key: self.key,
            identity: self.identity,
            signature: self.signature,
            media: self.media,
        })
    }

    /// The limits on every line, and the bytes no line may hold.
    fn check_line(&self, line: &Line<'_>) -> Result<(), SdpErrorKind> {
        if line.number > self.limits.max_lines {
            let max = self.limits.max_lines;
            return Err(SdpErrorKind::TooManyLines { max });
        }
        if line.text.len() > self.limits.max_line_len {
            let (len, max) = (line.text.len(), self.limits.max_line_len);
            return Err(SdpErrorKind::LineTooLong { len, max });
        }
        match line.bad_byte {
            Some(reason) => Err(SdpErrorKind::BadLineSyntax(reason)),
            None => Ok(()),
        }
    }

    /// The session section is complete: check what it must hold.
    fn end_session(&mut self) -> Result<(), SdpError> {
        if self.ufrag.is_none() {
            return Err(SdpError::new(0, SdpErrorKind::MissingLine("a=ice-ufrag")));
        }
        if self.pwd.is_none() {
            return Err(SdpError::new(0, SdpErrorKind::MissingLine("a=ice-pwd")));
        }
        Ok(())
    }

    /// The current media section (if any) is complete.
    fn end_media(&mut self) -> Result<(), SdpError> {
        if let Some(media) = self.current.take() {
            if !media.has_connection && !self.session_connection {
                return Err(SdpError::new(media.line, SdpErrorKind::MissingLine("c=")));
            }
            self.media.push(media.desc);
        }
        Ok(())
    }

    /// One line other than `m=`, already placed in the order.
    fn line(&mut self, letter: u8, value: &str) -> Result<(), SdpErrorKind> {
        match letter {
            b'v' if value != "0" => return Err(SdpErrorKind::BadVersion),
            b'o' => {
                let (id, version) = parse_origin(value)?;
                self.session_id = id;
                self.session_version = version;
            }
            b'c' => {
                parse_connection(value)?;
                match &mut self.current {
                    Some(media) => media.has_connection = true,
                    None => self.session_connection = true,
                }
            }
            b't' => parse_timing(value)?,
            b'a' => match &mut self.current {
                Some(media) => media_attribute(media, self.media.len(), self.limits, value)?,
                None => self.session_attribute(value)?,
            },
            // s= (non-empty, checked with the syntax), i=, u=, e=, p=, b=, r=, z=, k=:
            // nothing Carrier uses.
            _ => {}
        }
        Ok(())
    }

    fn session_attribute(&mut self, value: &str) -> Result<(), SdpErrorKind> {
        let (name, value) = split_attribute(value);
        match name {
            ATTR_UFRAG => {
                let v = known_value(&self.ufrag, ATTR_UFRAG, value)?;
                if !is_ice_string(v, UFRAG_LEN.0, UFRAG_LEN.1) {
                    return Err(SdpErrorKind::BadIceCredential(UFRAG_RULE));
                }
                self.ufrag = Some(String::from(v));
            }
            ATTR_PWD => {
                let v = known_value(&self.pwd, ATTR_PWD, value)?;
                if !is_ice_string(v, PWD_LEN.0, PWD_LEN.1) {
                    return Err(SdpErrorKind::BadIceCredential(PWD_RULE));
                }
                self.pwd = Some(String::from(v));
            }
            ATTR_BUNDLE => {
                let v = known_value(&self.bundle, ATTR_BUNDLE, value)?;
                check_bundle(v)?;
                self.bundle = Some(String::from(v));
            }
            ATTR_REPLY_TO => {
                let v = known_value(&self.reply_to, ATTR_REPLY_TO, value)?;
                let id = dec_u64(v).ok_or(SdpErrorKind::BadNumber(
                    "x-carrier-reply-to is not a decimal 64-bit number",
                ))?;
                self.reply_to = Some(id);
            }
            ATTR_REFUSE => {
                let v = known_value(&self.refusal, ATTR_REFUSE, value)?;
                self.refusal = Some(parse_refusal(v)?);
            }
            ATTR_KEY => {
                let v = known_value(&self.key, ATTR_KEY, value)?;
                self.key = Some(decode_hex(v, ATTR_KEY)?);
            }
            ATTR_IDENTITY => {
                let v = known_value(&self.identity, ATTR_IDENTITY, value)?;
                self.identity = Some(decode_hex(v, ATTR_IDENTITY)?);
            }
            ATTR_SIGNATURE => {
                let v = known_value(&self.signature, ATTR_SIGNATURE, value)?;
                self.signature = Some(decode_hex(v, ATTR_SIGNATURE)?);
            }
            ATTR_MID => return Err(SdpErrorKind::MisplacedAttribute(ATTR_MID)),
            ATTR_CANDIDATE => return Err(SdpErrorKind::MisplacedAttribute(ATTR_CANDIDATE)),
            other => check_unknown_name(other)?,
        }
        Ok(())
    }
}

/// An `a=` line in the media section with 0-based index `index`.
fn media_attribute(
    media: &mut Media,
    index: usize,
    limits: &SdpLimits,
    value: &str,
) -> Result<(), SdpErrorKind> {
    let (name, value) = split_attribute(value);
    match name {
        ATTR_MID => {
            if media.has_mid {
                return Err(SdpErrorKind::DuplicateAttribute(ATTR_MID));
            }
            media.has_mid = true;
            if value.and_then(dec_canonical) != Some(index as u64) {
                return Err(SdpErrorKind::BadMid { expected: index });
            }
        }
        ATTR_CANDIDATE => {
            if media.desc.candidates.len() >= limits.max_candidates_per_stream {
                let max = limits.max_candidates_per_stream;
                return Err(SdpErrorKind::TooManyCandidates { max });
            }
            let v = value.ok_or(SdpErrorKind::BadCandidate("no value"))?;
            let candidate = parse_candidate(v).map_err(SdpErrorKind::BadCandidate)?;
            // Room for a typical section at once (host, reflexive and relayed, IPv4 and
            // IPv6) rather than growing 4 → 8.
            if media.desc.candidates.capacity() == 0 {
                media
                    .desc
                    .candidates
                    .reserve_exact(limits.max_candidates_per_stream.min(8));
            }
            media.desc.candidates.push(candidate);
        }
        other => {
            if let Some(name) = SESSION_ATTRIBUTES.into_iter().find(|n| *n == other) {
                return Err(SdpErrorKind::MisplacedAttribute(name));
            }
            check_unknown_name(other)?;
        }
    }
    Ok(())
}

/// Splits `<type>=<value>` and checks the line syntax.
fn split_line(line: &str) -> Result<(u8, &str), SdpErrorKind> {
    if line.is_empty() {
        return Err(SdpErrorKind::BadLineSyntax("empty line"));
    }
    let bytes = line.as_bytes();
    let (Some(&letter), Some(&b'=')) = (bytes.first(), bytes.get(1)) else {
        return Err(SdpErrorKind::BadLineSyntax("expected <type>=<value>"));
    };
    if !letter.is_ascii_lowercase() {
        return Err(SdpErrorKind::BadLineSyntax(
            "the type must be one lowercase letter",
        ));
    }
    let value = line.get(2..).unwrap_or("");
    if value.is_empty() {
        return Err(SdpErrorKind::BadLineSyntax("empty value"));
    }
    // RFC 8866 §5: no whitespace around '='. `s= ` (a single space) is the one value that
    // may start with a space (§5.3).
    if letter != b's' && matches!(value.as_bytes().first(), Some(b' ' | b'\t')) {
        return Err(SdpErrorKind::BadLineSyntax("whitespace after '='"));
    }
    Ok((letter, value))
}

/// Splits `<name>[:<value>]`.
fn split_attribute(value: &str) -> (&str, Option<&str>) {
    match split_once_byte(value, b':') {
        Some((name, value)) => (name, Some(value)),
        None => (value, None),
    }
}

/// An attribute name this parser does not know must still be an RFC 8866 token (the names
/// it knows are).
fn check_unknown_name(name: &str) -> Result<(), SdpErrorKind> {
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(SdpErrorKind::BadLineSyntax(
            "the attribute name is not a token",
        ));
    }
    Ok(())
}

/// The value of a known session attribute: not seen before, and present.
fn known_value<'a, T>(
    seen: &Option<T>,
    name: &'static str,
    value: Option<&'a str>,
) -> Result<&'a str, SdpErrorKind> {
    if seen.is_some() {
        return Err(SdpErrorKind::DuplicateAttribute(name));
    }
    match (name, value) {
        (_, Some(v)) => Ok(v),
        (ATTR_UFRAG | ATTR_PWD, None) => Err(SdpErrorKind::BadIceCredential("no value")),
        (ATTR_BUNDLE, None) => Err(SdpErrorKind::BadBundle("no value")),
        (ATTR_REFUSE, None) => Err(SdpErrorKind::BadRefusal("no value")),
        (ATTR_KEY | ATTR_IDENTITY | ATTR_SIGNATURE, None) => Err(SdpErrorKind::BadHex {
            attribute: name,
            reason: "no value",
        }),
        (_, None) => Err(SdpErrorKind::BadNumber("no value")),
    }
}

/// RFC 8866 §9 `token-char`.
const fn is_token_char(b: u8) -> bool {
    matches!(
        b,
        0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E
    )
}

/// RFC 8839 §5.1 `ice-char`.
pub(super) const fn is_ice_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// 1..=`max` ice-chars.
pub(super) fn is_ice_string(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(is_ice_char)
}

pub(super) fn check_bundle(s: &str) -> Result<(), SdpErrorKind> {
    if s.is_empty() {
        return Err(SdpErrorKind::BadBundle("empty"));
    }
    if s.len() > MAX_BUNDLE_LEN {
        return Err(SdpErrorKind::BadBundle("longer than 255 bytes"));
    }
    if !s.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return Err(SdpErrorKind::BadBundle(
            "a byte outside visible ASCII (0x21..=0x7E)",
        ));
    }
    Ok(())
}

/// A refusal reason may hold anything but CR, LF and NUL.
pub(super) fn is_valid_reason(s: &str) -> bool {
    !s.contains(['\r', '\n', '\0'])
}

pub(super) fn check_hex_len(len: usize, attribute: &'static str) -> Result<(), SdpErrorKind> {
    if (1..=MAX_HEX_BYTES).contains(&len) {
        Ok(())
    } else {
        Err(SdpErrorKind::BadHex {
            attribute,
            reason: "must be 1 to 256 bytes",
        })
    }
}

/// A plain decimal number: digits only (no sign, no space), fitting a `u64`.
fn dec_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if s.len() <= 19 {
        // Below 10^19: no overflow possible.
        let mut n = 0u64;
        for b in s.bytes() {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            n = n * 10 + u64::from(digit);
        }
        return Some(n);
    }
    s.bytes().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// [`dec_u64`] without leading zeros (the way the writer writes it).
fn dec_canonical(s: &str) -> Option<u64> {
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    dec_u64(s)
}

fn dec_u32(s: &str) -> Option<u32> {
    dec_u64(s).and_then(|n| u32::try_from(n).ok())
}

fn dec_u16(s: &str) -> Option<u16> {
    dec_u64(s).and_then(|n| u16::try_from(n).ok())
}

/// An optional `-` then digits, fitting an `i32`.
fn dec_i32(s: &str) -> Option<i32> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
fn parse_origin(value: &str) -> Result<(u64, u64), SdpErrorKind> {
    let mut fields = split_fields(value);
    let mut next = || fields.next().filter(|f| !f.is_empty());
    let (Some(_user), Some(id), Some(version), Some(net), Some(addr_type), Some(_addr)) =
        (next(), next(), next(), next(), next(), next())
    else {
        return Err(SdpErrorKind::BadOrigin(
            "expected six fields separated by single spaces",
        ));
    };
    if fields.next().is_some() {
        return Err(SdpErrorKind::BadOrigin(
            "expected six fields separated by single spaces",
        ));
    }
    let id = dec_u64(id).ok_or(SdpErrorKind::BadOrigin(
        "sess-id is not a decimal 64-bit number",
    ))?;
    let version = dec_u64(version).ok_or(SdpErrorKind::BadOrigin(
        "sess-version is not a decimal 64-bit number",
    ))?;
    if net != "IN" {
        return Err(SdpErrorKind::BadOrigin("the network type must be IN"));
    }
    if addr_type != "IP4" && addr_type != "IP6" {
        return Err(SdpErrorKind::BadOrigin(
            "the address type must be IP4 or IP6",
        ));
    }
    Ok((id, version))
}

/// `c=<nettype> <addrtype> <connection-address>` (the address itself is not used).
fn parse_connection(value: &str) -> Result<(), SdpErrorKind> {
    let mut fields = split_fields(value);
    let mut next = || fields.next().filter(|f| !f.is_empty());
    let (Some(net), Some(addr_type), Some(_addr)) = (next(), next(), next()) else {
        return Err(SdpErrorKind::BadConnection(
            "expected three fields separated by single spaces",
        ));
    };
    if fields.next().is_some() {
        return Err(SdpErrorKind::BadConnection(
            "expected three fields separated by single spaces",
        ));
    }
    if net != "IN" {
        return Err(SdpErrorKind::BadConnection("the network type must be IN"));
    }
    if addr_type != "IP4" && addr_type != "IP6" {
        return Err(SdpErrorKind::BadConnection(
            "the address type must be IP4 or IP6",
        ));
    }
    Ok(())
}

/// `t=<start-time> <stop-time>`.
fn parse_timing(value: &str) -> Result<(), SdpErrorKind> {
    match split_once_byte(value, b' ') {
        Some((start, stop)) if dec_u64(start).is_some() && dec_u64(stop).is_some() => Ok(()),
        _ => Err(SdpErrorKind::BadTiming(
            "expected two decimal times separated by a space",
        )),
    }
}

/// `m=<media> <port> UDP <options>`.
fn parse_media_line(value: &str) -> Result<MediaDescription, SdpErrorKind> {
    let mut fields = split_fields(value);
    let stream_type =
        fields
            .next()
            .and_then(StreamType::from_sdp_media)
            .ok_or(SdpErrorKind::BadMedia(
                "the media must be audio, video, text, application or message",
            ))?;
    let port = fields.next().unwrap_or("");
    if port.bytes().any(|b| b == b'/') {
        return Err(SdpErrorKind::BadMedia("port ranges are not supported"));
    }
    let port = dec_u16(port).ok_or(SdpErrorKind::BadMedia(
        "the port is not a decimal 16-bit number",
    ))?;
    match fields.next() {
        Some(PROTO) => {}
        Some(_) => return Err(SdpErrorKind::UnsupportedProto),
        None => return Err(SdpErrorKind::BadMedia("no transport protocol")),
    }
    let Some(format) = fields.next() else {
        return Err(SdpErrorKind::BadMedia("no format"));
    };
    if fields.next().is_some() {
        return Err(SdpErrorKind::BadMedia("more than one format"));
    }
    let bits = dec_u64(format)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or(SdpErrorKind::BadMedia(
            "the format is not a decimal 8-bit number",
        ))?;
    let options = StreamOptions::from_bits(bits).ok_or(SdpErrorKind::UnknownOptions(bits))?;
    Ok(MediaDescription {
        stream_type,
        options,
        rejected: port == 0,
        candidates: Vec::new(),
    })
}

/// `<status> <reason>`; the reason may be empty (and the space then absent).
fn parse_refusal(value: &str) -> Result<Refusal, SdpErrorKind> {
    let (status, reason) = split_once_byte(value, b' ').unwrap_or((value, ""));
    let status = dec_i32(status).ok_or(SdpErrorKind::BadRefusal(
        "the status is not a decimal 32-bit number",
    ))?;
    if status == 0 {
        return Err(SdpErrorKind::BadRefusal("the status must not be 0"));
    }
    // CR, LF and NUL cannot be in a line.
    Ok(Refusal {
        status,
        reason: String::from(reason),
    })
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(s: &str, attribute: &'static str) -> Result<Vec<u8>, SdpErrorKind> {
    if s.len() % 2 != 0 {
        return Err(SdpErrorKind::BadHex {
            attribute,
            reason: "odd number of digits",
        });
    }
    check_hex_len(s.len() / 2, attribute)?;
    let mut out = Vec::with_capacity(s.len() / 2);
    for pair in s.as_bytes().chunks_exact(2) {
        let &[hi, lo] = pair else {
            continue;
        };
        let (Some(hi), Some(lo)) = (hex_digit(hi), hex_digit(lo)) else {
            return Err(SdpErrorKind::BadHex {
                attribute,
                reason: "not a hex digit",
            });
        };
        out.push((hi << 4) | lo);
    }
    Ok(out)
}

/// RFC 8839 §5.1: `<foundation> <component> <transport> <priority> <address> <port> typ
/// <type> [raddr <address> rport <port>] *(<name> <value>)`.
fn parse_candidate(value: &str) -> Result<Candidate, &'static str> {
    let mut fields = split_fields(value);
    let mut next = |what: &'static str| fields.next().filter(|f| !f.is_empty()).ok_or(what);

    let foundation = next("no foundation")?;
    if !is_ice_string(foundation, 1, MAX_FOUNDATION_LEN) {
        return Err("the foundation must be 1 to 32 ice-chars");
    }
    let component = dec_u16(next("no component")?)
        .filter(|c| (1..=MAX_COMPONENT).contains(c))
        .ok_or("the component must be 1 to 256")?;
    if !next("no transport")?.eq_ignore_ascii_case("udp") {
        return Err("the transport must be UDP");
    }
    let priority =
        dec_u32(next("no priority")?).ok_or("the priority is not a decimal 32-bit number")?;
    let ip = parse_ip(next("no address")?)?;
    let port = dec_u16(next("no port")?).ok_or("the port is not a decimal 16-bit number")?;
    if next("no `typ`")? != "typ" {
        return Err("expected `typ` after the port");
    }
    let kind = CandidateType::from_sdp_name(next("no candidate type")?)
        .ok_or("the type must be host, srflx, prflx or relay")?;

    let mut related = None;
    let mut first = true;
    while let Some(name) = fields.next() {
        let value = fields
            .next()
            .filter(|v| !v.is_empty())
            .ok_or("an extension without a value")?;
        match name {
            "raddr" if first => {
                let ip = parse_ip(value)?;
                if fields.next() != Some("rport") {
                    return Err("raddr without rport");
                }
                let port = fields
                    .next()
                    .and_then(dec_u16)
                    .ok_or("rport is not a decimal 16-bit number")?;
                related = Some(SocketAddr::new(ip, port));
            }
            "raddr" | "rport" => {
                return Err("raddr and rport must come as a pair right after the type");
            }
            "" => return Err("an empty extension name"),
            _ => {}
        }
        first = false;
    }
    Ok(Candidate {
        foundation: String::from(foundation),
        component,
        priority,
        address: SocketAddr::new(ip, port),
        kind,
        related,
    })
}

/// An IPv4 or IPv6 literal (IPv6 without brackets, no zone): what `IpAddr::from_str`
/// accepts, with a faster path for the dotted quads most candidates carry.
pub(super) fn parse_ip(s: &str) -> Result<IpAddr, &'static str> {
    const NOT_IP: &str = "the address is not an IPv4 or IPv6 literal";
    if let Some(v4) = parse_ipv4(s) {
        return Ok(IpAddr::V4(v4));
    }
    // Without a ':' it cannot be IPv6, and `parse_ipv4` takes every IPv4 literal.
    if !s.bytes().any(|b| b == b':') {
        return Err(NOT_IP);
    }
    s.parse().map_err(|_| NOT_IP)
}

/// A dotted quad as `Ipv4Addr::from_str` reads it: four decimal octets of one to three
/// digits, no leading zero.
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut bytes = s.bytes();
    for (i, octet) in octets.iter_mut().enumerate() {
        let (mut value, mut digits) = (0u16, 0);
        loop {
            match bytes.next() {
                Some(b @ b'0'..=b'9') => {
                    if digits == 3 || (digits > 0 && value == 0) {
                        return None;
                    }
                    value = value * 10 + u16::from(b - b'0');
                    digits += 1;
                }
                Some(b'.') if i < 3 => break,
                None if i == 3 => break,
                _ => return None,
            }
        }
        if digits == 0 {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    Some(Ipv4Addr::from(octets))
}
