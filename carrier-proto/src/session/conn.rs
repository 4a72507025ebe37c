//! What a session owns for talking to the world: its events and packets waiting for the
//! endpoint to hand out, its counters, its randomness, the (shared, read-only)
//! configuration, and — lent by the endpoint for the length of one call — the packet
//! buffers.
//!
//! The connection state is kept beside the [`Session`](super::Session) rather than inside
//! it so that the two can be borrowed apart: session code holds a stream of the session
//! while it queues an event on the connection.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use bytes::{Buf, Bytes, BytesMut};
use core::net::SocketAddr;

use crate::config::Config;
use crate::crypto::{OpenError, Protection};
use crate::event::Event;
use crate::packet::{Header, PN_OFFSET, write_packet};
use crate::rng::Rng;
use crate::slab::Slab;
use crate::stats::EndpointStats;
use crate::time::Instant;
use crate::types::Transmit;

/// Bytes allocated at a time for building packets.
const TX_SLAB: usize = 64 * 1024;
/// Retired slabs kept for reuse (bounds the memory held for reuse to 16 MiB).
const TX_POOL: usize = 256;

/// The packet buffers: one endpoint has one pair, lent to whichever session is working
/// (boxed, so lending one moves a pointer).
#[derive(Debug)]
pub(crate) struct Buffers(Option<alloc::boxed::Box<Slabs>>);

/// The send and receive slabs.
#[derive(Debug)]
struct Slabs {
    /// Packets are built here and split off as `Bytes`.
    tx: Slab,
    /// Where protected packets are decrypted (a copy of the ciphertext, opened in place).
    rx: Slab,
}

impl Slabs {
    fn new() -> alloc::boxed::Box<Slabs> {
        alloc::boxed::Box::new(Slabs {
            tx: Slab::new(TX_SLAB, TX_POOL),
            rx: Slab::new(TX_SLAB, TX_POOL),
        })
    }
}

impl Buffers {
    /// The endpoint's buffers.
    pub(crate) fn new() -> Self {
        Buffers(Some(Slabs::new()))
    }

    /// No buffers (allocates nothing): what a session holds while it is not lent any.
    pub(crate) fn none() -> Self {
        Buffers(None)
    }

    /// The slabs (should a session ever work without the endpoint's, it gets its own).
    fn slabs(&mut self) -> &mut Slabs {
        self.0.get_or_insert_with(Slabs::new)
    }
}

/// One session's connection state (see the [module](self) docs).
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) config: Arc<Config>,
    pub(crate) rng: Rng,
    /// Events for the application, in order.
    pub(crate) events: VecDeque<Event>,
    /// Packets built and waiting to be handed to the driver.
    pub(crate) transmits: VecDeque<Transmit>,
    /// This session's counters (the endpoint sums them).
    pub(crate) stats: EndpointStats,
    /// The endpoint's buffers while it has lent them (see [`Conn::lend`]).
    buffers: Buffers,
    /// The deadline the endpoint's timer heap has for this session.
    pub(crate) deadline: Instant,
    /// In the endpoint's ready queue.
    pub(crate) ready: bool,
    /// Touched since it was last asked for a packet: worth asking again.
    pub(crate) needs_poll: bool,
}

impl Conn {
    pub(crate) fn new(config: Arc<Config>, rng: Rng) -> Self {
        Conn {
            config,
            rng,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: EndpointStats::default(),
            buffers: Buffers::none(),
            deadline: Instant::FAR_FUTURE,
            ready: false,
            needs_poll: false,
        }
    }

    /// Takes the endpoint's buffers for the length of a call into the session; give them
    /// back with [`Conn::give_back`] (the same buffers every time, so packets share slabs
    /// across sessions and an idle session holds no buffer memory).
    pub(crate) fn lend(&mut self, buffers: &mut Buffers) {
        core::mem::swap(&mut self.buffers, buffers);
    }

    /// Returns the buffers [`Conn::lend`] took.
    pub(crate) fn give_back(&mut self, buffers: &mut Buffers) {
        core::mem::swap(&mut self.buffers, buffers);
    }

    /// Queues an event for the application.
    pub(crate) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Queues a data event unless the application has let too many of this session's
    /// pile up; returns whether it was queued. (Control events are never dropped: they are
    /// few and bounded by the number of streams.)
    pub(crate) fn emit_data(&mut self, event: Event) -> bool {
        if self.events.len() >= self.config.max_queued_events {
            self.stats.events_dropped += 1;
            crate::trace::log_debug!(
                max = self.config.max_queued_events,
                "data event dropped: the application is not draining events"
            );
            return false;
        }
        self.events.push_back(event);
        true
    }

