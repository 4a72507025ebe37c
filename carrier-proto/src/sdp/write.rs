//! The SDP writer.

use alloc::string::String;
use core::fmt::{self, Write};
use core::net::SocketAddr;

use super::parse::{
    ACTIVE_PORT, ATTR_BUNDLE, ATTR_CANDIDATE, ATTR_IDENTITY, ATTR_KEY, ATTR_MID, ATTR_PWD,
    ATTR_REFUSE, ATTR_REPLY_TO, ATTR_UFRAG, MAX_COMPONENT, MAX_FOUNDATION_LEN, PROTO, PWD_LEN,
    PWD_RULE, UFRAG_LEN, UFRAG_RULE, check_bundle, check_hex_len, is_ice_string, is_valid_reason,
};
use super::{SdpError, SdpErrorKind, SessionDescription};
use crate::types::{Candidate, StreamOptions};

impl SessionDescription {
    /// Writes the description as SDP, CRLF-terminated, in exactly this layout (optional
    /// lines only when the field is `Some`):
    ///
    /// ```text
    /// v=0
    /// o=- <session_id> <session_version> IN IP4 0.0.0.0
    /// s=carrier
    /// t=0 0
    /// a=ice-ufrag:<ufrag>
    /// a=ice-pwd:<pwd>
    /// a=x-carrier-bundle:<bundle>
    /// a=x-carrier-reply-to:<reply_to>
    /// a=x-carrier-refuse:<status> <reason>
    /// a=x-carrier-key:<lowercase hex>
    /// a=x-carrier-identity:<lowercase hex>
    /// ```
    ///
    /// then for each media section, `i` counting from 0:
    ///
    /// ```text
    /// m=<media> <9, or 0 if rejected> UDP/CARRIER <options in decimal>
    /// c=IN IP4 0.0.0.0
    /// a=mid:<i>
    /// a=candidate:<foundation> <component> udp <priority> <ip> <port> typ <type>[ raddr <ip> rport <port>]
    /// ```
    ///
    /// IPv6 addresses are written without brackets (RFC 8839); an IPv6 flow label or scope
    /// id cannot be written and is dropped.
    ///
    /// The output is allocated once, at its exact size ([`sdp_len`](Self::sdp_len)). Fields
    /// are written as they are: a description that [`validate`](Self::validate) rejects
    /// (an empty ufrag, a bundle with a space, a reason with a line break, …) produces SDP
    /// that [`parse`](Self::parse) rejects or reads differently.
    pub fn to_sdp_string(&self) -> String {
        let mut out = String::with_capacity(self.sdp_len());
        self.emit(&mut out);
        out
    }

    /// Appends [`to_sdp_string`](Self::to_sdp_string)'s text to `out`, reserving exactly the
    /// room it needs first.
    pub fn write_to(&self, out: &mut String) {
        out.reserve(self.sdp_len());
        self.emit(out);
    }

    /// The length in bytes of [`to_sdp_string`](Self::to_sdp_string)'s text, computed
    /// without allocating.
    pub fn sdp_len(&self) -> usize {
        let mut counter = Counter(0);
        self.emit(&mut counter);
        counter.0
    }

    /// Checks that every field is within what [`parse`](Self::parse) accepts, so that the
    /// written text parses back to an equal description (limits aside: the caller's
    /// [`SdpLimits`](crate::SdpLimits) may still reject it for its size).
    ///
    /// The error's line is the line of the written text that would be rejected.
    ///
    /// ```
    /// use carrier_proto::sdp::{SdpErrorKind, SessionDescription};
    ///
    /// let desc = SessionDescription::new(1, "ab", "0123456789abcdef012345");
    /// let err = desc.validate().unwrap_err();
    /// assert_eq!(err.line, 5);
    /// assert!(matches!(err.kind, SdpErrorKind::BadIceCredential(_)));
    /// ```
    pub fn validate(&self) -> Result<(), SdpError> {
        // v=, o=, s=, t= come first.
        let mut line = 5;
        if !is_ice_string(&self.ice_ufrag, UFRAG_LEN.0, UFRAG_LEN.1) {
            return Err(SdpError::new(
                line,
                SdpErrorKind::BadIceCredential(UFRAG_RULE),
            ));
        }
        line += 1;
        if !is_ice_string(&self.ice_pwd, PWD_LEN.0, PWD_LEN.1) {
            return Err(SdpError::new(
                line,
                SdpErrorKind::BadIceCredential(PWD_RULE),
            ));
        }
        if let Some(bundle) = &self.bundle {
            line += 1;
            check_bundle(bundle).map_err(|kind| SdpError::new(line, kind))?;
        }
        if self.reply_to.is_some() {
            line += 1;
        }
        if let Some(refusal) = &self.refusal {
            line += 1;
            if refusal.status == 0 {
                let kind = SdpErrorKind::BadRefusal("the status must not be 0");
                return Err(SdpError::new(line, kind));
            }
            if !is_valid_reason(&refusal.reason) {
                let kind = SdpErrorKind::BadRefusal("the reason holds CR, LF or NUL");
                return Err(SdpError::new(line, kind));
            }
        }
        for (value, attribute) in [(&self.key, ATTR_KEY), (&self.identity, ATTR_IDENTITY)] {
            if let Some(bytes) = value {
                line += 1;
                check_hex_len(bytes.len(), attribute).map_err(|kind| SdpError::new(line, kind))?;
            }
        }
        for media in &self.media {
            line += 1;
            let bits = media.options.bits();
            if StreamOptions::from_bits(bits).is_none() {
                return Err(SdpError::new(line, SdpErrorKind::UnknownOptions(bits)));
            }
            // c= and a=mid.
            line += 2;
            for candidate in &media.candidates {
                line += 1;
                check_candidate(candidate)
                    .map_err(|reason| SdpError::new(line, SdpErrorKind::BadCandidate(reason)))?;
            }
        }
        Ok(())
    }

