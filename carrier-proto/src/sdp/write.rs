//! The SDP writer.

use alloc::string::String;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::parse::{
    ACTIVE_PORT, ATTR_BUNDLE, ATTR_CANDIDATE, ATTR_IDENTITY, ATTR_KEY, ATTR_MID, ATTR_PWD,
    ATTR_REFUSE, ATTR_REPLY_TO, ATTR_SIGNATURE, ATTR_UFRAG, MAX_COMPONENT, MAX_FOUNDATION_LEN,
    PROTO, PWD_LEN, PWD_RULE, UFRAG_LEN, UFRAG_RULE, check_bundle, check_hex_len, is_ice_string,
    is_valid_reason,
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
    /// m=<media> <9, or 0 if rejected> UDP <options in decimal>
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
        for (value, attribute) in [
            (&self.key, ATTR_KEY),
            (&self.identity, ATTR_IDENTITY),
            (&self.signature, ATTR_SIGNATURE),
        ] {
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

    /// Writes the text to `sink`, piece by piece. Numbers and addresses are written digit by
    /// digit: `core::fmt`'s machinery would cost more than all the rest.
    fn emit<S: Sink>(&self, sink: &mut S) {
        sink.text("v=0\r\no=- ");
        sink.dec(self.session_id);
        sink.text(" ");
        sink.dec(self.session_version);
        sink.text(" IN IP4 0.0.0.0\r\ns=carrier\r\nt=0 0\r\n");
        attribute_start(sink, ATTR_UFRAG);
        sink.text(&self.ice_ufrag);
        sink.text("\r\n");
        attribute_start(sink, ATTR_PWD);
        sink.text(&self.ice_pwd);
        sink.text("\r\n");
        if let Some(bundle) = &self.bundle {
            attribute_start(sink, ATTR_BUNDLE);
            sink.text(bundle);
            sink.text("\r\n");
        }
        if let Some(reply_to) = self.reply_to {
            attribute_start(sink, ATTR_REPLY_TO);
            sink.dec(reply_to);
            sink.text("\r\n");
        }
        if let Some(refusal) = &self.refusal {
            attribute_start(sink, ATTR_REFUSE);
            if refusal.status < 0 {
                sink.text("-");
            }
            sink.dec(u64::from(refusal.status.unsigned_abs()));
            sink.text(" ");
            sink.text(&refusal.reason);
            sink.text("\r\n");
        }
        for (value, attribute) in [
            (&self.key, ATTR_KEY),
            (&self.identity, ATTR_IDENTITY),
            (&self.signature, ATTR_SIGNATURE),
        ] {
            if let Some(bytes) = value {
                attribute_start(sink, attribute);
                sink.hex(bytes);
                sink.text("\r\n");
            }
        }
        for (index, media) in self.media.iter().enumerate() {
            sink.text("m=");
            sink.text(media.stream_type.sdp_media());
            sink.text(" ");
            sink.dec(if media.rejected {
                0
            } else {
                u64::from(ACTIVE_PORT)
            });
            sink.text(" ");
            sink.text(PROTO);
            sink.text(" ");
            sink.dec(u64::from(media.options.bits()));
            sink.text("\r\nc=IN IP4 0.0.0.0\r\n");
            attribute_start(sink, ATTR_MID);
            sink.dec(index as u64);
            sink.text("\r\n");
            for c in &media.candidates {
                attribute_start(sink, ATTR_CANDIDATE);
                sink.text(&c.foundation);
                sink.text(" ");
                sink.dec(u64::from(c.component));
                sink.text(" udp ");
                sink.dec(u64::from(c.priority));
                sink.text(" ");
                sink.ip(c.address.ip());
                sink.text(" ");
                sink.dec(u64::from(c.address.port()));
                sink.text(" typ ");
                sink.text(c.kind.sdp_name());
                if let Some(related) = &c.related {
                    sink.text(" raddr ");
                    sink.ip(related.ip());
                    sink.text(" rport ");
                    sink.dec(u64::from(related.port()));
                }
                sink.text("\r\n");
            }
        }
    }
}

/// `a=<name>:`.
fn attribute_start<S: Sink>(sink: &mut S, name: &str) {
    sink.text("a=");
    sink.text(name);
    sink.text(":");
}

/// Where [`SessionDescription::emit`] writes: the output `String`, or a [`Counter`] of its
/// length.
trait Sink {
    /// Text as it is.
    fn text(&mut self, s: &str);

    /// One ASCII byte.
    fn ascii(&mut self, b: u8);

    /// A number in decimal.
    fn dec(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = n;
        for slot in digits.iter_mut().rev() {
            // `rest % 10` is a single digit.
            *slot = b'0' + (rest % 10) as u8;
            start -= 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        for &d in digits.get(start..).unwrap_or_default() {
            self.ascii(d);
        }
    }

    /// Bytes in lowercase hex, two digits a byte.
    fn hex(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.ascii(hex_digit(b >> 4));
            self.ascii(hex_digit(b & 0x0F));
        }
    }

    /// An address as RFC 8839 wants it: dotted quad, or RFC 5952 IPv6 without brackets,
    /// exactly as `IpAddr`'s `Display` writes it.
    fn ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.ipv4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => {
                    self.text("::ffff:");
                    self.ipv4(v4);
                }
                None => self.ipv6(v6),
            },
        }
    }

    /// `a.b.c.d`.
    fn ipv4(&mut self, ip: Ipv4Addr) {
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.ascii(b'.');
            }
            self.dec(u64::from(octet));
        }
    }

    /// Lowercase hex groups without leading zeros, the longest run (the first of equals)
    /// of two or more zero groups as `::`.
    fn ipv6(&mut self, ip: Ipv6Addr) {
        let groups = ip.segments();
        let (mut best_start, mut best_len) = (0, 0);
        let (mut start, mut len) = (0, 0);
        for (i, &group) in groups.iter().enumerate() {
            if group == 0 {
                if len == 0 {
                    start = i;
                }
                len += 1;
                if len > best_len {
                    (best_start, best_len) = (start, len);
                }
            } else {
                len = 0;
            }
        }
        if best_len > 1 {
            self.hex_groups(groups.get(..best_start).unwrap_or_default());
            self.text("::");
            self.hex_groups(groups.get(best_start + best_len..).unwrap_or_default());
        } else {
            self.hex_groups(&groups);
        }
    }

    /// IPv6 groups separated by `:`.
    fn hex_groups(&mut self, groups: &[u16]) {
        for (i, &group) in groups.iter().enumerate() {
            if i > 0 {
                self.ascii(b':');
            }
            let mut started = false;
            for shift in [12, 8, 4, 0] {
                // A nibble.
                let nibble = ((group >> shift) & 0xF) as u8;
                if nibble != 0 || started || shift == 0 {
                    started = true;
                    self.ascii(hex_digit(nibble));
                }
            }
        }
    }
}

impl Sink for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }

    fn ascii(&mut self, b: u8) {
        self.push(char::from(b));
    }
}

/// Counts what [`SessionDescription::emit`] would write.
struct Counter(usize);

impl Sink for Counter {
    fn text(&mut self, s: &str) {
        self.0 += s.len();
    }

    fn ascii(&mut self, _: u8) {
        self.0 += 1;
    }

    fn dec(&mut self, n: u64) {
        self.0 += n.checked_ilog10().map_or(1, |log| log as usize + 1);
    }

    fn hex(&mut self, bytes: &[u8]) {
        self.0 += 2 * bytes.len();
    }
}

/// A nibble (0..=15) as a lowercase hex digit.
const fn hex_digit(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        _ => b'a' + (nibble & 0xF) - 10,
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
