//! A deterministic, sans-IO network emulator.
//!
//! [`Netem`] models one-way UDP links between socket addresses in virtual time. It never
//! reads a clock and never touches the OS: the driver hands it datagrams with
//! [`Netem::send`], asks when the next one lands with [`Netem::next_delivery`], and takes
//! them out with [`Netem::pop_due`]. Every random decision comes from one ChaCha8 stream
//! seeded by [`Netem::new`], so a run is reproducible bit for bit given the seed, the link
//! configuration and the sequence of calls.
//!
//! Each direction of each address pair is a link with its own [`LinkConfig`] (or the
//! default one) and its own counters ([`NetemStats`]). A datagram offered to a link goes
//! through, in this order:
//!
//! 1. the MTU check (too big: dropped, counted in [`NetemStats::too_big`]);
//! 2. the partition check (partitioned: dropped, counted in [`NetemStats::partitioned`]);
//! 3. the [`LossModel`] (lost: dropped, counted in [`NetemStats::lost`]);
//! 4. corruption (one random bit of the payload flipped);
//! 5. duplication (a second, identical copy is scheduled with its own jitter and reorder
//!    decision);
//! 6. the bottleneck, only if [`LinkConfig::rate`] is set: each surviving copy (the
//!    original first, then the duplicate) is offered to the link's transmitter, which
//!    serializes one datagram at a time at `rate` behind a drop-tail queue of
//!    [`LinkConfig::queue_bytes`]; a copy that does not fit is dropped, counted in
//!    [`NetemStats::queue_drops`] (see [`LinkConfig::queue_bytes`] for the exact rule);
//! 7. scheduling at `t + delay + jitter (+ reorder_delay if held back)`, where `t` is
//!    the end of the copy's serialization with a bottleneck and `now` without one.
//!
//! Deliveries come out in delivery-time order; ties go to the datagram scheduled first.
//! The bottleneck draws no random values: with or without it, every send consumes the
//! same randomness.
//!
//! ```
//! use carrier_proto::Instant;
//! use carrier_tests::netem::{Datagram, LinkConfig, Netem};
//! use core::time::Duration;
//!
//! let a = "192.0.2.1:5000".parse().unwrap();
//! let b = "192.0.2.2:5000".parse().unwrap();
//! let mut net = Netem::new(7);
//! net.set_link_both(a, b, LinkConfig::ideal().with_delay(Duration::from_millis(20)));
//! net.send(Instant::ZERO, Datagram::new(a, b, &b"hello"[..]));
//!
//! let t = net.next_delivery().unwrap();
//! assert_eq!(t, Instant::ZERO + Duration::from_millis(20));
//! assert!(net.pop_due(Instant::ZERO).is_none());
//! let d = net.pop_due(t).unwrap();
//! assert_eq!(&d.contents[..], b"hello");
//! ```

use core::cmp::{Ordering, Reverse};
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::net::SocketAddr;

use bytes::Bytes;
use carrier_proto::Instant;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// How a link decides whether a datagram is lost.
///
/// Probabilities are compared as `draw < p` with `draw` uniform in `[0, 1)`, so values
/// below 0 (and NaN) behave as 0 and values above 1 behave as 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossModel {
    /// Each datagram is lost independently with this probability.
    Random(f64),
    /// Bursty loss: a two-state Markov chain (Gilbert–Elliott).
    ///
    /// The chain starts in the good state. For every datagram that reaches the loss stage
    /// the chain first takes one step (good→bad with `p_good_to_bad`, bad→good with
    /// `p_bad_to_good`), then the datagram is lost with the loss probability of the new
    /// state. The mean burst length in the bad state is `1 / p_bad_to_good` datagrams.
    /// Each direction of each address pair has its own chain.
    GilbertElliott {
        /// Probability of moving from the good to the bad state, per datagram.
        p_good_to_bad: f64,
        /// Probability of moving from the bad to the good state, per datagram.
        p_bad_to_good: f64,
        /// Loss probability while in the good state (often 0).
        loss_good: f64,
        /// Loss probability while in the bad state (often 1).
        loss_bad: f64,
    },
}

impl LossModel {
    /// No loss at all.
    pub const NONE: LossModel = LossModel::Random(0.0);

    /// The long-run fraction of datagrams this model loses.
    ///
    /// For [`LossModel::GilbertElliott`] this is the stationary mix of the two states'
    /// loss probabilities; a chain that can never leave the good state loses `loss_good`.
    pub fn mean_loss(&self) -> f64 {
        match *self {
            LossModel::Random(p) => p.clamp(0.0, 1.0),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let p = p_good_to_bad.clamp(0.0, 1.0);
                let r = p_bad_to_good.clamp(0.0, 1.0);
                let bad = if p + r > 0.0 { p / (p + r) } else { 0.0 };
                (1.0 - bad) * loss_good.clamp(0.0, 1.0) + bad * loss_bad.clamp(0.0, 1.0)
            }
        }
    }

    /// Decides one datagram's fate from two uniform draws, updating the chain `state`.
    fn is_lost(&self, state: &mut LossState, step: f64, lose: f64) -> bool {
        match *self {
            LossModel::Random(p) => lose < p,
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                state.bad = if state.bad {
                    step >= p_bad_to_good
                } else {
                    step < p_good_to_bad
                };
                lose < if state.bad { loss_bad } else { loss_good }
            }
        }
    }
}

impl Default for LossModel {
    fn default() -> Self {
        LossModel::NONE
    }
}

/// The impairments of one direction of a link.
///
/// Build one from a preset and the `with_*` methods:
///
/// ```
/// use carrier_tests::netem::LinkConfig;
/// use core::time::Duration;
/// let cfg = LinkConfig::wan().with_loss(0.01).with_reorder(0.05, Duration::from_millis(5));
/// assert_eq!(cfg.mtu, 1500);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way base delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` for every delivered copy. Jitter alone
    /// can reorder datagrams sent closer together than `jitter`.
    pub jitter: Duration,
    /// How datagrams are lost.
    pub loss: LossModel,
    /// Probability that a datagram is delivered twice. The second copy carries the same
    /// (possibly corrupted) payload and gets its own jitter and reorder decision.
    pub duplicate: f64,
    /// Probability that a delivered copy is held back by an extra [`reorder_delay`], so
    /// that datagrams sent after it overtake it.
    ///
    /// [`reorder_delay`]: LinkConfig::reorder_delay
    pub reorder: f64,
    /// Extra delay of a held-back copy (see [`LinkConfig::reorder`]).
    pub reorder_delay: Duration,
    /// Probability that one uniformly chosen bit of the payload is flipped. Empty payloads
    /// are never corrupted.
    pub corrupt: f64,
    /// Largest payload the path carries, in bytes. Larger datagrams are dropped, like a
    /// real path with the don't-fragment bit set.
    pub mtu: usize,
    /// Bottleneck rate in bits per second, or `None` (the default) for no bottleneck.
    ///
    /// With a rate, the link has a transmitter, like a router's output port, that
    /// serializes one datagram at a time: a datagram of `n` payload bytes (no header
    /// overhead is added) occupies it for `n * 8 / rate` seconds, starting when it arrives
    /// or when the transmitter finishes what is ahead of it, whichever is later. The
    /// datagram's delay, jitter and reorder delay start when its serialization ends.
    /// Finish times are computed exactly over each busy period and rounded up to the
    /// nanosecond, so rounding never accumulates and a saturated link carries exactly
    /// `rate` bits per second. A duplicate is serialized right after its original. A rate
    /// of 0 carries nothing: every copy is a queue drop.
    pub rate: Option<u64>,
    /// Capacity of the drop-tail queue in front of the bottleneck, in bytes (ignored
    /// without [`LinkConfig::rate`]).
    ///
    /// The *backlog* at time `now` is the total size of the datagrams admitted to the
    /// transmitter whose serialization has not finished by `now` (one finishing exactly
    /// at `now` has finished); the one being serialized counts in full. A datagram
    /// arriving at `now` is dropped iff the backlog is greater than `queue_bytes`. So an
    /// idle transmitter accepts anything, `0` means "only the datagram being serialized",
    /// and with datagrams of `s` bytes the link holds the one in service plus
    /// `queue_bytes / s` (rounded down) waiting.
    pub queue_bytes: usize,
}

