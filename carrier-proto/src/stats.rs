//! Counters: what an endpoint and its sessions did or dropped.
//!
//! Each session counts its own (in its connection state); the endpoint counts what happens
//! before a packet reaches a session, and sums the rest on demand.

/// Declares the counters once: the struct, and the sum of two.
macro_rules! counters {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: u64,)* }) => {
        $(#[$meta])*
        pub struct $name { $($(#[$fmeta])* pub $field: u64,)* }

        impl $name {
            /// Adds `other`'s counts to these.
            pub(crate) fn add(&mut self, other: &$name) {
                $(self.$field += other.$field;)*
            }
        }
    };
}

counters! {
/// Counters for everything the endpoint and its sessions did or dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams handed in.
    pub packets_received: u64,
    /// Datagrams handed out.
    pub packets_sent: u64,
    /// Bytes handed out.
    pub bytes_sent: u64,
    /// Dropped: not a Carrier packet (first byte), e.g. stray STUN or garbage.
    pub dropped_not_carrier: u64,
    /// Dropped: no session has the destination id.
    pub dropped_unknown_session: u64,
    /// Dropped: checksum mismatch (corrupted on the way; or, before `start_with`, a sealed
    /// packet from a peer that already has the session's keys).
    pub dropped_bad_checksum: u64,
    /// Dropped: malformed header, payload or frame, or an unknown version or type.
    pub dropped_malformed: u64,
    /// Dropped: valid, but not expected in the session's state or from that address.
    pub dropped_unexpected: u64,
    /// Datagrams sent on unreliable streams.
    pub datagrams_sent: u64,
    /// Incoming datagrams not delivered (stream not Connected, unknown, or reliable; or the
    /// event queue was full).
    pub datagrams_dropped: u64,
    /// Data events dropped because the application did not drain events.
    pub events_dropped: u64,
    /// Sessions ended by the idle timeout.
    pub idle_timeouts: u64,
    /// Sessions whose path died (no ACK after the configured probe timeouts).
    pub dead_paths: u64,
    /// Packets received twice (by packet number) and not processed again.
    pub dropped_duplicate: u64,
    /// Stream frames refused for breaking flow control or the final size.
    pub flow_control_violations: u64,
    /// Datagrams not sent because the congestion window was full.
    pub datagrams_congestion_dropped: u64,
    /// Channel opens from peers refused (over a limit, or a reused id) with CLOSE(Error).
    pub channel_opens_refused: u64,
    /// Channel frames dropped: for a closed or unknown channel, or the wrong stream kind.
    pub channel_frames_ignored: u64,
    /// Streams aborted because the peer's channel control stream was malformed.
    pub channel_violations: u64,
    /// Unreliable channels closed with Timeout because the peer went silent.
    pub channel_timeouts: u64,
    /// Packets left unacknowledged because out-of-order data in them had no room (the
    /// peer sends them again; nothing is lost).
    pub packets_refused_busy: u64,
    /// Packets of a protected session whose authentication tag did not verify: corrupted,
    /// forged, or sealed with another key (another session's, a spoofer's).
    pub dropped_bad_tag: u64,
    /// Packets of a protected session whose packet number was accepted before (a replay or
    /// a network duplicate) or is too old to tell.
    pub dropped_replay: u64,
    /// Sessions stopped because their keys were used up (packet numbers or forgeries).
    pub keys_exhausted: u64,
    /// Path MTU probes sent (see [`Config::mtu_ceiling`](crate::Config::mtu_ceiling)).
    pub mtu_probes_sent: u64,
    /// Datagrams queued because the congestion window was full (sent later, at the
    /// controller's pace).
    pub datagrams_queued: u64,
    /// Queued datagrams dropped to make room under
    /// [`DatagramPolicy::DropOldest`](crate::DatagramPolicy::DropOldest).
    pub datagrams_dropped_oldest: u64,
    /// Offers refused by [`Endpoint::handle_offer`](crate::Endpoint::handle_offer) because
    /// [`Config::max_queued_requests`](crate::Config::max_queued_requests) requests were
    /// already waiting for the application.
    pub requests_refused: u64,
    /// Graceful session closes that ran out of
    /// [`Config::close_linger`](crate::Config::close_linger) before the peer acknowledged
    /// everything.
    pub close_lingers_expired: u64,
    /// Packets for a session that has ended but is still in the table (late packets; the
    /// extra copies of the peer's session CLOSE, which goes out in three packets).
    pub dropped_after_end: u64,
    /// Authenticated packets dropped without effect (from an address that is not the
    /// peer's, or not expected now); their packet numbers stay open in the replay window,
    /// so a racing copy cannot shadow the original.
    pub dropped_authenticated: u64,
}
}
