//! A linearizability checker for the key-value history clients record
//! against a real cluster.
//!
//! A history is linearizable (Herlihy & Wing, "Linearizability: a
//! correctness condition for concurrent objects", ACM TOPLAS 12(3), 1990) if
//! each operation can be given one instant inside its interval, from
//! invocation to answer, such that the operations applied one at a time in
//! that order to a single key-value map return what the clients saw. So an
//! operation answered before another was invoked must come first: `a`
//! precedes `b` iff `a.complete_us < b.invoke_us` (strictly; touching
//! intervals are concurrent).
//!
//! # How it checks
//!
//! 1. **One key at a time.** Linearizability is local (Herlihy & Wing §3.3,
//!    the locality theorem): a history over several objects is linearizable
//!    iff each object's sub-history is. Each key is an independent register,
//!    so the search is exponential at worst in the concurrency on one key,
//!    never in the size of the whole history.
//! 2. **Per key, Wing & Gong's search** (J. Wing and C. Gong, "Testing and
//!    verifying concurrent objects", JPDC 17(1), 1993) **with Lowe's
//!    memoisation** (G. Lowe, "Testing for linearizability", Concurrency and
//!    Computation: Practice and Experience 29(4), 2017). Invocations and
//!    answers are events in one time-ordered doubly linked list. Scanning
//!    from the head, the first invocation the register accepts (a put
//!    always; a get if it returned the current value) is linearized: its
//!    events are unlinked, the frame is pushed, and the scan restarts. An
//!    answer reached during the scan belongs to an operation that should
//!    have been linearized already: a dead end, so the last frame is popped
//!    and the scan goes on after its invocation. Lowe's cache holds every
//!    configuration reached, (set of linearized operations, register value),
//!    so each is explored once. The search is an explicit stack, not
//!    recursion, so a history of thousands of operations cannot overflow
//!    the thread's stack.
//! 3. **Uncertain outcomes.** A put answered `Unknown` may take effect at
//!    any instant after its invocation, or never: it has an invocation event
//!    and no answer, and the search succeeds once every operation with a
//!    definite answer is linearized. Such a put is only worth linearizing
//!    when a get still to be linearized returned its value (otherwise
//!    dropping it from any linearization leaves a linearization), so those
//!    whose value no get returned are set aside before the search and the
//!    rest are tried only while a reader of their value remains. A get
//!    answered `Unknown` constrains nothing and is set aside.
//! 4. **A budget.** Each key's search stops after a number of cache entries
//!    (configurations); the verdict is then [`Verdict::Inconclusive`], never
//!    a guess.
//! 5. **Explaining a failure.** A get whose value no put wrote (and that was
//!    not the key's initial value), or that found a key absent although it
//!    existed before the history, is reported at once with that get as the
//!    witness. Otherwise the search remembers its furthest dead end: the
//!    latest answer it could not get past, with the deepest linearizable
//!    prefix that reached it. The history up to that answer (operations
//!    invoked no later than it; those answered later count as uncertain) is
//!    then already not linearizable, because a linearization of it would be
//!    a path through the search past that answer. Those operations are the
//!    witness, and the message names the operation, the prefix's last steps
//!    and the key's value after it, plus the stale-read reason when one
//!    holds ("put b was acknowledged before this get was invoked, and every
//!    write of a was acknowledged before that put began").
//!
//! # Why not `stateright`
//!
//! `stateright::semantics::LinearizabilityTester` checks one sequential
//! object by recursion over interleavings without a cache, orders operations
//! by recorded event order per thread rather than by timestamps, allows an
//! in-flight operation only as a thread's last, and answers with a
//! serialisation or nothing. Phalanx needs per-key partitioning, puts that
//! never answered followed by more operations from the same client, a
//! bounded search and a readable reason, and would have pulled in a model
//! checker for it, so this module implements the search itself.
//!
//! The module is pure: no I/O, no clock, no randomness.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One key-value operation as a client invoked it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum KvOp {
    /// Set `key` to `value`.
    Put { key: String, value: String },
    /// Read `key`.
    Get { key: String },
}

impl KvOp {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Put { key, .. } | KvOp::Get { key } => key,
        }
    }
}

/// What the client learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum KvOutcome {
    /// A put acknowledged as committed.
    PutOk,
    /// A get that returned this value (None: the key was absent).
    GetOk(Option<String>),
    /// No definite answer (timeout, connection lost): a put may or may not
    /// have taken effect, at any time after its invocation; a get with this
    /// outcome constrains nothing and is ignored.
    Unknown,
}

/// One operation of a client history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// The client that invoked it (for messages only).
    pub client: usize,
    /// Microseconds since the start of the run, when the client sent it.
    pub invoke_us: u64,
    /// When the answer arrived; None if it never did (then outcome is Unknown).
    pub complete_us: Option<u64>,
    /// What was asked.
    pub op: KvOp,
    /// What was answered.
    pub outcome: KvOutcome,
}

/// The judgement on a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every key's sub-history has a linearization.
    Linearizable,
    /// No linearization exists; the violation names the key and the operations involved.
    NotLinearizable(Violation),
    /// The search gave up (state budget exhausted) on some key, or the
    /// history of that key is malformed: neither proven nor refuted.
    Inconclusive { key: String, reason: String },
}

/// Why a key's history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The key whose register history has no linearization.
    pub key: String,
    /// The operation that cannot be linearized, the reason when a simple
    /// one holds, and the longest linearizable prefix the search found.
    pub message: String,
    /// Indices into the input slice, ascending: a sub-history that is
    /// already not linearizable on its own (see the module doc).
    pub operations: Vec<usize>,
}

