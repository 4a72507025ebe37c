//! The state the driver task and the handles share: the engine (endpoint, clock,
//! signaling) and, per session, stream and channel, what arrived and who waits for it.
//!
//! One lock guards it all. The driver takes it for one round of IO; a handle takes it for
//! one call on the endpoint. Nobody holds it across an await, so a handle's call never
//! waits for more than one driver round.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use carrier_proto::{
    ChannelId, CloseReason, EndpointStats, Event, HandlerId, Offer, PendingOffer, RequestOutcome,
    SessionId, StateReason, StreamId, StreamState,
};
use carrier_udp::Engine;

use crate::callback::{CallbackScope, Callbacks};

/// Session requests queued per handler before new ones are dropped (the requester's
/// request times out, or its direct offer is repeated later).
pub(crate) const MAX_QUEUED_REQUESTS: usize = 128;

/// Datagrams queued per unreliable stream or channel for a reader that is not keeping up;
/// newer ones are dropped (and counted), as a full socket buffer would. Sized so that a
/// burst a congestion window can send (an unpaced sender on loopback) is absorbed.
pub(crate) const MAX_QUEUED_DATAGRAMS: usize = 16 * 1024;

/// Bytes of datagrams queued per unreliable stream or channel (with
/// [`MAX_QUEUED_DATAGRAMS`], what a reader that does not read can make us hold).
pub(crate) const MAX_QUEUED_DATAGRAM_BYTES: usize = 4 * 1024 * 1024;

/// Transitions remembered per stream (a stream makes at most seven).
const MAX_HISTORY: usize = 16;

/// Tasks waiting for one thing (most often one).
#[derive(Debug, Default)]
pub(crate) struct Wakers(Vec<Waker>);

impl Wakers {
    /// Registers `waker` (once: a task polling again replaces its old waker).
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    pub(crate) fn wake(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

/// Requests for one bundle-prefix handler, waiting to be taken.
#[derive(Debug, Default)]
pub(crate) struct RequestQueue {
    pub(crate) queue: VecDeque<(String, Offer)>,
    pub(crate) wakers: Wakers,
}

/// What arrived on a stream or channel for its reader.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub(crate) chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    bytes: usize,
    pub(crate) readers: Wakers,
    pub(crate) writers: Wakers,
}

impl Inbox {
    /// Takes up to `max` bytes from the front chunk.
    pub(crate) fn take(&mut self, max: usize) -> Option<Bytes> {
        let front = self.chunks.front_mut()?;
        let taken = if front.len() <= max {
            self.chunks.pop_front()?
        } else {
            front.split_to(max)
        };
        self.bytes -= taken.len();
        Some(taken)
    }

    /// Bytes waiting for the reader.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.bytes
    }

    fn push(&mut self, data: Bytes, datagram: bool) -> bool {
        if datagram
            && (self.chunks.len() >= MAX_QUEUED_DATAGRAMS
                || self.bytes + data.len() > MAX_QUEUED_DATAGRAM_BYTES)
        {
            return false;
        }
        self.bytes += data.len();
        self.chunks.push_back(data);
        self.readers.wake();
        true
    }

    fn wake_all(&mut self) {
        self.readers.wake();
        self.writers.wake();
    }
}

/// A channel's side of the shared state.
#[derive(Debug, Default)]
pub(crate) struct ChannelSlot {
    /// Open on both sides.
    pub(crate) opened: bool,
    /// Closed, and why.
    pub(crate) closed: Option<CloseReason>,
    /// Closed (or aborted) by this side's handle.
    pub(crate) closed_locally: bool,
    /// The peer finished writing: after the queued data, the reader's end.
    pub(crate) finished: bool,
    /// This side finished writing (finish, close): writes are refused.
    pub(crate) write_finished: bool,
    /// This side wrote something (dropping an unfinished writer aborts).
    pub(crate) wrote: bool,
    pub(crate) inbox: Inbox,
    /// Waiting for it to open or close.
    pub(crate) state: Wakers,
}

