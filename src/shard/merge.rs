//! The shards of one plan merged into one result set: checked (one plan, every shard once, every
//! group and cell once), laid out as one unsharded run would have them, each shard's machine and
//! times recorded; the outputs the shards kept for comparisons across them gathered, so that the
//! analysis compares those cells as one run would have.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::results::{Availability, Flag, FlagKind, Machine, OutputsDir, RunResults, ShardInfo, ShardPart, ShardSet, Status};

/// How a shard file is named in messages.
fn who(path: &Path, r: &RunResults, s: &ShardInfo) -> String {
    format!("{} (shard {} of scenario `{}`, plan {})", path.display(), s.label(), r.scenario.name, s.plan_id)
}

/// Merges the shards `files` (each a path and the shard's results, in any order) into one
/// result set. Refused, naming the shard and the fix: files of different plans or shard counts,
/// a shard given twice, a shard missing, shards that do not cover the plan's groups exactly once,
/// or one model that is a different file on two shards.
pub fn merge(files: &[(PathBuf, RunResults)]) -> Result<RunResults> {
    let shards: Vec<(&Path, &RunResults, &ShardInfo)> = files.iter().filter_map(|(p, r)| Some((p.as_path(), r, r.shard.as_ref()?))).collect();
    let Some(&(p0, r0, s0)) = shards.first() else { bail!("no shard results to merge\n  fix: give the results.json of every shard of one run (`xbench scenario … --shard I/N`)") };
    if let Some(&(p, r, s)) = shards.iter().find(|(_, _, s)| s.plan_id != s0.plan_id) {
        bail!(
            "{} and {} are shards of different plans: they do not merge into one result set (their scenario, runtimes, grid or timing differ)\n  fix: give the shards of one run only — the same scenario file, --runtimes and timing options on every shard; report other runs as series of their own in a report of unsharded runs",
            who(p0, r0, s0),
            who(p, r, s)
        );
    }
    if let Some(&(p, r, s)) = shards.iter().find(|(_, _, s)| s.count != s0.count) {
        bail!("{} is one of {} shards, {} one of {}: a plan split two ways does not merge\n  fix: give the shards of one split only (every shard run with --shard I/{})", who(p0, r0, s0), s0.count, who(p, r, s), s.count, s0.count);
    }
    let n = s0.count;
    let mut by_index: Vec<Option<(&Path, &RunResults, &ShardInfo)>> = vec![None; n];
    for &(p, r, s) in &shards {
        if let Some((q, _, _)) = by_index[s.index - 1] {
            bail!("shard {}/{n} is given twice: {} and {}\n  fix: give each shard's results.json once (a shard rerun elsewhere: keep one of its two folders)", s.index, q.display(), p.display());
        }
        by_index[s.index - 1] = Some((p, r, s));
    }
    let missing: Vec<String> = (1..=n).filter(|i| by_index[i - 1].is_none()).map(|i| format!("{i}/{n}")).collect();
    if !missing.is_empty() {
        let given: Vec<String> = shards.iter().map(|(p, _, s)| format!("{} from {}", s.label(), p.display())).collect();
        bail!(
            "shard {} of scenario `{}` (plan {}) {} missing; given: {}\n  fix: add the results.json of shard {} (run it with `xbench scenario {} --shard {} --out DIR` if it never ran), then report all {n} together",
            missing.join(", "),
            r0.scenario.name,
            s0.plan_id,
            if missing.len() == 1 { "is" } else { "are" },
            given.join(", "),
            missing.join(", "),
            r0.scenario_source,
            missing[0]
        );
    }
    let parts: Vec<(&Path, &RunResults, &ShardInfo)> = by_index.into_iter().flatten().collect();
    check_cover(&parts)?;
    let models = check_models(&parts)?;

    let (mut groups, mut cells) = (vec![None; s0.plan_groups], vec![None; s0.plan_cells]);
    for &(_, r, s) in &parts {
        for (k, &g) in s.groups.iter().enumerate() {
            groups[g] = Some(r.groups[k].clone());
        }
        for (k, &c) in s.cells.iter().enumerate() {
            let mut cell = r.cells[k].clone();
            cell.index = c;
            cells[c] = Some(cell);
        }
    }
    let mut m = r0.clone();
    m.groups = groups.into_iter().map(|g| g.expect("every group is covered")).collect();
    m.cells = cells.into_iter().map(|c| c.expect("every cell is covered")).collect();
    m.models = models;
    m.machine = machine(&parts);
    m.gpu = parts.iter().find_map(|(_, r, _)| r.gpu.clone());
    m.runtimes = runtimes(&parts);
    m.started_at = parts.iter().map(|(_, r, _)| r.started_at.clone()).min().unwrap_or_default();
    m.complete = parts.iter().all(|(_, r, _)| r.complete);
    m.finished_at = if m.complete { parts.iter().filter_map(|(_, r, _)| r.finished_at.clone()).max() } else { None };
    m.resumed_at = parts.iter().flat_map(|(_, r, _)| r.resumed_at.clone()).collect();
    m.resumed_at.sort();
    m.wall = None;
    m.shard = None;
    m.shards = Some(ShardSet { count: n, plan_id: s0.plan_id.clone(), parts: parts.iter().map(|&(p, r, s)| part(p, r, s)).collect() });
    Ok(m)
}