/// What a check looked at and how hard it searched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Keys checked (a refutation stops the check at its key).
    pub keys: usize,
    /// Operations the searches considered.
    pub operations: usize,
    /// Operations set aside as constraining nothing: gets answered
    /// `Unknown`, and puts answered `Unknown` whose value no get returned.
    pub operations_ignored: usize,
    /// Configurations explored, summed over keys.
    pub states: usize,
}

/// The default budget: configurations explored per key before giving up.
pub const STATES_PER_KEY_DEFAULT: usize = 1_000_000;

/// Checks key-value histories for linearizability; see the module doc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checker {
    states_per_key_max: usize,
}

impl Default for Checker {
    fn default() -> Checker {
        Checker::new()
    }
}

impl Checker {
    /// A checker with the default budget, [`STATES_PER_KEY_DEFAULT`].
    pub fn new() -> Checker {
        Checker::with_budget(STATES_PER_KEY_DEFAULT)
    }

    /// A checker that explores at most `states` configurations per key.
    pub fn with_budget(states: usize) -> Checker {
        Checker { states_per_key_max: states }
    }

    /// Judges `history`. `initial`: the value of each key before the
    /// history (keys not listed start absent).
    pub fn check(&self, history: &[Operation], initial: &BTreeMap<String, String>) -> Verdict {
        self.check_with_stats(history, initial).0
    }

    /// [`Checker::check`], and what it took. Keys are checked in order; the
    /// first refuted key decides the verdict, otherwise the first key the
    /// checker could not decide.
    pub fn check_with_stats(&self, history: &[Operation], initial: &BTreeMap<String, String>) -> (Verdict, Stats) {
        let mut stats = Stats::default();
        let mut undecided = None;
        for (key, indices) in operations_by_key(history) {
            stats.keys += 1;
            match self.check_key(key, &indices, history, initial.get(key), &mut stats) {
                Verdict::Linearizable => {}
                refuted @ Verdict::NotLinearizable(_) => return (refuted, stats),
                inconclusive @ Verdict::Inconclusive { .. } => {
                    undecided.get_or_insert(inconclusive);
                }
            }
        }
        (undecided.unwrap_or(Verdict::Linearizable), stats)
    }

    fn check_key(
        &self,
        key: &str,
        indices: &[usize],
        history: &[Operation],
        initial: Option<&String>,
        stats: &mut Stats,
    ) -> Verdict {
        let register = match Register::build(key, indices, history, initial) {
            Ok(register) => register,
            Err(reason) => return Verdict::Inconclusive { key: key.to_string(), reason },
        };
        stats.operations += register.ops.len();
        stats.operations_ignored += indices.len() - register.ops.len();
        if let Some(violation) = register.impossible_read(history) {
            return Verdict::NotLinearizable(violation);
        }
        let mut states = 0;
        let outcome = Search::new(&register).run(self.states_per_key_max, &mut states);
        stats.states += states;
        match outcome {
            Outcome::Linearizable => Verdict::Linearizable,
            Outcome::Refuted(dead_end) => Verdict::NotLinearizable(register.explain(&dead_end, history)),
            Outcome::GaveUp => Verdict::Inconclusive {
                key: key.to_string(),
                reason: format!(
                    "search budget of {} states exhausted on key {key:?} ({} operations); \
                     raise it with Checker::with_budget",
                    self.states_per_key_max,
                    register.ops.len()
                ),
            },
        }
    }
}

fn operations_by_key(history: &[Operation]) -> BTreeMap<&str, Vec<usize>> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, operation) in history.iter().enumerate() {
        by_key.entry(operation.op.key()).or_default().push(index);
    }
    by_key
}

/// Value id of "absent"; ids of written and read values start at 1.
const ABSENT: u32 = 0;

/// One operation on the key's register, as the search sees it.
#[derive(Clone, Copy, Debug)]
struct RegOp {
    /// Index into the input history.
    index: usize,
    /// A put (else a get).
    write: bool,
    /// The value written, or the value read.
    value: u32,
    invoke_us: u64,
    /// None: a put answered `Unknown`, which never has to be linearized.
    complete_us: Option<u64>,
}

/// One key's history, prepared for the search.
struct Register<'h> {
    key: &'h str,
    /// Ordered by invocation.
    ops: Vec<RegOp>,
    /// Value id to value; `values[ABSENT]` is a placeholder.
    values: Vec<&'h str>,
    initial: u32,
}