/// A stream's side of the shared state.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    pub(crate) state: StreamState,
    pub(crate) reason: Option<StateReason>,
    /// Every transition so far, in order (states only move forward: a handful at most).
    pub(crate) history: Vec<(StreamState, Option<StateReason>)>,
    pub(crate) reliable: bool,
    /// The peer finished writing (StreamFinished): after the queued data, the reader's
    /// end. A stream that ends without it was cut short: its reader gets an error.
    pub(crate) finished: bool,
    /// The peer acknowledged everything this side wrote and its FIN.
    pub(crate) acknowledged: bool,
    /// This side finished writing (finish, close): writes are refused.
    pub(crate) write_finished: bool,
    /// This side wrote something (dropping the session with an unfinished writer aborts).
    pub(crate) wrote: bool,
    pub(crate) state_wakers: Wakers,
    pub(crate) inbox: Inbox,
    pub(crate) channels: HashMap<ChannelId, ChannelSlot>,
    /// Channels the peer opened, not yet accepted or refused: (id, cookie).
    pub(crate) opens: VecDeque<(ChannelId, Bytes)>,
    pub(crate) open_wakers: Wakers,
    /// Waiting for an open of ours to be answered (room under the pending-open limit).
    pub(crate) room_wakers: Wakers,
}

impl StreamSlot {
    pub(crate) fn new(reliable: bool) -> StreamSlot {
        StreamSlot {
            state: StreamState::Initialized,
            reason: None,
            history: Vec::new(),
            reliable,
            finished: false,
            acknowledged: false,
            write_finished: false,
            wrote: false,
            state_wakers: Wakers::default(),
            inbox: Inbox::default(),
            channels: HashMap::new(),
            opens: VecDeque::new(),
            open_wakers: Wakers::default(),
            room_wakers: Wakers::default(),
        }
    }
}

/// A session's side of the shared state.
#[derive(Debug, Default)]
pub(crate) struct SessionSlot {
    /// The request in flight (made by `request`), until its outcome is taken.
    pub(crate) pending: Option<PendingOffer>,
    pub(crate) outcome: Option<RequestOutcome>,
    pub(crate) request_wakers: Wakers,
    pub(crate) streams: HashMap<StreamId, StreamSlot>,
}

/// Who gets the endpoint's events.
pub(crate) enum Mode {
    /// Routed to the handles' queues and wakers.
    Handles,
    /// Handed to one callback handler on the driver task.
    Callback(Box<dyn Callbacks>),
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Handles => "Handles",
            Mode::Callback(_) => "Callback",
        })
    }
}

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) engine: Engine,
    pub(crate) mode: Mode,
    /// The driver task, woken after a handle's call produced something to send.
    driver: Option<Waker>,
    /// Set when the manager is gone: the driver flushes and stops.
    pub(crate) closing: bool,
    /// Live session handles (the driver outlives a closed manager until they are gone).
    pub(crate) session_handles: usize,
    /// Set when the driver stopped (with why).
    pub(crate) stopped: Option<String>,
    pub(crate) requests: HashMap<Option<HandlerId>, RequestQueue>,
    pub(crate) sessions: HashMap<SessionId, SessionSlot>,
    /// Session requests dropped because their handler's queue was full.
    pub(crate) requests_dropped: u64,
    /// Datagrams dropped because a reader did not keep up.
    pub(crate) datagrams_dropped: u64,
}

