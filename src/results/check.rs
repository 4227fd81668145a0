//! A results file read back must hold together before anything indexes into it: every cell at
//! its own index, once; every cell's model, runtime and group there; every group with cells.
//! A file edited by hand or by another program that breaks this is refused with what is wrong.

use std::collections::HashSet;

use super::{RunResults, Status};

/// The first way `r` does not hold together, if any.
pub fn inconsistency(r: &RunResults) -> Option<String> {
    // A shard may be given no group (more shards than groups); any other run has cells.
    if r.cells.is_empty() && r.shard.is_none() {
        return Some("it holds no cells".into());
    }
    let mut models = HashSet::new();
    for m in &r.models {
        if !models.insert(m.name.as_str()) {
            return Some(format!("model `{}` is listed twice under `models`", m.name));
        }
    }
    let mut runtimes = HashSet::new();
    for a in &r.runtimes {
        if !runtimes.insert(a.runtime) {
            return Some(format!("runtime `{}` is listed twice under `runtimes`", a.runtime));
        }
    }
    if !runtimes.contains(&r.reference_runtime) {
        return Some(format!("the reference runtime `{}` is not among its runtimes ({})", r.reference_runtime, names(r.runtimes.iter().map(|a| a.runtime.to_string()))));
    }
    let mut groups = HashSet::new();
    for (k, g) in r.groups.iter().enumerate() {
        if !groups.insert((g.model.as_str(), g.runtime)) {
            return Some(format!("groups[{k}] (model `{}` on {}) is listed twice", g.model, g.runtime));
        }
        if !models.contains(g.model.as_str()) {
            return Some(format!("groups[{k}] names model `{}`, which is not among its models ({})", g.model, names(r.models.iter().map(|m| m.name.clone()))));
        }
        if !runtimes.contains(&g.runtime) {
            return Some(format!("groups[{k}] names runtime `{}`, which is not among its runtimes", g.runtime));
        }
        if !r.cells.iter().any(|c| c.model == g.model && c.runtime == g.runtime) {
            return Some(format!("groups[{k}] (model `{}` on {}) has no cell", g.model, g.runtime));
        }
    }
    let mut points = HashSet::new();
    for (i, c) in r.cells.iter().enumerate() {
        let at = format!("cells[{i}] ({} chars × batch {}, model `{}` on {})", c.chars, c.batch, c.model, c.runtime);
        if c.index != i {
            return Some(format!("{at} gives index {}: each cell's index must be its position", c.index));
        }
        if !models.contains(c.model.as_str()) {
            return Some(format!("{at} names a model that is not among its models ({})", names(r.models.iter().map(|m| m.name.clone()))));
        }
        if !runtimes.contains(&c.runtime) {
            return Some(format!("{at} names a runtime that is not among its runtimes ({})", names(r.runtimes.iter().map(|a| a.runtime.to_string()))));
        }
        if !groups.contains(&(c.model.as_str(), c.runtime)) {
            return Some(format!("{at} belongs to no group (its `groups` list no model `{}` on {})", c.model, c.runtime));
        }
        if !points.insert((c.model.as_str(), c.runtime, c.chars, c.batch, c.data_set, c.new_tokens)) {
            return Some(format!("{at} is there twice"));
        }
        if c.status == Status::Ok && (c.summary.is_none() || c.samples_ms.is_empty()) {
            return Some(format!("{at} is `ok` but holds no samples or summary"));
        }
    }
    None
}

fn names(list: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = list.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine_a() -> RunResults {
        crate::results::parse_results(include_str!("../../tests/data/machine-a.json"), "machine-a.json").unwrap()
    }

    #[test]
    fn a_written_run_holds_together_and_each_break_is_named() {
        assert_eq!(inconsistency(&machine_a()), None);
        let cases: Vec<(fn(&mut RunResults), &str)> = vec![
            (|r| r.groups.clear(), "belongs to no group"),
            (|r| r.cells.clear(), "holds no cells"),
            (|r| r.cells.swap(0, 1), "cells[0] (50 chars × batch 16, model `tiny-bert` on tract-cpu) gives index 1"),
            (|r| r.cells[3].model = "ghost".into(), "cells[3] (100 chars × batch 1, model `ghost` on tract-cpu) names a model that is not among its models (tiny-bert)"),
            (|r| r.cells[2].runtime = crate::scenario::RuntimeId::new("ort-cuda"), "names a runtime that is not among its runtimes (tract-cpu, ort-cpu)"),
            (|r| r.cells[1].batch = r.cells[0].batch, "cells[1] (50 chars × batch 1, model `tiny-bert` on tract-cpu) is there twice"),
            (|r| r.models.clear(), "names model `tiny-bert`, which is not among its models (none)"),
            (|r| r.runtimes.truncate(1), "not among its runtimes"),
            (|r| r.groups.push(r.groups[0].clone()), "is listed twice"),
            (|r| r.cells[0].summary = None, "is `ok` but holds no samples or summary"),
        ];
        for (k, (edit, want)) in cases.into_iter().enumerate() {
            let mut r = machine_a();
            edit(&mut r);
            let got = inconsistency(&r).unwrap_or_default();
            assert!(got.contains(want), "case {k}: {got:?} should say {want:?}");
        }
    }
}
