//! The stream state machine, exactly as the Carrier SDK's:
//!
//! ```text
//! Raw → Initialized → TransportReady → Connecting → Connected
//!            │               │             │            │
//!            └──► Deactivated ◄┘            └──► Closed | Failed ◄┘   (any live state → Closed | Failed)
//! ```
//!
//! Every transition goes through [`transition_allowed`]; the session emits one
//! `Event::StateChanged` per transition, with a [`StateReason`] for the terminal ones.

use crate::types::{CloseReason, StreamState};

/// Why a stream reached a terminal state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateReason {
    /// The application closed the stream or its session.
    ClosedLocally,
    /// The peer closed the stream or its session, with its reason.
    ClosedByPeer(CloseReason),
    /// Nothing was received for [`Config::idle_timeout`](crate::Config::idle_timeout).
    IdleTimeout,
    /// No candidate pair worked within [`Config::connect_timeout`](crate::Config::connect_timeout).
    ConnectTimeout,
    /// The peer refused the session request with this status.
    Refused {
        /// The peer's non-zero status.
        status: i32,
    },
    /// The application refused the peer's request.
    RefusedLocally,
    /// No reply within [`Config::request_timeout`](crate::Config::request_timeout).
    RequestTimedOut,
    /// The remote description has no (accepted) stream at this position.
    NotInRemoteDescription,
    /// The remote stream at this position has a different type or options.
    Mismatch,
    /// No acknowledgement after [`RecoveryConfig::max_ptos`](crate::RecoveryConfig) probe
    /// timeouts in a row: the path or the peer is gone.
    PathDead,
    /// The session's keys are used up (the packet-number space, or too many forged
    /// packets): it stopped rather than reuse a nonce.
    KeysExhausted,
    /// A graceful session close ran out of [`Config::close_linger`](crate::Config::close_linger)
    /// before the peer acknowledged everything: what was not acknowledged may be lost, and
    /// the peer was told so (reason Timeout).
    CloseTimeout,
    /// The application aborted the stream or its session: what was not delivered is
    /// discarded, and the peer was told (reason Error).
    AbortedLocally,
}

/// A transition the state machine does not have (a bug, reported rather than done).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no transition from {from} to {to}")]
pub struct TransitionError {
    /// The current state.
    pub from: StreamState,
    /// The state asked for.
    pub to: StreamState,
}

/// Whether the reference state machine has an edge `from → to`.
pub(crate) fn transition_allowed(from: StreamState, to: StreamState) -> bool {
    use StreamState::*;
    match (from, to) {
        (Raw, Initialized)
        | (Initialized, TransportReady)
        | (Initialized | TransportReady, Deactivated)
        | (TransportReady, Connecting)
        | (Connecting, Connected) => true,
        (live, Closed | Failed) => !live.is_terminal(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StreamState::*;

    const ALL: [StreamState; 8] = [
        Raw,
        Initialized,
        TransportReady,
        Connecting,
        Connected,
        Deactivated,
        Closed,
        Failed,
    ];

    #[test]
    fn the_happy_path_is_allowed() {
        let path = [
            Raw,
            Initialized,
            TransportReady,
            Connecting,
            Connected,
            Closed,
        ];
        for w in path.windows(2) {
            assert!(transition_allowed(w[0], w[1]), "{:?} → {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn terminal_states_are_final_and_no_skipping() {
        for from in [Deactivated, Closed, Failed] {
            for to in ALL {
                assert!(!transition_allowed(from, to));
            }
        }
        assert!(!transition_allowed(Initialized, Connecting));
        assert!(!transition_allowed(TransportReady, Connected));
        assert!(!transition_allowed(Connected, Connecting));
        assert!(!transition_allowed(Connected, Deactivated));
        // Exactly the documented edges: 4 forward + 2 deactivations + 5 live states × 2 endings.
        let edges = ALL
            .iter()
            .flat_map(|&f| ALL.iter().map(move |&t| (f, t)))
            .filter(|&(f, t)| transition_allowed(f, t))
            .count();
        assert_eq!(edges, 4 + 2 + 10);
    }
}
