//! A run's fault plan, drawn from its seed.
//!
//! Before the global stabilisation time (GST) anything goes within the
//! protocol's fault model: lossy, duplicating, slow links; partitions that
//! form and heal; honest validators that crash (at a random point inside one
//! of their steps, so between a persist and the send it protects) and
//! restart from exactly what they persisted. Up to f validators are
//! Byzantine for the whole run: Twins (two honest engines sharing one key,
//! kept on opposite sides of every partition, so equivocation and double
//! votes arise without malicious code) or a message-layer adversary (drop
//! all, delay, replay old messages, corrupt signatures, propose on a stale
//! QC). After GST the
//! network is synchronous, every partition is healed and every crashed
//! honest validator is back, so at most f validators are faulty and commits
//! must resume.

use super::network::NetworkConfig;
use super::protocol::FaultModel;
use phalanx_consensus::types::Millis;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a Byzantine validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ByzantineKind {
    /// Two honest instances with the same key on opposite sides of partitions.
    Twins,
    /// Sends nothing.
    DropAll,
    /// Delays everything it sends by up to two base timeouts.
    Delay,
    /// Also resends old messages of its own to random peers.
    Replay,
    /// Corrupts the signatures of everything it sends.
    CorruptSignatures,
    /// When it leads a round entered through a TC, proposes on a QC up to
    /// two blocks older than its highest (trying to fork below the lock).
    StaleProposal,
}

impl ByzantineKind {
    pub const ALL: [ByzantineKind; 6] = [
        ByzantineKind::Twins,
        ByzantineKind::DropAll,
        ByzantineKind::Delay,
        ByzantineKind::Replay,
        ByzantineKind::CorruptSignatures,
        ByzantineKind::StaleProposal,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ByzantineKind::Twins => "twins",
            ByzantineKind::DropAll => "drop-all",
            ByzantineKind::Delay => "delay",
            ByzantineKind::Replay => "replay",
            ByzantineKind::CorruptSignatures => "corrupt-signatures",
            ByzantineKind::StaleProposal => "stale-proposal",
        }
    }
}

/// What a run may throw at the validators.
#[derive(Clone, Debug)]
pub struct FaultConfig {
    /// Byzantine validators run as Twins pairs.
    pub twins: usize,
    /// Byzantine validators run as message-layer adversaries (of a random
    /// kind, or `only_kind`). Twins plus adversaries are capped at the
    /// protocol's f; crash-fault protocols get none.
    pub adversaries: usize,
    /// Make every message-layer adversary this kind.
    pub only_kind: Option<ByzantineKind>,
    pub partitions: bool,
    pub crashes: bool,
    /// Latest GST.
    pub gst_ms_max: Millis,
    /// Longest partition.
    pub partition_ms_max: Millis,
    /// How long to run after GST.
    pub after_gst_ms: Millis,
}

impl FaultConfig {
    /// Everything on: one Twins pair and `adversaries` message-layer
    /// adversaries (capped at f when drawn).
    pub fn full(adversaries: usize) -> FaultConfig {
        FaultConfig {
            twins: 1,
            adversaries,
            only_kind: None,
            partitions: true,
            crashes: true,
            gst_ms_max: 4_000,
            partition_ms_max: 1_500,
            after_gst_ms: 6_000,
        }
    }

    /// A synchronous, fault-free network from the start.
    pub fn none() -> FaultConfig {
        FaultConfig {
            twins: 0,
            adversaries: 0,
            only_kind: None,
            partitions: false,
            crashes: false,
            gst_ms_max: 0,
            partition_ms_max: 0,
            after_gst_ms: 10_000,
        }
    }
}

/// A partition from `at` until `until`: `group_of[instance]`.
#[derive(Clone, Debug)]
pub struct PartitionEvent {
    pub at: Millis,
    pub until: Millis,
    pub group_of: Vec<u8>,
}

/// An honest instance crashing at `at` and restarting at `restart_at`.
#[derive(Clone, Debug)]
pub struct CrashEvent {
    pub instance: usize,
    pub at: Millis,
    pub restart_at: Millis,
    /// A killed process: its connections close and the others' transports
    /// report it (`Input::PeerDisconnected`). Otherwise a host that stops
    /// answering: nothing closes and the others learn of it only by
    /// timeouts.
    pub closes_connections: bool,
}

/// Everything that goes wrong in one run.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    pub network: NetworkConfig,
    /// (validator index, how it misbehaves).
    pub byzantine: Vec<(usize, ByzantineKind)>,
    pub partitions: Vec<PartitionEvent>,
    pub crashes: Vec<CrashEvent>,
    pub duration_ms: Millis,
}