/// The lock and what it guards.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(engine: Engine, mode: Mode) -> Shared {
        Shared {
            state: Mutex::new(State {
                engine,
                mode,
                driver: None,
                closing: false,
                session_handles: 0,
                stopped: None,
                requests: HashMap::new(),
                sessions: HashMap::new(),
                requests_dropped: 0,
                datagrams_dropped: 0,
            }),
        }
    }

    /// The state. A panic in another holder leaves it as it was (every update is one
    /// assignment or push), so a poisoned lock is taken anyway.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Remembers the driver's waker.
    pub(crate) fn set_driver(&mut self, waker: &Waker) {
        if !self.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.driver = Some(waker.clone());
        }
    }

    /// After a call on the endpoint: the driver sends what it produced.
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    /// The endpoint's counters.
    pub(crate) fn stats(&mut self) -> EndpointStats {
        self.engine.endpoint().stats()
    }

    /// Whether the peer has the channel paused: the core's flag (kept in one place; the
    /// ChannelPending/ChannelResumed events only wake the waiters).
    pub(crate) fn channel_paused(&mut self, s: SessionId, st: StreamId, ch: ChannelId) -> bool {
        self.engine
            .endpoint()
            .session(s)
            .ok()
            .and_then(|m| m.channel_paused_by_peer(st, ch).ok())
            .unwrap_or(false)
    }

    pub(crate) fn stream_slot(&mut self, s: SessionId, st: StreamId) -> Option<&mut StreamSlot> {
        self.sessions.get_mut(&s)?.streams.get_mut(&st)
    }

    /// The driver stopped: every waiter wakes to find out.
    pub(crate) fn wake_everyone(&mut self) {
        for q in self.requests.values_mut() {
            q.wakers.wake();
        }
        for s in self.sessions.values_mut() {
            s.request_wakers.wake();
            for st in s.streams.values_mut() {
                st.state_wakers.wake();
                st.inbox.wake_all();
                st.open_wakers.wake();
                st.room_wakers.wake();
                for c in st.channels.values_mut() {
                    c.inbox.wake_all();
                    c.state.wake();
                }
            }
        }
    }

    /// Hands one event of the endpoint to whoever waits for it.
    pub(crate) fn route(&mut self, event: Event) {
        if let Mode::Callback(_) = self.mode {
            self.callback(event);
            return;
        }
        match event {
            Event::SessionRequest {
                handler,
                peer,
                offer,
            } => {
                let q = self.requests.entry(handler).or_default();
                if q.queue.len() >= MAX_QUEUED_REQUESTS {
                    self.requests_dropped += 1;
                } else {
                    q.queue.push_back((peer, offer));
                    q.wakers.wake();
                }
            }
            Event::RequestComplete { session, outcome } => {
                if let Some(slot) = self.sessions.get_mut(&session) {
                    slot.outcome = Some(outcome);
                    slot.request_wakers.wake();
                }
            }
            Event::StateChanged {
                session,
                stream,
                state,
                reason,
            } => {
                if let Some(slot) = self.stream_slot(session, stream) {
                    slot.state = state;
                    slot.reason = reason;
                    if slot.history.len() < MAX_HISTORY {
                        slot.history.push((state, reason));
                    }
                    slot.state_wakers.wake();
                    slot.inbox.wake_all();
                    slot.open_wakers.wake();
                    slot.room_wakers.wake();
                    if state.is_terminal() {
                        for c in slot.channels.values_mut() {
                            c.inbox.wake_all();
                            c.state.wake();
                        }
                    }
                }
            }
            Event::StreamFinished { session, stream } => {
                if let Some(slot) = self.stream_slot(session, stream) {
                    slot.finished = true;
                    slot.inbox.readers.wake();
                }
            }
            Event::StreamAcknowledged { session, stream } => {
                if let Some(slot) = self.stream_slot(session, stream) {
                    slot.acknowledged = true;
                    slot.state_wakers.wake();
                }
            }
            Event::ChannelFinished {
                session,
                stream,
                channel,
            } => self.on_channel(session, stream, channel, |c| c.finished = true),
            Event::StreamData {
                session,
                stream,
                data,
            } => self.deliver(session, stream, None, data),
            Event::ChannelData {
                session,
                stream,
                channel,
                data,
            } => self.deliver(session, stream, Some(channel), data),
            Event::Writable { session, stream } => {
                if let Some(slot) = self.stream_slot(session, stream) {
                    slot.inbox.writers.wake();
                    // On an unreliable stream, room in the datagram queue is room for its
                    // channels' datagrams too.
                    if !slot.reliable {
                        for c in slot.channels.values_mut() {
                            c.inbox.writers.wake();
                        }
                    }
                }
            }
            Event::ChannelOpen {
                session,
                stream,
                channel,
                cookie,
            } => {
                if let Some(slot) = self.stream_slot(session, stream) {
                    slot.channels.insert(channel, ChannelSlot::default());
                    slot.opens.push_back((channel, cookie));
                    slot.open_wakers.wake();
                }
            }
            Event::ChannelOpened {
                session,
                stream,
                channel,
            } => {
                self.on_channel(session, stream, channel, |c| c.opened = true);
                if let Some(slot) = self.stream_slot(session, stream) {
                    slot.room_wakers.wake();
                }
            }
            Event::ChannelClosed {
                session,
                stream,
                channel,
                reason,
            } => {
                self.on_channel(session, stream, channel, |c| c.closed = Some(reason));
                // A channel opened by the peer and closed before the app took it: forget
                // the open.
                if let Some(slot) = self.stream_slot(session, stream) {
                    slot.opens.retain(|(c, _)| *c != channel);
                    slot.room_wakers.wake();
                }
            }
            Event::ChannelPending {
                session,
                stream,
                channel,
            } => self.on_channel(session, stream, channel, |_| {}),
            Event::ChannelResumed {
                session,
                stream,
                channel,
            } => self.on_channel(session, stream, channel, |_| {}),
            Event::ChannelWritable {
                session,
                stream,
                channel,
            } => self.on_channel(session, stream, channel, |_| {}),
            _ => {}
        }
    }

    /// Updates a channel and wakes everyone waiting on it.
    fn on_channel(
        &mut self,
        s: SessionId,
        st: StreamId,
        ch: ChannelId,
        update: impl FnOnce(&mut ChannelSlot),
    ) {
        if let Some(c) = self
            .stream_slot(s, st)
            .and_then(|slot| slot.channels.get_mut(&ch))
        {
            update(c);
            c.state.wake();
            c.inbox.wake_all();
        }
    }

    /// Queues data for a stream's or channel's reader. Reliable data's credit returns when
    /// the reader takes it (the endpoint runs with manual credit), so what is queued is
    /// bounded by the receive windows; datagrams by [`MAX_QUEUED_DATAGRAMS`].
    fn deliver(&mut self, s: SessionId, st: StreamId, ch: Option<ChannelId>, data: Bytes) {
        let Some(slot) = self.stream_slot(s, st) else {
            return;
        };
        let datagram = !slot.reliable;
        let inbox = match ch {
            None => Some(&mut slot.inbox),
            Some(ch) => slot.channels.get_mut(&ch).map(|c| &mut c.inbox),
        };
        let queued = inbox.is_some_and(|i| i.push(data.clone(), datagram));
        if !queued {
            if datagram {
                self.datagrams_dropped += 1;
            } else {
                // Nobody will read it (its channel is gone): give the credit back.
                self.consume(s, st, ch, data.len());
            }
        }
    }

    /// A reader took `n` bytes of reliable data: the peer may send that much more.
    pub(crate) fn consume(&mut self, s: SessionId, st: StreamId, ch: Option<ChannelId>, n: usize) {
        let due = self
            .engine
            .endpoint()
            .session(s)
            .is_ok_and(|mut session| match ch {
                None => session.consume(st, n),
                Some(ch) => session.consume_channel(st, ch, n),
            });
        // Only new credit is worth a driver round (at half a window, not every read).
        if due {
            self.wake_driver();
        }
    }

    /// Callback mode: the handler gets the event; reliable data counts as used at once.
    fn callback(&mut self, event: Event) {
        let Mode::Callback(handler) = &mut self.mode else {
            return;
        };
        let mut ctx = CallbackScope {
            engine: &mut self.engine,
        };
        let consumed = match &event {
            Event::StreamData {
                session,
                stream,
                data,
            } => Some((*session, *stream, None, data.len())),
            Event::ChannelData {
                session,
                stream,
                channel,
                data,
            } => Some((*session, *stream, Some(*channel), data.len())),
            _ => None,
        };
        crate::callback::dispatch(handler.as_mut(), &mut ctx, event);
        if let Some((s, st, ch, n)) = consumed {
            self.consume(s, st, ch, n);
        }
    }
}