/// Every group and cell of the plan run by exactly one shard.
fn check_cover(parts: &[(&Path, &RunResults, &ShardInfo)]) -> Result<()> {
    let s0 = parts[0].2;
    let fix = "fix: run every shard with the same xbench version, scenario and options (the split is computed from the plan alone), or rerun the odd shard";
    if let Some((p, _, s)) = parts.iter().find(|(_, r, s)| (s.plan_groups, s.plan_cells) != (s0.plan_groups, s0.plan_cells) || s.groups.len() != r.groups.len() || s.cells.len() != r.cells.len()) {
        bail!("{}: shard {} does not describe the plan the others do ({} groups, {} cells in the plan)\n  {fix}", p.display(), s.label(), s0.plan_groups, s0.plan_cells);
    }
    if let Some((p, _, s)) = parts.iter().find(|(_, _, s)| s.groups.iter().any(|&g| g >= s0.plan_groups) || s.cells.iter().any(|&c| c >= s0.plan_cells)) {
        bail!("{}: shard {} names groups or cells the plan does not have\n  {fix}", p.display(), s.label());
    }
    let mut group_owner: Vec<Vec<String>> = vec![vec![]; s0.plan_groups];
    let mut cell_owner = vec![0usize; s0.plan_cells];
    for (_, _, s) in parts {
        for &g in &s.groups {
            group_owner[g].push(s.label());
        }
        for &c in &s.cells {
            cell_owner[c] += 1;
        }
    }
    if let Some((g, owners)) = group_owner.iter().enumerate().find(|(_, o)| o.len() != 1) {
        let by = if owners.is_empty() { "no shard".to_string() } else { format!("shards {}", owners.join(" and ")) };
        bail!("group {g} of the plan is run by {by}: these shards were not split alike\n  {fix}");
    }
    if let Some(c) = cell_owner.iter().position(|&k| k != 1) {
        bail!("cell {c} of the plan is in {} shards' results: these shards were not split alike\n  {fix}", cell_owner[c]);
    }
    Ok(())
}

/// The models as one record, each from a shard that found its file; one model that is another
/// file on two shards (another size or precision) makes results that are not one measurement.
fn check_models(parts: &[(&Path, &RunResults, &ShardInfo)]) -> Result<Vec<crate::results::ModelRecord>> {
    let mut models = parts[0].1.models.clone();
    for (k, m) in models.iter_mut().enumerate() {
        let mut seen: Option<(&Path, &crate::results::ModelRecord)> = None;
        for &(p, r, _) in parts {
            let Some(x) = r.models.get(k).filter(|x| x.name == m.name && x.onnx_bytes > 0) else { continue };
            match seen {
                None => seen = Some((p, x)),
                Some((q, y)) if (y.onnx_bytes, &y.precision, &y.weights) != (x.onnx_bytes, &x.precision, &x.weights) => bail!(
                    "model `{}` is another file in {} ({} bytes, {}, {} weights) than in {} ({} bytes, {}, {} weights): the shards did not measure the same model\n  fix: give every shard the same model files (copy models/{} from one machine to the others), then rerun the odd shards",
                    m.name, q.display(), y.onnx_bytes, y.precision, y.weights, p.display(), x.onnx_bytes, x.precision, x.weights, m.name
                ),
                Some(_) => {}
            }
        }
        if let Some((_, x)) = seen {
            *m = x.clone();
        }
    }
    Ok(models)
}

/// The machine of the merged set: the shards' machine when they all ran on one, else the first
/// shard's with every host named (each shard's machine is in `shards`).
fn machine(parts: &[(&Path, &RunResults, &ShardInfo)]) -> Machine {
    let first = parts[0].1.machine.clone();
    if parts.iter().all(|(_, r, _)| r.machine == first) {
        return first;
    }
    let mut hosts: Vec<String> = vec![];
    for (_, r, _) in parts {
        if !hosts.contains(&r.machine.name) {
            hosts.push(r.machine.name.clone());
        }
    }
    let same = |f: &dyn Fn(&Machine) -> String| parts.iter().all(|(_, r, _)| f(&r.machine) == f(&first));
    Machine {
        name: hosts.join(" + "),
        cpu: if same(&|m| m.cpu.clone()) { first.cpu.clone() } else { "differs between shards".into() },
        cores: first.cores,
        memory_gib: first.memory_gib,
        os: if same(&|m| m.os.clone()) { first.os.clone() } else { "differs between shards".into() },
        arch: first.arch.clone(),
    }
}

