//! A datagram the endpoint routed here: opened with the session's own keys (or checked
//! against its CRC in a plain session), handed to [`Session::handle_packet`], and counted.

use bytes::Bytes;
use core::net::SocketAddr;
use core::ops::Range;

use super::{Conn, Drop, Received, Session};
use crate::crypto::OpenError;
use crate::packet::{Header, PacketError};
use crate::time::Instant;

/// A datagram ready for [`Session::handle_packet`].
struct Opened {
    header: Header,
    /// The datagram (a plain session's) or the plaintext (a protected session's).
    datagram: Bytes,
    /// Where the frames are in `datagram`.
    payload: Range<usize>,
}

impl Session {
    /// Opens, processes and counts one datagram for this session. Never fails: what is
    /// dropped is counted in the session's stats.
    pub(crate) fn handle_datagram(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        remote: SocketAddr,
        local: SocketAddr,
        contents: Bytes,
    ) {
        let Some(Opened {
            header,
            datagram,
            payload,
        }) = self.open(conn, remote, contents)
        else {
            return;
        };
        let packet = Received {
            now,
            local,
            remote,
            header: &header,
            payload: &datagram[payload],
            datagram: &datagram,
        };
        let result = self.handle_packet(conn, packet);
        // Only a packet the session took marks the replay window: a dropped one (a copy
        // raced in from another address, say) must leave its number open for the original.
        if result.is_ok() {
            // Later packet numbers are restored from their truncation against this one.
            self.largest_rx = Some(
                self.largest_rx
                    .map_or(header.packet_number, |l| l.max(header.packet_number)),
            );
        }
        if let Some(p) = self.protection.as_deref_mut() {
            match result {
                Ok(()) => p.accept(header.packet_number),
                Err(Drop::Ended) => {}
                Err(_) => conn.stats.dropped_authenticated += 1,
            }
        }
        let reason = match result {
            Ok(()) => return,
            Err(Drop::Malformed) => {
                conn.stats.dropped_malformed += 1;
                "malformed frames"
            }
            Err(Drop::Unexpected) => {
                conn.stats.dropped_unexpected += 1;
                "not expected now or from this address"
            }
            Err(Drop::Ended) => {
                conn.stats.dropped_after_end += 1;
                "session ended"
            }
        };
        dropped(&remote, header.packet_number, reason);
    }

    /// A protected session's packets are authenticated and decrypted with its keys; a
    /// plain one's are checked against their CRC. `None`: dropped and counted.
    fn open(&mut self, conn: &mut Conn, remote: SocketAddr, contents: Bytes) -> Option<Opened> {
        let Some(protection) = self.protection.as_deref_mut() else {
            return match Header::parse(&contents, self.largest_rx) {
                Ok((header, payload)) => {
                    // The payload lies between header and trailer.
                    let start = payload.as_ptr() as usize - contents.as_ptr() as usize;
                    let payload = start..start + payload.len();
                    Some(Opened {
                        header,
                        datagram: contents,
                        payload,
                    })
                }
                Err(PacketError::BadChecksum) => {
                    conn.stats.dropped_bad_checksum += 1;
                    dropped(&remote, None, "bad checksum");
                    None
                }
                Err(_) => {
                    conn.stats.dropped_malformed += 1;
                    dropped(&remote, None, "malformed header");
                    None
                }
            };
        };
        let Ok(sealed) = Header::parse_protected(&contents, crate::crypto::TAG_LEN) else {
            conn.stats.dropped_malformed += 1;
            dropped(&remote, None, "malformed header");
            return None;
        };
        let opened = conn.open(
            protection,
            sealed.packet_type,
            sealed.destination,
            self.largest_rx,
            contents,
        );
        match opened {
            Ok((header, plain)) => Some(Opened {
                header,
                payload: 0..plain.len(),
                datagram: plain,
            }),
            Err(e) => {
                let reason = match e {
                    OpenError::BadTag => {
                        conn.stats.dropped_bad_tag += 1;
                        "bad authentication tag"
                    }
                    OpenError::Replay => {
                        conn.stats.dropped_replay += 1;
                        "replayed or too old"
                    }
                    OpenError::Exhausted => {
                        conn.stats.dropped_bad_tag += 1;
                        self.keys_exhausted(conn);
                        "bad authentication tag; keys exhausted"
                    }
                };
                dropped(&remote, None, reason);
                None
            }
        }
    }
}

/// Logs a dropped packet with its reason (the session's span says which session).
fn dropped(remote: &SocketAddr, packet_number: impl Into<Option<u64>>, reason: &'static str) {
    let packet_number = packet_number.into();
    crate::trace::log_debug!(%remote, ?packet_number, reason, "packet dropped");
    let _ = (remote, packet_number, reason);
}
