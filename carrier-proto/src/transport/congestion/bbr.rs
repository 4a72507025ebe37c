//! BBR version 1 (draft-cardwell-iccrg-bbr-congestion-control-00/02): congestion control by
//! a model of the path instead of by loss.
//!
//! The model has two numbers: the bottleneck bandwidth `btl_bw` (the windowed maximum of
//! the delivery-rate samples over the last [`BTL_BW_FILTER_ROUNDS`] round trips) and the
//! round-trip propagation time `min_rtt` (the windowed minimum of the RTT samples over
//! [`MIN_RTT_FILTER`]). From them BBR sets the pacing rate to `pacing_gain · btl_bw` and the
//! window to `cwnd_gain · btl_bw · min_rtt` plus a few send quanta, and cycles through four
//! states to keep the model fresh:
//!
//! - **Startup**: both gains `2/ln 2`, so the sending rate doubles per round, until the
//!   bandwidth estimate grew less than 25% in three rounds in a row (the pipe is full);
//! - **Drain**: pacing gain `ln 2/2` until what is in flight is back to one BDP (the queue
//!   Startup built is gone);
//! - **ProbeBW**: the steady state, pacing gain cycling `1.25, 0.75, 1, 1, 1, 1, 1, 1` (one
//!   phase per `min_rtt`: probe for more bandwidth, drain what the probe queued, cruise),
//!   window gain 2;
//! - **ProbeRTT**: when `min_rtt` went [`MIN_RTT_FILTER`] without a new minimum, the window
//!   drops to four datagrams for at least [`PROBE_RTT_DURATION`] and one round, so the
//!   queue drains and the propagation delay shows again.
//!
//! Ordinary loss does not cut the window: random (non-congestive) loss leaves the model
//! intact, which is the point of BBR on lossy paths, where the loss-based NewReno and CUBIC
//! collapse to a few percent of the link (Mathis: rate ≈ `1.22·MSS / (RTT·√p)`).
//! Persistent congestion (RFC 9002 §7.6) does collapse it; see
//! [`Controller::on_congestion_event`] on [`Bbr`].
//!
//! The controller lives on [`RateSample`]s ([`Controller::on_rate_sample`], one per ACK
//! frame). All arithmetic is integer: bytes, bytes per second and nanoseconds, widened to
//! `u128` and saturating; the gains are fixed-point fractions of [`GAIN_UNIT`].
//!
//! Left out of the draft, on purpose:
//! - packet conservation in loss recovery (the draft's `BBRModulateCwndForRecovery`): it
//!   cuts the window on every loss episode, which is what random loss must not do;
//! - the idle-restart special cases: after idle the window and model are kept; the
//!   transport's pacer spreads the restart.

use alloc::boxed::Box;
use core::time::Duration;

use super::{Controller, RateSample, initial_window, minimum_window};
use crate::time::Instant;
use crate::transport::rtt::RttEstimator;

/// Gains are fixed-point numbers in units of `1/GAIN_UNIT` (thousandths), so the whole
/// controller stays in integer math.
const GAIN_UNIT: u64 = 1000;
/// Startup's pacing and window gain, `2/ln 2 ≈ 2.885`: the smallest gain that doubles the
/// delivery rate every round.
const HIGH_GAIN: u64 = 2885;
/// Drain's pacing gain, `ln 2/2 ≈ 0.347` (the inverse of [`HIGH_GAIN`]): empties the queue
/// Startup built in about one round.
const DRAIN_GAIN: u64 = 347;
/// ProbeBW's window gain: two BDPs, room for ACK aggregation and the 1.25 probe.
const CWND_GAIN: u64 = 2000;
/// The least round trip the window is sized for. On a sub-millisecond path (loopback, a
/// LAN) the ACK clock runs at the speed of the hosts, not of the wire: a receiver's ACK
/// waits for its task to be scheduled and its batch to be read. Sized to the few
/// microseconds of the best sample, the window held a handful of packets and the transfer
/// became stop-and-wait on task wake-ups. One millisecond is the timer granularity
/// (RFC 9002's kGranularity) the drivers work at anyway.
const WINDOW_RTT_FLOOR: Duration = Duration::from_millis(1);

/// ProbeBW's pacing gains, one phase per `min_rtt`: probe (1.25), drain the probe's queue
/// (0.75), cruise (1) for six phases.
const PACING_GAIN_CYCLE: [u64; 8] = [1250, 750, 1000, 1000, 1000, 1000, 1000, 1000];
/// The bandwidth filter's window, in round trips: a whole gain cycle plus two rounds, so a
/// probe's sample survives until the next probe.
const BTL_BW_FILTER_ROUNDS: u64 = 10;
/// The min-RTT filter's window: a minimum older than this sends BBR to ProbeRTT.
const MIN_RTT_FILTER: Duration = Duration::from_secs(10);
/// How long ProbeRTT holds the window at [`MIN_PIPE_DATAGRAMS`] (at least, and at least one
/// round).
const PROBE_RTT_DURATION: Duration = Duration::from_millis(200);
/// The smallest window BBR uses on its own (the draft's `BBRMinPipeCwnd`), in datagrams:
/// enough to keep the ACK clock going with delayed ACKs. Also ProbeRTT's window.
const MIN_PIPE_DATAGRAMS: usize = 4;
/// Startup ends when the bandwidth estimate grew by less than this factor (5/4: 25%) ...
const FULL_BW_GROWTH: (u128, u128) = (5, 4);
/// ... in this many rounds in a row.
const FULL_BW_ROUNDS: u32 = 3;
/// Pacing rates below 1.2 Mbit/s (in bytes per second) send one datagram at a time.
const LOW_RATE: u64 = 150_000;
/// Pacing rates below 24 Mbit/s (in bytes per second) send two datagrams at a time.
const MID_RATE: u64 = 3_000_000;
/// At higher rates the send quantum is one millisecond of the rate, at most 64 KiB.
const MAX_SEND_QUANTUM: u64 = 65_536;
/// The window has room for this many send quanta beyond `cwnd_gain · BDP`.
const QUANTA: u128 = 3;
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The state machine's states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Startup,
    Drain,
    ProbeBw,
    ProbeRtt,
}

/// Kathleen Nichols' windowed running maximum (as in Linux's `lib/minmax.c`): the best,
/// second best and third best samples of the window's sub-windows, keyed by round count.
/// Constant memory, and the maximum expires one window after it was measured.
#[derive(Clone, Copy, Debug, Default)]
struct MaxFilter {
    /// `(round, value)`, best first.
    s: [(u64, u64); 3],
}

impl MaxFilter {
    fn get(&self) -> u64 {
        self.s[0].1
    }

