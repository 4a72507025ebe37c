//! Ending streams and sessions without losing data silently: half-close, graceful close,
//! abort, and the graceful session close with its linger.
//!
//! The rules (docs/SEMANTICS.md has them as one table):
//!
//! - `finish_stream` (reliable): a FIN follows the last byte written. The stream stays
//!   Connected and goes on reading; the peer reads every byte, then the end
//!   (`StreamFinished`), and may go on writing. The stream is Closed when both directions
//!   are finished: our FIN acknowledged and the peer's delivered.
//! - `close_stream` (reliable): as `finish_stream`, and once our data and FIN are
//!   acknowledged the stream is Closed here and the peer is told (CLOSE Normal). The peer
//!   has every byte by then; whatever it had still to send is discarded.
//! - `abort_stream`: CLOSE(Error) at once; nothing more is delivered either way, and the
//!   peer's reader sees an error, never a clean end.
//! - `close` (session): every reliable stream is closed as above, every channel flushed,
//!   queued datagrams sent; once all of that is through the session sends CLOSE(Normal)
//!   and ends. If it is not through within `Config::close_linger`, the session ends
//!   anyway with CLOSE(Timeout), and its streams with `StateReason::CloseTimeout`.
//! - `abort` (session): CLOSE(Error) at once.

use super::Conn;
use super::{Session, SessionPhase};
use crate::error::Error;
use crate::event::Event;
use crate::packet::{Frame, SESSION_SCOPE};
use crate::stream::{StateReason, StreamId};
use crate::time::Instant;
use crate::types::{CloseReason, StreamState};

/// Packets a session CLOSE is sent in.
const SESSION_CLOSE_COPIES: usize = 3;

impl Session {
    /// Half-close: no more writes on a reliable stream; a FIN follows the data.
    pub(crate) fn finish_stream(&mut self, stream: StreamId) -> Result<(), Error> {
        let s = self.stream(stream).ok_or(Error::UnknownStream)?;
        if s.state != StreamState::Connected {
            return Err(Error::StreamState {
                op: "finish_stream",
                state: s.state,
            });
        }
        let s = &mut self.streams[stream.index()];
        let Some(r) = s.reliable.as_mut() else {
            return Err(Error::NotReliable("finish_stream"));
        };
        if !r.recv.is_finished() {
            r.closed_locally = true;
        }
        r.send.finish();
        Ok(())
    }

    /// Closes one stream and tells the peer: a reliable stream after its data (see the
    /// module docs), an unreliable one at once.
    pub(crate) fn close_stream(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
    ) -> Result<(), Error> {
        let s = self.stream(stream).ok_or(Error::UnknownStream)?;
        if s.state.is_terminal() {
            return Ok(());
        }
        if s.state == StreamState::Connected && s.reliable.is_some() {
            let s = &mut self.streams[stream.index()];
            if let Some(r) = s.reliable.as_mut() {
                r.closing = true;
                r.closed_locally = true;
                r.send.finish();
            }
            if let Some(m) = s.mux.as_mut() {
                m.flush_for_close();
            }
            self.check_stream_closed(conn, stream.index());
            return Ok(());
        }
        self.close_now(
            conn,
            now,
            stream,
            CloseReason::Normal,
            StateReason::ClosedLocally,
        );
        Ok(())
    }

    /// Tells the peer (if connected) and closes the stream at once.
    pub(super) fn close_now(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
        reason: CloseReason,
        why: StateReason,
    ) {
        if self
            .stream(stream)
            .is_some_and(|s| s.state == StreamState::Connected)
        {
            let frame = Frame::Close {
                scope: stream.0,
                reason,
            };
            self.send_frames(conn, now, &[frame]);
        }
        self.set_state(conn, stream.index(), StreamState::Closed, Some(why));
    }

    /// Aborts a stream: tells the peer (CLOSE with reason Error) and closes it at once,
    /// discarding whatever was not yet delivered in either direction.
    pub(crate) fn abort_stream(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
    ) -> Result<(), Error> {
        let s = self.stream(stream).ok_or(Error::UnknownStream)?;
        if s.state.is_terminal() {
            return Ok(());
        }
        self.close_now(
            conn,
            now,
            stream,
            CloseReason::Error,
            StateReason::AbortedLocally,
        );
        Ok(())
    }

