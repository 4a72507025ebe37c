//! Why a session description was rejected, and where.

use core::fmt;

/// A session description was rejected by [`SessionDescription::parse`] (or
/// [`SessionDescription::validate`]): the offending line and the reason.
///
/// ```
/// use carrier_proto::sdp::{SdpErrorKind, SessionDescription};
/// use carrier_proto::SdpLimits;
///
/// let err = SessionDescription::parse("v=1\r\n", &SdpLimits::default()).unwrap_err();
/// assert_eq!(err.line, 1);
/// assert_eq!(err.kind, SdpErrorKind::BadVersion);
/// assert_eq!(err.to_string(), "line 1: bad version: only v=0 is defined");
/// ```
///
/// [`SessionDescription::parse`]: super::SessionDescription::parse
/// [`SessionDescription::validate`]: super::SessionDescription::validate
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SdpError {
    /// The 1-based number of the offending line; 0 when the error concerns the whole input
    /// (its size, a line missing at its end, a required attribute missing altogether).
    pub line: usize,
    /// What is wrong.
    pub kind: SdpErrorKind,
}

impl SdpError {
    /// An error on `line` (1-based; 0 for the whole input).
    pub const fn new(line: usize, kind: SdpErrorKind) -> Self {
        SdpError { line, kind }
    }
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "line {}: {}", self.line, self.kind)
        }
    }
}

/// What is wrong with a session description.
///
/// The `&'static str` payloads name the field or explain the rule that was broken; no
/// payload copies peer-controlled text, so building an error never allocates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpErrorKind {
    /// The input is longer than [`SdpLimits::max_bytes`](crate::SdpLimits::max_bytes).
    #[error("description too large: {len} bytes, limit {max}")]
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input has more lines than [`SdpLimits::max_lines`](crate::SdpLimits::max_lines)
    /// (reported on the first line over the limit).
    #[error("too many lines: limit {max}")]
    TooManyLines {
        /// The limit.
        max: usize,
    },
    /// A line (without its CRLF or LF) is longer than
    /// [`SdpLimits::max_line_len`](crate::SdpLimits::max_line_len).
    #[error("line too long: {len} bytes, limit {max}")]
    LineTooLong {
        /// Length of the line in bytes, without its terminator.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More `m=` sections than [`SdpLimits::max_streams`](crate::SdpLimits::max_streams)
    /// (reported on the first `m=` line over the limit).
    #[error("too many media sections: limit {max}")]
    TooManyStreams {
        /// The limit.
        max: usize,
    },
    /// More `a=candidate` lines in one media section than
    /// [`SdpLimits::max_candidates_per_stream`](crate::SdpLimits::max_candidates_per_stream).
    #[error("too many candidates in one media section: limit {max}")]
    TooManyCandidates {
        /// The limit.
        max: usize,
    },
    /// The input is not valid UTF-8 (reported on the line holding the first bad byte).
    #[error("not UTF-8")]
    NotUtf8,
    /// The line is not `<type>=<value>` with a single lowercase letter type and a non-empty
    /// value, or holds a lone CR or a NUL.
    #[error("bad line syntax: {0}")]
    BadLineSyntax(&'static str),
    /// A line of a known or unknown type where the RFC 8866 order does not allow it.
    #[error("unexpected `{found}=` line, expected {expected}")]
    UnexpectedLine {
        /// The line types allowed at this point.
        expected: &'static str,
        /// The type letter found.
        found: char,
    },
    /// A required line (`v=`, `o=`, `s=`, `t=`, `c=`) or attribute (`a=ice-ufrag`,
    /// `a=ice-pwd`) is absent.
    #[error("missing {0} line")]
    MissingLine(&'static str),
    /// An attribute this parser knows appears twice at the same level.
    #[error("duplicate a={0}")]
    DuplicateAttribute(&'static str),
    /// A known attribute at the wrong level (e.g. `a=candidate` at session level, or
    /// `a=ice-ufrag` inside a media section).
    #[error("a={0} is not allowed at this level")]
    MisplacedAttribute(&'static str),
    /// `v=` is not `v=0`.
    #[error("bad version: only v=0 is defined")]
    BadVersion,
    /// The `o=` line is malformed.
    #[error("bad origin: {0}")]
    BadOrigin(&'static str),
    /// A `c=` line is malformed.
    #[error("bad connection data: {0}")]
    BadConnection(&'static str),
    /// A `t=` line is malformed.
    #[error("bad timing: {0}")]
    BadTiming(&'static str),
    /// An `m=` line is malformed or names a media type Carrier has no stream type for.
    #[error("bad media: {0}")]
    BadMedia(&'static str),
    /// The `m=` transport protocol is not `UDP`.
    #[error("unsupported transport protocol, expected UDP")]
    UnsupportedProto,
    /// The `m=` format (the stream options) has bits no [`StreamOptions`] flag defines.
    ///
    /// [`StreamOptions`]: crate::StreamOptions
    #[error("unknown stream option bits in {0:#04x}")]
    UnknownOptions(u8),
    /// `a=mid` is not the index of its media section.
    #[error("a=mid must be the media section's index {expected}")]
    BadMid {
        /// The 0-based index of the media section.
        expected: usize,
    },
    /// An `a=candidate` line is malformed.
    #[error("bad candidate: {0}")]
    BadCandidate(&'static str),
    /// `a=ice-ufrag` or `a=ice-pwd` has the wrong length or a character outside `ice-char`.
    #[error("bad ICE credential: {0}")]
    BadIceCredential(&'static str),
    /// `a=x-carrier-bundle` is empty, longer than 255 bytes, or has a byte outside
    /// 0x21..=0x7E.
    #[error("bad bundle: {0}")]
    BadBundle(&'static str),
    /// A hex attribute (`a=x-carrier-key`, `a=x-carrier-identity`) is malformed.
    #[error("bad hex in a={attribute}: {reason}")]
    BadHex {
        /// The attribute name.
        attribute: &'static str,
        /// What is wrong with its value.
        reason: &'static str,
    },
    /// A numeric field is not a plain decimal number of the right size.
    #[error("bad number: {0}")]
    BadNumber(&'static str),
    /// `a=x-carrier-refuse` is malformed.
    #[error("bad refusal: {0}")]
    BadRefusal(&'static str),
}