    /// Takes `value` measured in round `t`, for a window of `win` rounds.
    fn update(&mut self, t: u64, value: u64, win: u64) {
        let val = (t, value);
        if value >= self.s[0].1 || t.saturating_sub(self.s[2].0) > win {
            // A new maximum, or nothing left in the window: forget everything else.
            self.s = [val; 3];
            return;
        }
        if value >= self.s[1].1 {
            self.s[1] = val;
            self.s[2] = val;
        } else if value >= self.s[2].1 {
            self.s[2] = val;
        }
        let dt = t.saturating_sub(self.s[0].0);
        if dt > win {
            // The best expired: the second becomes the best, the third the second (twice,
            // if the second expired too; the third is in the window, checked above).
            self.s = [self.s[1], self.s[2], val];
            if t.saturating_sub(self.s[0].0) > win {
                self.s = [self.s[1], self.s[2], val];
            }
        } else if self.s[1].0 == self.s[0].0 && dt > win / 4 {
            // A quarter of the window without a new second choice: take one from it.
            self.s[1] = val;
            self.s[2] = val;
        } else if self.s[2].0 == self.s[1].0 && dt > win / 2 {
            // Half the window without a new third choice.
            self.s[2] = val;
        }
    }
}

/// The BBR (version 1) congestion controller: paces at the path's measured bottleneck
/// bandwidth and keeps about two bandwidth-delay products in flight, whatever the loss.
///
/// Before the first [`RateSample`] the window is the initial window (RFC 9002 §7.2) and
/// [`Controller::pacing_rate`] is `None`: there is no model yet, and the transport's own
/// pacer spreads the initial window over its RTT guess. The first sample (with an RTT)
/// sets the pacing rate to `HIGH_GAIN · window / min_rtt` (the draft's
/// `BBRInitPacingRate`); from then on it follows the model (in Startup it only rises, so a
/// small first sample cannot stall the start).
#[derive(Clone, Debug)]
pub struct Bbr {
    max_datagram: usize,
    mode: Mode,
    /// Delivery rate in bytes per second, windowed maximum over rounds.
    btl_bw: MaxFilter,
    /// `None` before the first RTT sample.
    min_rtt: Option<Duration>,
    /// When `min_rtt` was last lowered or renewed.
    min_rtt_stamp: Instant,
    /// Round trips counted so far (the bandwidth filter's clock).
    round_count: u64,
    /// A round ends when a sample's `prior_delivered` reaches this.
    next_round_delivered: u64,
    /// The current sample ended a round.
    round_start: bool,
    /// Startup's full-pipe detection: the bandwidth of the last 25% growth ...
    full_bw: u64,
    /// ... the rounds since ...
    full_bw_count: u32,
    /// ... and whether the pipe was found full (Startup is over for good, until persistent
    /// congestion).
    filled_pipe: bool,
    /// Current gains, in [`GAIN_UNIT`]s.
    pacing_gain: u64,
    cwnd_gain: u64,
    /// ProbeBW's phase in [`PACING_GAIN_CYCLE`], and when it began.
    cycle_index: usize,
    cycle_stamp: Instant,
    /// ProbeRTT ends at this instant (and after a round); `None` until the window is down to
    /// [`MIN_PIPE_DATAGRAMS`].
    probe_rtt_done: Option<Instant>,
    probe_rtt_round_done: bool,
    /// The window before ProbeRTT, restored after it.
    prior_cwnd: usize,
    /// Samples of packets sent before this much was delivered are app-limited: ProbeRTT's
    /// own small window must not look like a slower path (the draft marks the connection
    /// app-limited during ProbeRTT; the controller does it here, as it cannot mark packets).
    app_limited_until: u64,
    /// Samples of packets sent before this much was delivered are not bandwidth samples at
    /// all: set by persistent congestion, whose lost flight says nothing about the path now.
    stale_until: u64,
    /// The total delivered of the last sample: the difference is what one ACK delivered.
    total_delivered: u64,
    cwnd: usize,
    pacing_rate: Option<u64>,
}

impl Bbr {
    /// A controller for datagrams of at most `max_datagram` bytes, in Startup with the
    /// initial window (RFC 9002 §7.2) and no pacing rate of its own yet.
    pub fn new(max_datagram: usize) -> Self {
        Bbr {
            max_datagram,
            mode: Mode::Startup,
            btl_bw: MaxFilter::default(),
            min_rtt: None,
            min_rtt_stamp: Instant::ZERO,
            round_count: 0,
            next_round_delivered: 0,
            round_start: false,
            full_bw: 0,
            full_bw_count: 0,
            filled_pipe: false,
            pacing_gain: HIGH_GAIN,
            cwnd_gain: HIGH_GAIN,
            cycle_index: 0,
            cycle_stamp: Instant::ZERO,
            probe_rtt_done: None,
            probe_rtt_round_done: false,
            prior_cwnd: 0,
            app_limited_until: 0,
            stale_until: 0,
            total_delivered: 0,
            cwnd: initial_window(max_datagram),
            pacing_rate: None,
        }
    }

