//! The public vocabulary of Carrier, with the Carrier SDK's names and numbers.
//!
//! Numbers matter (docs/LINEAGE.md §1): they appear on the wire and in SDP, and users of
//! the Carrier SDK know them.

use core::fmt;
use core::net::SocketAddr;

use alloc::string::String;
use bytes::Bytes;

/// What a stream carries. The numbers are the Carrier SDK's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum StreamType {
    /// Audio (0).
    Audio = 0,
    /// Video (1).
    Video = 1,
    /// Text (2).
    Text = 2,
    /// Application data (3).
    Application = 3,
    /// Messages (4).
    Message = 4,
}

impl StreamType {
    /// Every stream type, in numeric order.
    pub const ALL: [StreamType; 5] = [
        StreamType::Audio,
        StreamType::Video,
        StreamType::Text,
        StreamType::Application,
        StreamType::Message,
    ];

    /// The SDP media name (`m=<media>`), which RFC 8866 defines for exactly these five.
    pub const fn sdp_media(self) -> &'static str {
        match self {
            StreamType::Audio => "audio",
            StreamType::Video => "video",
            StreamType::Text => "text",
            StreamType::Application => "application",
            StreamType::Message => "message",
        }
    }

    /// The stream type named by an SDP media name.
    pub fn from_sdp_media(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.sdp_media() == name)
    }

    /// The stream type with the Carrier SDK's number.
    pub const fn from_u8(n: u8) -> Option<Self> {
        match n {
            0 => Some(StreamType::Audio),
            1 => Some(StreamType::Video),
            2 => Some(StreamType::Text),
            3 => Some(StreamType::Application),
            4 => Some(StreamType::Message),
            _ => None,
        }
    }
}

bitflags::bitflags! {
    /// Stream options, as bit flags with the Carrier SDK's values.
    ///
    /// [`StreamOptions::PORT_FORWARDING`] implies [`StreamOptions::MULTIPLEXING`]; use
    /// [`StreamOptions::normalized`] (the session does it for you when a stream is added).
    ///
    /// ```
    /// use carrier_proto::StreamOptions;
    /// let o = StreamOptions::RELIABLE | StreamOptions::PORT_FORWARDING;
    /// assert!(o.normalized().contains(StreamOptions::MULTIPLEXING));
    /// assert_eq!(o.normalized().bits(), 0x04 | 0x08 | 0x10);
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
    pub struct StreamOptions: u8 {
        /// Reserved by the Carrier SDK (0x01); accepted and carried, not acted on.
        const COMPRESS = 0x01;
        /// No encryption (0x02).
        const PLAIN = 0x02;
        /// Ordered, exactly-once delivery (0x04). Without it a stream carries datagrams.
        const RELIABLE = 0x04;
        /// Channels inside the stream (0x08).
        const MULTIPLEXING = 0x08;
        /// TCP port forwarding over channels (0x10); implies MULTIPLEXING.
        const PORT_FORWARDING = 0x10;
    }
}

impl StreamOptions {
    /// The options with their implications applied (PORT_FORWARDING ⇒ MULTIPLEXING).
    pub const fn normalized(self) -> Self {
        if self.contains(StreamOptions::PORT_FORWARDING) {
            self.union(StreamOptions::MULTIPLEXING)
        } else {
            self
        }
    }
}

/// Where a stream is in its life. The numbers are the Carrier SDK's.
///
/// ```text
/// add_stream → Initialized → (request / reply) → TransportReady → start → Connecting
///            → Connected → Closed | Failed          (Deactivated: the answer did not match)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum StreamState {
    /// Internal: created, not yet initialized (0).
    Raw = 0,
    /// Added to a session, local candidates known (1).
    Initialized = 1,
    /// Described in an offer or answer; ready to start (2).
    TransportReady = 2,
    /// Started; connectivity checks running (3).
    Connecting = 3,
    /// A path to the peer works; data flows (4).
    Connected = 4,
    /// The remote description has no matching stream, or its type/options differ (5).
    Deactivated = 5,
    /// Ended cleanly (6).
    Closed = 6,
    /// Ended by an error or a timeout (7). The SDKs call it Error.
    Failed = 7,
}

impl StreamState {
    /// True for the states a stream never leaves (Deactivated, Closed, Failed).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            StreamState::Deactivated | StreamState::Closed | StreamState::Failed
        )
    }
}

impl fmt::Display for StreamState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a channel (and, on the wire, a stream or session) was closed. The numbers are the
/// Carrier SDK's (docs/LINEAGE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CloseReason {
    /// Closed on purpose (0).
    Normal = 0,
    /// The peer went silent (1).
    Timeout = 1,
    /// Something went wrong (2).
    Error = 2,
}

impl CloseReason {
    /// The close reason with the Carrier SDK's number.
    pub const fn from_u8(n: u8) -> Option<Self> {
        match n {
            0 => Some(CloseReason::Normal),
            1 => Some(CloseReason::Timeout),
            2 => Some(CloseReason::Error),
            _ => None,
        }
    }
}

/// How a candidate address was learned (RFC 8445). The numbers are the Carrier SDK's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum CandidateType {
    /// A local interface address (0).
    Host = 0,
    /// The address a STUN server saw us at (1).
    ServerReflexive = 1,
    /// An address the peer saw us at during checks (2).
    PeerReflexive = 2,
    /// An address on a TURN relay (3).
    Relayed = 3,
}

impl CandidateType {
    /// Every candidate type, in numeric order.
    pub const ALL: [CandidateType; 4] = [
        CandidateType::Host,
        CandidateType::ServerReflexive,
        CandidateType::PeerReflexive,
        CandidateType::Relayed,
    ];