impl<'h> Register<'h> {
    /// Interns values, sets aside what constrains nothing and refuses
    /// malformed operations (the reason names the operation).
    fn build(
        key: &'h str,
        indices: &[usize],
        history: &'h [Operation],
        initial: Option<&'h String>,
    ) -> Result<Register<'h>, String> {
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut values = vec![""];
        let mut intern = |value: &'h str| {
            *ids.entry(value).or_insert_with(|| {
                values.push(value);
                (values.len() - 1) as u32
            })
        };
        let initial = initial.map_or(ABSENT, |value| intern(value));
        let mut ops = Vec::with_capacity(indices.len());
        for &index in indices {
            if let Some((written, complete_us)) = validate(index, &history[index])? {
                let value = written.map_or(ABSENT, &mut intern);
                let write = matches!(history[index].op, KvOp::Put { .. });
                ops.push(RegOp { index, write, value, invoke_us: history[index].invoke_us, complete_us });
            }
        }
        let read: HashSet<u32> = ops.iter().filter(|op| !op.write).map(|op| op.value).collect();
        ops.retain(|op| op.complete_us.is_some() || read.contains(&op.value));
        ops.sort_by_key(|op| (op.invoke_us, op.index));
        Ok(Register { key, ops, values, initial })
    }

    /// A get no order can explain whatever the timing: it returned a value
    /// nobody wrote, or absent for a key that existed before the history.
    fn impossible_read(&self, history: &[Operation]) -> Option<Violation> {
        let written: HashSet<u32> = self.ops.iter().filter(|op| op.write).map(|op| op.value).collect();
        let get = self.ops.iter().find(|op| {
            !op.write
                && if op.value == ABSENT {
                    self.initial != ABSENT
                } else {
                    op.value != self.initial && !written.contains(&op.value)
                }
        })?;
        let why = if get.value == ABSENT {
            format!("the key held {} before the history began and no operation removes a key", self.show(self.initial))
        } else {
            format!("no put on key {:?} wrote that value and it was not the initial value", self.key)
        };
        let message = format!("{} cannot be linearized: {why}", describe(&history[get.index]));
        Some(Violation { key: self.key.to_string(), message, operations: vec![get.index] })
    }

    fn explain(&self, dead_end: &DeadEnd, history: &[Operation]) -> Violation {
        let operations: Vec<usize> = {
            let mut witness: Vec<usize> =
                self.ops.iter().filter(|op| op.invoke_us <= dead_end.at_us).map(|op| op.index).collect();
            witness.sort_unstable();
            witness
        };
        let last: Vec<String> =
            dead_end.prefix.iter().rev().take(3).rev().map(|&p| describe(&history[self.ops[p].index])).collect();
        let ends_with = if last.is_empty() {
            String::from(" is empty")
        } else {
            let elided = if dead_end.prefix.len() > last.len() { "..., " } else { "" };
            format!(" ends with {elided}{}", last.join(", then "))
        };
        let message = format!(
            "{} cannot be linearized{}. No order of the operations on key {:?} gets past that answer: \
             the longest linearizable prefix found ({} of the {} operations invoked by then){ends_with}, \
             leaving the key {}",
            describe(&history[self.ops[dead_end.op].index]),
            self.stale_read_reason(dead_end.op, history).unwrap_or_default(),
            self.key,
            dead_end.prefix.len(),
            operations.len(),
            if dead_end.value == ABSENT { String::from("absent") } else { format!("at {}", self.show(dead_end.value)) },
        );
        Violation { key: self.key.to_string(), message, operations }
    }

    /// For a get that read a value overwritten before it was invoked: the
    /// overwriting put, stated only when it provably applies.
    fn stale_read_reason(&self, position: usize, history: &[Operation]) -> Option<String> {
        let get = self.ops[position];
        if get.write {
            return None;
        }
        let before_get = |op: &&RegOp| op.write && op.complete_us.is_some_and(|done| done < get.invoke_us);
        let last = self.ops.iter().filter(before_get).max_by_key(|op| op.complete_us)?;
        let overwriter = describe(&history[last.index]);
        if get.value == ABSENT {
            return Some(format!(
                ": {overwriter} was acknowledged before it was invoked, and no operation removes a key"
            ));
        }
        if last.value == get.value {
            return None;
        }
        let mut writes = self.ops.iter().filter(|op| op.write && op.value == get.value).peekable();
        if writes.peek().is_none() {
            return Some(format!(
                ": {overwriter} was acknowledged before it was invoked, and {} was only the key's initial value",
                self.show(get.value)
            ));
        }
        let all_earlier = writes.all(|op| op.complete_us.is_some_and(|done| done < last.invoke_us));
        all_earlier.then(|| {
            format!(
                ": {overwriter} was acknowledged before it was invoked, and every write of {} was acknowledged \
                 before that put began, so the get read a stale value",
                self.show(get.value)
            )
        })
    }

    fn show(&self, value: u32) -> String {
        if value == ABSENT { String::from("absent") } else { format!("{:?}", self.values[value as usize]) }
    }
}

/// Checks one operation's shape. `Ok(None)`: it constrains nothing (a get
/// answered `Unknown`). `Ok(Some((value, complete_us)))`: the value written
/// or read (None: absent) and the answer time (None: a put answered
/// `Unknown`, whose answer time does not bound it).
type Checked<'h> = Option<(Option<&'h str>, Option<u64>)>;

fn validate(index: usize, operation: &Operation) -> Result<Checked<'_>, String> {
    let answered = |operation: &Operation| match operation.complete_us {
        Some(done) if done >= operation.invoke_us => Ok(Some(done)),
        Some(done) => Err(format!(
            "operation {index} was answered at {done} us, before it was invoked at {} us",
            operation.invoke_us
        )),
        None => Err(format!("operation {index} has a definite outcome but no completion time")),
    };
    match (&operation.op, &operation.outcome) {
        (KvOp::Put { value, .. }, KvOutcome::PutOk) => Ok(Some((Some(value), answered(operation)?))),
        (KvOp::Put { value, .. }, KvOutcome::Unknown) => Ok(Some((Some(value), None))),
        (KvOp::Get { .. }, KvOutcome::GetOk(read)) => Ok(Some((read.as_deref(), answered(operation)?))),
        (KvOp::Get { .. }, KvOutcome::Unknown) => Ok(None),
        (KvOp::Put { .. }, KvOutcome::GetOk(_)) => Err(format!("operation {index} is a put answered like a get")),
        (KvOp::Get { .. }, KvOutcome::PutOk) => Err(format!("operation {index} is a get answered like a put")),
    }
}

/// How a key's search ended.
enum Outcome {
    Linearizable,
    Refuted(DeadEnd),
    GaveUp,
}

/// The furthest the search got: the latest answer it could not get past,
/// and the deepest configuration that reached it.
struct DeadEnd {
    /// The operation (a position in `Register::ops`) answered too early.
    op: usize,
    /// Its answer time.
    at_us: u64,
    /// Positions of the linearized operations, in linearization order.
    prefix: Vec<usize>,
    /// The register's value after the prefix.
    value: u32,
}