    /// The bottleneck bandwidth estimate, in bytes per second (0 before the first sample).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn btl_bw(&self) -> u64 {
        self.btl_bw.get()
    }

    /// The round-trip propagation time estimate (`None` before the first RTT sample).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The state, for stats: `"Startup"`, `"Drain"`, `"ProbeBW"` or `"ProbeRTT"`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn state(&self) -> &'static str {
        match self.mode {
            Mode::Startup => "Startup",
            Mode::Drain => "Drain",
            Mode::ProbeBw => "ProbeBW",
            Mode::ProbeRtt => "ProbeRTT",
        }
    }

    fn min_pipe_cwnd(&self) -> usize {
        self.max_datagram.saturating_mul(MIN_PIPE_DATAGRAMS)
    }

    /// The draft's `BBRSetSendQuantum`, from the pacing rate.
    fn send_quantum(&self) -> u64 {
        let mss = self.max_datagram as u64;
        match self.pacing_rate.unwrap_or(0) {
            r if r < LOW_RATE => mss,
            r if r < MID_RATE => mss.saturating_mul(2),
            r => (r / 1000).min(MAX_SEND_QUANTUM).max(mss),
        }
    }

    /// The draft's `BBRInflight(gain)`: `gain · btl_bw · min_rtt` plus three send quanta,
    /// with `min_rtt` taken as at least [`WINDOW_RTT_FLOOR`]. The initial window while there
    /// is no RTT sample.
    fn inflight(&self, gain: u64) -> usize {
        let Some(min_rtt) = self.min_rtt else {
            return initial_window(self.max_datagram);
        };
        let rtt = min_rtt.max(WINDOW_RTT_FLOOR);
        let bdp = u128::from(self.btl_bw.get()).saturating_mul(rtt.as_nanos()) / NANOS_PER_SEC;
        let target = bdp.saturating_mul(u128::from(gain)) / u128::from(GAIN_UNIT);
        let quanta = u128::from(self.send_quantum()).saturating_mul(QUANTA);
        usize::try_from(target.saturating_add(quanta)).unwrap_or(usize::MAX)
    }

    /// Changes the state machine's state and logs the change (a congestion state change
    /// a user may want to see: why did the rate drop? a ProbeRtt).
    fn set_mode(&mut self, mode: Mode) {
        if self.mode != mode {
            crate::trace::log_debug!(
                from = ?self.mode,
                to = ?mode,
                cwnd = self.cwnd,
                "bbr state"
            );
        }
        self.mode = mode;
    }

    fn enter_startup(&mut self) {
        self.set_mode(Mode::Startup);
        self.pacing_gain = HIGH_GAIN;
        self.cwnd_gain = HIGH_GAIN;
    }

    fn enter_drain(&mut self) {
        self.set_mode(Mode::Drain);
        self.pacing_gain = DRAIN_GAIN;
        self.cwnd_gain = HIGH_GAIN;
    }

    fn enter_probe_bw(&mut self, now: Instant) {
        self.set_mode(Mode::ProbeBw);
        self.pacing_gain = GAIN_UNIT;
        self.cwnd_gain = CWND_GAIN;
        // The draft starts at a random phase other than the 0.75 one, so that flows sharing
        // a bottleneck don't probe in lockstep. The core has no randomness of its own: a
        // hash of the time and the delivered count is random enough for that, and keeps the
        // controller deterministic for a given input.
        let r = mix(now.as_nanos() ^ self.total_delivered.rotate_left(32)) % 7;
        self.cycle_index = PACING_GAIN_CYCLE.len() - 1 - r as usize;
        self.advance_cycle_phase(now);
    }

    fn advance_cycle_phase(&mut self, now: Instant) {
        self.cycle_stamp = now;
        self.cycle_index = (self.cycle_index + 1) % PACING_GAIN_CYCLE.len();
        self.pacing_gain = PACING_GAIN_CYCLE[self.cycle_index];
    }

    fn enter_probe_rtt(&mut self) {
        self.set_mode(Mode::ProbeRtt);
        self.pacing_gain = GAIN_UNIT;
        self.cwnd_gain = GAIN_UNIT;
        self.prior_cwnd = self.cwnd;
        self.probe_rtt_done = None;
    }

    fn exit_probe_rtt(&mut self, now: Instant) {
        self.cwnd = self.cwnd.max(self.prior_cwnd);
        if self.filled_pipe {
            self.enter_probe_bw(now);
        } else {
            self.enter_startup();
        }
    }

    /// The draft's `BBRUpdateRound`.
    fn update_round(&mut self, sample: &RateSample) {
        self.round_start = sample.prior_delivered >= self.next_round_delivered;
        if self.round_start {
            self.next_round_delivered = sample.total_delivered;
            self.round_count = self.round_count.saturating_add(1);
        }
    }

    /// The draft's `BBRUpdateBtlBw` (after the round update): app-limited samples count
    /// only if they raise the estimate.
    fn update_btl_bw(&mut self, rate: u64, app_limited: bool) {
        if rate > 0 && (!app_limited || rate >= self.btl_bw.get()) {
            self.btl_bw
                .update(self.round_count, rate, BTL_BW_FILTER_ROUNDS);
        }
    }

    /// The draft's `BBRCheckCyclePhase`: ProbeBW moves on after one `min_rtt` per phase;
    /// the probe phase lasts until it filled its share of the pipe (or saw loss), the
    /// draining phase ends early once in flight is down to one BDP.
    fn check_cycle_phase(&mut self, now: Instant, prior_inflight: usize, lost: usize) {
        if self.mode != Mode::ProbeBw {
            return;
        }
        let Some(min_rtt) = self.min_rtt else { return };
        let full_length = now - self.cycle_stamp > min_rtt;
        let next = match self.pacing_gain {
            GAIN_UNIT => full_length,
            g if g > GAIN_UNIT => full_length && (lost > 0 || prior_inflight >= self.inflight(g)),
            _ => full_length || prior_inflight <= self.inflight(GAIN_UNIT),
        };
        if next {
            self.advance_cycle_phase(now);
        }
    }

    /// The draft's `BBRCheckFullPipe`: Startup's exit condition, once per round.
    fn check_full_pipe(&mut self, app_limited: bool) {
        if self.filled_pipe || !self.round_start || app_limited {
            return;
        }
        let bw = self.btl_bw.get();
        if u128::from(bw) * FULL_BW_GROWTH.1 >= u128::from(self.full_bw) * FULL_BW_GROWTH.0 {
            self.full_bw = bw;
            self.full_bw_count = 0;
            return;
        }
        self.full_bw_count += 1;
        if self.full_bw_count >= FULL_BW_ROUNDS {
            self.filled_pipe = true;
        }
    }

    /// The draft's `BBRCheckDrain`.
    fn check_drain(&mut self, now: Instant, bytes_in_flight: usize) {
        if self.mode == Mode::Startup && self.filled_pipe {
            self.enter_drain();
        }
        if self.mode == Mode::Drain && bytes_in_flight <= self.inflight(GAIN_UNIT) {
            self.enter_probe_bw(now);
        }
    }

    /// The draft's `BBRUpdateRTprop`; returns whether the minimum had expired. A zero RTT
    /// is no measurement (nothing real is that fast) and is ignored.
    fn update_min_rtt(&mut self, now: Instant, rtt: Duration) -> bool {
        let expired = self.min_rtt.is_some() && now - self.min_rtt_stamp > MIN_RTT_FILTER;
        if !rtt.is_zero() && (expired || self.min_rtt.is_none_or(|min| rtt <= min)) {
            self.min_rtt = Some(rtt);
            self.min_rtt_stamp = now;
        }
        expired
    }

    /// The draft's `BBRCheckProbeRTT` and `BBRHandleProbeRTT`.
    fn check_probe_rtt(&mut self, now: Instant, sample: &RateSample, expired: bool) {
        if self.mode != Mode::ProbeRtt && expired {
            self.enter_probe_rtt();
        }
        if self.mode != Mode::ProbeRtt {
            return;
        }
        let in_flight = sample.bytes_in_flight as u64;
        self.app_limited_until = sample.total_delivered.saturating_add(in_flight).max(1);
        match self.probe_rtt_done {
            None if sample.bytes_in_flight <= self.min_pipe_cwnd() => {
                // The window is down: hold it for the duration and one whole round.
                self.probe_rtt_done = Some(now + PROBE_RTT_DURATION);
                self.probe_rtt_round_done = false;
                self.next_round_delivered = sample.total_delivered;
            }
            None => {}
            Some(done) => {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done && now >= done {
                    self.min_rtt_stamp = now;
                    self.exit_probe_rtt(now);
                }
            }
        }
    }

    /// The draft's `BBRSetPacingRate` (with `BBRInitPacingRate` on the first call that has
    /// an RTT).
    fn set_pacing_rate(&mut self) {
        if self.pacing_rate.is_none()
            && let Some(min_rtt) = self.min_rtt
        {
            let rtt_ns = min_rtt.as_nanos().max(1);
            let nominal = (self.cwnd as u128).saturating_mul(NANOS_PER_SEC) / rtt_ns;
            let rate = nominal.saturating_mul(u128::from(HIGH_GAIN)) / u128::from(GAIN_UNIT);
            self.pacing_rate = Some(u64::try_from(rate).unwrap_or(u64::MAX).max(1));
        }
        let rate = u128::from(self.btl_bw.get()).saturating_mul(u128::from(self.pacing_gain))
            / u128::from(GAIN_UNIT);
        let rate = u64::try_from(rate).unwrap_or(u64::MAX);
        if rate > 0 && (self.filled_pipe || rate > self.pacing_rate.unwrap_or(0)) {
            self.pacing_rate = Some(rate);
        }
    }

    /// The draft's `BBRSetCwnd` without the loss-recovery modulation: grows by what was
    /// delivered, toward `cwnd_gain · BDP` once the pipe is full; four datagrams in
    /// ProbeRTT.
    fn set_cwnd(&mut self, newly_delivered: usize) {
        let target = self.inflight(self.cwnd_gain);
        if self.filled_pipe {
            self.cwnd = self.cwnd.saturating_add(newly_delivered).min(target);
        } else if self.cwnd < target
            || self.total_delivered < initial_window(self.max_datagram) as u64
        {
            self.cwnd = self.cwnd.saturating_add(newly_delivered);
        }
        self.cwnd = self.cwnd.max(self.min_pipe_cwnd());
        if self.mode == Mode::ProbeRtt {
            self.cwnd = self.cwnd.min(self.min_pipe_cwnd());
        }
    }
}

