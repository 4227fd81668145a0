//! Shards: one scenario's plan split into N parts (`--shard I/N`) that run anywhere — other GPUs
//! of one machine, a CI matrix, a Slurm array — and merge back into one result set
//! (`xbench report` of every shard's results.json, `merge`).
//!
//! A shard runs the resolved plan restricted to its groups; its results hold only its own cells,
//! with the plan's identity (`plan_id`) and the plan index of every group and cell, so that the
//! merge can check that the shards are of one plan, that none is missing or doubled, and lay
//! their cells out exactly as one unsharded run would.

pub mod merge;

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::resolve::ResolvedPlan;
use crate::results::{ShardInfo, Timing};
use crate::scenario::{Plan, ScenarioFile};

/// `--shard I/N`: shard I (from 1) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    /// Parses `I/N`; the error names `--shard`, what is wrong and the fix.
    pub fn parse(text: &str) -> Result<ShardSpec, String> {
        let fix = "fix: give --shard I/N, this shard's number I from 1 to N and the number of shards N, e.g. --shard 2/4 (in a Slurm array: --shard $SLURM_ARRAY_TASK_ID/4 with --array=1-4)";
        let numbers = text.split_once('/').and_then(|(i, n)| Some((i.trim().parse::<usize>().ok()?, n.trim().parse::<usize>().ok()?)));
        let Some((index, count)) = numbers else {
            return Err(format!("--shard `{text}` is not I/N (two whole numbers: this shard's number and the number of shards)\n  {fix}"));
        };
        if count == 0 {
            return Err(format!("--shard `{text}`: the number of shards N must be at least 1\n  {fix}"));
        }
        if index == 0 || index > count {
            return Err(format!("--shard `{text}`: shards are numbered from 1 to {count}, so I = {index} names none\n  fix: give --shard I/{count} with I from 1 to {count} (the first shard is 1/{count}, not 0/{count})"));
        }
        Ok(ShardSpec { index, count })
    }
}

/// What makes two runs runs of the same plan: the scenario as written, the runtimes it runs
/// (`--runtimes` included), every cell in order, what the timer covers and the arithmetic asked
/// for. Paths on the machine, devices and model files are not part of it, so that the same
/// scenario run on other machines, GPUs or checkouts is the same plan.
#[derive(Serialize)]
struct Identity<'a> {
    scenario: &'a ScenarioFile,
    runtimes: Vec<&'a str>,
    cells: Vec<(&'a str, &'a str, usize, usize, Option<usize>)>,
    timer: TimerKey,
    no_tf32: bool,
}

/// What the timer of the plan's cells covers, as settings rather than words: the timing, whether
/// inputs and outputs are staged in pinned buffers (`--pinned-io`, which `--cuda-graph` implies)
/// and whether runs replay CUDA graphs. The plan's identity holds these, so that rewording the
/// timer's description in the results changes no plan's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimerKey {
    timing: Timing,
    staged_io: bool,
    cuda_graph: bool,
}

impl TimerKey {
    pub fn new(timing: Timing, pinned_io: bool, cuda_graph: bool) -> TimerKey {
        TimerKey { timing, staged_io: pinned_io || cuda_graph, cuda_graph }
    }
}

