//! Configuration: timeouts, limits on everything a peer controls, and the seed.

use core::time::Duration;

use crate::channel::ChannelConfig;
use crate::transport::TransportConfig;

/// Limits applied when parsing a session description (offer or answer) from a peer.
///
/// Every size a peer controls is bounded here; input over a limit is a typed
/// [`SdpError`](crate::sdp::SdpError), never an allocation without bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpLimits {
    /// Largest description in bytes (the Carrier SDK capped offers at 8 KiB).
    pub max_bytes: usize,
    /// Most lines in a description.
    pub max_lines: usize,
    /// Longest single line in bytes.
    pub max_line_len: usize,
    /// Most media sections (streams).
    pub max_streams: usize,
    /// Most `a=candidate` lines in one media section.
    pub max_candidates_per_stream: usize,
}

impl Default for SdpLimits {
    fn default() -> Self {
        SdpLimits {
            max_bytes: 16 * 1024,
            max_lines: 512,
            // Room for the longest line we write: a 256-byte key or identity in hex (533).
            max_line_len: 640,
            max_streams: 16,
            max_candidates_per_stream: 32,
        }
    }
}

/// Endpoint configuration. Start from [`Config::default`] and adjust.
///
/// ```
/// use carrier_proto::Config;
/// use core::time::Duration;
/// let cfg = Config::default()
///     .with_seed([7; 32])
///     .with_request_timeout(Duration::from_secs(30));
/// assert_eq!(cfg.request_timeout, Duration::from_secs(30));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Entropy for every random choice the core makes: connection ids, ICE credentials,
    /// and the **ephemeral keys that protect sessions**. The core cannot read the operating
    /// system's randomness (it is sans-IO), so production code MUST fill this with real
    /// entropy (e.g. `getrandom`) for every endpoint it creates: the default (all zeros) or
    /// any guessable seed makes every session's keys computable by anyone. A fixed seed is
    /// for tests: it replays a run exactly. `Debug` output never shows it.
    pub seed: [u8; 32],
    /// How long a request waits for the peer's reply before it completes with
    /// [`RequestOutcome::TimedOut`](crate::RequestOutcome::TimedOut). The Carrier SDK: 5 minutes.
    pub request_timeout: Duration,
    /// How long connectivity checks may run after `start` before the streams fail.
    pub connect_timeout: Duration,
    /// First retransmission interval of a connectivity check; doubles up to
    /// `check_interval_max`.
    pub check_interval_initial: Duration,
    /// Largest interval between connectivity check retransmissions.
    pub check_interval_max: Duration,
    /// Send a keepalive after this long without sending anything on a connected session.
    pub keepalive_interval: Duration,
    /// Close a connected session's streams after this long without receiving anything.
    pub idle_timeout: Duration,
    /// Largest UDP payload the endpoint sends (the path MTU less IP and UDP headers).
    /// 1200 is safe on every IPv6 path and nearly every IPv4 one.
    pub max_udp_payload: usize,
    /// Most sessions one endpoint holds at once.
    pub max_sessions: usize,
    /// Most streams in one session (and media sections accepted in a peer's description).
    pub max_streams_per_session: usize,
    /// Most candidate pairs one session checks (local × remote candidates of one family).
    /// Also bounds the peer-reflexive pairs a peer's checks can add.
    pub max_candidate_pairs: usize,
    /// Most bytes in a bundle string.
    pub max_bundle_len: usize,
    /// Most bytes in a refusal reason.
    pub max_reason_len: usize,
    /// Most bytes in a peer id.
    pub max_peer_id_len: usize,
    /// Most events one session may have queued for the application before its new
    /// datagram events are dropped (counted in
    /// [`EndpointStats::events_dropped`](crate::EndpointStats)). Each session queues its own
    /// events, so a flooded session cannot crowd out another's.
    pub max_queued_events: usize,
    /// Limits on descriptions received from peers.
    pub sdp: SdpLimits,
    /// Reliable streams: congestion control, recovery, buffers, windows.
    pub transport: TransportConfig,
    /// Channels of MULTIPLEXING streams: limits, buffers, keepalive.
    pub channels: ChannelConfig,
    /// This peer's long-term identity: an Ed25519 secret key. With one, every offer and
    /// answer is signed, and the peer can check who it talks to
    /// ([`Offer::identity`](crate::Offer::identity),
    /// [`Answer::identity`](crate::Answer::identity)). Keep it secret; give the public half
    /// ([`Endpoint::identity`](crate::Endpoint::identity)) to your peers.
    pub identity: Option<[u8; 32]>,
    /// When true, taking a data event (`StreamData`, `ChannelData` on a reliable stream) out
    /// of [`Endpoint::poll_output`](crate::Endpoint::poll_output) does **not** return its
    /// flow-control credit to the peer; the application returns it with
    /// [`SessionMut::consume`](crate::SessionMut::consume) /
    /// [`SessionMut::consume_channel`](crate::SessionMut::consume_channel) once it has used
    /// the bytes. For drivers that queue data for a reader: what they hold is then bounded
    /// by the receive windows. Default false (credit returns as events are taken).
    pub manual_credit: bool,
    /// Path MTU discovery: the largest UDP payload a session with reliable streams probes
    /// for (with padded PING packets; an acknowledged probe raises the size of its data
    /// packets, and probes neither count against the congestion window nor signal
    /// congestion when lost). At or below [`Config::max_udp_payload`] (the default) there
    /// is no discovery. 1452 fits Ethernet under IPv6 and UDP headers; a loopback path
    /// carries up to 65,507. The socket must not fragment (the drivers set don't-fragment).
    pub mtu_ceiling: usize,
    /// The ceiling of path MTU discovery instead of [`Config::mtu_ceiling`] when the
    /// selected pair joins two loopback addresses (both peers on one host): a loopback
    /// interface carries far larger packets than Ethernet (Linux's `lo`: 64 KiB), and
    /// fewer, larger packets cost less per byte in every layer. The search verifies the
    /// size like any other (a host whose loopback carries less settles lower). Default
    /// [`MAX_UDP_PAYLOAD`]; set it to `mtu_ceiling` to treat loopback like any path.
    pub loopback_mtu_ceiling: usize,
    /// How long a graceful [`close_session`](crate::Endpoint::close_session) may take to
    /// deliver what was written before it gives up: until then the session stays, its
    /// reliable streams flush their data and FINs, queued datagrams go out, and only then
    /// is the peer told the session is closed. Past it the session ends anyway, telling the
    /// peer with reason Timeout (its readers see an error, never a clean end short of the
    /// data), and the streams close with [`StateReason::CloseTimeout`](crate::StateReason).
    pub close_linger: Duration,
    /// Bytes of datagrams (stream and channel) a session queues while the congestion
    /// window is full; they go out at the controller's pace. What happens when the queue
    /// is full is [`Config::datagram_policy`]. quinn's default: 1 MiB.
    pub datagram_send_buffer: usize,
    /// What a datagram write does when the send queue is full.
    pub datagram_policy: DatagramPolicy,
    /// Session requests ([`Event::SessionRequest`](crate::Event::SessionRequest)) queued
    /// for the application before [`Endpoint::handle_offer`](crate::Endpoint::handle_offer)
    /// refuses new ones with [`Error::Limit`](crate::Error::Limit) (counted in
    /// `EndpointStats::requests_refused`). Each holds a parsed offer (about 2 KiB).
    pub max_queued_requests: usize,
}