    /// Writes the text to `w`. Every writer used here (`String`, [`Counter`]) is infallible.
    fn emit<W: Write>(&self, w: &mut W) {
        // Writing to a `String` or a `Counter` cannot fail.
        let _ = self.try_emit(w);
    }

    fn try_emit<W: Write>(&self, w: &mut W) -> fmt::Result {
        write!(
            w,
            "v=0\r\no=- {} {} IN IP4 0.0.0.0\r\ns=carrier\r\nt=0 0\r\n",
            self.session_id, self.session_version
        )?;
        write!(w, "a={ATTR_UFRAG}:{}\r\n", self.ice_ufrag)?;
        write!(w, "a={ATTR_PWD}:{}\r\n", self.ice_pwd)?;
        if let Some(bundle) = &self.bundle {
            write!(w, "a={ATTR_BUNDLE}:{bundle}\r\n")?;
        }
        if let Some(reply_to) = self.reply_to {
            write!(w, "a={ATTR_REPLY_TO}:{reply_to}\r\n")?;
        }
        if let Some(refusal) = &self.refusal {
            write!(
                w,
                "a={ATTR_REFUSE}:{} {}\r\n",
                refusal.status, refusal.reason
            )?;
        }
        for (value, attribute) in [(&self.key, ATTR_KEY), (&self.identity, ATTR_IDENTITY)] {
            if let Some(bytes) = value {
                write!(w, "a={attribute}:")?;
                write_hex(w, bytes)?;
                w.write_str("\r\n")?;
            }
        }
        for (index, media) in self.media.iter().enumerate() {
            let port = if media.rejected { 0 } else { ACTIVE_PORT };
            write!(
                w,
                "m={} {port} {PROTO} {}\r\nc=IN IP4 0.0.0.0\r\na={ATTR_MID}:{index}\r\n",
                media.stream_type.sdp_media(),
                media.options.bits(),
            )?;
            for c in &media.candidates {
                write!(
                    w,
                    "a={ATTR_CANDIDATE}:{} {} udp {} {} {} typ {}",
                    c.foundation,
                    c.component,
                    c.priority,
                    c.address.ip(),
                    c.address.port(),
                    c.kind.sdp_name(),
                )?;
                if let Some(related) = c.related {
                    write!(w, " raddr {} rport {}", related.ip(), related.port())?;
                }
                w.write_str("\r\n")?;
            }
        }
        Ok(())
    }
}

/// What [`SessionDescription::validate`] requires of a candidate.
fn check_candidate(c: &Candidate) -> Result<(), &'static str> {
    if !is_ice_string(&c.foundation, 1, MAX_FOUNDATION_LEN) {
        return Err("the foundation must be 1 to 32 ice-chars");
    }
    if !(1..=MAX_COMPONENT).contains(&c.component) {
        return Err("the component must be 1 to 256");
    }
    let writable = |a: &SocketAddr| match a {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(v6) => v6.flowinfo() == 0 && v6.scope_id() == 0,
    };
    if !writable(&c.address) || !c.related.as_ref().is_none_or(writable) {
        return Err("an IPv6 flow label or scope id cannot be written");
    }
    Ok(())
}

/// Lowercase hex, two digits a byte.
fn write_hex<W: Write>(w: &mut W, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0F] {
            let digit = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
            w.write_char(char::from(digit))?;
        }
    }
    Ok(())
}

/// A [`Write`] that only counts bytes.
struct Counter(usize);

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}