impl LinkConfig {
    /// No delay, no impairments, MTU 65 535.
    pub const fn ideal() -> Self {
        LinkConfig {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: LossModel::NONE,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            corrupt: 0.0,
            mtu: 65_535,
            rate: None,
            queue_bytes: 0,
        }
    }

    /// A quiet local network: 250 µs delay, 50 µs jitter, MTU 1500, no loss.
    pub const fn lan() -> Self {
        LinkConfig {
            delay: Duration::from_micros(250),
            jitter: Duration::from_micros(50),
            mtu: 1500,
            ..LinkConfig::ideal()
        }
    }

    /// A clean wide-area path: 40 ms delay, 4 ms jitter, MTU 1500, no loss.
    pub const fn wan() -> Self {
        LinkConfig {
            delay: Duration::from_millis(40),
            jitter: Duration::from_millis(4),
            mtu: 1500,
            ..LinkConfig::ideal()
        }
    }

    /// Sets [`LinkConfig::delay`].
    #[must_use]
    pub const fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets [`LinkConfig::jitter`].
    #[must_use]
    pub const fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Independent loss with probability `p` ([`LossModel::Random`]).
    #[must_use]
    pub const fn with_loss(mut self, p: f64) -> Self {
        self.loss = LossModel::Random(p);
        self
    }

    /// Bursty loss ([`LossModel::GilbertElliott`]).
    #[must_use]
    pub const fn with_gilbert_elliott(
        mut self,
        p_good_to_bad: f64,
        p_bad_to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    ) -> Self {
        self.loss = LossModel::GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_good,
            loss_bad,
        };
        self
    }

    /// Sets [`LinkConfig::loss`].
    #[must_use]
    pub const fn with_loss_model(mut self, loss: LossModel) -> Self {
        self.loss = loss;
        self
    }

    /// Sets [`LinkConfig::duplicate`].
    #[must_use]
    pub const fn with_duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Sets [`LinkConfig::reorder`] and [`LinkConfig::reorder_delay`].
    #[must_use]
    pub const fn with_reorder(mut self, p: f64, extra_delay: Duration) -> Self {
        self.reorder = p;
        self.reorder_delay = extra_delay;
        self
    }

    /// Sets [`LinkConfig::corrupt`].
    #[must_use]
    pub const fn with_corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }

    /// Sets [`LinkConfig::mtu`].
    #[must_use]
    pub const fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }

    /// A bottleneck of `rate_bits_per_sec` behind a drop-tail queue of `queue_bytes`
    /// (sets [`LinkConfig::rate`] and [`LinkConfig::queue_bytes`]).
    ///
    /// ```
    /// use carrier_tests::netem::LinkConfig;
    /// // 10 Mbit/s behind a queue of about 30 full-size packets.
    /// let cfg = LinkConfig::wan().with_bottleneck(10_000_000, 30 * 1500);
    /// assert_eq!(cfg.rate, Some(10_000_000));
    /// assert_eq!(LinkConfig::wan().rate, None);
    /// ```
    #[must_use]
    pub const fn with_bottleneck(mut self, rate_bits_per_sec: u64, queue_bytes: usize) -> Self {
        self.rate = Some(rate_bits_per_sec);
        self.queue_bytes = queue_bytes;
        self
    }
}

impl Default for LinkConfig {
    /// [`LinkConfig::ideal`].
    fn default() -> Self {
        LinkConfig::ideal()
    }
}

/// A UDP datagram in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Datagram {
    /// Sender's address.
    pub source: SocketAddr,
    /// Receiver's address.
    pub destination: SocketAddr,
    /// Payload.
    pub contents: Bytes,
}

impl Datagram {
    /// A datagram from `source` to `destination` carrying `contents`.
    pub fn new(source: SocketAddr, destination: SocketAddr, contents: impl Into<Bytes>) -> Self {
        Datagram {
            source,
            destination,
            contents: contents.into(),
        }
    }
}

/// Counters, for the whole emulator ([`Netem::stats`]) or one direction of a link
/// ([`Netem::link_stats`]).
///
/// Every datagram given to [`Netem::send`] ends in exactly one of `too_big`,
/// `partitioned`, `lost`, or past the loss stage; there it and its duplicate (if any) are
/// each either dropped by the bottleneck's queue (`queue_drops`) or scheduled, and every
/// scheduled copy is eventually `delivered`. Hence at all times
/// `sent + duplicated == delivered + lost + too_big + partitioned + queue_drops + in_flight`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NetemStats {
    /// Datagrams given to [`Netem::send`].
    pub sent: u64,
    /// Copies handed out by [`Netem::pop_due`] (duplicates included).
    pub delivered: u64,
    /// Datagrams dropped by the [`LossModel`].
    pub lost: u64,
    /// Extra copies scheduled by duplication.
    pub duplicated: u64,
    /// Copies held back by [`LinkConfig::reorder_delay`].
    pub reordered: u64,
    /// Datagrams with a bit flipped (counted once even if duplicated).
    pub corrupted: u64,
    /// Datagrams dropped for exceeding [`LinkConfig::mtu`].
    pub too_big: u64,
    /// Datagrams dropped by a partition.
    pub partitioned: u64,
    /// Copies dropped because the bottleneck's queue was full (see
    /// [`LinkConfig::queue_bytes`]); an original and its duplicate count separately.
    pub queue_drops: u64,
}

/// Which counter to bump.
#[derive(Clone, Copy)]
enum Counter {
    Sent,
    Delivered,
    Lost,
    Duplicated,
    Reordered,
    Corrupted,
    TooBig,
    Partitioned,
    QueueDrop,
}

impl NetemStats {
    fn bump(&mut self, counter: Counter) {
        let field = match counter {
            Counter::Sent => &mut self.sent,
            Counter::Delivered => &mut self.delivered,
            Counter::Lost => &mut self.lost,
            Counter::Duplicated => &mut self.duplicated,
            Counter::Reordered => &mut self.reordered,
            Counter::Corrupted => &mut self.corrupted,
            Counter::TooBig => &mut self.too_big,
            Counter::Partitioned => &mut self.partitioned,
            Counter::QueueDrop => &mut self.queue_drops,
        };
        *field += 1;
    }
}

/// Bumps `counter` in the global and the per-link counters.
fn count_both(global: &mut NetemStats, link: &mut NetemStats, counter: Counter) {
    global.bump(counter);
    link.bump(counter);
}

/// Mutable state of a loss model's Markov chain.
#[derive(Clone, Copy, Debug, Default)]
struct LossState {
    bad: bool,
}

/// The bottleneck transmitter of one direction of a link (see [`LinkConfig::rate`]).
///
/// Finish times are computed from the start of the current *busy period* (the transmitter
/// has been serializing without a break since `period_start`, at `period_rate`): the
/// datagram that brings the period's total to `b` bits finishes at
/// `period_start + ceil(b * 1e9 / rate)` ns, so per-datagram rounding never accumulates.
#[derive(Clone, Debug, Default)]
struct Transmitter {
    /// When the last admitted datagram finishes serialization.
    busy_until: Instant,
    period_start: Instant,
    period_rate: u64,
    /// Bits admitted since `period_start`.
    period_bits: u128,
    /// `(finish, bytes)` of the admitted datagrams not yet fully serialized, in finish
    /// order.
    backlog: VecDeque<(Instant, usize)>,
    /// Sum of the sizes in `backlog`.
    backlog_bytes: usize,
}