/// What a datagram write does when the session's datagram send queue
/// ([`Config::datagram_send_buffer`]) is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatagramPolicy {
    /// Refuse the write with [`Error::WouldBlock`](crate::Error::WouldBlock); a
    /// [`Event::Writable`](crate::Event::Writable) follows when there is room (the
    /// default: nothing is dropped at the sender).
    #[default]
    Block,
    /// Take the write and drop the oldest queued datagrams to make room (media that would
    /// rather be current than complete). Each drop is counted in
    /// `EndpointStats::datagrams_dropped_oldest`, and each episode of drops is reported
    /// once by [`Event::DatagramsDropped`](crate::Event::DatagramsDropped).
    DropOldest,
}

/// The largest UDP payload: 65,535 bytes of IPv4 packet less the IPv4 and UDP headers.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: [0; 32],
            request_timeout: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(10),
            check_interval_initial: Duration::from_millis(100),
            check_interval_max: Duration::from_millis(1600),
            keepalive_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            max_udp_payload: 1200,
            max_sessions: 4096,
            max_streams_per_session: 16,
            max_candidate_pairs: 64,
            max_bundle_len: 128,
            max_reason_len: 256,
            max_peer_id_len: 256,
            max_queued_events: 4096,
            sdp: SdpLimits::default(),
            transport: TransportConfig::default(),
            channels: ChannelConfig::default(),
            identity: None,
            manual_credit: false,
            mtu_ceiling: 1452,
            loopback_mtu_ceiling: MAX_UDP_PAYLOAD,
            close_linger: Duration::from_secs(10),
            datagram_send_buffer: 1024 * 1024,
            datagram_policy: DatagramPolicy::Block,
            max_queued_requests: 256,
        }
    }
}

