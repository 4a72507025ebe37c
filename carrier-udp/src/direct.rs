//! Direct signaling: offers and answers carried over the same UDP socket, so two programs
//! can connect given just an address (the Carrier SDK carried them over its friend messages;
//! an application with its own signaling does not need this).
//!
//! A signaling datagram is `CARRIER-SDP/1 ` + `O` (offer) or `A` (answer) + the SDP text. Its
//! first byte is not a carrier packet's (those start with `0b11`), so both share the socket.
//! An offer is sent again, every 250 ms doubling up to 2 s, until its answer arrives or the
//! request completes otherwise (timeout, close); a repeated offer is answered again with
//! the same answer, never raised twice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant as WallClock};

use bytes::{BufMut, Bytes, BytesMut};
use carrier_proto::{Answer, Offer, SessionId};

/// What starts every signaling datagram.
pub const MAGIC: &[u8] = b"CARRIER-SDP/1 ";
const OFFER: u8 = b'O';
const ANSWER: u8 = b'A';
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(2);
/// Offers remembered for answering repeats (oldest forgotten first).
const MAX_REMEMBERED: usize = 1024;

/// A signaling datagram, parsed.
pub(crate) enum Signal<'a> {
    Offer(&'a str),
    Answer(&'a str),
}

/// `Some` if `datagram` is a signaling datagram (well-formed or not: `None` inside means
/// malformed, to be dropped).
pub(crate) fn parse(datagram: &[u8]) -> Option<Option<Signal<'_>>> {
    let rest = datagram.strip_prefix(MAGIC)?;
    let (&kind, text) = rest.split_first()?;
    let text = std::str::from_utf8(text).ok();
    Some(match (kind, text) {
        (OFFER, Some(t)) => Some(Signal::Offer(t)),
        (ANSWER, Some(t)) => Some(Signal::Answer(t)),
        _ => None,
    })
}

fn datagram(kind: u8, sdp: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(MAGIC.len() + 1 + sdp.len());
    out.put_slice(MAGIC);
    out.put_u8(kind);
    out.put_slice(sdp.as_bytes());
    out.freeze()
}

/// An offer on its way, sent again until answered.
struct Outgoing {
    session: SessionId,
    to: SocketAddr,
    datagram: Bytes,
    next: WallClock,
    interval: Duration,
}

/// The direct-signaling state of a driver.
#[derive(Default)]
pub(crate) struct Direct {
    outgoing: Vec<Outgoing>,
    /// Offers received, by the offer's session id: where they came from, and the answer
    /// once the application replied.
    received: HashMap<u64, (SocketAddr, Option<Bytes>)>,
    order: std::collections::VecDeque<u64>,
    pub(crate) sent: u64,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("outgoing", &self.outgoing.len())
            .field("received", &self.received.len())
            .finish()
    }
}

impl Direct {
    /// Starts sending `offer` (of `session`) to `to`; returns the first datagram.
    pub(crate) fn request(
        &mut self,
        session: SessionId,
        to: SocketAddr,
        offer: &Offer,
        now: WallClock,
    ) -> Bytes {
        let d = datagram(OFFER, &offer.to_sdp_string());
        self.outgoing.push(Outgoing {
            session,
            to,
            datagram: d.clone(),
            next: now + FIRST_RETRY,
            interval: FIRST_RETRY,
        });
        self.sent += 1;
        d
    }

    /// The request of `session` completed: stop sending its offer.
    pub(crate) fn completed(&mut self, session: SessionId) {
        self.outgoing.retain(|o| o.session != session);
    }

    /// Offers due again now: (destination, datagram).
    pub(crate) fn due(&mut self, now: WallClock) -> Vec<(SocketAddr, Bytes)> {
        let mut out = Vec::new();
        for o in &mut self.outgoing {
            if now >= o.next {
                out.push((o.to, o.datagram.clone()));
                o.interval = (o.interval * 2).min(MAX_RETRY);
                o.next = now + o.interval;
            }
        }
        self.sent += out.len() as u64;
        out
    }

    /// When the next offer is due.
    pub(crate) fn next_due(&self) -> Option<WallClock> {
        self.outgoing.iter().map(|o| o.next).min()
    }

    /// An offer arrived from `from`. Returns `Ok(true)` if it is new (raise it),
    /// `Ok(false)` if seen before and not answered yet (drop), or `Err(answer)` to send
    /// again.
    pub(crate) fn on_offer(&mut self, offer: &Offer, from: SocketAddr) -> Result<bool, Bytes> {
        let id = offer.description().session_id;
        match self.received.get(&id) {
            Some((_, Some(answer))) => Err(answer.clone()),
            Some((_, None)) => Ok(false),
            None => {
                if self.order.len() >= MAX_REMEMBERED {
                    if let Some(old) = self.order.pop_front() {
                        self.received.remove(&old);
                    }
                }
                self.order.push_back(id);
                self.received.insert(id, (from, None));
                Ok(true)
            }
        }
    }

    /// The application answered `offer`: where to send the answer, and the datagram.
    pub(crate) fn reply(&mut self, offer: &Offer, answer: &Answer) -> Option<(SocketAddr, Bytes)> {
        let entry = self.received.get_mut(&offer.description().session_id)?;
        let d = datagram(ANSWER, &answer.to_sdp_string());
        entry.1 = Some(d.clone());
        self.sent += 1;
        Some((entry.0, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_told_apart_from_packets_and_malformed_ones_dropped() {
        assert!(matches!(
            parse(&datagram(OFFER, "v=0")),
            Some(Some(Signal::Offer("v=0")))
        ));
        assert!(matches!(
            parse(&datagram(ANSWER, "v=0")),
            Some(Some(Signal::Answer("v=0")))
        ));
        assert!(matches!(parse(b"CARRIER-SDP/1 Xv=0"), Some(None)));
        assert!(matches!(parse(b"CARRIER-SDP/1 O\xff\xfe"), Some(None)));
        assert!(parse(b"CARRIER-SDP/1 ").is_none());
        // A carrier packet starts with 0b11: never a signal.
        assert!(parse(&[0xC2, 0x01, 0, 0]).is_none());
    }
}