impl Transmitter {
    /// Offers a datagram of `bytes` at `now`. Returns when its serialization finishes, or
    /// `None` if the drop-tail queue rejects it (see [`LinkConfig::queue_bytes`]).
    fn admit(
        &mut self,
        now: Instant,
        bytes: usize,
        rate: u64,
        queue_bytes: usize,
    ) -> Option<Instant> {
        while let Some(&(finish, size)) = self.backlog.front()
            && finish <= now
        {
            self.backlog.pop_front();
            self.backlog_bytes -= size;
        }
        if rate == 0 || self.backlog_bytes > queue_bytes {
            return None;
        }
        if self.busy_until <= now || self.period_rate != rate {
            // Idle (or re-configured): a new busy period starts when this datagram does.
            self.period_start = self.busy_until.max(now);
            self.period_rate = rate;
            self.period_bits = 0;
        }
        self.period_bits = self.period_bits.saturating_add(bytes as u128 * 8);
        let ns = self
            .period_bits
            .saturating_mul(1_000_000_000)
            .div_ceil(u128::from(rate));
        let finish =
            self.period_start + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX));
        self.busy_until = finish;
        self.backlog.push_back((finish, bytes));
        self.backlog_bytes += bytes;
        Some(finish)
    }
}

/// One direction of one address pair.
#[derive(Clone, Debug, Default)]
struct Link {
    /// Explicit configuration; `None` means "use the default link".
    config: Option<LinkConfig>,
    loss: LossState,
    tx: Transmitter,
    stats: NetemStats,
}

/// A scheduled delivery, ordered by `(at, seq)` only.
#[derive(Clone, Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    datagram: Datagram,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Random values drawn by every [`Netem::send`], whatever happens to the datagram.
const DRAWS: usize = 9;
/// Indices into the per-send draws. The order is part of the reproducibility contract.
const DRAW_LOSS_STEP: usize = 0;
const DRAW_LOSS: usize = 1;
const DRAW_CORRUPT: usize = 2;
const DRAW_CORRUPT_BIT: usize = 3;
const DRAW_DUPLICATE: usize = 4;
const DRAW_JITTER: [usize; 2] = [5, 7];
const DRAW_REORDER: [usize; 2] = [6, 8];