    /// After progress on a reliable stream (an ACK, a FIN received): report an
    /// acknowledged finish, and close the stream if it is done — both directions finished,
    /// or closed by us and everything acknowledged.
    pub(crate) fn check_stream_closed(&mut self, conn: &mut Conn, i: usize) {
        let id = self.id;
        let Some(s) = self.streams.get_mut(i) else {
            return;
        };
        if s.state != StreamState::Connected {
            return;
        }
        let flushed = s.mux.as_ref().is_none_or(|m| m.is_flushed());
        let Some(r) = s.reliable.as_mut() else {
            return;
        };
        if r.send.is_done() && !r.acknowledged {
            r.acknowledged = true;
            conn.emit(Event::StreamAcknowledged {
                session: id,
                stream: s.id,
            });
        }
        if !flushed {
            return;
        }
        if r.closing && r.send.is_done() {
            // The peer has every byte: tell it the stream is closed (sent again if lost).
            s.close_pending = Some(CloseReason::Normal);
            self.set_state(
                conn,
                i,
                StreamState::Closed,
                Some(StateReason::ClosedLocally),
            );
        } else if r.is_closed() {
            let reason = if r.closed_locally {
                StateReason::ClosedLocally
            } else {
                StateReason::ClosedByPeer(CloseReason::Normal)
            };
            self.set_state(conn, i, StreamState::Closed, Some(reason));
        }
    }

    /// The peer's CLOSE for a stream or the session.
    pub(super) fn on_close(&mut self, conn: &mut Conn, scope: u8, reason: CloseReason) {
        if scope == SESSION_SCOPE {
            self.end(conn, StreamState::Closed, StateReason::ClosedByPeer(reason));
            return;
        }
        let i = usize::from(scope);
        if self.streams.get(i).is_none() {
            return;
        }
        // A CLOSE(Normal) comes after our peer saw its FIN acknowledged, so everything it
        // wrote has been delivered (StreamFinished told the reader); if not (a peer that
        // breaks the rule), the reader never saw StreamFinished and knows it was cut short.
        self.set_state(
            conn,
            i,
            StreamState::Closed,
            Some(StateReason::ClosedByPeer(reason)),
        );
    }

    /// Closes the session gracefully: flush, then CLOSE(Normal) (see the module docs).
    /// Returns true if the session ended at once (nothing to flush, or no path).
    pub(crate) fn close(&mut self, conn: &mut Conn, now: Instant) -> bool {
        if self.phase == SessionPhase::Ended {
            return true;
        }
        if self.closing.is_some() {
            return false;
        }
        if self.phase != SessionPhase::Started || self.path.selected().is_none() {
            self.close_at_once(conn, now, CloseReason::Normal, StateReason::ClosedLocally);
            return true;
        }
        self.closing = Some(now + conn.config.close_linger);
        for i in 0..self.streams.len() {
            let s = &self.streams[i];
            match s.state {
                StreamState::Connected if s.reliable.is_some() => {
                    let _ = self.close_stream(conn, now, s.id);
                }
                // Unreliable streams end with the session, once their queued datagrams are
                // out; streams not yet Connected have nothing to flush.
                StreamState::Connected => {}
                st if !st.is_terminal() => {
                    self.set_state(
                        conn,
                        i,
                        StreamState::Closed,
                        Some(StateReason::ClosedLocally),
                    );
                }
                _ => {}
            }
        }
        self.check_closing(conn, now);
        self.phase == SessionPhase::Ended
    }

    /// Aborts the session: CLOSE(Error) to the peer, every stream ends at once.
    pub(crate) fn abort(&mut self, conn: &mut Conn, now: Instant) {
        if self.phase != SessionPhase::Ended {
            self.close_at_once(conn, now, CloseReason::Error, StateReason::AbortedLocally);
        }
    }

    fn close_at_once(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        reason: CloseReason,
        why: StateReason,
    ) {
        if self.phase == SessionPhase::Started {
            let frame = Frame::Close {
                scope: SESSION_SCOPE,
                reason,
            };
            // Nothing acknowledges a session CLOSE (the session is gone after it), so it
            // goes out in a few packets: one lost packet must not leave the peer waiting
            // for its idle timeout.
            for _ in 0..SESSION_CLOSE_COPIES {
                self.send_frames(conn, now, &[frame]);
            }
        }
        self.closing = None;
        self.end(conn, StreamState::Closed, why);
    }

    /// A graceful close in progress: end the session once every reliable stream is
    /// through and no datagram waits, or when the linger runs out.
    pub(crate) fn check_closing(&mut self, conn: &mut Conn, now: Instant) {
        let Some(deadline) = self.closing else {
            return;
        };
        if self.phase != SessionPhase::Started {
            self.closing = None;
            return;
        }
        let flushed = self
            .streams
            .iter()
            .all(|s| s.state.is_terminal() || s.reliable.is_none())
            && self.datagrams.is_empty()
            && !self.streams.iter().any(|s| s.close_pending.is_some());
        if flushed {
            self.close_at_once(conn, now, CloseReason::Normal, StateReason::ClosedLocally);
        } else if now >= deadline {
            conn.stats.close_lingers_expired += 1;
            crate::trace::log_info!(linger = ?conn.config.close_linger, "graceful close timed out: closing with Timeout");
            self.close_at_once(conn, now, CloseReason::Timeout, StateReason::CloseTimeout);
        }
    }
}
