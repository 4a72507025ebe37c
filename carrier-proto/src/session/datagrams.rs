//! Datagrams (unreliable streams and their channels) under the congestion window: sent at
//! once while the window has room, queued (bounded by `Config::datagram_send_buffer`)
//! when it has not, and drained at the controller's pace by `poll_transmit`. A full queue
//! refuses the write (`WouldBlock`, then `Writable`) or, under `DatagramPolicy::DropOldest`,
//! drops the oldest queued ones — never silently: drops are counted and reported.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::Bytes;

use super::Conn;
use super::Session;
use crate::channel::{ChannelFrame, ChannelId};
use crate::config::DatagramPolicy;
use crate::error::Error;
use crate::event::Event;
use crate::packet::Frame;
use crate::stream::StreamId;
use crate::time::Instant;
use crate::types::StreamState;

/// One datagram waiting for the window.
#[derive(Debug)]
struct Queued {
    stream: u8,
    /// The channel, for a channel datagram.
    channel: Option<u64>,
    data: Bytes,
}

impl Queued {
    fn frame(&self) -> Frame<'_> {
        match self.channel {
            None => Frame::Datagram {
                stream: self.stream,
                data: &self.data,
            },
            Some(channel) => Frame::Channel(ChannelFrame::Datagram {
                stream: self.stream,
                channel,
                data: &self.data,
            }),
        }
    }
}

/// A session's datagram send queue.
#[derive(Debug, Default)]
pub(crate) struct DatagramQueue {
    queue: VecDeque<Queued>,
    /// Payload bytes queued.
    bytes: usize,
    /// Streams a full queue refused a write on: they get `Writable` when it has room.
    blocked: Vec<StreamId>,
    /// A DropOldest episode is under way (reported once, until the queue drains).
    dropping: bool,
}

impl DatagramQueue {
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Payload bytes waiting.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.bytes
    }

    /// The wire size of the next datagram's frame.
    fn front_len(&self) -> Option<usize> {
        self.queue.front().map(|q| q.frame().encoded_len())
    }

    /// Forgets a stream's datagrams (it ended: nobody would read them).
    pub(crate) fn discard_stream(&mut self, stream: u8) {
        let before = self.queue.len();
        self.queue.retain(|q| q.stream != stream);
        if self.queue.len() != before {
            self.bytes = self.queue.iter().map(|q| q.data.len()).sum();
        }
        self.blocked.retain(|s| s.0 != stream);
    }
}

impl Session {
    /// Sends a datagram frame now if the window has room and nothing queued is ahead of
    /// it; otherwise queues it (see the module docs).
    pub(crate) fn send_datagram(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        stream: StreamId,
        channel: Option<ChannelId>,
        data: &[u8],
    ) -> Result<usize, Error> {
        let item = Queued {
            stream: stream.0,
            channel: channel.map(ChannelId::as_u64),
            data: Bytes::new(),
        };
        let wire = item.frame().encoded_len() + data.len() + self.overhead();
        if self.datagrams.is_empty() && self.transport.window_allows(wire) {
            let frame = match channel {
                None => Frame::Datagram {
                    stream: stream.0,
                    data,
                },
                Some(c) => Frame::Channel(ChannelFrame::Datagram {
                    stream: stream.0,
                    channel: c.as_u64(),
                    data,
                }),
            };
            self.send_datagram_frame(conn, now, &frame, channel);
            return Ok(data.len());
        }
        let limit = conn.config.datagram_send_buffer;
        let q = &mut self.datagrams;
        if q.bytes + data.len() > limit && !q.queue.is_empty() {
            match conn.config.datagram_policy {
                DatagramPolicy::Block => {
                    if !q.blocked.contains(&stream) {
                        q.blocked.push(stream);
                    }
                    return Err(Error::WouldBlock);
                }
                DatagramPolicy::DropOldest => {
                    while q.bytes + data.len() > limit {
                        let Some(old) = q.queue.pop_front() else {
                            break;
                        };
                        q.bytes -= old.data.len();
                        conn.stats.datagrams_dropped_oldest += 1;
                    }
                    if !q.dropping {
                        q.dropping = true;
                        crate::trace::log_debug!(
                            limit,
                            reason = "send queue full (DropOldest)",
                            "queued datagrams dropped"
                        );
                        conn.emit(Event::DatagramsDropped { session: self.id });
                    }
                }
            }
        }
        q.bytes += data.len();
        q.queue.push_back(Queued {
            data: Bytes::copy_from_slice(data),
            ..item
        });
        conn.stats.datagrams_queued += 1;
        Ok(data.len())
    }

    fn send_datagram_frame(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        frame: &Frame<'_>,
        channel: Option<ChannelId>,
    ) {
        self.send_frames(conn, now, core::slice::from_ref(frame));
        conn.stats.datagrams_sent += 1;
        if let (Some(c), Frame::Channel(ChannelFrame::Datagram { stream, .. })) = (channel, frame) {
            if let Some(m) = self
                .streams
                .get_mut(usize::from(*stream))
                .and_then(|s| s.mux.as_deref_mut())
            {
                m.on_datagram_sent(c, now);
            }
        }
    }

    /// Sends the next queued datagram if the window (and pacer) let it go now. Returns
    /// whether a packet was built.
    pub(crate) fn poll_datagram(&mut self, conn: &mut Conn, now: Instant) -> bool {
        let Some(len) = self.datagrams.front_len() else {
            return false;
        };
        let wire = len + self.overhead();
        let t = &mut self.transport;
        if !(t.window_allows(wire) || t.recovery.bytes_in_flight == 0) {
            return false;
        }
        if let Some(at) = t.pacing_delay(now, wire) {
            t.pacing_until = Some(t.pacing_until.map_or(at, |p| p.min(at)));
            return false;
        }
        let Some(item) = self.datagrams.queue.pop_front() else {
            return false;
        };
        self.datagrams.bytes -= item.data.len();
        let live = self
            .streams
            .get(usize::from(item.stream))
            .is_some_and(|s| s.state == StreamState::Connected);
        if live {
            let channel = item.channel.map(ChannelId);
            self.send_datagram_frame(conn, now, &item.frame(), channel);
        }
        self.after_datagram_dequeued(conn, now);
        live
    }

    /// Room freed in the queue: writers it refused may go on; an emptied queue ends a drop
    /// episode (and may finish a graceful close).
    fn after_datagram_dequeued(&mut self, conn: &mut Conn, now: Instant) {
        let q = &mut self.datagrams;
        if q.queue.is_empty() {
            q.dropping = false;
        }
        if !q.blocked.is_empty() && q.bytes <= conn.config.datagram_send_buffer / 2 {
            for stream in core::mem::take(&mut q.blocked) {
                conn.emit(Event::Writable {
                    session: self.id,
                    stream,
                });
            }
        }
        if q.queue.is_empty() {
            self.check_closing(conn, now);
        }
    }
}