    /// The SDP `typ` token (RFC 8839): `host`, `srflx`, `prflx`, `relay`.
    pub const fn sdp_name(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::ServerReflexive => "srflx",
            CandidateType::PeerReflexive => "prflx",
            CandidateType::Relayed => "relay",
        }
    }

    /// The candidate type named by an SDP `typ` token.
    pub fn from_sdp_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.sdp_name() == name)
    }

    /// The RFC 8445 §5.1.2.2 recommended type preference.
    pub const fn type_preference(self) -> u32 {
        match self {
            CandidateType::Host => 126,
            CandidateType::PeerReflexive => 110,
            CandidateType::ServerReflexive => 100,
            CandidateType::Relayed => 0,
        }
    }
}

/// An ICE candidate: one address a peer can be reached at (RFC 8839 `a=candidate`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// Groups candidates of the same type, base and server (1–32 `ice-char`s).
    pub foundation: String,
    /// ICE component; Carrier uses one component per stream, so this is 1.
    pub component: u16,
    /// RFC 8445 priority; higher is preferred.
    pub priority: u32,
    /// The transport address (IPv4 or IPv6).
    pub address: SocketAddr,
    /// How the address was learned.
    pub kind: CandidateType,
    /// For reflexive and relayed candidates: the base it was learned from (`raddr`/`rport`).
    pub related: Option<SocketAddr>,
}

impl Candidate {
    /// A host candidate for a local address, with the RFC 8445 recommended priority.
    ///
    /// `local_preference` orders several host addresses (65535 is the most preferred).
    pub fn host(address: SocketAddr, local_preference: u16) -> Self {
        let kind = CandidateType::Host;
        Candidate {
            foundation: alloc::format!("{}", if address.is_ipv4() { 1 } else { 2 }),
            component: 1,
            priority: Self::compute_priority(kind, local_preference, 1),
            address,
            kind,
            related: None,
        }
    }

    /// RFC 8445 §5.1.2.1: `2^24·type_pref + 2^8·local_pref + (256 − component)`.
    pub const fn compute_priority(
        kind: CandidateType,
        local_preference: u16,
        component: u16,
    ) -> u32 {
        let component = if component > 256 { 256 } else { component };
        (kind.type_preference() << 24) + ((local_preference as u32) << 8) + (256 - component as u32)
    }
}

/// The kind of path a connected stream uses. The numbers are the Carrier SDK's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NetworkTopology {
    /// Both ends are host candidates (0).
    Lan = 0,
    /// Either end is reflexive; no relay (1).
    P2P = 1,
    /// Either end is relayed (2).
    Relayed = 2,
}

impl NetworkTopology {
    /// The Carrier SDK's rule: relayed if either side is relayed, P2P if either is reflexive,
    /// else LAN.
    pub fn of_pair(local: CandidateType, remote: CandidateType) -> Self {
        use CandidateType::*;
        match (local, remote) {
            (Relayed, _) | (_, Relayed) => NetworkTopology::Relayed,
            (ServerReflexive | PeerReflexive, _) | (_, ServerReflexive | PeerReflexive) => {
                NetworkTopology::P2P
            }
            (Host, Host) => NetworkTopology::Lan,
        }
    }
}

/// One end of the selected candidate pair, as reported in [`TransportInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressInfo {
    /// How the address was learned.
    pub kind: CandidateType,
    /// The address.
    pub address: SocketAddr,
    /// The related (base) address of a reflexive or relayed candidate.
    pub related: Option<SocketAddr>,
}

/// The path a connected stream uses: topology plus both ends of the selected pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransportInfo {
    /// LAN, P2P or relayed.
    pub topology: NetworkTopology,
    /// Our end.
    pub local: AddressInfo,
    /// The peer's end.
    pub remote: AddressInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_original() {
        assert_eq!(StreamType::Message as u8, 4);
        assert_eq!(StreamOptions::PORT_FORWARDING.bits(), 0x10);
        assert_eq!(StreamState::Failed as u8, 7);
        assert_eq!(CloseReason::Error as u8, 2);
        assert_eq!(CandidateType::Relayed as u8, 3);
        assert_eq!(NetworkTopology::Relayed as u8, 2);
        for t in StreamType::ALL {
            assert_eq!(StreamType::from_u8(t as u8), Some(t));
            assert_eq!(StreamType::from_sdp_media(t.sdp_media()), Some(t));
        }
    }

    #[test]
    fn topology_follows_the_worst_end() {
        use CandidateType::*;
        assert_eq!(NetworkTopology::of_pair(Host, Host), NetworkTopology::Lan);
        assert_eq!(
            NetworkTopology::of_pair(Host, ServerReflexive),
            NetworkTopology::P2P
        );
        assert_eq!(
            NetworkTopology::of_pair(PeerReflexive, Relayed),
            NetworkTopology::Relayed
        );
    }

    #[test]
    fn host_priority_is_rfc8445() {
        let c = Candidate::host("192.0.2.1:5000".parse().unwrap(), 65535);
        assert_eq!(c.priority, (126 << 24) + (65535 << 8) + 255);
    }
}

/// A session's id: its local connection id, which the peer puts in every packet it sends us.
///
/// The low 32 bits index the endpoint's session table and the high 32 bits are random, so
/// routing is O(1) and a stale or guessed id does not reach another session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub(crate) u64);

impl SessionId {
    /// The connection id as a number (it is the `o=` sess-id of this side's description).
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    pub(crate) fn slot(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session {:016x}", self.0)
    }
}

/// A registered handler for session requests whose bundle starts with its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandlerId(pub(crate) u32);

/// A datagram for the driver to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The local address to send from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Bytes,
}