/// Each runtime as the shard that ran its first group found it.
fn runtimes(parts: &[(&Path, &RunResults, &ShardInfo)]) -> Vec<Availability> {
    let r0 = parts[0].1;
    r0.runtimes
        .iter()
        .map(|a| parts.iter().find(|(_, r, _)| r.groups.iter().any(|g| g.runtime == a.runtime)).and_then(|(_, r, _)| r.runtimes.iter().find(|x| x.runtime == a.runtime)).unwrap_or(a).clone())
        .collect()
}

fn part(path: &Path, r: &RunResults, s: &ShardInfo) -> ShardPart {
    let ran: Vec<_> = r.runtimes.iter().filter(|a| r.groups.iter().any(|g| g.runtime == a.runtime)).collect();
    ShardPart {
        index: s.index,
        source: path.display().to_string(),
        machine: r.machine.clone(),
        gpu: r.gpu.clone(),
        xbench_version: r.xbench_version.clone(),
        git_commit: r.git_commit.clone(),
        runtime_versions: ran.iter().map(|a| format!("{} {}", a.runtime, a.version.as_deref().unwrap_or("(unknown)"))).collect(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        complete: r.complete,
        groups: r.groups.iter().map(|g| format!("{} on {}", g.model, g.runtime)).collect(),
        cells: r.cells.len(),
        wall_ms: r.wall.as_ref().map(|w| w.total_ms),
    }
}

/// Where a shard keeps the outputs other shards' cells are compared with: `outputs/` beside its results.json.
pub fn kept_dir(results_json: &Path) -> PathBuf {
    results_json.parent().map(Path::to_path_buf).unwrap_or_default().join("outputs")
}

/// Gathers the outputs every shard kept (see `ShardInfo::kept_outputs`) into `into`, named by
/// the cells' plan indices as one run's outputs folder would name them (links where the file
/// system allows, else copies). Returns the plan cells whose outputs are not there, with why.
pub fn gather_outputs(files: &[(PathBuf, RunResults)], into: &Path) -> Result<Vec<(usize, String)>> {
    std::fs::create_dir_all(into)?;
    let mut missing = vec![];
    for (path, r) in files {
        let Some(s) = &r.shard else { continue };
        let dir = kept_dir(path);
        for &k in &s.kept_outputs {
            let from = OutputsDir::at(&dir).cell_file(k);
            if !from.is_file() {
                missing.push((s.cells[k], format!("shard {} keeps them in {}, which is not there (keep each shard's outputs/ folder beside its results.json)", s.label(), from.display())));
                continue;
            }
            // The file must be the one the shard kept for that cell (its digest is recorded).
            if let Some(want) = s.kept_digests.get(&k) {
                let got = crate::digest::file(&from).map(|(_, d)| format!("{d:016x}")).unwrap_or_default();
                if got != *want {
                    missing.push((s.cells[k], format!("{} is not the file shard {} kept for that cell (its digest is {got}, the shard recorded {want}): it was swapped or changed (put back the shard's own outputs/ folder)", from.display(), s.label())));
                    continue;
                }
            }
            OutputsDir::at(into).take(OutputsDir::at(&dir), k, s.cells[k])?;
        }
    }
    Ok(missing)
}

/// Marks the cells that cannot be compared with the reference runtime's because a shard's kept
/// outputs are missing, saying which and where: left alone, the analysis would find no file in
/// the gathered folder and could not say why.
pub fn flag_missing(r: &mut RunResults, missing: &[(usize, String)]) {
    let reference = r.reference_runtime;
    let why = |i: usize| missing.iter().find(|(c, _)| *c == i).map(|(_, w)| w.clone());
    for i in 0..r.cells.len() {
        let c = &r.cells[i];
        if c.runtime == reference || c.status != Status::Ok || c.agreement.is_some() || c.has_flag(FlagKind::NotCompared) {
            continue;
        }
        let Some(rc) = r.cell(&c.model, reference, c.chars, c.batch).filter(|rc| rc.status == Status::Ok) else { continue };
        let Some(w) = why(i).or_else(|| why(rc.index)) else { continue };
        crate::analysis::add_flag(&mut r.cells[i], Flag::new(FlagKind::NotCompared, format!("outputs not compared with {reference}: {w}")));
    }
}
