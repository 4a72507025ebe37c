//! What every session of an endpoint shares: config, randomness, local candidates, the
//! output queues and the statistics.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::BytesMut;
use core::net::SocketAddr;

use super::{EndpointStats, Transmit};
use crate::config::Config;
use crate::event::Event;
use crate::packet::{Header, write_packet};
use crate::rng::Rng;
use crate::types::Candidate;

/// Bytes allocated at a time for building packets.
const TX_SLAB: usize = 64 * 1024;
/// Retired slabs kept for reuse (bounds the memory held for reuse to 16 MiB).
const TX_POOL: usize = 256;

/// The shared half of an endpoint, split from the session table so a session and its
/// context can be borrowed mutably at once.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) config: Config,
    pub(crate) rng: Rng,
    pub(crate) hosts: Vec<Candidate>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) stats: EndpointStats,
    /// The latest time the driver told us (inputs and application calls), for the packets
    /// `poll_output` builds on demand.
    pub(crate) now: crate::time::Instant,
    /// Packets are built here and split off as `Bytes`. Once the driver drops the
    /// transmits, `reserve` reclaims the same allocation, so steady-state sending does not
    /// allocate.
    tx_buf: BytesMut,
    /// Used-up slabs whose packets may still be held by the driver, oldest first; one is
    /// reused once all its packets are dropped.
    tx_pool: VecDeque<BytesMut>,
}

impl Context {
    pub(crate) fn new(config: Config) -> Self {
        let rng = Rng::from_seed(config.seed);
        Context {
            config,
            rng,
            hosts: Vec::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: EndpointStats::default(),
            now: crate::time::Instant::ZERO,
            tx_buf: BytesMut::new(),
            tx_pool: VecDeque::new(),
        }
    }

    /// Queues an event for the application.
    pub(crate) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Queues a data event unless the application has let too many pile up; returns
    /// whether it was queued. (Control events are never dropped: they are few and bounded
    /// by the number of streams.)
    pub(crate) fn emit_data(&mut self, event: Event) -> bool {
        if self.events.len() >= self.config.max_queued_events {
            self.stats.events_dropped += 1;
            return false;
        }
        self.events.push_back(event);
        true
    }

    /// Replaces the used-up send slab: the oldest retired slab if all its packets are gone
    /// (no allocation), else a new one. In steady state the pool cycles and nothing is
    /// allocated.
    fn next_slab(&mut self, size: usize) {
        let old = core::mem::take(&mut self.tx_buf);
        if old.capacity() > 0 || !self.tx_pool.is_empty() {
            if self.tx_pool.len() >= TX_POOL {
                self.tx_pool.pop_front();
            }
            self.tx_pool.push_back(old);
        }
        if let Some(mut oldest) = self.tx_pool.pop_front() {
            if oldest.try_reclaim(size) {
                self.tx_buf = oldest;
                return;
            }
            self.tx_pool.push_front(oldest);
        }
        self.tx_buf = BytesMut::with_capacity(size);
    }

    /// Builds a packet and queues it for sending from `source` to `destination`.
    pub(crate) fn transmit(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        header: &Header,
        payload: impl FnOnce(&mut BytesMut),
    ) -> usize {
        // Room for one more packet; when short, ask for a whole slab. While earlier packets
        // are still held this allocates a new slab; once they are dropped it reclaims the
        // old one in place.
        let one = self.config.max_udp_payload.max(64);
        if self.tx_buf.capacity() < one {
            self.next_slab(TX_SLAB.max(one));
        }
        write_packet(&mut self.tx_buf, header, payload);
        let contents = self.tx_buf.split().freeze();
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
}