/// A 64-bit finalizer (splitmix64's): spreads every input bit over the output.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Controller for Bbr {
    fn on_sent(&mut self, _now: Instant, _bytes: usize) {
        // Bytes in flight come with each rate sample.
    }

    fn on_ack(
        &mut self,
        _now: Instant,
        _sent: Instant,
        _bytes: usize,
        _app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        // Everything BBR needs (delivered bytes, the RTT of the newest packet, app-limited)
        // comes in the rate sample that follows the ACK frame's `on_ack` calls. The
        // estimator's minimum never expires, so it cannot stand in for the windowed one.
    }

    /// Ordinary loss leaves the window and the model alone: BBRv1 does not take loss as a
    /// congestion signal (the probe phase ends early on it, see the rate sample's `lost`),
    /// so random loss costs only the lost packets.
    ///
    /// Persistent congestion (a whole flight lost, RFC 9002 §7.6) means the model no longer
    /// describes the path. The window collapses to the minimum, the bandwidth estimate and
    /// the full-pipe detection are forgotten, and BBR restarts in Startup from there, with
    /// the pacing rate of a fresh start at that window (`HIGH_GAIN · window / min_rtt`).
    /// Samples of packets sent before the collapse are no longer bandwidth samples (they
    /// would bring the old estimate straight back). `min_rtt` is kept: the propagation
    /// delay did not grow because packets were lost.
    fn on_congestion_event(
        &mut self,
        _now: Instant,
        _sent: Instant,
        _lost_bytes: usize,
        persistent: bool,
    ) {
        if !persistent {
            return;
        }
        self.cwnd = minimum_window(self.max_datagram);
        self.prior_cwnd = self.cwnd;
        self.btl_bw = MaxFilter::default();
        self.full_bw = 0;
        self.full_bw_count = 0;
        self.filled_pipe = false;
        self.probe_rtt_done = None;
        self.stale_until = self.total_delivered;
        self.enter_startup();
        self.pacing_rate = None;
        self.set_pacing_rate();
    }

    fn on_rate_sample(&mut self, now: Instant, sample: &RateSample) {
        // What this ACK frame delivered (the sample's `delivered` spans a whole flight).
        let newly = sample.total_delivered.saturating_sub(self.total_delivered);
        self.total_delivered = self.total_delivered.max(sample.total_delivered);
        let newly = usize::try_from(newly).unwrap_or(usize::MAX);
        let prior_inflight = sample
            .bytes_in_flight
            .saturating_add(newly)
            .saturating_add(sample.lost);
        let app_limited = sample.app_limited || sample.prior_delivered < self.app_limited_until;

        // A zero interval is no rate measurement (draft-cheng discards too short ones):
        // like Linux, such a sample neither ends a round nor feeds the bandwidth filter.
        if sample.interval.is_zero() {
            self.round_start = false;
        } else {
            self.update_round(sample);
            if sample.prior_delivered >= self.stale_until {
                self.update_btl_bw(sample.delivery_rate, app_limited);
            }
        }
        self.check_cycle_phase(now, prior_inflight, sample.lost);
        self.check_full_pipe(app_limited);
        self.check_drain(now, sample.bytes_in_flight);
        let expired = self.update_min_rtt(now, sample.rtt);
        self.check_probe_rtt(now, sample, expired);

        self.set_pacing_rate();
        self.set_cwnd(newly);
    }

    fn pacing_rate(&self) -> Option<u64> {
        self.pacing_rate
    }

    fn on_mtu_update(&mut self, max_datagram: usize) {
        self.max_datagram = max_datagram;
        self.cwnd = self.cwnd.max(minimum_window(max_datagram));
    }

    fn window(&self) -> usize {
        self.cwnd.max(minimum_window(self.max_datagram))
    }

    fn name(&self) -> &'static str {
        "BBR"
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;
    use core::time::Duration;

    use super::*;
    use crate::transport::congestion::{CongestionAlgorithm, Cubic, NewReno};

    const MSS: usize = 1200;
    /// 100 Mbit/s.
    const LINK: u64 = 12_500_000;
    const RTT: Duration = Duration::from_millis(40);
    /// 100 Mbit/s · 40 ms.
    const BDP: usize = 500_000;

    /// Feeds rate samples directly, as a transport would: one datagram delivered per ACK on a
    /// path that delivers `rate` bytes per second with round-trip time `rtt`.
    struct Feed {
        now: Instant,
        total: u64,
    }

    impl Feed {
        fn new() -> Self {
            Feed {
                now: Instant::ZERO + Duration::from_secs(1),
                total: 0,
            }
        }

        /// One ACK; `in_flight` stays outstanding after it (and was, plus this datagram,
        /// when the acknowledged datagram was sent: that sets `prior_delivered`).
        fn ack(
            &mut self,
            cc: &mut Bbr,
            rate: u64,
            rtt: Duration,
            in_flight: usize,
            app_limited: bool,
            lost: usize,
        ) {
            let step = (MSS as u64 * 1_000_000_000 / rate.max(1)).max(1_000);
            self.now += Duration::from_nanos(step);
            self.total += MSS as u64;
            let flight = (in_flight + MSS) as u64;
            let sample = RateSample {
                delivery_rate: rate,
                delivered: flight,
                interval: rtt,
                total_delivered: self.total,
                prior_delivered: self.total.saturating_sub(flight),
                app_limited,
                rtt,
                bytes_in_flight: in_flight,
                lost,
            };
            let mut est = RttEstimator::default();
            est.update(rtt, Duration::ZERO, Duration::ZERO);
            cc.on_ack(self.now, Instant::ZERO, MSS, app_limited, &est);
            if lost > 0 {
                cc.on_congestion_event(self.now, Instant::ZERO, lost, false);
            }
            cc.on_rate_sample(self.now, &sample);
        }

        /// A greedy sender on the 100 Mbit/s path for `d`, crudely: it keeps what its
        /// pacing rate sends in one RTT in flight (plus 1/8 for the bursts, so that the
        /// probe phase can reach its target), at most the window; the path delivers that
        /// at `min(link, in flight / rtt)`.
        fn run(&mut self, cc: &mut Bbr, d: Duration, rtt: Duration) {
            let end = self.now + d;
            while self.now < end {
                let paced = cc.pacing_rate().map_or(u128::MAX, |r| {
                    u128::from(r) * rtt.as_nanos() / 1_000_000_000 * 9 / 8
                });
                let in_flight = (cc.window() as u128).min(paced).max(MSS as u128);
                let rate = (in_flight * 1_000_000_000 / rtt.as_nanos()).min(u128::from(LINK));
                self.ack(cc, rate as u64, rtt, in_flight as usize - MSS, false, 0);
            }
        }
    }

    /// A controller in ProbeBW on the 100 Mbit/s, 40 ms path.
    fn steady() -> (Bbr, Feed) {
        let mut cc = Bbr::new(MSS);
        let mut feed = Feed::new();
        feed.run(&mut cc, Duration::from_secs(2), RTT);
        assert_eq!(cc.mode, Mode::ProbeBw);
        (cc, feed)
    }

    fn within(x: f64, want: f64, tolerance: f64) -> bool {
        (x / want - 1.0).abs() <= tolerance
    }

    #[test]
    fn starts_at_the_initial_window_without_a_rate() {
        let cc = Bbr::new(MSS);
        assert_eq!(cc.window(), initial_window(MSS));
        assert_eq!(cc.pacing_rate(), None);
        assert_eq!(cc.name(), "BBR");
        assert_eq!(cc.state(), "Startup");
        assert_eq!((cc.btl_bw(), cc.min_rtt()), (0, None));
        let boxed = CongestionAlgorithm::Bbr.build(MSS);
        assert_eq!((boxed.name(), boxed.window()), ("BBR", initial_window(MSS)));
        // The first sample sets the initial pacing rate: 2.885 · 12 000 B / 40 ms.
        let mut cc = Bbr::new(MSS);
        Feed::new().ack(&mut cc, 30_000, RTT, 0, false, 0);
        assert_eq!(cc.min_rtt(), Some(RTT));
        assert_eq!(cc.btl_bw(), 30_000);
        let rate = cc.pacing_rate().unwrap_or(0);
        assert!(
            within(rate as f64, 2.885 * 12_000.0 / 0.04, 0.001),
            "{rate}"
        );
    }

    #[test]
    fn constants() {
        // 2/ln 2 and ln 2/2, to the gains' precision.
        assert_eq!(HIGH_GAIN, (2.0 / core::f64::consts::LN_2 * 1000.0) as u64);
        assert_eq!(
            DRAIN_GAIN,
            (core::f64::consts::LN_2 / 2.0 * 1000.0).round() as u64
        );
        assert_eq!(PACING_GAIN_CYCLE.iter().sum::<u64>(), 8 * GAIN_UNIT);
    }

    #[test]
    fn max_filter_keeps_the_windowed_maximum() {
        let mut f = MaxFilter::default();
        f.update(1, 100, 10);
        f.update(2, 50, 10);
        f.update(5, 70, 10);
        assert_eq!(f.get(), 100);
        f.update(11, 60, 10);
        assert_eq!(f.get(), 100, "still in the window");
        f.update(12, 40, 10);
        assert_eq!(f.get(), 70, "the 100 expired; the next best of the window");
        f.update(30, 10, 10);
        assert_eq!(f.get(), 10, "everything expired");
        f.update(31, 20, 10);
        assert_eq!(f.get(), 20, "a new maximum replaces all");
    }

    #[test]
    fn startup_grows_then_drains_then_probes() {
        let mut t_drain = None;
        let mut t_probe_bw = None;
        let mut w_at_exit = 0;
        let mut order = Vec::new();
        let mut cc = Bbr::new(MSS);
        sim::run(&mut cc, &sim::Path::new(0, 3), |now, cc: &Bbr| {
            if order.last() != Some(&cc.mode) {
                order.push(cc.mode);
            }
            if cc.mode == Mode::Drain && t_drain.is_none() {
                t_drain = Some(now);
                w_at_exit = cc.window();
            }
            if cc.mode == Mode::ProbeBw && t_probe_bw.is_none() {
                t_probe_bw = Some(now);
            }
        });
        assert_eq!(order[..3], [Mode::Startup, Mode::Drain, Mode::ProbeBw]);
        assert!(!order.contains(&Mode::ProbeRtt));
        // From 12 kB to more than a BDP (500 kB) in well under a second: 40 ms rounds,
        // about doubling each, plus the three rounds that find the plateau.
        let t_drain = t_drain.unwrap_or(u64::MAX);
        let t_probe_bw = t_probe_bw.unwrap_or(u64::MAX);
        assert!(t_drain < 600_000_000, "drain at {t_drain} ns");
        assert!(w_at_exit > BDP, "window {w_at_exit} when the pipe was full");
        // Drain takes about a round.
        assert!(
            t_probe_bw - t_drain < 200_000_000,
            "{t_drain} → {t_probe_bw}"
        );
        assert!(
            within(cc.btl_bw() as f64, LINK as f64, 0.05),
            "{}",
            cc.btl_bw()
        );
    }

    #[test]
    fn converges_to_two_bdp_and_paces_at_the_bottleneck() {
        let (mut windows, mut rates, mut gains) = (Vec::new(), Vec::new(), Vec::new());
        let mut cc = Bbr::new(MSS);
        sim::run(&mut cc, &sim::Path::new(0, 8), |now, cc: &Bbr| {
            if now > 2_000_000_000 {
                assert_eq!(cc.mode, Mode::ProbeBw);
                assert!(
                    within(cc.btl_bw() as f64, LINK as f64, 0.03),
                    "{}",
                    cc.btl_bw()
                );
                windows.push(cc.window() as f64);
                let rate = cc.pacing_rate().unwrap_or(0) as f64;
                rates.push(rate);
                gains.push((rate / cc.btl_bw() as f64 * 1000.0).round() as u64);
            }
        });
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        // 2 · BDP plus three 12.5 kB send quanta; the quanta follow the pacing gain.
        let (w_min, w_max) = windows
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &w| (a.min(w), b.max(w)));
        let bdp = BDP as f64;
        assert!(
            w_min >= 1.95 * bdp && w_max <= 2.15 * bdp,
            "{w_min}..{w_max}"
        );
        assert!(within(mean(&windows), 2.0 * bdp, 0.1));
        // The pacing rate is the bottleneck rate times the phase's gain, and about the
        // bottleneck rate on average.
        assert!(gains.iter().all(|g| [1250, 750, 1000].contains(g)));
        assert!(gains.contains(&1250) && gains.contains(&750));
        assert!(within(mean(&rates), LINK as f64, 0.05), "{}", mean(&rates));
    }

    #[test]
    fn a_sub_millisecond_path_gets_a_window_for_a_millisecond() {
        // 1 GB/s at a 50 µs round trip (loopback): the window is sized as if the round trip
        // were WINDOW_RTT_FLOOR — 2 · 1 GB/s · 1 ms = 2 MB — not 2 · 50 kB plus quanta.
        let mut cc = Bbr::new(MSS);
        let mut feed = Feed::new();
        let (rate, rtt) = (1_000_000_000, Duration::from_micros(50));
        for _ in 0..20_000 {
            let in_flight = cc.window().saturating_sub(MSS);
            feed.ack(&mut cc, rate, rtt, in_flight, false, 0);
        }
        assert_eq!((cc.min_rtt(), cc.btl_bw()), (Some(rtt), rate));
        assert_eq!(WINDOW_RTT_FLOOR, Duration::from_millis(1));
        // 1 GB/s · 1 ms.
        let floor_bdp = 1_000_000;
        assert!(cc.window() >= 2 * floor_bdp, "window {}", cc.window());
        // A path slower than the floor is sized by its own round trip, as before.
        let (cc, _) = steady();
        assert!(
            within(cc.window() as f64, 2.0 * BDP as f64, 0.3),
            "{}",
            cc.window()
        );
    }

    #[test]
    fn random_loss_does_not_reduce_the_window() {
        let (mut cc, mut feed) = steady();
        let w = cc.window();
        assert!(w >= 2 * BDP, "window {w}");
        // One loss event at a time: nothing changes.
        let before = cc.clone();
        cc.on_congestion_event(feed.now, feed.now, 10 * MSS, false);
        assert_eq!(cc.window(), before.window());
        assert_eq!(cc.pacing_rate(), before.pacing_rate());
        // Every 20th packet lost for 5 s: the window stays at 2 · BDP and above.
        let mut lowest = usize::MAX;
        for i in 0..50_000 {
            let lost = if i % 20 == 19 { MSS } else { 0 };
            let w = cc.window();
            feed.ack(&mut cc, LINK, RTT, w - MSS, false, lost);
            lowest = lowest.min(cc.window());
        }
        assert!(lowest >= 2 * BDP, "lowest window {lowest}");
        assert_eq!(cc.mode, Mode::ProbeBw);
        assert_eq!(cc.btl_bw(), LINK);
    }

    #[test]
    fn persistent_congestion_collapses_and_restarts_startup() {
        let (mut cc, mut feed) = steady();
        cc.on_congestion_event(feed.now, feed.now, BDP, true);
        assert_eq!(cc.window(), minimum_window(MSS));
        assert_eq!((cc.mode, cc.btl_bw()), (Mode::Startup, 0));
        assert_eq!(cc.min_rtt(), Some(RTT), "the propagation delay is kept");
        // A fresh start's pacing rate at the minimum window: 2.885 · 2400 B / 40 ms.
        let rate = cc.pacing_rate().unwrap_or(0);
        assert!(within(rate as f64, 2.885 * 2400.0 / 0.04, 0.001), "{rate}");
        // Samples of the flight sent before the collapse don't bring the old estimate back.
        feed.ack(&mut cc, LINK, RTT, 100 * MSS, false, 0);
        assert_eq!(cc.btl_bw(), 0);
        assert_eq!(cc.window(), MIN_PIPE_DATAGRAMS * MSS);
        // Then Startup grows the window back, doubling per round, and finds the pipe again.
        feed.run(&mut cc, 4 * RTT, RTT);
        assert!(
            cc.window() >= 8 * MIN_PIPE_DATAGRAMS * MSS,
            "{}",
            cc.window()
        );
        assert!(cc.window() < BDP);
        feed.run(&mut cc, Duration::from_secs(2), RTT);
        assert_eq!(cc.mode, Mode::ProbeBw);
        assert!(cc.window() >= 2 * BDP);
    }

    /// Runs a controller on the path with `rtt` until ProbeRTT is over and checks it.
    fn probe_rtt_on(rtt: Duration) {
        let bdp = (LINK as u128 * rtt.as_nanos() / 1_000_000_000) as usize;
        let mut cc = Bbr::new(MSS);
        let mut feed = Feed::new();
        // One sample 1 ms faster, then `rtt` forever: the minimum is never renewed.
        let faster = rtt - Duration::from_millis(1);
        feed.ack(&mut cc, 300_000, faster, 0, false, 0);
        let stamp = feed.now;
        let w = loop {
            let before = cc.window();
            feed.run(&mut cc, Duration::from_millis(1), rtt);
            if cc.mode == Mode::ProbeRtt {
                break before;
            }
            assert!(feed.now - stamp < MIN_RTT_FILTER + Duration::from_millis(2));
        };
        let entered = feed.now;
        assert!(entered - stamp > MIN_RTT_FILTER);
        assert!(w >= 2 * bdp);
        while cc.mode == Mode::ProbeRtt {
            assert_eq!(cc.window(), MIN_PIPE_DATAGRAMS * MSS);
            let stuck = feed.now - entered > Duration::from_secs(1);
            assert!(!stuck, "stuck in ProbeRTT");
            feed.run(&mut cc, Duration::from_millis(1), rtt);
        }
        let lasted = feed.now - entered;
        assert!(lasted >= PROBE_RTT_DURATION, "{lasted:?}");
        assert!(lasted < PROBE_RTT_DURATION + 3 * rtt, "{lasted:?}");
        // Back to ProbeBW with the window it had. The low rate of ProbeRTT's small window
        // (4 datagrams per RTT) did not lower the bandwidth estimate, even where ProbeRTT
        // lasts longer than the filter's 10 rounds (40 rounds at 5 ms). The minimum is the
        // current RTT.
        assert_eq!(cc.mode, Mode::ProbeBw);
        assert!(cc.window() >= w, "{} < {w}", cc.window());
        assert_eq!(cc.btl_bw(), LINK);
        assert_eq!(cc.min_rtt(), Some(rtt));
    }

    #[test]
    fn probe_rtt_after_ten_seconds_without_a_new_min_rtt() {
        probe_rtt_on(RTT);
    }

    #[test]
    fn probe_rtt_longer_than_the_bandwidth_filter_keeps_the_estimate() {
        probe_rtt_on(Duration::from_millis(5));
    }

    #[test]
    fn app_limited_samples_do_not_lower_the_bandwidth_estimate() {
        let (mut cc, mut feed) = steady();
        let mut twin = cc.clone();
        let mut twin_feed = Feed { ..feed };
        // 200 rounds (10 datagrams in flight each) at a tenth of the rate: app-limited for
        // one, not for its twin, whose estimate follows the path down after 10 rounds.
        for _ in 0..2000 {
            feed.ack(&mut cc, LINK / 10, RTT, 9 * MSS, true, 0);
            twin_feed.ack(&mut twin, LINK / 10, RTT, 9 * MSS, false, 0);
        }
        assert_eq!(cc.btl_bw(), LINK);
        assert_eq!(twin.btl_bw(), LINK / 10);
        assert!(cc.window() >= 2 * BDP);
        // An app-limited sample above the estimate proves at least that much: it counts.
        feed.ack(&mut cc, 2 * LINK, RTT, 9 * MSS, true, 0);
        assert_eq!(cc.btl_bw(), 2 * LINK);
    }

    #[test]
    fn huge_and_zero_values_neither_panic_nor_overflow() {
        let extremes = [
            RateSample {
                delivery_rate: u64::MAX,
                delivered: u64::MAX,
                interval: Duration::MAX,
                total_delivered: u64::MAX,
                prior_delivered: u64::MAX,
                app_limited: false,
                rtt: Duration::MAX,
                bytes_in_flight: usize::MAX,
                lost: usize::MAX,
            },
            RateSample {
                delivery_rate: 0,
                delivered: 0,
                interval: Duration::ZERO,
                total_delivered: 0,
                prior_delivered: 0,
                app_limited: true,
                rtt: Duration::ZERO,
                bytes_in_flight: 0,
                lost: 0,
            },
            RateSample {
                delivery_rate: u64::MAX,
                delivered: 1,
                interval: Duration::from_nanos(1),
                total_delivered: u64::MAX,
                prior_delivered: 0,
                app_limited: false,
                rtt: Duration::from_nanos(1),
                bytes_in_flight: 0,
                lost: 0,
            },
        ];
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut cc = Bbr::new(MSS);
            let mut now = Instant::ZERO;
            for round in 0..50u64 {
                for &i in &order {
                    now = Instant::from_nanos(round.saturating_mul(u64::MAX / 40));
                    cc.on_rate_sample(now, &extremes[i]);
                    assert!(cc.window() >= minimum_window(MSS));
                }
            }
            cc.on_congestion_event(now, now, usize::MAX, true);
            cc.on_rate_sample(Instant::FAR_FUTURE, &extremes[0]);
            assert!(cc.window() >= minimum_window(MSS));
            assert_ne!(cc.pacing_rate(), Some(0));
        }
    }

    #[test]
    fn clone_box_copies_state() {
        let (cc, _) = steady();
        let b = cc.clone_box();
        assert_eq!(
            (b.window(), b.pacing_rate()),
            (cc.window(), cc.pacing_rate())
        );
    }

    #[test]
    fn fills_a_pipe() {
        let u = sim::run(&mut Bbr::new(MSS), &sim::Path::new(0, 30), |_, _| {});
        assert!(u >= 0.9, "utilization {u}");
    }

    #[test]
    fn keeps_the_pipe_full_through_one_percent_random_loss() {
        let u = sim::run(&mut Bbr::new(MSS), &sim::Path::new(10_000, 30), |_, _| {});
        assert!(u >= 0.85, "utilization {u}");
        // Where the loss-based controllers collapse (Mathis: about 3% of the link).
        let reno = sim::run(
            &mut NewReno::new(MSS),
            &sim::Path::new(10_000, 30),
            |_, _| {},
        );
        let cubic = sim::run(&mut Cubic::new(MSS), &sim::Path::new(10_000, 30), |_, _| {});
        assert!(reno < 0.1 && cubic < 0.1, "NewReno {reno}, CUBIC {cubic}");
    }

    #[test]
    fn keeps_most_of_the_pipe_through_five_percent_random_loss() {
        let u = sim::run(&mut Bbr::new(MSS), &sim::Path::new(50_000, 30), |_, _| {});
        assert!(u >= 0.7, "utilization {u}");
    }

    #[test]
    fn probe_rtt_every_ten_seconds_in_the_simulation() {
        // In ProbeBW the window's three send quanta (37.5 kB, 3 ms) stay queued even in the
        // 0.75 phase: the RTT never again falls to the minimum Drain measured, so every
        // 10 s BBR goes to ProbeRTT to measure it again.
        let mut spans: Vec<(u64, u64)> = Vec::new();
        let mut lowest_in_probe_rtt = usize::MAX;
        let mut cc = Bbr::new(MSS);
        let u = sim::run(&mut cc, &sim::Path::new(0, 25), |now, cc: &Bbr| {
            if cc.mode == Mode::ProbeRtt {
                lowest_in_probe_rtt = lowest_in_probe_rtt.min(cc.window());
                match spans.last_mut() {
                    Some((_, end)) if *end == u64::MAX => {}
                    _ => spans.push((now, u64::MAX)),
                }
            } else if let Some((_, end)) = spans.last_mut()
                && *end == u64::MAX
            {
                *end = now;
            }
        });
        assert_eq!(spans.len(), 2, "{spans:?}");
        let first = spans[0].0;
        assert!(
            (10_000_000_000..11_500_000_000).contains(&first),
            "{spans:?}"
        );
        for (start, end) in &spans {
            // At least 200 ms with the window down, plus the time it took to get down.
            assert!(end - start >= 200_000_000, "{spans:?}");
            assert!(end - start < 400_000_000, "{spans:?}");
        }
        // The next one 10 s after the last (ProbeRTT's end renews the minimum).
        let gap = spans[1].0 - spans[0].1;
        assert!((10_000_000_000..10_500_000_000).contains(&gap), "{spans:?}");
        assert_eq!(lowest_in_probe_rtt, MIN_PIPE_DATAGRAMS * MSS);
        assert_eq!(cc.mode, Mode::ProbeBw);
        let min_rtt = cc.min_rtt().unwrap_or_default();
        assert!(min_rtt >= RTT && min_rtt < RTT + Duration::from_millis(1));
        // Two ProbeRTTs (about 1% of the time each) cost little throughput.
        assert!(u >= 0.95, "utilization {u}");
    }
}

