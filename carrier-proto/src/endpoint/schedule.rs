//! Which sessions the endpoint has to look at: a ready queue (sessions touched since they
//! last had nothing to hand out) and a timer heap (each session's next deadline). Both cost
//! O(1) or O(log n) per event in the number of sessions, so idle sessions cost nothing.
//!
//! The heap is lazy: a session whose deadline moves pushes a new entry and the old one
//! stays behind, recognised as stale because it no longer matches the session's recorded
//! deadline (or its slot's tag). Stale entries are dropped as they surface, and the heap is
//! compacted when they outnumber the live ones.

use alloc::collections::{BinaryHeap, VecDeque};
use core::cmp::Reverse;

use crate::session::Conn;
use crate::time::Instant;

/// A session's place in the table: its slot index and the slot's tag (a reused slot gets a
/// new tag, so entries of the slot's previous session are recognised as stale).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Place {
    pub(super) index: u32,
    pub(super) tag: u32,
}

/// The ready queue and the timer heap.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    ready: VecDeque<Place>,
    timers: BinaryHeap<Reverse<(Instant, Place)>>,
}

impl Schedule {
    /// The session was touched (a packet, a timer, an application call): it may have
    /// output or something to send, so it joins the ready queue.
    pub(super) fn touch(&mut self, place: Place, conn: &mut Conn) {
        conn.needs_poll = true;
        if !conn.ready {
            conn.ready = true;
            self.ready.push_back(place);
        }
    }

    /// The sessions in the ready queue (entries of freed sessions included: check the tag).
    pub(super) fn ready(&self) -> impl Iterator<Item = Place> + '_ {
        self.ready.iter().copied()
    }

    /// How many entries the ready queue has.
    pub(super) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The ready queue's entry `k` (0: the front).
    pub(super) fn ready_at(&self, k: usize) -> Place {
        self.ready[k]
    }

    /// The first session in the ready queue.
    pub(super) fn front(&self) -> Option<Place> {
        self.ready.front().copied()
    }

    /// Moves the front session to the back (it sent a packet: the others go next).
    pub(super) fn rotate(&mut self) {
        if let Some(p) = self.ready.pop_front() {
            self.ready.push_back(p);
        }
    }

    /// Takes the front session off the ready queue.
    pub(super) fn pop_front(&mut self) {
        self.ready.pop_front();
    }

    /// Records the session's next deadline (a new heap entry only if it changed).
    pub(super) fn arm(&mut self, place: Place, conn: &mut Conn, at: Instant) {
        if conn.deadline == at {
            return;
        }
        conn.deadline = at;
        if at != Instant::FAR_FUTURE {
            self.timers.push(Reverse((at, place)));
        }
    }

    /// The earliest entry, stale or not.
    pub(super) fn peek_timer(&self) -> Option<(Instant, Place)> {
        self.timers.peek().map(|Reverse(e)| *e)
    }

    /// Removes the earliest entry.
    pub(super) fn pop_timer(&mut self) {
        self.timers.pop();
    }

    /// Entries in the heap, stale ones included.
    pub(super) fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Keeps only the entries `live` says are current.
    pub(super) fn compact(&mut self, mut live: impl FnMut(Instant, Place) -> bool) {
        self.timers.retain(|Reverse((at, place))| live(*at, *place));
    }
}