    /// Writes a packet of at most `max_size` bytes (header with a `pn_len`-byte packet
    /// number, then `payload`'s frames) into the send slab and queues it for sending. With
    /// `seal`, the payload is encrypted in place, the tag appended and header protection
    /// applied (a payload too short to sample is padded first); without, a CRC-32
    /// trailer. Returns the packet's size (0: not sent, the keys are used up).
    ///
    /// `max_size` is what the slab must have room for: the path's packet size, not the
    /// largest any path could reach (64 KiB on loopback), or every small packet would take
    /// a slab of its own.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn transmit(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        header: &Header,
        pn_len: usize,
        seal: Option<&mut Protection>,
        max_size: usize,
        payload: impl FnOnce(&mut BytesMut),
    ) -> usize {
        let slabs = self.buffers.slabs();
        slabs.tx.reserve(max_size.max(64));
        let out = slabs.tx.buf();
        match seal {
            None => write_packet(out, header, pn_len, payload),
            Some(p) => {
                let start = out.len();
                let head = Header::len(pn_len);
                out.resize(start + head, 0);
                header.emit(&mut out[start..], pn_len);
                payload(out);
                // Header protection samples 16 bytes from 4 past the packet number's start:
                // packet number and payload together must be 4 bytes (PADDING frames).
                let short = (4 - pn_len).saturating_sub(out.len() - start - head);
                out.resize(out.len() + short, 0);
                let (aad, body) = out[start..].split_at_mut(head);
                match p.seal(header.packet_number, aad, body) {
                    Ok(tag) => out.extend_from_slice(&tag),
                    Err(_) => {
                        out.truncate(start);
                        return 0;
                    }
                }
                if !p.protect_header(&mut out[start..]) {
                    out.truncate(start);
                    return 0;
                }
            }
        }
        let contents = slabs.tx.split();
        let len = contents.len();
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
        self.transmits.push_back(Transmit {
            source,
            destination,
            contents,
        });
        len
    }

    /// Opens a protected packet: removes header protection, restores the packet number
    /// against `largest` (the largest this side has taken), then authenticates and
    /// decrypts. Returns the header and the plaintext payload (events slice it, no copy).
    /// A datagram nothing else holds (as a driver's receive hands over) is opened where it
    /// lies; a shared one is first copied into the receive slab.
    pub(crate) fn open(
        &mut self,
        protection: &mut Protection,
        packet_type: crate::packet::PacketType,
        destination: u64,
        largest: Option<u64>,
        datagram: Bytes,
    ) -> Result<(Header, Bytes), OpenError> {
        let mut buf = match datagram.try_into_mut() {
            Ok(unique) => unique,
            Err(shared) => {
                let rx = &mut self.buffers.slabs().rx;
                rx.reserve(shared.len().max(64));
                let buf = rx.buf();
                buf.extend_from_slice(&shared);
                buf.split()
            }
        };
        let pn_len = protection
            .unprotect_header(&mut buf)
            .ok_or(OpenError::BadTag)?;
        let head = Header::len(pn_len);
        if buf.len() < head + crate::crypto::TAG_LEN {
            return Err(OpenError::BadTag);
        }
        let truncated = buf[PN_OFFSET..head]
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b));
        let header = Header {
            packet_type,
            destination,
            packet_number: crate::packet::decode_packet_number(largest, truncated, pn_len),
        };
        let (aad, body) = buf.split_at_mut(head);
        let len = protection.open(header.packet_number, aad, body)?;
        buf.truncate(head + len);
        buf.advance(head);
        Ok((header, buf.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secrets;
    use crate::packet::PacketType;

    /// The header's length with the 1-byte packet numbers these packets have.
    const HEAD: usize = Header::len(1);

    /// A connection with the endpoint's buffers lent for good.
    fn conn() -> Conn {
        let mut c = Conn::new(Arc::new(Config::default()), Rng::from_seed([0; 32]));
        c.lend(&mut Buffers::new());
        c
    }

    /// A sealed DATA packet `pn` carrying `payload`, from the offerer's keys.
    fn sealed(pn: u64, payload: &[u8]) -> (Header, Bytes) {
        let secrets = Secrets {
            offerer: [1; 32],
            answerer: [2; 32],
        };
        let mut seal = Protection::new(&secrets, true).unwrap();
        let mut conn = conn();
        let header = Header {
            packet_type: PacketType::Data,
            destination: 7,
            packet_number: pn,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        assert!(
            conn.transmit(addr, addr, &header, 1, Some(&mut seal), 4096, |out| {
                out.extend_from_slice(payload)
            }) > 0
        );
        (header, conn.transmits.pop_front().unwrap().contents)
    }

    fn opener() -> Protection {
        let secrets = Secrets {
            offerer: [1; 32],
            answerer: [2; 32],
        };
        Protection::new(&secrets, false).unwrap()
    }

    #[test]
    fn an_owned_datagram_is_decrypted_where_it_lies_and_a_shared_one_is_copied() {
        let mut conn = conn();
        let mut open = opener();
        let payload = [0x5a; 3000];

        // Owned (as a driver's receive hands it over): the plaintext is inside it.
        let (header, packet) = sealed(0, &payload);
        let owned = Bytes::from(packet.to_vec());
        let range = owned.as_ptr_range();
        let (h, plain) = conn
            .open(&mut open, PacketType::Data, 7, None, owned)
            .unwrap();
        assert_eq!(h, header);
        assert_eq!(&plain[..], &payload[..]);
        assert!(range.contains(&plain.as_ptr()), "decrypted in place");

        // Shared (someone else holds it too): opened from a copy, the original untouched.
        let (header, packet) = sealed(1, &payload);
        let kept = packet.clone();
        let (h, plain) = conn
            .open(&mut open, PacketType::Data, 7, Some(0), packet)
            .unwrap();
        assert_eq!(h, header);
        assert_eq!(&plain[..], &payload[..]);
        assert!(!kept.as_ptr_range().contains(&plain.as_ptr()));
        assert_ne!(&kept[HEAD..HEAD + 16], &payload[..16], "still sealed");

        // A forged owned packet is refused like a shared one.
        let (header, packet) = sealed(2, &payload);
        let mut forged = packet.to_vec();
        forged[HEAD + 40] ^= 1;
        assert_eq!(
            conn.open(
                &mut open,
                header.packet_type,
                7,
                Some(1),
                Bytes::from(forged)
            ),
            Err(OpenError::BadTag)
        );
    }
}