/// A deterministic packet-level model of one bottleneck, like NewReno's `sim`, with what
/// BBR needs besides: pacing at the controller's rate, delivery-rate samples
/// (draft-cheng-iccrg-delivery-rate-estimation), random loss after the bottleneck.
#[cfg(test)]
mod sim {
    use alloc::collections::VecDeque;
    use core::time::Duration;

    use crate::time::Instant;
    use crate::transport::congestion::{Controller, RateSample};
    use crate::transport::rtt::RttEstimator;

    const MSS: usize = 1200;
    /// 100 Mbit/s: one 1200-byte datagram every 96 µs.
    const TX_NS: u64 = 96_000;
    /// 40 ms of propagation delay, all of it after the bottleneck (acks come back free).
    const PROP_NS: u64 = 40_000_000;
    /// Drop-tail queue of one bandwidth-delay product (100 Mbit/s · 40 ms = 500 kB).
    const QUEUE: u64 = 500_000;

    /// The path's knobs.
    pub(super) struct Path {
        /// Random loss, per million datagrams, on the wire after the bottleneck (the
        /// datagram used the link but never arrives).
        pub loss_ppm: u64,
        /// How long to run, in nanoseconds.
        pub end_ns: u64,
    }

    impl Path {
        pub(super) fn new(loss_ppm: u64, secs: u64) -> Self {
            Path {
                loss_ppm,
                end_ns: secs * 1_000_000_000,
            }
        }
    }