/// Node 0 of the event list is the head sentinel.
const HEAD: usize = 0;

/// The time-ordered invocations and answers of one key as a doubly linked
/// list (node 0 the head, the last node the tail), unlinked and relinked in
/// stack order as operations are linearized and taken back.
struct Events {
    /// The operation (position in `Register::ops`) of each node.
    op: Vec<usize>,
    /// Invocation (true) or answer.
    call: Vec<bool>,
    time_us: Vec<u64>,
    /// For an invocation, the node of its answer (HEAD: it has none).
    answer: Vec<usize>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Events {
    /// At equal times invocations sort before answers, so touching
    /// intervals are concurrent.
    fn new(ops: &[RegOp]) -> Events {
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (position, op) in ops.iter().enumerate() {
            events.push((op.invoke_us, false, position));
            if let Some(done) = op.complete_us {
                events.push((done, true, position));
            }
        }
        events.sort_unstable();
        let nodes = events.len() + 2;
        let mut list = Events {
            op: vec![0; nodes],
            call: vec![false; nodes],
            time_us: vec![0; nodes],
            answer: vec![HEAD; nodes],
            next: (1..=nodes).collect(),
            prev: (0..nodes).map(|node| node.saturating_sub(1)).collect(),
        };
        let mut call_node = vec![HEAD; ops.len()];
        for (offset, &(time_us, is_answer, position)) in events.iter().enumerate() {
            let node = offset + 1;
            (list.op[node], list.call[node], list.time_us[node]) = (position, !is_answer, time_us);
            if is_answer {
                list.answer[call_node[position]] = node;
            } else {
                call_node[position] = node;
            }
        }
        list
    }

    fn tail(&self) -> usize {
        self.op.len() - 1
    }

    fn unlink(&mut self, node: usize) {
        let (before, after) = (self.prev[node], self.next[node]);
        self.next[before] = after;
        self.prev[after] = before;
    }

    fn relink(&mut self, node: usize) {
        let (before, after) = (self.prev[node], self.next[node]);
        self.next[before] = node;
        self.prev[after] = node;
    }

    /// Takes an invocation and its answer out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if self.answer[call] != HEAD {
            self.unlink(self.answer[call]);
        }
    }

    /// Undoes the matching `lift`; lifts are undone in reverse order.
    fn unlift(&mut self, call: usize) {
        if self.answer[call] != HEAD {
            self.relink(self.answer[call]);
        }
        self.relink(call);
    }
}

/// One linearized operation on the search stack.
struct Frame {
    call: usize,
    value_before: u32,
}

enum Step {
    Rejected,
    Advanced,
    Complete,
    OutOfBudget,
}

/// Wing & Gong's search with Lowe's cache over one key; see the module doc.
struct Search<'r> {
    ops: &'r [RegOp],
    events: Events,
    /// Bit per operation position: linearized.
    linearized: Vec<u64>,
    /// Per value id: gets returning it not linearized yet.
    reads_left: Vec<u32>,
    /// Operations with a definite answer not linearized yet.
    definite_left: usize,
    value: u32,
    stack: Vec<Frame>,
    /// Lowe's cache: `[value, run boundaries of linearized...]` of every
    /// configuration reached.
    seen: HashSet<Box<[u32]>>,
    scratch: Vec<u32>,
    dead_end: Option<DeadEnd>,
}