impl core::fmt::Debug for Config {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The seed and the identity secret are secrets: never in logs.
        f.debug_struct("Config")
            .field("seed", &"<secret>")
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("check_interval_initial", &self.check_interval_initial)
            .field("check_interval_max", &self.check_interval_max)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_udp_payload", &self.max_udp_payload)
            .field("max_sessions", &self.max_sessions)
            .field("max_streams_per_session", &self.max_streams_per_session)
            .field("max_candidate_pairs", &self.max_candidate_pairs)
            .field("max_bundle_len", &self.max_bundle_len)
            .field("max_reason_len", &self.max_reason_len)
            .field("max_peer_id_len", &self.max_peer_id_len)
            .field("max_queued_events", &self.max_queued_events)
            .field("sdp", &self.sdp)
            .field("transport", &self.transport)
            .field("channels", &self.channels)
            .field("identity", &self.identity.map(|_| "<secret>"))
            .field("manual_credit", &self.manual_credit)
            .field("mtu_ceiling", &self.mtu_ceiling)
            .field("loopback_mtu_ceiling", &self.loopback_mtu_ceiling)
            .field("close_linger", &self.close_linger)
            .field("datagram_send_buffer", &self.datagram_send_buffer)
            .field("datagram_policy", &self.datagram_policy)
            .field("max_queued_requests", &self.max_queued_requests)
            .finish()
    }
}

impl Config {
    /// Sets the seed all of the core's randomness derives from.
    pub fn with_seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`Config::manual_credit`].
    pub fn with_manual_credit(mut self, manual: bool) -> Self {
        self.manual_credit = manual;
        self
    }

    /// Sets [`Config::mtu_ceiling`] (path MTU discovery up to it; capped at
    /// [`MAX_UDP_PAYLOAD`]).
    pub fn with_mtu_ceiling(mut self, ceiling: usize) -> Self {
        self.mtu_ceiling = ceiling.min(MAX_UDP_PAYLOAD);
        self
    }

    /// Sets [`Config::loopback_mtu_ceiling`] (capped at [`MAX_UDP_PAYLOAD`]).
    pub fn with_loopback_mtu_ceiling(mut self, ceiling: usize) -> Self {
        self.loopback_mtu_ceiling = ceiling.min(MAX_UDP_PAYLOAD);
        self
    }

    /// Sets [`Config::request_timeout`].
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`Config::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Config::max_udp_payload`].
    pub fn with_max_udp_payload(mut self, bytes: usize) -> Self {
        self.max_udp_payload = bytes;
        self
    }

    /// Sets [`Config::transport`].
    pub fn with_transport(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// Sets [`Config::identity`].
    pub fn with_identity(mut self, secret: [u8; 32]) -> Self {
        self.identity = Some(secret);
        self
    }

    /// Sets [`Config::channels`].
    pub fn with_channels(mut self, channels: ChannelConfig) -> Self {
        self.channels = channels;
        self
    }

    /// Sets [`Config::keepalive_interval`] and [`Config::idle_timeout`].
    pub fn with_idle(mut self, keepalive: Duration, idle_timeout: Duration) -> Self {
        self.keepalive_interval = keepalive;
        self.idle_timeout = idle_timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_secrets() {
        let cfg = Config::default()
            .with_seed([0xAB; 32])
            .with_identity([0xCD; 32]);
        let text = alloc::format!("{cfg:?}");
        assert!(!text.contains("171") && !text.contains("205"), "{text}");
        assert!(text.contains("<secret>"));
    }
}
