//! Channel configuration: limits on what a peer may open, buffers and windows, and the
//! keepalive of unreliable channels.

use core::time::Duration;

use super::state::ChannelLimits;

/// The credit a sender may assume on a new channel before the receiver says more.
pub const INITIAL_CHANNEL_CREDIT: u64 = 64 * 1024;

/// The control-stream credit a sender may assume before the receiver says more (the
/// receiver's `control_window` is never below it).
pub const INITIAL_CONTROL_CREDIT: u64 = 4 * 1024;

/// Settings of the channels of MULTIPLEXING streams. Every limit applies to our own calls
/// (a typed [`ChannelError`](crate::ChannelError)) and to the peer's frames alike (refused
/// with CLOSE(Error) and counted).
///
/// ```
/// use carrier_proto::{ChannelConfig, Config};
/// let cfg = Config::default().with_channels(ChannelConfig {
///     max_channels: 100,
///     ..ChannelConfig::default()
/// });
/// assert_eq!(cfg.channels.max_channels, 100);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Most channels alive at once on one stream, in any state (the Carrier SDK's 2048).
    pub max_channels: usize,
    /// Longest cookie an OPEN may carry, in bytes.
    pub max_cookie_len: usize,
    /// Most opens waiting for an answer on one stream: the peer's the application has not
    /// accepted yet, and ours the peer has not answered yet.
    pub max_pending_opens: usize,
    /// Send buffer of one reliable channel (grows on demand up to this).
    pub send_buffer: usize,
    /// Receive window of one reliable channel: unread bytes the peer may send ahead.
    pub receive_window: u64,
    /// Send buffer and receive window of a stream's control stream (OPEN, ACCEPT, CLOSE,
    /// PEND and RESUME records). At least one full OPEN record (`max_cookie_len` + 18) and
    /// [`INITIAL_CONTROL_CREDIT`]. A peer record that could never fit it breaks the stream.
    pub control_window: u64,
    /// An open channel of an unreliable stream that sent nothing for this long sends a
    /// KEEPALIVE.
    pub keepalive_interval: Duration,
    /// An open channel of an unreliable stream that heard nothing from the peer for this
    /// long is closed with reason Timeout (before the session's own idle timeout).
    pub idle_timeout: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            max_channels: 2048,
            max_cookie_len: 1024,
            max_pending_opens: 64,
            send_buffer: 1024 * 1024,
            receive_window: 1024 * 1024,
            control_window: 64 * 1024,
            keepalive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
        }
    }
}

impl ChannelConfig {
    pub(crate) fn limits(&self) -> ChannelLimits {
        ChannelLimits {
            max_channels: self.max_channels,
            max_cookie: self.max_cookie_len,
            max_incoming_opens: self.max_pending_opens,
        }
    }

    /// The control window actually used: never below one largest record.
    pub(crate) fn control_window(&self) -> u64 {
        self.control_window
            .max(self.max_record_len() as u64)
            .max(INITIAL_CONTROL_CREDIT)
    }

    /// The longest control record: an OPEN with the longest cookie.
    pub(crate) fn max_record_len(&self) -> usize {
        // type, stream, channel id (≤ 8), cookie length (≤ 8), cookie.
        2 + 8 + 8 + self.max_cookie_len
    }
}