impl<'r> Search<'r> {
    fn new(register: &'r Register<'_>) -> Search<'r> {
        let ops = &register.ops[..];
        let mut reads_left = vec![0; register.values.len()];
        for op in ops.iter().filter(|op| !op.write) {
            reads_left[op.value as usize] += 1;
        }
        Search {
            ops,
            events: Events::new(ops),
            linearized: vec![0; ops.len().div_ceil(64)],
            reads_left,
            definite_left: ops.iter().filter(|op| op.complete_us.is_some()).count(),
            value: register.initial,
            stack: Vec::new(),
            seen: HashSet::new(),
            scratch: Vec::new(),
            dead_end: None,
        }
    }

    /// Explores at most `budget` configurations, counting them in `states`.
    fn run(mut self, budget: usize, states: &mut usize) -> Outcome {
        if self.definite_left == 0 {
            return Outcome::Linearizable;
        }
        let mut node = self.events.next[HEAD];
        loop {
            if node == self.events.tail() {
                // Only invocations of uncertain puts are left.
                return Outcome::Linearizable;
            }
            if !self.events.call[node] {
                self.note_dead_end(node);
                let Some(frame) = self.stack.pop() else {
                    return Outcome::Refuted(self.dead_end.take().expect("a dead end was just noted"));
                };
                self.undo(&frame);
                node = self.events.next[frame.call];
                continue;
            }
            match self.try_linearize(node, budget, states) {
                Step::Rejected => node = self.events.next[node],
                Step::Advanced => node = self.events.next[HEAD],
                Step::Complete => return Outcome::Linearizable,
                Step::OutOfBudget => return Outcome::GaveUp,
            }
        }
    }

    fn try_linearize(&mut self, call: usize, budget: usize, states: &mut usize) -> Step {
        let position = self.events.op[call];
        let op = self.ops[position];
        let value_after = match (op.write, op.complete_us) {
            (true, None) if self.reads_left[op.value as usize] == 0 => return Step::Rejected,
            (true, _) => op.value,
            (false, _) if op.value != self.value => return Step::Rejected,
            (false, _) => self.value,
        };
        self.flip(position);
        self.fill_cache_key(value_after);
        if self.seen.contains(&self.scratch[..]) {
            self.flip(position);
            return Step::Rejected;
        }
        if *states >= budget {
            return Step::OutOfBudget;
        }
        *states += 1;
        self.seen.insert(self.scratch.as_slice().into());
        self.stack.push(Frame { call, value_before: self.value });
        self.value = value_after;
        self.events.lift(call);
        if !op.write {
            self.reads_left[op.value as usize] -= 1;
        }
        if op.complete_us.is_some() {
            self.definite_left -= 1;
        }
        if self.definite_left == 0 { Step::Complete } else { Step::Advanced }
    }

    fn undo(&mut self, frame: &Frame) {
        let position = self.events.op[frame.call];
        let op = self.ops[position];
        self.flip(position);
        self.value = frame.value_before;
        self.events.unlift(frame.call);
        if !op.write {
            self.reads_left[op.value as usize] += 1;
        }
        if op.complete_us.is_some() {
            self.definite_left += 1;
        }
    }

    fn flip(&mut self, position: usize) {
        self.linearized[position / 64] ^= 1 << (position % 64);
    }

    /// The cache key: the value, then the positions where the linearized
    /// bitset changes between 0 and 1. Most configurations have a short
    /// key: everything before some point linearized, a few ops after it.
    fn fill_cache_key(&mut self, value: u32) {
        self.scratch.clear();
        self.scratch.push(value);
        let mut carry = 0u64;
        for (word_index, &word) in self.linearized.iter().enumerate() {
            let mut changes = word ^ ((word << 1) | carry);
            while changes != 0 {
                self.scratch.push((word_index * 64) as u32 + changes.trailing_zeros());
                changes &= changes - 1;
            }
            carry = word >> 63;
        }
    }

    /// Keeps the dead end with the latest answer, and the deepest prefix
    /// among those.
    fn note_dead_end(&mut self, answer: usize) {
        let at_us = self.events.time_us[answer];
        let further =
            self.dead_end.as_ref().is_none_or(|best| (at_us, self.stack.len()) > (best.at_us, best.prefix.len()));
        if further {
            self.dead_end = Some(DeadEnd {
                op: self.events.op[answer],
                at_us,
                prefix: self.stack.iter().map(|frame| self.events.op[frame.call]).collect(),
                value: self.value,
            });
        }
    }
}

/// `1.100 s`, or `1.100250 s` when the microseconds matter.
fn seconds(us: u64) -> String {
    if us.is_multiple_of(1000) {
        format!("{}.{:03} s", us / 1_000_000, us % 1_000_000 / 1000)
    } else {
        format!("{}.{:06} s", us / 1_000_000, us % 1_000_000)
    }
}