/// A uniform value in `[0, 1)` from 53 random bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A value in `[0, n)` (0 when `n == 0`), by widening multiplication.
fn below(x: u64, n: u64) -> u64 {
    ((u128::from(x) * u128::from(n)) >> 64) as u64
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The emulator: links, partitions and the delivery schedule. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Netem {
    rng: ChaCha8Rng,
    default_link: LinkConfig,
    links: BTreeMap<(SocketAddr, SocketAddr), Link>,
    /// Partitioned pairs, stored as `(min, max)`.
    partitions: BTreeSet<(SocketAddr, SocketAddr)>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    stats: NetemStats,
}

impl Netem {
    /// An emulator whose randomness is the ChaCha8 stream seeded with `seed`. Every link
    /// starts as [`LinkConfig::ideal`].
    pub fn new(seed: u64) -> Self {
        Netem {
            rng: ChaCha8Rng::seed_from_u64(seed),
            default_link: LinkConfig::ideal(),
            links: BTreeMap::new(),
            partitions: BTreeSet::new(),
            queue: BinaryHeap::new(),
            next_seq: 0,
            stats: NetemStats::default(),
        }
    }

    /// Configures the link from `from` to `to` (one direction only). Resets that link's
    /// loss-model state; datagrams already in flight keep their schedule, and those still
    /// in the bottleneck's queue keep occupying it (later datagrams queue behind them).
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, config: LinkConfig) {
        let link = self.links.entry((from, to)).or_default();
        link.config = Some(config);
        link.loss = LossState::default();
    }

    /// Configures both directions between `a` and `b` with the same settings.
    pub fn set_link_both(&mut self, a: SocketAddr, b: SocketAddr, config: LinkConfig) {
        self.set_link(a, b, config);
        self.set_link(b, a, config);
    }

    /// Sets the configuration used by every pair without an explicit [`Netem::set_link`].
    /// Resets the loss-model state of those links.
    pub fn set_default_link(&mut self, config: LinkConfig) {
        self.default_link = config;
        for link in self.links.values_mut().filter(|l| l.config.is_none()) {
            link.loss = LossState::default();
        }
    }

    /// The configuration in effect from `from` to `to`.
    pub fn link_config(&self, from: SocketAddr, to: SocketAddr) -> &LinkConfig {
        self.links
            .get(&(from, to))
            .and_then(|l| l.config.as_ref())
            .unwrap_or(&self.default_link)
    }

    /// Starts (`on == true`) or ends a partition between `a` and `b`. While it is on, every
    /// datagram sent between them, in either direction, is dropped. The check happens at
    /// [`Netem::send`]: datagrams already in flight when a partition starts are still
    /// delivered.
    pub fn partition(&mut self, a: SocketAddr, b: SocketAddr, on: bool) {
        let key = (a.min(b), a.max(b));
        if on {
            self.partitions.insert(key);
        } else {
            self.partitions.remove(&key);
        }
    }

    /// Whether a partition between `a` and `b` is on.
    pub fn is_partitioned(&self, a: SocketAddr, b: SocketAddr) -> bool {
        self.partitions.contains(&(a.min(b), a.max(b)))
    }

    /// Offers `datagram` to the link from its source to its destination at time `now`.
    ///
    /// Applies, in order, the MTU, partitions, the loss model, corruption, duplication,
    /// the bottleneck and delay/jitter/reorder (see the [module docs](self)), and
    /// schedules the surviving copies. Every call draws the same number of random values in the same
    /// order whatever the outcome, so changing one link's settings or a partition does
    /// not shift the randomness seen by later sends on other links.
    pub fn send(&mut self, now: Instant, mut datagram: Datagram) {
        let mut draws = [0u64; DRAWS];
        for draw in &mut draws {
            *draw = self.rng.next_u64();
        }

        let partitioned = self.is_partitioned(datagram.source, datagram.destination);
        let default_link = self.default_link;
        let link = self
            .links
            .entry((datagram.source, datagram.destination))
            .or_default();
        let config = link.config.unwrap_or(default_link);
        count_both(&mut self.stats, &mut link.stats, Counter::Sent);

        if datagram.contents.len() > config.mtu {
            count_both(&mut self.stats, &mut link.stats, Counter::TooBig);
            return;
        }
        if partitioned {
            count_both(&mut self.stats, &mut link.stats, Counter::Partitioned);
            return;
        }
        let lost = config.loss.is_lost(
            &mut link.loss,
            unit(draws[DRAW_LOSS_STEP]),
            unit(draws[DRAW_LOSS]),
        );
        if lost {
            count_both(&mut self.stats, &mut link.stats, Counter::Lost);
            return;
        }

        if !datagram.contents.is_empty() && unit(draws[DRAW_CORRUPT]) < config.corrupt {
            let bits = datagram.contents.len() as u64 * 8;
            let bit = below(draws[DRAW_CORRUPT_BIT], bits);
            let mut bytes = datagram.contents.to_vec();
            bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
            datagram.contents = Bytes::from(bytes);
            count_both(&mut self.stats, &mut link.stats, Counter::Corrupted);
        }

        let copies = if unit(draws[DRAW_DUPLICATE]) < config.duplicate {
            count_both(&mut self.stats, &mut link.stats, Counter::Duplicated);
            2
        } else {
            1
        };

        let jitter_range = nanos(config.jitter).saturating_add(1);
        for copy in 0..copies {
            let mut base = now + config.delay;
            if let Some(rate) = config.rate {
                let bytes = datagram.contents.len();
                match link.tx.admit(now, bytes, rate, config.queue_bytes) {
                    Some(finish) => base = finish + config.delay,
                    None => {
                        count_both(&mut self.stats, &mut link.stats, Counter::QueueDrop);
                        continue;
                    }
                }
            }
            let jitter = Duration::from_nanos(below(draws[DRAW_JITTER[copy]], jitter_range));
            let mut at = base + jitter;
            if unit(draws[DRAW_REORDER[copy]]) < config.reorder {
                at += config.reorder_delay;
                count_both(&mut self.stats, &mut link.stats, Counter::Reordered);
            }
            self.queue.push(Reverse(Scheduled {
                at,
                seq: self.next_seq,
                datagram: datagram.clone(),
            }));
            self.next_seq += 1;
        }
    }

    /// The earliest scheduled delivery time, if anything is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(s)| s.at)
    }

    /// Takes out the next datagram due at or before `now`: the one with the earliest
    /// delivery time, ties going to the one scheduled first. `None` if nothing is due.
    pub fn pop_due(&mut self, now: Instant) -> Option<Datagram> {
        if self.queue.peek()?.0.at > now {
            return None;
        }
        let Reverse(scheduled) = self.queue.pop()?;
        let datagram = scheduled.datagram;
        self.stats.bump(Counter::Delivered);
        self.links
            .entry((datagram.source, datagram.destination))
            .or_default()
            .stats
            .bump(Counter::Delivered);
        Some(datagram)
    }

    /// Number of copies scheduled but not yet taken out by [`Netem::pop_due`].
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Counters over all links.
    pub fn stats(&self) -> &NetemStats {
        &self.stats
    }

    /// Counters of the link from `from` to `to` (zero if it never carried anything).
    pub fn link_stats(&self, from: SocketAddr, to: SocketAddr) -> NetemStats {
        self.links
            .get(&(from, to))
            .map(|l| l.stats)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 5000))
    }

    /// One nanosecond before `t` (`Instant` has no `- Duration`).
    fn just_before(t: Instant) -> Instant {
        Instant::from_nanos(t.as_nanos() - 1)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A payload carrying `i` in its first eight bytes, padded to `len` bytes.
    fn payload(i: u64, len: usize) -> Bytes {
        let mut v = vec![0xa5; len.max(8)];
        v[..8].copy_from_slice(&i.to_be_bytes());
        Bytes::from(v)
    }

    fn index_of(d: &Datagram) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&d.contents[..8]);
        u64::from_be_bytes(b)
    }

    /// Pops everything, stepping virtual time to each delivery, and returns the trace.
    fn drain(net: &mut Netem) -> Vec<(Instant, Datagram)> {
        let mut out = Vec::new();
        while let Some(t) = net.next_delivery() {
            let d = net.pop_due(t).expect("next_delivery promised a datagram");
            out.push((t, d));
        }
        out
    }

    fn assert_conservation(net: &Netem) {
        let s = net.stats();
        assert_eq!(
            s.sent + s.duplicated,
            s.delivered
                + s.lost
                + s.too_big
                + s.partitioned
                + s.queue_drops
                + net.in_flight() as u64,
            "{s:?}"
        );
    }

    #[test]
    fn ideal_link_delivers_everything_in_order_after_exactly_delay() {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(1);
        net.set_link(a, b, LinkConfig::ideal().with_delay(ms(30)));
        let t0 = Instant::from_nanos(1_000_000_000);
        // 100 at the same instant (tie-break by send order), then 100 spaced 1 µs apart.
        for i in 0..200u64 {
            let at = if i < 100 {
                t0
            } else {
                t0 + Duration::from_micros(i)
            };
            net.send(at, Datagram::new(a, b, payload(i, 32)));
        }
        assert_eq!(net.in_flight(), 200);
        assert_eq!(net.pop_due(just_before(t0 + ms(30))), None);
        let trace = drain(&mut net);
        assert_eq!(trace.len(), 200);
        for (i, (t, d)) in trace.iter().enumerate() {
            let i = i as u64;
            assert_eq!(index_of(d), i);
            assert_eq!(d.contents, payload(i, 32));
            assert_eq!((d.source, d.destination), (a, b));
            let sent_at = if i < 100 {
                t0
            } else {
                t0 + Duration::from_micros(i)
            };
            assert_eq!(*t, sent_at + ms(30));
        }
        let expect = NetemStats {
            sent: 200,
            delivered: 200,
            ..NetemStats::default()
        };
        assert_eq!(*net.stats(), expect);
        assert_eq!(net.link_stats(a, b), expect);
        assert_eq!(net.link_stats(b, a), NetemStats::default());
        assert_eq!(net.in_flight(), 0);
        assert_eq!(net.next_delivery(), None);
    }

    #[test]
    fn default_link_applies_to_unconfigured_pairs_and_links_are_directional() {
        let (a, b, c) = (addr(1), addr(2), addr(3));
        let mut net = Netem::new(2);
        net.set_default_link(LinkConfig::ideal().with_delay(ms(7)));
        net.set_link(a, b, LinkConfig::ideal().with_delay(ms(3)));
        assert_eq!(net.link_config(a, b).delay, ms(3));
        assert_eq!(net.link_config(b, a).delay, ms(7));
        assert_eq!(net.link_config(a, c).delay, ms(7));
        net.send(Instant::ZERO, Datagram::new(a, b, payload(0, 8)));
        net.send(Instant::ZERO, Datagram::new(b, a, payload(1, 8)));
        net.send(Instant::ZERO, Datagram::new(c, a, payload(2, 8)));
        let trace = drain(&mut net);
        let got: Vec<_> = trace
            .iter()
            .map(|(t, d)| (*t - Instant::ZERO, index_of(d)))
            .collect();
        assert_eq!(got, vec![(ms(3), 0), (ms(7), 1), (ms(7), 2)]);
    }

    const N: u64 = 20_000;

    fn rate(count: u64, n: u64) -> f64 {
        count as f64 / n as f64
    }

    #[test]
    fn loss_rate_matches_configuration() {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(3);
        net.set_link(a, b, LinkConfig::lan().with_loss(0.2));
        for i in 0..N {
            net.send(
                Instant::from_nanos(i * 1_000),
                Datagram::new(a, b, payload(i, 64)),
            );
        }
        let delivered = drain(&mut net);
        let s = *net.stats();
        let loss = rate(s.lost, N);
        assert!((loss - 0.2).abs() <= 0.015, "loss {loss}");
        assert_eq!(delivered.len() as u64, N - s.lost);
        assert_eq!(s.delivered, N - s.lost);
        assert_eq!(s.duplicated + s.corrupted + s.too_big + s.partitioned, 0);
        assert_conservation(&net);
        // Loss 0 and 1 are exact.
        let mut net = Netem::new(3);
        net.set_link(a, b, LinkConfig::ideal().with_loss(1.0));
        net.set_link(b, a, LinkConfig::ideal().with_loss(0.0));
        for i in 0..1000 {
            net.send(Instant::ZERO, Datagram::new(a, b, payload(i, 8)));
            net.send(Instant::ZERO, Datagram::new(b, a, payload(i, 8)));
        }
        assert_eq!(net.link_stats(a, b).lost, 1000);
        assert_eq!(net.link_stats(b, a).lost, 0);
        assert_eq!(net.in_flight(), 1000);
    }

    #[test]
    fn duplicate_rate_matches_and_copies_are_identical() {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(4);
        net.set_link(
            a,
            b,
            LinkConfig::ideal()
                .with_delay(ms(5))
                .with_jitter(ms(2))
                .with_duplicate(0.1),
        );
        for i in 0..N {
            net.send(
                Instant::from_nanos(i * 10_000),
                Datagram::new(a, b, payload(i, 16)),
            );
        }
        let trace = drain(&mut net);
        let s = *net.stats();
        let dup = rate(s.duplicated, N);
        assert!((dup - 0.1).abs() <= 0.015, "duplicate {dup}");
        assert_eq!(trace.len() as u64, N + s.duplicated);
        assert_eq!(s.delivered, N + s.duplicated);
        let mut seen = vec![0u32; N as usize];
        for (_, d) in &trace {
            let i = index_of(d);
            assert_eq!(d.contents, payload(i, 16));
            seen[i as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c == 1 || c == 2));
        assert_eq!(
            seen.iter().filter(|&&c| c == 2).count() as u64,
            s.duplicated
        );
        // Copies get their own jitter: at least some pairs land at different times.
        let mut first_at = vec![None; N as usize];
        let mut differing = 0;
        for (t, d) in &trace {
            let slot = &mut first_at[index_of(d) as usize];
            match slot {
                None => *slot = Some(*t),
                Some(t0) if *t0 != *t => differing += 1,
                Some(_) => {}
            }
        }
        assert!(
            differing > s.duplicated / 2,
            "{differing} of {}",
            s.duplicated
        );
        assert_conservation(&net);
    }

    #[test]
    fn corruption_rate_matches_and_flips_exactly_one_bit() {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(5);
        net.set_link(a, b, LinkConfig::ideal().with_corrupt(0.05));
        let len = 100;
        for i in 0..N {
            net.send(Instant::ZERO, Datagram::new(a, b, payload(i, len)));
        }
        let trace = drain(&mut net);
        assert_eq!(trace.len() as u64, N);
        let mut corrupted = 0u64;
        let mut bit_positions = BTreeSet::new();
        for (k, (_, d)) in trace.iter().enumerate() {
            // Ideal link, same instant: delivery order is send order even if the index
            // bytes themselves were hit.
            let original = payload(k as u64, len);
            assert_eq!(d.contents.len(), len);
            let flipped: Vec<usize> = original
                .iter()
                .zip(d.contents.iter())
                .enumerate()
                .flat_map(|(byte, (x, y))| {
                    let diff = x ^ y;
                    (0..8)
                        .filter(move |bit| diff & (1 << bit) != 0)
                        .map(move |bit| byte * 8 + bit)
                })
                .collect();
            match flipped.len() {
                0 => {}
                1 => {
                    corrupted += 1;
                    bit_positions.insert(flipped[0]);
                }
                n => panic!("datagram {k} has {n} flipped bits"),
            }
        }
        assert_eq!(corrupted, net.stats().corrupted);
        let r = rate(corrupted, N);
        assert!((r - 0.05).abs() <= 0.015, "corrupt {r}");
        // The flipped bit is spread over the whole payload, not stuck at one spot.
        assert!(
            bit_positions.len() > 400,
            "{} positions",
            bit_positions.len()
        );
        // Empty payloads are never corrupted.
        let mut net = Netem::new(5);
        net.set_link(a, b, LinkConfig::ideal().with_corrupt(1.0));
        net.send(Instant::ZERO, Datagram::new(a, b, Bytes::new()));
        assert_eq!(
            net.pop_due(Instant::ZERO),
            Some(Datagram::new(a, b, Bytes::new()))
        );
        assert_eq!(net.stats().corrupted, 0);
    }

    #[test]
    fn oversized_datagrams_are_dropped_and_counted() {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(6);
        net.set_link(a, b, LinkConfig::ideal().with_mtu(1200));
        for len in [1199, 1200, 1201, 1500, 9000, 0] {
            net.send(Instant::ZERO, Datagram::new(a, b, vec![0u8; len]));
        }
        let lens: Vec<usize> = drain(&mut net)
            .iter()
            .map(|(_, d)| d.contents.len())
            .collect();
        assert_eq!(lens, vec![1199, 1200, 0]);
        let s = net.link_stats(a, b);
        assert_eq!((s.sent, s.too_big, s.delivered), (6, 3, 3));
        assert_eq!(net.stats().too_big, 3);
        assert_conservation(&net);
    }

    /// Number of neighbouring deliveries whose send indices are out of order (enough to
    /// detect overtaking; zero iff the delivery order is the send order).
    fn descents(indices: &[u64]) -> usize {
        indices.windows(2).filter(|w| w[0] > w[1]).count()
    }

    #[test]
    fn reorder_overtakes_without_losing_anything() {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(7);
        net.set_link(
            a,
            b,
            LinkConfig::ideal()
                .with_delay(ms(10))
                .with_reorder(0.1, ms(5)),
        );
        let n = 5_000u64;
        for i in 0..n {
            net.send(Instant::ZERO + ms(i), Datagram::new(a, b, payload(i, 20)));
        }
        let trace = drain(&mut net);
        let indices: Vec<u64> = trace.iter().map(|(_, d)| index_of(d)).collect();
        assert_eq!(indices.len() as u64, n);
        let mut sorted = indices.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..n).collect::<Vec<_>>(),
            "nothing lost or duplicated"
        );
        let s = *net.stats();
        assert_eq!((s.lost, s.delivered), (0, n));
        let r = rate(s.reordered, n);
        assert!((r - 0.1).abs() <= 0.02, "reordered {r}");
        // A held-back datagram (5 ms) is overtaken by the ~5 sent after it (1 ms apart).
        let d = descents(&indices);
        assert!(d > 0);
        assert!(d as u64 <= s.reordered);
        // Without reordering (and without jitter) the order is preserved.
        let mut net = Netem::new(7);
        net.set_link(a, b, LinkConfig::ideal().with_delay(ms(10)));
        for i in 0..n {
            net.send(Instant::ZERO + ms(i), Datagram::new(a, b, payload(i, 20)));
        }
        let indices: Vec<u64> = drain(&mut net).iter().map(|(_, d)| index_of(d)).collect();
        assert_eq!(descents(&indices), 0);
    }

    #[test]
    fn partition_drops_both_directions_and_healing_restores_delivery() {
        let (a, b, c) = (addr(1), addr(2), addr(3));
        let mut net = Netem::new(8);
        net.set_default_link(LinkConfig::lan());
        let send_round = |net: &mut Netem, now: Instant| {
            net.send(now, Datagram::new(a, b, payload(0, 8)));
            net.send(now, Datagram::new(b, a, payload(1, 8)));
            net.send(now, Datagram::new(a, c, payload(2, 8)));
            net.send(now, Datagram::new(c, b, payload(3, 8)));
        };
        let delivered = |net: &mut Netem| -> Vec<u64> {
            let mut v: Vec<u64> = drain(net).iter().map(|(_, d)| index_of(d)).collect();
            v.sort_unstable();
            v
        };

        // In flight before the partition: still delivered.
        send_round(&mut net, Instant::ZERO);
        net.partition(b, a, true);
        assert!(net.is_partitioned(a, b) && net.is_partitioned(b, a));
        assert!(!net.is_partitioned(a, c));
        assert_eq!(delivered(&mut net), vec![0, 1, 2, 3]);

        send_round(&mut net, Instant::ZERO + ms(10));
        assert_eq!(
            delivered(&mut net),
            vec![2, 3],
            "a<->b cut, others unaffected"
        );
        assert_eq!(net.link_stats(a, b).partitioned, 1);
        assert_eq!(net.link_stats(b, a).partitioned, 1);
        assert_eq!(net.link_stats(a, c).partitioned, 0);
        assert_eq!(net.stats().partitioned, 2);

        net.partition(a, b, false);
        assert!(!net.is_partitioned(a, b));
        send_round(&mut net, Instant::ZERO + ms(20));
        assert_eq!(delivered(&mut net), vec![0, 1, 2, 3]);
        assert_eq!(net.stats().partitioned, 2);
        assert_conservation(&net);
    }

    #[test]
    fn gilbert_elliott_loss_is_bursty_with_the_expected_mean() {
        let (a, b) = (addr(1), addr(2));
        let model = LossModel::GilbertElliott {
            p_good_to_bad: 0.01,
            p_bad_to_good: 0.1,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        let mean = model.mean_loss();
        assert!((mean - 0.01 / 0.11).abs() < 1e-12);
        let n = 100_000u64;
        let run_stats = |cfg: LinkConfig, seed: u64| {
            let mut net = Netem::new(seed);
            net.set_link(a, b, cfg);
            for i in 0..n {
                net.send(Instant::ZERO, Datagram::new(a, b, payload(i, 8)));
            }
            let mut got = vec![false; n as usize];
            for (_, d) in drain(&mut net) {
                got[index_of(&d) as usize] = true;
            }
            // Mean length of runs of consecutive losses.
            let mut runs = 0u64;
            let mut lost = 0u64;
            for (i, &ok) in got.iter().enumerate() {
                if !ok {
                    lost += 1;
                    if i == 0 || got[i - 1] {
                        runs += 1;
                    }
                }
            }
            assert_eq!(lost, net.stats().lost);
            (rate(lost, n), lost as f64 / runs as f64)
        };
        for seed in [9, 10, 11] {
            let (loss, burst) = run_stats(LinkConfig::ideal().with_loss_model(model), seed);
            assert!((loss - mean).abs() <= 0.02, "GE loss {loss}");
            assert!((7.0..=13.0).contains(&burst), "GE mean burst {burst}");
            // Independent loss at the same mean rate has runs barely longer than one.
            let (loss, burst) = run_stats(LinkConfig::ideal().with_loss(mean), seed);
            assert!((loss - mean).abs() <= 0.01, "random loss {loss}");
            assert!(burst < 1.2, "random mean burst {burst}");
        }
        // Degenerate chain: never leaves the good state.
        let stuck = LossModel::GilbertElliott {
            p_good_to_bad: 0.0,
            p_bad_to_good: 0.0,
            loss_good: 0.25,
            loss_bad: 1.0,
        };
        assert_eq!(stuck.mean_loss(), 0.25);
        assert_eq!(LossModel::Random(1.5).mean_loss(), 1.0);
    }

    /// A busy two-way workload with every impairment on, returning the full trace.
    fn impaired_run(seed: u64) -> (Vec<(Instant, Datagram)>, NetemStats) {
        let (a, b, c) = (addr(1), addr(2), addr(3));
        let mut net = Netem::new(seed);
        let cfg = LinkConfig::wan()
            .with_jitter(ms(15))
            .with_loss(0.05)
            .with_duplicate(0.05)
            .with_reorder(0.1, ms(20))
            .with_corrupt(0.05)
            .with_mtu(1000);
        net.set_default_link(cfg);
        net.set_link(
            b,
            c,
            LinkConfig::lan().with_gilbert_elliott(0.05, 0.3, 0.0, 0.8),
        );
        let mut trace = Vec::new();
        let mut now = Instant::ZERO;
        for i in 0..3_000u64 {
            let (s, d) = [(a, b), (b, a), (b, c), (c, a)][(i % 4) as usize];
            if i == 1_000 {
                net.partition(a, c, true);
            }
            if i == 2_000 {
                net.partition(a, c, false);
            }
            net.send(
                now,
                Datagram::new(s, d, payload(i, 100 + (i as usize * 7) % 1000)),
            );
            now += Duration::from_micros(700);
            while let Some(dg) = net.pop_due(now) {
                trace.push((now, dg));
            }
        }
        trace.extend(drain(&mut net));
        assert_conservation(&net);
        (trace, *net.stats())
    }

    #[test]
    fn same_seed_same_trace_different_seed_different_trace() {
        let (t1, s1) = impaired_run(42);
        let (t2, s2) = impaired_run(42);
        assert!(t1.len() > 2_000);
        assert_eq!(s1, s2);
        assert_eq!(t1, t2);
        // Every impairment actually fired in this workload.
        assert!(s1.lost > 0 && s1.duplicated > 0 && s1.reordered > 0);
        assert!(s1.corrupted > 0 && s1.too_big > 0 && s1.partitioned > 0);
        let (t3, s3) = impaired_run(43);
        assert_ne!(t1, t3);
        assert_ne!(s1, s3);
    }

    #[test]
    fn pop_due_is_never_early_and_next_delivery_is_consistent() {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(12);
        net.set_link_both(
            a,
            b,
            LinkConfig::wan()
                .with_jitter(ms(30))
                .with_duplicate(0.2)
                .with_reorder(0.2, ms(25)),
        );
        let mut now = Instant::ZERO;
        let mut last = Instant::ZERO;
        let mut popped = 0u64;
        for i in 0..4_000u64 {
            let (s, d) = if i % 3 == 0 { (b, a) } else { (a, b) };
            net.send(now, Datagram::new(s, d, payload(i, 10)));
            // Irregular steps of 0..=1.5 ms.
            now += Duration::from_micros((i * 7919) % 1500);
            loop {
                let next = net.next_delivery();
                let before = net.in_flight();
                match net.pop_due(now) {
                    Some(_) => {
                        let t = next.expect("pop_due returned a datagram with nothing scheduled");
                        assert!(t <= now, "delivered at {now:?}, due {t:?}");
                        assert!(t >= last, "deliveries out of time order");
                        last = t;
                        popped += 1;
                        assert_eq!(net.in_flight(), before - 1);
                    }
                    None => {
                        assert!(next.is_none_or(|t| t > now));
                        assert_eq!(next.is_none(), before == 0);
                        break;
                    }
                }
            }
        }
        // Step exactly to each remaining delivery; one nanosecond early is never enough.
        while let Some(t) = net.next_delivery() {
            assert!(t > now);
            assert_eq!(net.pop_due(just_before(t)), None);
            assert!(net.pop_due(t).is_some());
            assert!(t >= last);
            last = t;
            now = t;
            popped += 1;
        }
        assert_eq!(net.in_flight(), 0);
        assert_eq!(popped, net.stats().delivered);
        assert_eq!(net.stats().delivered, 4_000 + net.stats().duplicated);
    }

    const MBIT: u64 = 1_000_000;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn bottleneck_paces_a_burst_at_exactly_the_link_rate() {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(13);
        // 1250 bytes = 10 000 bits = 100 µs at 100 Mbit/s; the queue holds the whole burst.
        let cfg = LinkConfig::ideal()
            .with_delay(ms(10))
            .with_bottleneck(100 * MBIT, 2_000_000);
        net.set_link(a, b, cfg);
        let t0 = Instant::from_nanos(5_000_000);
        for i in 0..1000u64 {
            net.send(t0, Datagram::new(a, b, payload(i, 1250)));
        }
        assert_eq!(net.in_flight(), 1000);
        let trace = drain(&mut net);
        assert_eq!(trace.len(), 1000);
        for (k, (t, d)) in trace.iter().enumerate() {
            let k = k as u64;
            assert_eq!(index_of(d), k);
            assert_eq!(*t, t0 + ms(10) + us(100 * (k + 1)), "datagram {k}");
        }
        let s = net.link_stats(a, b);
        assert_eq!((s.sent, s.delivered, s.queue_drops), (1000, 1000, 0));
        // Once the burst is through, a lone datagram only pays its own serialization.
        let t1 = t0 + ms(200);
        net.send(t1, Datagram::new(a, b, payload(1000, 1250)));
        assert_eq!(net.next_delivery(), Some(t1 + us(100) + ms(10)));
        // The other direction has no bottleneck.
        net.send(t1, Datagram::new(b, a, payload(1001, 1250)));
        assert_eq!(net.next_delivery(), Some(t1));
        assert_eq!(drain(&mut net).len(), 2);
        assert_conservation(&net);
    }

    #[test]
    fn full_drop_tail_queue_drops_the_tail_of_a_burst() {
        let (a, b) = (addr(1), addr(2));
        let t0 = Instant::from_nanos(1_000_000);
        let mut net = Netem::new(14);
        net.set_link(
            a,
            b,
            LinkConfig::ideal().with_bottleneck(100 * MBIT, 10 * 1250),
        );
        for i in 0..100u64 {
            net.send(t0, Datagram::new(a, b, payload(i, 1250)));
        }
        // Datagram k meets a backlog of k * 1250 bytes (nothing has finished at t0) and is
        // admitted iff that is <= 12 500: k = 0..=10, the one in service plus 10 waiting.
        assert_eq!(net.in_flight(), 11);
        assert_eq!(net.link_stats(a, b).queue_drops, 89);
        assert_eq!(net.stats().queue_drops, 89);
        // Half-way through the first serialization the queue is still full...
        net.send(t0 + us(50), Datagram::new(a, b, payload(100, 1250)));
        // ...and when the first one finishes there is room for exactly one more.
        net.send(t0 + us(100), Datagram::new(a, b, payload(101, 1250)));
        net.send(t0 + us(100), Datagram::new(a, b, payload(102, 1250)));
        assert_eq!(net.stats().queue_drops, 91);
        let got: Vec<(Instant, u64)> = drain(&mut net)
            .iter()
            .map(|(t, d)| (*t, index_of(d)))
            .collect();
        let mut want: Vec<(Instant, u64)> = (0..=10).map(|k| (t0 + us(100 * (k + 1)), k)).collect();
        want.push((t0 + us(1200), 101));
        assert_eq!(got, want);
        let s = net.link_stats(a, b);
        assert_eq!((s.sent, s.delivered, s.queue_drops), (103, 12, 91));
        assert_conservation(&net);

        // queue_bytes == 0: only the datagram being serialized.
        let mut net = Netem::new(14);
        net.set_link(a, b, LinkConfig::ideal().with_bottleneck(100 * MBIT, 0));
        for i in 0..5 {
            net.send(t0, Datagram::new(a, b, payload(i, 1250)));
        }
        net.send(t0 + us(99), Datagram::new(a, b, payload(5, 1250)));
        net.send(t0 + us(100), Datagram::new(a, b, payload(6, 1250)));
        let got: Vec<u64> = drain(&mut net).iter().map(|(_, d)| index_of(d)).collect();
        assert_eq!(got, vec![0, 6]);
        assert_eq!(net.stats().queue_drops, 5);

        // Mixed sizes: the datagram in service counts in full, the arrival's own size
        // does not.
        let mut net = Netem::new(14);
        net.set_link(a, b, LinkConfig::ideal().with_bottleneck(100 * MBIT, 1500));
        net.send(t0, Datagram::new(a, b, payload(0, 1500))); // backlog 0: in service
        net.send(t0, Datagram::new(a, b, payload(1, 100))); // backlog 1500: admitted
        net.send(t0, Datagram::new(a, b, payload(2, 100))); // backlog 1600: dropped
        let got: Vec<(Instant, u64)> = drain(&mut net)
            .iter()
            .map(|(t, d)| (*t, index_of(d)))
            .collect();
        assert_eq!(got, vec![(t0 + us(120), 0), (t0 + us(128), 1)]);
        assert_eq!(net.stats().queue_drops, 1);

        // A rate of 0 carries nothing.
        let mut net = Netem::new(14);
        net.set_link(a, b, LinkConfig::ideal().with_bottleneck(0, 1 << 20));
        net.send(t0, Datagram::new(a, b, payload(0, 10)));
        assert_eq!((net.in_flight(), net.stats().queue_drops), (0, 1));
        assert_conservation(&net);
    }

    /// Sends `n` 1250-byte datagrams, datagram `i` at `t0 + at(i)`, over 100 Mbit/s with a
    /// 10 ms delay and the given queue; returns the per-datagram sojourn beyond the base
    /// delay (`None` if dropped) and the queue drops.
    fn sojourns(
        n: u64,
        queue_bytes: usize,
        at: impl Fn(u64) -> Duration,
    ) -> (Vec<Option<Duration>>, u64) {
        let (a, b) = (addr(1), addr(2));
        let mut net = Netem::new(15);
        let cfg = LinkConfig::ideal()
            .with_delay(ms(10))
            .with_bottleneck(100 * MBIT, queue_bytes);
        net.set_link(a, b, cfg);
        let t0 = Instant::from_nanos(3_000_000);
        for i in 0..n {
            net.send(t0 + at(i), Datagram::new(a, b, payload(i, 1250)));
            assert_conservation(&net);
        }
        let mut out = vec![None; n as usize];
        for (t, d) in drain(&mut net) {
            let i = index_of(&d);
            out[i as usize] = Some(t - (t0 + at(i)) - ms(10));
        }
        assert_conservation(&net);
        (out, net.stats().queue_drops)
    }

    #[test]
    fn at_the_rate_nothing_drops_and_at_twice_the_rate_half_drops() {
        let n = 10_000;
        // Evenly spaced at exactly the rate, even with no queue at all: each datagram
        // finishes the instant the next one arrives, so each only pays its own 100 µs.
        for queue in [0, 10 * 1250] {
            let (s, drops) = sojourns(n, queue, |i| us(100 * i));
            assert_eq!(drops, 0);
            assert!(s.iter().all(|&d| d == Some(us(100))));
        }
        // The same average rate in bursts of 4 every 400 µs: room for 3 waiting is enough
        // and the queueing delay stays bounded by the burst; room for 2 drops every 4th.
        let burst = |i: u64| us(400 * (i / 4));
        let (s, drops) = sojourns(n, 3 * 1250, burst);
        assert_eq!(drops, 0);
        for (i, d) in s.iter().enumerate() {
            assert_eq!(*d, Some(us(100 * (i as u64 % 4 + 1))));
        }
        let (s, drops) = sojourns(n, 2 * 1250, burst);
        assert_eq!(drops, n / 4);
        assert!(
            s.iter()
                .enumerate()
                .all(|(i, d)| d.is_none() == (i % 4 == 3))
        );

        // Twice the rate: the queue fills, then every other arrival is dropped, and an
        // admitted datagram waits behind at most 10 others (the one in service included).
        let (s, drops) = sojourns(n, 10 * 1250, |i| us(50 * i));
        let r = rate(drops, n);
        assert!((0.49..=0.5).contains(&r), "dropped {r}");
        assert!(
            s[..20].iter().all(Option::is_some),
            "no drop before the queue fills"
        );
        assert!(s.iter().flatten().all(|&d| d <= us(1100)));
        // Once full, the queue stays full: every admitted datagram waits ~10 ahead.
        assert!(s[100..].iter().flatten().all(|&d| d >= us(1000)));
        assert!(
            s[100..]
                .chunks(2)
                .all(|w| w.iter().filter(|d| d.is_some()).count() == 1)
        );
    }

    #[test]
    fn long_run_throughput_equals_the_rate() {
        let (a, b) = (addr(1), addr(2));
        // Not a round rate: serialization times are fractions of a nanosecond apart.
        let rate_bps = 7_777_777u64;
        let mut net = Netem::new(16);
        net.set_link(
            a,
            b,
            LinkConfig::ideal()
                .with_delay(ms(25))
                .with_bottleneck(rate_bps, 64 * 1024),
        );
        // About 1.5× the rate: mean size ~800 bytes every 550 µs.
        let n = 30_000u64;
        for i in 0..n {
            let len = 200 + (i as usize * 7919) % 1200;
            net.send(
                Instant::ZERO + us(550 * i),
                Datagram::new(a, b, payload(i, len)),
            );
        }
        let trace = drain(&mut net);
        let s = net.link_stats(a, b);
        assert!(s.queue_drops > n / 5, "{s:?}");
        assert_eq!(trace.len() as u64, n - s.queue_drops);
        // Measure while saturated (the queue has long filled by delivery 1000).
        let k0 = 1000;
        let span = trace.last().unwrap().0 - trace[k0].0;
        let bits: u64 = trace[k0 + 1..]
            .iter()
            .map(|(_, d)| d.contents.len() as u64 * 8)
            .sum();
        let measured = bits as f64 / span.as_secs_f64();
        let err = (measured / rate_bps as f64 - 1.0).abs();
        assert!(err < 0.001, "throughput {measured} vs {rate_bps}");
        // In fact rounding never accumulates: the span is the exact serialization time of
        // those bits, to the nanosecond.
        let exact_ns = u128::from(bits) * 1_000_000_000 / u128::from(rate_bps);
        assert!(
            span.as_nanos().abs_diff(exact_ns) <= 1,
            "{span:?} vs {exact_ns} ns"
        );
        assert_conservation(&net);
    }

    /// A two-way workload with every impairment plus bottlenecks on `a -> b` and
    /// `b -> a` (if `bottleneck`); `c -> a` never has one.
    fn bottlenecked_run(seed: u64, bottleneck: bool) -> (Vec<(Instant, Datagram)>, NetemStats) {
        let (a, b, c) = (addr(1), addr(2), addr(3));
        let mut net = Netem::new(seed);
        let mut ab = LinkConfig::wan()
            .with_jitter(ms(5))
            .with_loss(0.05)
            .with_duplicate(0.1)
            .with_reorder(0.05, ms(10))
            .with_corrupt(0.02)
            .with_mtu(1000);
        let mut ba = LinkConfig::lan()
            .with_gilbert_elliott(0.05, 0.3, 0.0, 0.8)
            .with_duplicate(0.2);
        if bottleneck {
            ab = ab.with_bottleneck(2 * MBIT, 8 * 1024);
            ba = ba.with_bottleneck(MBIT, 0);
        }
        net.set_link(a, b, ab);
        net.set_link(b, a, ba);
        net.set_link(c, a, LinkConfig::wan().with_loss(0.1).with_duplicate(0.1));
        let mut trace = Vec::new();
        let mut now = Instant::ZERO;
        for i in 0..4_000u64 {
            let (s, d) = [(a, b), (b, a), (c, a)][(i % 3) as usize];
            if i == 1_500 {
                net.partition(a, b, true);
            }
            if i == 1_800 {
                net.partition(a, b, false);
            }
            net.send(
                now,
                Datagram::new(s, d, payload(i, 100 + (i as usize * 13) % 1000)),
            );
            assert_conservation(&net);
            now += us(300);
            while let Some(dg) = net.pop_due(now) {
                trace.push((now, dg));
            }
        }
        trace.extend(drain(&mut net));
        assert_conservation(&net);
        for (s, d) in [(a, b), (b, a), (c, a)] {
            let l = net.link_stats(s, d);
            assert_eq!(
                l.sent + l.duplicated,
                l.delivered + l.lost + l.too_big + l.partitioned + l.queue_drops,
                "{l:?}"
            );
        }
        (trace, *net.stats())
    }

    #[test]
    fn bottleneck_keeps_the_invariant_and_determinism() {
        let (t1, s1) = bottlenecked_run(42, true);
        let (t2, s2) = bottlenecked_run(42, true);
        assert_eq!(s1, s2);
        assert_eq!(t1, t2);
        assert!(s1.queue_drops > 500, "{s1:?}");
        assert!(s1.lost > 0 && s1.duplicated > 0 && s1.reordered > 0);
        assert!(s1.corrupted > 0 && s1.too_big > 0 && s1.partitioned > 0);
        let (t3, s3) = bottlenecked_run(43, true);
        assert_ne!(t1, t3);
        assert_ne!(s1, s3);
        // The bottleneck draws nothing: every decision before it is the same without it,
        // and the link without a bottleneck sees exactly the same trace.
        let (t0, s0) = bottlenecked_run(42, false);
        assert_eq!(s0.queue_drops, 0);
        let before = |s: &NetemStats| {
            (
                s.sent,
                s.lost,
                s.duplicated,
                s.corrupted,
                s.too_big,
                s.partitioned,
            )
        };
        assert_eq!(before(&s0), before(&s1));
        let from_c = |t: &[(Instant, Datagram)]| -> Vec<(Instant, Datagram)> {
            t.iter()
                .filter(|(_, d)| d.source == addr(3))
                .cloned()
                .collect()
        };
        assert!(!from_c(&t0).is_empty());
        assert_eq!(from_c(&t0), from_c(&t1));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn config() -> impl Strategy<Value = LinkConfig> {
            (
                (0u64..50, 0u64..50, 0u64..50),
                (0.0f64..1.0, 0.0f64..1.0, 0.0f64..1.0, 0.0f64..1.0),
                (0.0f64..0.5, 0.0f64..1.0, 0usize..200),
                // A bottleneck of 0 (carries nothing) to 10 Mbit/s in front of 0..=2000 bytes.
                proptest::option::of((0u64..10_000_000, 0usize..=2000)),
            )
                .prop_map(
                    |(
                        (delay, jitter, rdelay),
                        (loss, dup, reorder, corrupt),
                        (ge, gb, mtu),
                        bottleneck,
                    )| {
                        let mut cfg = LinkConfig::ideal()
                            .with_delay(ms(delay))
                            .with_jitter(ms(jitter))
                            .with_duplicate(dup)
                            .with_reorder(reorder, ms(rdelay))
                            .with_corrupt(corrupt)
                            .with_mtu(mtu);
                        if let Some((rate, queue)) = bottleneck {
                            cfg = cfg.with_bottleneck(rate, queue);
                        }
                        if ge > 0.25 {
                            cfg.with_gilbert_elliott(ge, gb, 0.0, loss)
                        } else {
                            cfg.with_loss(loss)
                        }
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn schedule_invariants_hold(
                seed in any::<u64>(),
                cfg_ab in config(),
                cfg_ba in config(),
                sends in proptest::collection::vec((0u64..20_000, any::<bool>(), 0usize..250), 0..200),
            ) {
                let (a, b) = (addr(1), addr(2));
                let run = || {
                    let mut net = Netem::new(seed);
                    net.set_link(a, b, cfg_ab);
                    net.set_link(b, a, cfg_ba);
                    let mut now = Instant::ZERO;
                    let mut trace = Vec::new();
                    for (k, &(step_us, dir, len)) in sends.iter().enumerate() {
                        let (s, d) = if dir { (a, b) } else { (b, a) };
                        net.send(now, Datagram::new(s, d, payload(k as u64, len)));
                        now += Duration::from_micros(step_us);
                        while let Some(t) = net.next_delivery().filter(|&t| t <= now) {
                            let dg = net.pop_due(now).expect("due");
                            trace.push((t, dg));
                        }
                        prop_assert!(net.next_delivery().is_none_or(|t| t > now));
                        prop_assert_eq!(net.pop_due(now), None);
                    }
                    trace.extend(drain(&mut net));
                    assert_conservation(&net);
                    prop_assert_eq!(net.in_flight(), 0);
                    let ab = net.link_stats(a, b);
                    let ba = net.link_stats(b, a);
                    prop_assert_eq!(ab.sent + ba.sent, sends.len() as u64);
                    prop_assert_eq!(ab.delivered + ba.delivered, trace.len() as u64);
                    Ok(trace)
                };
                let trace = run()?;
                prop_assert!(trace.windows(2).all(|w| w[0].0 <= w[1].0));
                for (_, d) in &trace {
                    let cfg = if d.source == a { cfg_ab } else { cfg_ba };
                    prop_assert!(d.contents.len() <= cfg.mtu);
                }
                prop_assert_eq!(run()?, trace);
            }
        }
    }
}
