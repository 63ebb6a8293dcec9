//! The simulated network: per-message delay, loss and duplication, and
//! partitions, all drawn from the simulation's seeded RNG.
//!
//! Before the global stabilisation time (GST) messages may be lost,
//! duplicated and delayed up to `delay_ms_max_before_gst`; after it, every
//! message between connected nodes arrives within `delay_ms_max` (partial
//! synchrony). Partitions cut links in both directions until healed.

use phalanx_consensus::types::Millis;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How messages travel.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Delay bounds after GST.
    pub delay_ms_min: Millis,
    pub delay_ms_max: Millis,
    /// Delay bound before GST (reordering comes from the spread).
    pub delay_ms_max_before_gst: Millis,
    /// Probability a message is lost, before GST.
    pub loss_before_gst: f64,
    /// Probability a message is delivered twice, before GST.
    pub duplicate_before_gst: f64,
    /// Global stabilisation time.
    pub gst_ms: Millis,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            delay_ms_min: 1,
            delay_ms_max: 20,
            delay_ms_max_before_gst: 400,
            loss_before_gst: 0.05,
            duplicate_before_gst: 0.02,
            gst_ms: 0,
        }
    }
}

/// Which nodes can talk: a node belongs to one group; nodes in different
/// groups cannot exchange messages. Everyone in group 0 means no partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub group_of: Vec<u8>,
}

impl Partition {
    pub fn none(n: usize) -> Partition {
        Partition { group_of: vec![0; n] }
    }
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.group_of[a] == self.group_of[b]
    }
    pub fn is_whole(&self) -> bool {
        self.group_of.iter().all(|&g| g == self.group_of[0])
    }
}

/// The link model.
pub struct Network {
    pub cfg: NetworkConfig,
    pub partition: Partition,
}

impl Network {
    pub fn new(cfg: NetworkConfig, nodes: usize) -> Network {
        Network { cfg, partition: Partition::none(nodes) }
    }

    /// Delivery delays for one message from `a` to `b` sent at `now`: empty
    /// if lost or cut, two entries if duplicated.
    pub fn delays(&self, rng: &mut ChaCha8Rng, now: Millis, a: usize, b: usize) -> Vec<Millis> {
        if !self.partition.connected(a, b) {
            return Vec::new();
        }
        let c = &self.cfg;
        if now >= c.gst_ms {
            return vec![rng.gen_range(c.delay_ms_min..=c.delay_ms_max)];
        }
        if rng.gen_bool(c.loss_before_gst) {
            return Vec::new();
        }
        let mut v = vec![rng.gen_range(c.delay_ms_min..=c.delay_ms_max_before_gst)];
        if rng.gen_bool(c.duplicate_before_gst) {
            v.push(rng.gen_range(c.delay_ms_min..=c.delay_ms_max_before_gst));
        }
        v
    }
}
