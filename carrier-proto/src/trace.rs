//! Logging through [`tracing`](https://docs.rs/tracing) when the `tracing` feature is on;
//! with it off, every macro here expands to nothing and [`Span`] is an empty type, so the
//! core pays nothing.
//!
//! What is logged (targets start with `carrier_proto`, so `RUST_LOG=carrier=debug` shows
//! them): a `session` span (id, peer) entered for every call into a session, a `stream`
//! span per stream, and events at state changes, path selection, loss episodes and
//! congestion changes, refusals, and every dropped packet or datagram with its reason.

#[cfg(feature = "tracing")]
pub(crate) use tracing::Span;

/// No tracing: a span is nothing.
#[cfg(not(feature = "tracing"))]
#[derive(Clone, Debug, Default)]
pub(crate) struct Span;

#[cfg(not(feature = "tracing"))]
impl Span {
    /// Runs `f` (there is no span to enter).
    fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// A clone of `span` to enter around a call, if anything records it (the span lives in the
/// session the call borrows, hence the clone; a disabled span costs nothing this way).
pub(crate) fn active(span: &Span) -> Option<Span> {
    #[cfg(feature = "tracing")]
    {
        (!span.is_disabled()).then(|| span.clone())
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        None
    }
}

/// Runs `f` inside `span` (from [`active`]), or just runs it.
pub(crate) fn within<R>(span: Option<Span>, f: impl FnOnce() -> R) -> R {
    match span {
        Some(span) => span.in_scope(f),
        None => f(),
    }
}

/// The span of a session: every call into it runs inside.
pub(crate) fn session_span(id: crate::types::SessionId, peer: &str) -> Span {
    #[cfg(feature = "tracing")]
    {
        tracing::debug_span!("session", id = %format_args!("{:016x}", id.as_u64()), peer)
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = (id, peer);
        Span
    }
}

/// The span of a stream, inside its session's.
pub(crate) fn stream_span(
    session: &Span,
    index: u32,
    kind: crate::types::StreamType,
    options: crate::types::StreamOptions,
) -> Span {
    #[cfg(feature = "tracing")]
    {
        tracing::debug_span!(parent: session, "stream", index, ?kind, ?options)
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = (session, index, kind, options);
        Span
    }
}

/// `tracing::trace!` with the feature on; nothing without.
#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! log_trace {
    ($($t:tt)*) => { tracing::trace!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! log_trace {
    ($($t:tt)*) => {};
}
#[allow(unused_imports)]
pub(crate) use log_trace;

/// `tracing::debug!` with the feature on; nothing without.
#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! log_debug {
    ($($t:tt)*) => { tracing::debug!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! log_debug {
    ($($t:tt)*) => {};
}
#[allow(unused_imports)]
pub(crate) use log_debug;

/// `tracing::info!` with the feature on; nothing without.
#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! log_info {
    ($($t:tt)*) => { tracing::info!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! log_info {
    ($($t:tt)*) => {};
}
#[allow(unused_imports)]
pub(crate) use log_info;

/// `tracing::warn!` with the feature on; nothing without.
#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! log_warn {
    ($($t:tt)*) => { tracing::warn!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! log_warn {
    ($($t:tt)*) => {};
}
#[allow(unused_imports)]
pub(crate) use log_warn;