/// The plan's identity: 16 hexadecimal digits of a 64-bit FNV-1a digest of `Identity` as JSON.
pub fn plan_id(plan: &Plan, file: &ScenarioFile, timer: TimerKey, no_tf32: bool) -> String {
    let id = Identity {
        scenario: file,
        runtimes: plan.runtimes.iter().map(|r| r.id.as_str()).collect(),
        cells: plan.cells.iter().map(|c| (c.model.as_str(), c.runtime.as_str(), c.chars, c.batch, c.data_set)).collect(),
        timer,
        no_tf32,
    };
    let text = serde_json::to_vec(&id).expect("the identity serializes");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The work a group asks for, in token-runs: for each cell, its warm-ups and iterations × batch
/// size × tokens per row (about a token per 4 characters, plus 2 special tokens, so that an
/// operation case, at length 0, counts 2); a test data set counts 1 per run; a generation its
/// prompt and 4 per new token.
fn work(plan: &Plan, g: usize) -> u64 {
    let runs = (plan.settings.warmup + plan.settings.iterations) as u64;
    plan.group_cells(&plan.groups[g])
        .iter()
        .map(|c| match (c.data_set, c.new_tokens) {
            (Some(_), _) => runs,
            // A generation: the prompt once, then a step per new token, each about as long as a
            // few prompt tokens' work.
            (None, Some(new)) => runs * c.batch as u64 * (c.chars as u64 + 4 * new as u64),
            (None, None) => runs * c.batch as u64 * (c.chars as u64 / 4 + 2),
        })
        .sum()
}

/// Which shard (from 0) runs each group of `plan`, for `count` shards.
///
/// Balanced by work, not dealt round: groups are taken heaviest first (the plan's order among
/// equals) and each goes to the shard with the least work so far (the lowest-numbered among
/// equals): the longest-processing-time rule. No shard ends with more work than the lightest one
/// plus one group's, and the busiest shard has at most 4/3 of what the best split would give it
/// (Graham's bound), where dealing in turn can give one shard every heavy group. On a grid where
/// every group asks for the same work (one grid of lengths and batch sizes for every model and
/// runtime) this deals the groups out in turn, every N-th group to one shard, as the simplest
/// split would. The work is counted from
/// the plan alone (sizes, batches, iterations), never from model files or the machine, so every
/// shard computes the same split wherever it runs, even where a model could not be fetched.
pub fn split(plan: &Plan, count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut order: Vec<(u64, usize)> = (0..plan.groups.len()).map(|g| (work(plan, g), g)).collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut load = vec![0u64; count];
    let mut owner = vec![0usize; plan.groups.len()];
    for (w, g) in order {
        let s = (0..count).min_by_key(|&s| (load[s], s)).expect("at least one shard");
        load[s] += w;
        owner[g] = s;
    }
    owner
}

/// Restricts `plan` to `shard` of the split: its groups and cells only, numbered from 0 in the
/// plan's order. Returns what the shard's results record about it (`kept_outputs` included: the
/// cells whose saved outputs another shard's cells are compared with, or the reverse — those of
/// models whose runtimes or sibling model, `compare_with`, run on several shards).
pub fn restrict(plan: &mut ResolvedPlan, spec: ShardSpec, plan_id: String) -> ShardInfo {
    let owner = split(&plan.plan, spec.count);
    let mine = spec.index - 1;
    // Models linked by comparisons (runtimes of one model; a model and its sibling) form a
    // family; a family whose groups run on several shards is compared when the shards merge.
    let models = plan.models.len();
    let mut family: Vec<usize> = (0..models).collect();
    fn root(f: &mut [usize], mut m: usize) -> usize {
        while f[m] != m {
            f[m] = f[f[m]];
            m = f[m];
        }
        m
    }
    for m in 0..models {
        if let Some(s) = plan.sibling_of(m) {
            let (a, b) = (root(&mut family, m), root(&mut family, s));
            family[a] = b;
        }
    }
    let mut shards_of: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); models];
    for g in &plan.plan.groups {
        let r = root(&mut family, g.model);
        shards_of[r].insert(owner[g.index]);
    }
    let split_family: Vec<bool> = (0..models).map(|m| shards_of[root(&mut family, m)].len() > 1).collect();

    let p = &mut plan.plan;
    let (plan_groups, plan_cells) = (p.groups.len(), p.cells.len());
    let mut groups = Vec::new();
    let mut cells = Vec::new();
    let mut info = ShardInfo { index: spec.index, count: spec.count, plan_id, plan_groups, plan_cells, groups: vec![], cells: vec![], kept_outputs: vec![], kept_digests: Default::default() };
    for g in p.groups.iter().filter(|g| owner[g.index] == mine) {
        let mut group = g.clone();
        group.index = groups.len();
        group.first_cell = cells.len();
        for c in p.group_cells(g) {
            let mut cell = c.clone();
            cell.index = cells.len();
            cell.group = group.index;
            info.cells.push(c.index);
            cells.push(cell);
        }
        info.groups.push(g.index);
        groups.push(group);
    }
    (p.groups, p.cells) = (groups, cells);
    let keeps: Vec<bool> = (0..models).map(|m| split_family[m] && plan.keeps_outputs(m)).collect();
    info.kept_outputs = plan.plan.cells.iter().filter(|c| keeps[plan.plan.groups[c.group].model]).map(|c| c.index).collect();
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{validate, Overrides, Point};

    fn plan(yaml: &str) -> Plan {
        let file = ScenarioFile::parse(yaml, "t.yaml").unwrap();
        validate(&file, "t.yaml", std::path::Path::new("."), &Overrides::default()).unwrap()
    }

    #[test]
    fn groups_of_equal_work_are_dealt_in_turn_and_unequal_ones_balanced() {
        let p = plan("name: t\nmodels: [a, b, c]\nruntimes: [tract-cpu, ort-cpu]\ninput_chars: [50, 500]\nbatch_sizes: [1, 8]\niterations: 5\n");
        assert_eq!(p.groups.len(), 6);
        for n in 1..=8 {
            assert_eq!(split(&p, n), (0..6).map(|g| g % n).collect::<Vec<_>>(), "{n} shards");
        }
        // Model `a` runs one data set instead of the grid: its groups weigh little.
        let mut p = p;
        let grid = p.grid_points();
        p.regrid(|m| if m == 0 { vec![Point::data_set(0)] } else { grid.clone() });
        let works: Vec<u64> = (0..6).map(|g| work(&p, g)).collect();
        assert!(works[0] < works[2] / 100, "{works:?}");
        for n in 1..=7 {
            let owner = split(&p, n);
            assert_eq!(owner, split(&p, n), "the same split every time");
            let mut load = vec![0u64; n];
            for (g, &s) in owner.iter().enumerate() {
                assert!(s < n);
                load[s] += works[g];
            }
            let (lo, hi) = (*load.iter().min().unwrap(), *load.iter().max().unwrap());
            assert!(hi - lo <= *works.iter().max().unwrap(), "{n} shards: loads {load:?} from works {works:?}");
            if n == 2 {
                assert_eq!(lo, hi, "four heavy groups and two light ones split evenly in two: {load:?}");
            }
        }
    }

    #[test]
    fn a_models_own_settings_are_part_of_the_plan() {
        let id = |models: &str| {
            let yaml = format!("name: t\nmodels: {models}\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 5\n");
            plan_id(&plan(&yaml), &ScenarioFile::parse(&yaml, "t.yaml").unwrap(), TimerKey::new(Timing::EndToEnd, false, false), false)
        };
        let (plain, own, other) = (id("[a, b]"), id("[a, {name: b, dims: {x.3: 320}}]"), id("[a, {name: b, dims: {x.3: 192}}]"));
        assert!(plain != own && own != other && plain != other, "shards of runs fed other sizes never merge: {plain} {own} {other}");
        assert_eq!(own, id("[a, {name: b, dims: {x.3: 320}}]"));
    }

    #[test]
    fn the_id_is_stable_for_one_plan_and_changes_with_each_timer_setting() {
        let yaml = "name: t\nmodels: [a]\nruntimes: [tract-cpu]\ninput_chars: [50]\nbatch_sizes: [1]\niterations: 5\n";
        let id = |timer| plan_id(&plan(yaml), &ScenarioFile::parse(yaml, "t.yaml").unwrap(), timer, false);
        let plain = id(TimerKey::new(Timing::EndToEnd, false, false));
        assert_eq!(plain, id(TimerKey::new(Timing::EndToEnd, false, false)), "the same plan has the same id");
        assert_eq!(plain.len(), 16);
        let others = [
            id(TimerKey::new(Timing::DeviceResident, false, false)),
            id(TimerKey::new(Timing::EndToEnd, true, false)),
            id(TimerKey::new(Timing::EndToEnd, false, true)),
            id(TimerKey::new(Timing::DeviceResident, false, true)),
        ];
        let all: BTreeSet<&String> = others.iter().chain([&plain]).collect();
        assert_eq!(all.len(), 5, "each timer setting is another plan: {plain} {others:?}");
        // CUDA graphs stage inputs and outputs anyway: --pinned-io beside --cuda-graph is the same timer.
        assert_eq!(id(TimerKey::new(Timing::EndToEnd, true, true)), others[2]);
        let json = serde_json::to_string(&TimerKey::new(Timing::DeviceResident, true, false)).unwrap();
        assert_eq!(json, r#"{"timing":"device-resident","staged_io":true,"cuda_graph":false}"#, "stable serde names, no prose");
    }

    #[test]
    fn shard_numbers_are_checked_with_the_fix() {
        assert_eq!(ShardSpec::parse("2/4"), Ok(ShardSpec { index: 2, count: 4 }));
        assert_eq!(ShardSpec::parse(" 1 / 1 "), Ok(ShardSpec { index: 1, count: 1 }));
        for (bad, says) in [("0/2", "numbered from 1 to 2"), ("3/2", "numbered from 1 to 2"), ("1/0", "at least 1"), ("2", "is not I/N"), ("a/b", "is not I/N"), ("-1/2", "is not I/N"), ("1/2/3", "is not I/N")] {
            let e = ShardSpec::parse(bad).unwrap_err();
            assert!(e.contains(says) && e.contains("--shard") && e.contains("\n  fix: "), "{bad}: {e}");
        }
    }
}