    struct Packet {
        sent: u64,
        /// The delivery-rate estimator's state when it was sent.
        delivered: u64,
        delivered_time: u64,
        first_sent_time: u64,
        /// When its ack reaches the sender, or `None` if it was dropped or lost.
        acked_at: Option<u64>,
    }

    /// Runs `cc` as a greedy sender through the bottleneck and returns its goodput as a
    /// fraction of the link's capacity (randomly lost datagrams don't count). `hook` sees
    /// the controller after every ACK.
    pub(super) fn run<C: Controller>(
        cc: &mut C,
        path: &Path,
        mut hook: impl FnMut(u64, &C),
    ) -> f64 {
        let mut rtt = RttEstimator::default();
        let mut flight: VecDeque<Packet> = VecDeque::new();
        let mut in_flight = 0usize;
        let mut link_free = 0u64;
        let mut goodput = 0u64;
        let (mut delivered, mut delivered_time, mut first_sent_time) = (0u64, 0u64, 0u64);
        let mut pace_next = 0u64;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut now = 0u64;
        let at = Instant::from_nanos;
        loop {
            let next_ack = flight.iter().find_map(|p| p.acked_at);
            let can_send = in_flight + MSS <= cc.window();
            if next_ack.is_none() && !can_send {
                // Everything outstanding was dropped: a probe timeout would find out.
                let Some(newest) = flight.back().map(|p| p.sent) else {
                    break;
                };
                now = now.max(newest + 2 * PROP_NS);
                let lost = flight.len() * MSS;
                flight.clear();
                in_flight = 0;
                cc.on_congestion_event(at(now), at(newest), lost, false);
                continue;
            }
            let next_send = if can_send {
                pace_next.max(now)
            } else {
                u64::MAX
            };
            let t = next_ack.unwrap_or(u64::MAX).min(next_send);
            if t > path.end_ns {
                break;
            }
            now = t;
            if next_ack == Some(t) {
                // Dropped datagrams ahead of the acknowledged one are declared lost now
                // (acks come back in sending order).
                let (mut lost, mut newest_lost) = (0usize, 0u64);
                while flight.front().is_some_and(|p| p.acked_at.is_none()) {
                    let Some(p) = flight.pop_front() else { break };
                    lost += MSS;
                    newest_lost = p.sent;
                }
                let Some(p) = flight.pop_front() else { break };
                in_flight -= MSS + lost;
                delivered += MSS as u64;
                delivered_time = now;
                let send_elapsed = p.sent - p.first_sent_time;
                let ack_elapsed = now - p.delivered_time;
                first_sent_time = p.sent;
                let latest = Duration::from_nanos(now - p.sent);
                rtt.update(latest, Duration::ZERO, Duration::ZERO);
                // draft-cheng: an interval shorter than the minimum RTT is no sample.
                let interval = send_elapsed.max(ack_elapsed);
                let valid = u128::from(interval) >= rtt.min().as_nanos();
                let sampled = delivered - p.delivered;
                cc.on_ack(at(now), at(p.sent), MSS, false, &rtt);
                if lost > 0 {
                    cc.on_congestion_event(at(now), at(newest_lost), lost, false);
                }
                cc.on_rate_sample(
                    at(now),
                    &RateSample {
                        delivery_rate: if valid {
                            sampled * 1_000_000_000 / interval
                        } else {
                            0
                        },
                        delivered: sampled,
                        interval: if valid {
                            Duration::from_nanos(interval)
                        } else {
                            Duration::ZERO
                        },
                        total_delivered: delivered,
                        prior_delivered: p.delivered,
                        app_limited: false,
                        rtt: latest,
                        bytes_in_flight: in_flight,
                        lost,
                    },
                );
                hook(now, cc);
            } else {
                if flight.is_empty() {
                    first_sent_time = now;
                    delivered_time = now;
                }
                let queued = link_free.saturating_sub(now) * MSS as u64 / TX_NS;
                let acked_at = if queued + MSS as u64 > QUEUE {
                    None
                } else {
                    link_free = link_free.max(now) + TX_NS;
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    if rng % 1_000_000 < path.loss_ppm {
                        None
                    } else {
                        if link_free <= path.end_ns {
                            goodput += MSS as u64;
                        }
                        Some(link_free + PROP_NS)
                    }
                };
                cc.on_sent(at(now), MSS);
                in_flight += MSS;
                flight.push_back(Packet {
                    sent: now,
                    delivered,
                    delivered_time,
                    first_sent_time,
                    acked_at,
                });
                // Pace at the controller's rate, or as the transport's pacer would:
                // 1.25 windows per smoothed RTT (none before the first RTT sample).
                let rate = cc.pacing_rate().map(u128::from).or_else(|| {
                    rtt.has_sample().then(|| {
                        cc.window() as u128 * 5 / 4 * 1_000_000_000
                            / rtt.smoothed().as_nanos().max(1)
                    })
                });
                pace_next = match rate {
                    Some(r) if r > 0 => {
                        now + u64::try_from(MSS as u128 * 1_000_000_000 / r).unwrap_or(u64::MAX)
                    }
                    _ => now,
                };
            }
        }
        goodput as f64 / (path.end_ns / TX_NS * MSS as u64) as f64
    }
}