impl FaultPlan {
    /// Draws a plan for `n` validators. Instances 0..n are the validators;
    /// each Twins pair adds one more instance at the end, in plan order.
    pub fn draw(rng: &mut ChaCha8Rng, n: usize, model: FaultModel, max_faulty: usize, cfg: &FaultConfig) -> FaultPlan {
        let gst = if cfg.gst_ms_max == 0 { 0 } else { rng.gen_range(cfg.gst_ms_max / 4..=cfg.gst_ms_max) };
        let network = NetworkConfig {
            delay_ms_min: 1,
            delay_ms_max: rng.gen_range(5..=40),
            delay_ms_max_before_gst: rng.gen_range(40..=400),
            loss_before_gst: rng.gen_range(0.0..0.2),
            duplicate_before_gst: rng.gen_range(0.0..0.05),
            gst_ms: gst,
        };
        let budget = if model == FaultModel::Byzantine { max_faulty } else { 0 };
        let twins_count = cfg.twins.min(budget);
        let adversary_count = cfg.adversaries.min(budget - twins_count);
        let mut validators: Vec<usize> = (0..n).collect();
        let mut byzantine = Vec::new();
        for i in 0..twins_count + adversary_count {
            let v = validators.remove(rng.gen_range(0..validators.len()));
            let kind = match (i < twins_count, cfg.only_kind) {
                (true, _) => ByzantineKind::Twins,
                (false, Some(k)) => k,
                (false, None) => ByzantineKind::ALL[rng.gen_range(1..ByzantineKind::ALL.len())],
            };
            byzantine.push((v, kind));
        }
        let twins: Vec<(usize, usize)> = byzantine
            .iter()
            .filter(|(_, k)| *k == ByzantineKind::Twins)
            .enumerate()
            .map(|(i, (v, _))| (*v, n + i))
            .collect();
        let instances = n + twins.len();
        let partitions = if cfg.partitions && gst > 0 {
            draw_partitions(rng, instances, &twins, gst, cfg.partition_ms_max.max(100))
        } else {
            vec![]
        };
        let honest: Vec<usize> = (0..n).filter(|v| !byzantine.iter().any(|(b, _)| b == v)).collect();
        let crashes = if cfg.crashes && gst > 0 { draw_crashes(rng, &honest, gst) } else { vec![] };
        FaultPlan { network, byzantine, partitions, crashes, duration_ms: gst + cfg.after_gst_ms }
    }

    /// Instances that run the `twin`-th Twins copy of a validator.
    pub fn twin_instances(&self, n: usize) -> Vec<(usize, usize)> {
        self.byzantine
            .iter()
            .filter(|(_, k)| *k == ByzantineKind::Twins)
            .enumerate()
            .map(|(i, (v, _))| (*v, n + i))
            .collect()
    }
}

fn draw_partitions(
    rng: &mut ChaCha8Rng,
    instances: usize,
    twins: &[(usize, usize)],
    gst: Millis,
    longest: Millis,
) -> Vec<PartitionEvent> {
    let mut out = Vec::new();
    let mut t = rng.gen_range(0..gst / 4 + 1);
    while t + 100 < gst && out.len() < 6 {
        let len = rng.gen_range(100..=longest).min(gst - t);
        let mut group_of: Vec<u8> = (0..instances).map(|_| rng.gen_range(0..2)).collect();
        for &(a, b) in twins {
            group_of[b] = 1 - group_of[a];
        }
        out.push(PartitionEvent { at: t, until: t + len, group_of });
        t += len + rng.gen_range(0..=800);
    }
    out
}

fn draw_crashes(rng: &mut ChaCha8Rng, honest: &[usize], gst: Millis) -> Vec<CrashEvent> {
    let count = rng.gen_range(0..=3);
    let mut out = Vec::new();
    for _ in 0..count {
        let instance = honest[rng.gen_range(0..honest.len())];
        let at = rng.gen_range(0..gst);
        let restart_at = (at + rng.gen_range(50..=2_000)).min(gst.saturating_sub(1)).max(at + 1);
        let closes_connections = rng.gen_bool(0.5);
        if out.iter().any(|c: &CrashEvent| c.instance == instance && c.restart_at >= at && c.at <= restart_at) {
            continue;
        }
        out.push(CrashEvent { instance, at, restart_at, closes_connections });
    }
    out
}