/// One operation for a person: what, who, when, with what answer.
fn describe(operation: &Operation) -> String {
    let invoked = seconds(operation.invoke_us);
    let answered = operation.complete_us.map(seconds);
    match (&operation.op, &operation.outcome) {
        (KvOp::Put { value, .. }, KvOutcome::Unknown) => {
            format!("put {value:?} by client {} (invoked {invoked}, outcome unknown)", operation.client)
        }
        (KvOp::Put { value, .. }, _) => format!(
            "put {value:?} by client {} (invoked {invoked}, acknowledged {})",
            operation.client,
            answered.unwrap_or_default()
        ),
        (KvOp::Get { .. }, outcome) => {
            let read = match outcome {
                KvOutcome::GetOk(Some(value)) => format!("{value:?}"),
                KvOutcome::GetOk(None) => String::from("absent"),
                _ => String::from("nothing known"),
            };
            format!(
                "get by client {} (invoked {invoked}, answered {}) returning {read}",
                operation.client,
                answered.unwrap_or_default()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::time::{Duration, Instant};

    fn put(client: usize, from_ms: u64, to_ms: u64, key: &str, value: &str) -> Operation {
        Operation {
            client,
            invoke_us: from_ms * 1000,
            complete_us: Some(to_ms * 1000),
            op: KvOp::Put { key: key.into(), value: value.into() },
            outcome: KvOutcome::PutOk,
        }
    }

    /// A put whose client timed out at `gave_up_ms` (None: no answer at all).
    fn put_unknown(client: usize, from_ms: u64, gave_up_ms: Option<u64>, key: &str, value: &str) -> Operation {
        Operation {
            client,
            invoke_us: from_ms * 1000,
            complete_us: gave_up_ms.map(|ms| ms * 1000),
            op: KvOp::Put { key: key.into(), value: value.into() },
            outcome: KvOutcome::Unknown,
        }
    }

    fn get(client: usize, from_ms: u64, to_ms: u64, key: &str, read: Option<&str>) -> Operation {
        Operation {
            client,
            invoke_us: from_ms * 1000,
            complete_us: Some(to_ms * 1000),
            op: KvOp::Get { key: key.into() },
            outcome: KvOutcome::GetOk(read.map(String::from)),
        }
    }

    fn check(history: &[Operation]) -> Verdict {
        Checker::new().check(history, &BTreeMap::new())
    }

    fn violation(verdict: Verdict) -> Violation {
        match verdict {
            Verdict::NotLinearizable(violation) => violation,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    /// The simplest linearizable history: a put, then a get of its value.
    #[test]
    fn sequential_put_then_get_is_linearizable() {
        let history = [put(0, 0, 10, "a", "1"), get(1, 20, 30, "a", Some("1"))];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    /// Real-time order: a get invoked after a put of 2 was acknowledged
    /// cannot return the 1 that 2 overwrote.
    #[test]
    fn stale_read_after_a_later_acknowledged_put_is_not_linearizable() {
        let history = [put(0, 0, 10, "a", "1"), put(1, 20, 30, "a", "2"), get(2, 40, 50, "a", Some("1"))];
        let violation = violation(check(&history));
        assert_eq!(violation.key, "a");
        assert_eq!(violation.operations, vec![0, 1, 2]);
        assert!(violation.message.starts_with("get by client 2 (invoked 0.040 s, answered 0.050 s) returning \"1\""));
        assert!(
            violation
                .message
                .contains("put \"2\" by client 1 (invoked 0.020 s, acknowledged 0.030 s) was acknowledged")
        );
        assert!(violation.message.contains("stale"), "{}", violation.message);
    }

    /// The witness is the history up to the answer no order gets past:
    /// later operations are not in it.
    #[test]
    fn witness_stops_at_the_answer_that_cannot_be_explained() {
        let history = [
            put(0, 0, 10, "a", "1"),
            put(1, 20, 30, "a", "2"),
            get(2, 40, 50, "a", Some("1")),
            put(0, 60, 70, "a", "3"),
            get(1, 80, 90, "a", Some("3")),
        ];
        assert_eq!(violation(check(&history)).operations, vec![0, 1, 2]);
    }

    /// A get overlapping a put may take effect before it or after it.
    #[test]
    fn get_concurrent_with_put_may_return_old_or_new_value() {
        for read in ["1", "2"] {
            let history = [put(0, 0, 10, "a", "1"), put(1, 20, 60, "a", "2"), get(2, 30, 40, "a", Some(read))];
            assert_eq!(check(&history), Verdict::Linearizable, "get returning {read}");
        }
    }

    /// Two gets inside one put, one after the other: once the first has
    /// seen the new value, the later one cannot see the old one.
    #[test]
    fn reads_seeing_new_then_old_value_are_not_linearizable() {
        let history = [
            put(0, 0, 10, "a", "1"),
            put(1, 20, 100, "a", "2"),
            get(2, 30, 40, "a", Some("2")),
            get(3, 50, 60, "a", Some("1")),
        ];
        let violation = violation(check(&history));
        assert_eq!(violation.key, "a");
        assert!(violation.message.starts_with("get by client 3"), "{}", violation.message);
    }

    /// Intervals that touch (answer and invocation at the same instant) are
    /// concurrent; one microsecond apart they are ordered.
    #[test]
    fn touching_intervals_are_concurrent() {
        assert_eq!(check(&[put(0, 0, 10, "a", "1"), get(1, 10, 20, "a", None)]), Verdict::Linearizable);
        violation(check(&[put(0, 0, 10, "a", "1"), get(1, 11, 20, "a", None)]));
    }

    /// A put that timed out may have taken effect: its value may be read.
    #[test]
    fn unknown_put_whose_value_is_read_is_linearizable() {
        let history = [put_unknown(0, 0, None, "a", "1"), get(1, 20, 30, "a", Some("1"))];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    /// ... or may never have taken effect.
    #[test]
    fn unknown_put_whose_value_is_never_read_is_linearizable() {
        let history = [put(0, 0, 10, "a", "1"), put_unknown(1, 20, Some(25), "a", "2"), get(2, 30, 40, "a", Some("1"))];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    /// A put whose client gave up may still take effect later, even after
    /// a put acknowledged since.
    #[test]
    fn unknown_put_may_take_effect_after_the_client_gave_up() {
        let history = [put_unknown(0, 0, Some(10), "a", "1"), put(1, 20, 30, "a", "2"), get(2, 40, 50, "a", Some("1"))];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    /// But not before it was invoked.
    #[test]
    fn unknown_put_cannot_take_effect_before_its_invocation() {
        let history = [get(0, 0, 10, "a", Some("1")), put_unknown(1, 20, None, "a", "1")];
        assert_eq!(violation(check(&history)).operations, vec![0]);
    }

    /// A get answered `Unknown` constrains nothing.
    #[test]
    fn unknown_get_is_ignored() {
        let mut lost = get(1, 20, 30, "a", None);
        (lost.outcome, lost.complete_us) = (KvOutcome::Unknown, None);
        let (verdict, stats) = Checker::new().check_with_stats(&[put(0, 0, 10, "a", "1"), lost], &BTreeMap::new());
        assert_eq!(verdict, Verdict::Linearizable);
        assert_eq!((stats.operations, stats.operations_ignored), (1, 1));
    }

    /// Nothing explains a value nobody wrote; the witness is that get alone.
    #[test]
    fn get_of_a_value_never_written_is_not_linearizable() {
        let history = [put(0, 0, 10, "a", "1"), get(1, 20, 30, "a", Some("zz"))];
        let violation = violation(check(&history));
        assert_eq!((violation.key.as_str(), violation.operations.as_slice()), ("a", &[1][..]));
        assert!(violation.message.contains("no put on key \"a\" wrote that value"), "{}", violation.message);
    }

    /// There are no deletes: once written, a key is never absent again.
    #[test]
    fn absent_after_an_acknowledged_put_is_not_linearizable() {
        let history = [put(0, 0, 10, "a", "1"), get(1, 20, 30, "a", None)];
        let violation = violation(check(&history));
        assert!(violation.message.contains("no operation removes a key"), "{}", violation.message);
    }

    /// Before any put, a key is absent.
    #[test]
    fn absent_before_any_put_is_linearizable() {
        let history = [get(1, 0, 10, "a", None), put(0, 20, 30, "a", "1"), get(1, 40, 50, "a", Some("1"))];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    /// With an initial value, a key is never absent; its initial value may
    /// be read until it is overwritten.
    #[test]
    fn initial_values_are_respected() {
        let initial = BTreeMap::from([(String::from("a"), String::from("0"))]);
        let checker = Checker::new();
        assert_eq!(checker.check(&[get(0, 0, 10, "a", Some("0"))], &initial), Verdict::Linearizable);
        let absent = violation(checker.check(&[get(0, 0, 10, "a", None)], &initial));
        assert!(absent.message.contains("held \"0\" before the history began"), "{}", absent.message);
        let overwritten = [put(0, 0, 10, "a", "1"), get(1, 20, 30, "a", Some("0"))];
        let stale = violation(checker.check(&overwritten, &initial));
        assert!(stale.message.contains("only the key's initial value"), "{}", stale.message);
    }

    /// Keys are separate registers: a violation on b is reported as b's
    /// while a is fine, and a's writes do not explain b's reads.
    #[test]
    fn keys_are_checked_independently() {
        let history = [
            put(0, 0, 10, "a", "1"),
            put(1, 0, 10, "b", "1"),
            put(0, 20, 30, "b", "2"),
            get(2, 40, 50, "a", Some("1")),
            get(2, 60, 70, "b", Some("1")),
        ];
        let (verdict, stats) = Checker::new().check_with_stats(&history, &BTreeMap::new());
        let violation = violation(verdict);
        assert_eq!(violation.key, "b");
        assert_eq!(violation.operations, vec![1, 2, 4]);
        assert_eq!(stats.keys, 2);
        assert_eq!(check(&history[..4]), Verdict::Linearizable);
    }

    /// A history the checker cannot read is not judged either way.
    #[test]
    fn malformed_operation_is_inconclusive() {
        let mut odd = put(0, 0, 10, "a", "1");
        odd.outcome = KvOutcome::GetOk(None);
        match check(&[odd]) {
            Verdict::Inconclusive { key, reason } => {
                assert_eq!(key, "a");
                assert!(reason.contains("operation 0"), "{reason}");
            }
            other => panic!("expected inconclusive, got {other:?}"),
        }
    }

    /// Running out of budget gives Inconclusive, never a verdict the search
    /// did not earn, on a linearizable and on a refutable history alike.
    #[test]
    fn exhausted_budget_is_inconclusive() {
        let mut history = Vec::new();
        for step in 0..20 {
            let value = step.to_string();
            history.push(put(0, step * 100, step * 100 + 10, "a", &value));
            history.push(get(1, step * 100 + 20, step * 100 + 30, "a", Some(&value)));
        }
        let tiny = Checker::with_budget(10);
        assert!(matches!(tiny.check(&history, &BTreeMap::new()), Verdict::Inconclusive { key, .. } if key == "a"));
        assert_eq!(check(&history), Verdict::Linearizable);
        history.push(get(1, 5000, 5010, "a", Some("3")));
        assert!(matches!(tiny.check(&history, &BTreeMap::new()), Verdict::Inconclusive { .. }));
        violation(check(&history));
    }

    /// Every order of a small history, tried one by one: the definition of
    /// linearizability, to hold the search to.
    fn brute_force(ops: &[RegOp], used: &mut Vec<bool>, value: u32) -> bool {
        let left = |i: usize, used: &[bool]| !used[i] && ops[i].complete_us.is_some();
        if (0..ops.len()).all(|i| !left(i, used)) {
            return true;
        }
        for i in 0..ops.len() {
            let blocked =
                (0..ops.len()).any(|j| left(j, used) && ops[j].complete_us.is_some_and(|done| done < ops[i].invoke_us));
            if used[i] || blocked || (!ops[i].write && ops[i].value != value) {
                continue;
            }
            used[i] = true;
            let found = brute_force(ops, used, if ops[i].write { ops[i].value } else { value });
            used[i] = false;
            if found {
                return true;
            }
        }
        false
    }

    /// The raw history as register operations, values "1".."3" as ids 1..3,
    /// nothing set aside.
    fn as_register_ops(history: &[Operation]) -> Vec<RegOp> {
        let id = |value: &String| value.parse::<u32>().expect("a numeric value");
        let convert = |(index, operation): (usize, &Operation)| {
            let (write, value) = match (&operation.op, &operation.outcome) {
                (KvOp::Put { value, .. }, _) => (true, id(value)),
                (KvOp::Get { .. }, KvOutcome::GetOk(read)) => (false, read.as_ref().map_or(ABSENT, id)),
                _ => unreachable!("the generator makes no other operation"),
            };
            let complete_us = if operation.outcome == KvOutcome::Unknown { None } else { operation.complete_us };
            RegOp { index, write, value, invoke_us: operation.invoke_us, complete_us }
        };
        history.iter().enumerate().map(convert).collect()
    }

    /// On thousands of tiny random histories (values reused, puts with
    /// unknown outcomes, touching intervals) the checker agrees with trying
    /// every order.
    #[test]
    fn search_agrees_with_brute_force_on_small_random_histories() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut verdicts = [0; 2];
        for _ in 0..3000 {
            let count = rng.gen_range(1..=6);
            let history: Vec<Operation> = (0..count)
                .map(|client| {
                    let from = rng.gen_range(0..8);
                    let to = from + rng.gen_range(0..4);
                    let value = rng.gen_range(1..=3).to_string();
                    match rng.gen_range(0..5) {
                        0 => put_unknown(client, from, None, "k", &value),
                        1 | 2 => put(client, from, to, "k", &value),
                        3 => get(client, from, to, "k", None),
                        _ => get(client, from, to, "k", Some(&value)),
                    }
                })
                .collect();
            let ops = as_register_ops(&history);
            let expected = brute_force(&ops, &mut vec![false; ops.len()], ABSENT);
            let verdict = check(&history);
            assert_eq!(verdict == Verdict::Linearizable, expected, "{history:#?}\n{verdict:?}");
            verdicts[usize::from(expected)] += 1;
        }
        assert!(verdicts[0] > 300 && verdicts[1] > 300, "both kinds of history were tried: {verdicts:?}");
    }

    /// A history from an atomic register: `clients` clients, one operation
    /// outstanding each, random overlapping intervals, each operation taking
    /// effect at a random instant inside its interval (3% of puts time out
    /// and take effect later or never; 3% of gets are lost).
    fn atomic_register_history(seed: u64, clients: usize, count: usize) -> Vec<Operation> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut clock_us: Vec<u64> = (0..clients).map(|_| rng.gen_range(0..1_000)).collect();
        let mut history = Vec::with_capacity(count);
        let mut effect_us = Vec::with_capacity(count);
        for n in 0..count {
            let client = (0..clients).min_by_key(|&c| clock_us[c]).expect("at least one client");
            let invoke_us = clock_us[client] + rng.gen_range(0..200);
            let complete_us = invoke_us + rng.gen_range(50..2_000);
            let uncertain = rng.gen_bool(0.03);
            let (op, outcome, effect) = if rng.gen_bool(0.5) {
                let op = KvOp::Put { key: "x".into(), value: format!("c{client}-{n}") };
                if uncertain {
                    let effect = rng.gen_bool(0.5).then(|| invoke_us + rng.gen_range(0..5_000));
                    (op, KvOutcome::Unknown, effect)
                } else {
                    (op, KvOutcome::PutOk, Some(rng.gen_range(invoke_us..=complete_us)))
                }
            } else {
                let outcome = if uncertain { KvOutcome::Unknown } else { KvOutcome::GetOk(None) };
                (KvOp::Get { key: "x".into() }, outcome, Some(rng.gen_range(invoke_us..=complete_us)))
            };
            let answered = outcome != KvOutcome::Unknown || rng.gen_bool(0.5);
            history.push(Operation { client, invoke_us, complete_us: answered.then_some(complete_us), op, outcome });
            effect_us.push(effect);
            clock_us[client] = complete_us;
        }
        let mut order: Vec<usize> = (0..count).filter(|&i| effect_us[i].is_some()).collect();
        order.sort_by_key(|&i| (effect_us[i], i));
        let mut value = None;
        for i in order {
            let operation = &mut history[i];
            match (&operation.op, &mut operation.outcome) {
                (KvOp::Put { value: written, .. }, _) => value = Some(written.clone()),
                (KvOp::Get { .. }, KvOutcome::GetOk(read)) => read.clone_from(&value),
                _ => {}
            }
        }
        history
    }

    /// Makes a get from the second half return a value definitely stale:
    /// written by a put acknowledged before another put that was itself
    /// acknowledged before the get was invoked. Returns its index.
    fn corrupt_one_get(history: &mut [Operation]) -> usize {
        let acked_before = |history: &[Operation], t: u64| {
            (0..history.len())
                .filter(|&i| history[i].outcome == KvOutcome::PutOk && history[i].complete_us < Some(t))
                .max_by_key(|&i| history[i].complete_us)
        };
        for g in history.len() / 2..history.len() {
            if !matches!(history[g].outcome, KvOutcome::GetOk(_)) {
                continue;
            }
            let Some(newer) = acked_before(history, history[g].invoke_us) else { continue };
            let Some(older) = acked_before(history, history[newer].invoke_us) else { continue };
            let KvOp::Put { value, .. } = &history[older].op else { unreachable!() };
            history[g].outcome = KvOutcome::GetOk(Some(value.clone()));
            return g;
        }
        panic!("no get to corrupt");
    }

    /// 2000 operations of 8 clients on one key: proven linearizable
    /// quickly, with a number of states linear in the history; one stale
    /// read planted in it is found.
    #[test]
    fn random_linearizable_history_passes_and_a_planted_stale_read_fails() {
        let mut history = atomic_register_history(42, 8, 2000);
        let started = Instant::now();
        let (verdict, stats) = Checker::new().check_with_stats(&history, &BTreeMap::new());
        let took = started.elapsed();
        assert_eq!(verdict, Verdict::Linearizable);
        assert!(stats.states <= 30 * history.len(), "{stats:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
        eprintln!("2000 ops: {stats:?} in {took:?}");

        let stale = corrupt_one_get(&mut history);
        let started = Instant::now();
        let (verdict, stats) = Checker::new().check_with_stats(&history, &BTreeMap::new());
        let took = started.elapsed();
        let violation = violation(verdict);
        assert_eq!(violation.key, "x");
        assert!(violation.operations.contains(&stale));
        assert!(took < Duration::from_secs(5), "took {took:?}");
        eprintln!("with a stale read: {stats:?} in {took:?}\n{}", violation.message);
    }

    /// Several keys and seeds, each key with its own clients' values.
    #[test]
    fn random_histories_over_several_keys_are_linearizable() {
        for seed in 0..5 {
            let mut history = Vec::new();
            for (k, key) in ["k0", "k1", "k2"].into_iter().enumerate() {
                for mut operation in atomic_register_history(seed * 10 + k as u64, 4, 300) {
                    match &mut operation.op {
                        KvOp::Put { key: k, .. } | KvOp::Get { key: k } => *k = key.to_string(),
                    }
                    history.push(operation);
                }
            }
            let (verdict, stats) = Checker::new().check_with_stats(&history, &BTreeMap::new());
            assert_eq!(verdict, Verdict::Linearizable, "seed {seed}");
            assert_eq!(stats.keys, 3);
        }
    }

    #[test]
    fn seconds_show_microseconds_only_when_they_matter() {
        assert_eq!(seconds(1_100_000), "1.100 s");
        assert_eq!(seconds(1_100_250), "1.100250 s");
    }
}
