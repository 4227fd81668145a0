//! The conditions a run is measured under (`results::Conditions`), gathered before it starts: the
//! options its timer and I/O depend on, the versions of xbench and the runtimes, and a digest of
//! every file its models, runtimes and scenario read.

use std::path::{Path, PathBuf};

use super::{Isolation, RunOptions};
use crate::models::ModelSource;
use crate::resolve::ResolvedPlan;
use crate::results::{Availability, Conditions, FileDigest, GpuInfo, Machine};
use crate::runtimes::Timing;
use crate::scenario::{RuntimeKind, TextSource, Values};

/// The conditions of a run of `plan` with `opts`, on `machine`; `files` are [`digests`] of the plan.
pub fn gather(opts: &RunOptions, availability: &[Availability], machine: &Machine, gpu: Option<&GpuInfo>, files: Vec<FileDigest>) -> Conditions {
    let r = &opts.runtime;
    Conditions {
        xbench: format!("{} ({})", crate::VERSION, crate::GIT_COMMIT),
        machine: format!("{}, {} cores, {}", machine.cpu, machine.cores, machine.arch),
        timing: match r.timing {
            Timing::EndToEnd => "end-to-end",
            Timing::DeviceResident => "device-resident",
        }
        .into(),
        pinned_io: r.pinned_io,
        cuda_graph: r.cuda_graph,
        no_tf32: r.no_tf32,
        device: r.device_id,
        threads: r.threads.unwrap_or_else(crate::runtimes::default_threads),
        isolation: match opts.isolation {
            Isolation::InProcess => "in-process",
            Isolation::Process { .. } => "process",
        }
        .into(),
        gpu: gpu.map(|g| format!("{} (driver {})", g.name, g.driver)),
        runtimes: availability.iter().filter(|a| a.usable).filter_map(|a| Some((a.runtime.to_string(), a.version.clone()?))).collect(),
        files,
    }
}

/// Whose a file is: a model's, a runtime's, or the scenario's (neither).
#[derive(Clone, Copy)]
enum Owner<'a> {
    Model(&'a str),
    Runtime(&'a str),
    Scenario,
}

/// A digest of `path`, named relative to `base`.
fn digest(owner: Owner, path: &Path, base: &Path) -> FileDigest {
    let (model, runtime) = match owner {
        Owner::Model(m) => (Some(m.to_string()), None),
        Owner::Runtime(r) => (None, Some(r.to_string())),
        Owner::Scenario => (None, None),
    };
    let file = path.strip_prefix(base).unwrap_or(path).display().to_string();
    let (bytes, xxh64) = match crate::digest::file(path) {
        Ok((bytes, h)) => (bytes, format!("{h:016x}")),
        Err(e) => (0, format!("unreadable ({e})")),
    };
    FileDigest { model, runtime, file, bytes, xxh64 }
}

/// The digests of `files`, in their order, read side by side (a run's model files add up to
/// gigabytes: one after another they would hold up the run's start).
fn digest_all(files: &[(Owner, PathBuf, PathBuf)]) -> Vec<FileDigest> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8).min(files.len().max(1));
    // The largest first, so that no large file is left to the end alone.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(std::fs::metadata(&files[i].1).map_or(0, |m| m.len())));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, FileDigest)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let Some(&i) = order.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) else { break mine };
                        let (owner, path, base) = &files[i];
                        mine.push((i, digest(*owner, path, base)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("digesting a file panicked")).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, d)| d).collect()
}

/// The files of a folder, sorted (a test data set's inputs and expected outputs).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect()).unwrap_or_default();
    found.sort();
    found
}

fn value_file(values: &Option<Values>) -> Option<PathBuf> {
    match values {
        Some(Values::File(p)) => Some(p.clone()),
        _ => None,
    }
}

/// Every file the run reads besides xbench and the runtime libraries, with its digest.
pub fn digests(plan: &ResolvedPlan) -> Vec<FileDigest> {
    // What to digest first (owner, file, the folder it is named from), then the digests.
    let mut out: Vec<(Owner, PathBuf, PathBuf)> = Vec::new();
    let scenario_dir = &plan.plan.scenario_dir;
    if let TextSource::File(p) = &plan.plan.settings.text {
        out.push((Owner::Scenario, p.clone(), scenario_dir.clone()));
    }
    let own = plan.plan.settings.own.values().flat_map(|o| o.inputs.values());
    for spec in plan.plan.settings.inputs.values().chain(own) {
        if let Some(p) = value_file(&spec.values) {
            out.push((Owner::Scenario, p, scenario_dir.clone()));
        }
    }
    for (k, m) in plan.models.iter().enumerate() {
        let owner = Owner::Model(&m.name);
        match &m.source {
            ModelSource::Onnx { spec, io, .. } => {
                let folder = spec.onnx.parent().unwrap_or(Path::new("")).to_path_buf();
                let base = spec.dir.clone().unwrap_or_else(|| folder.clone());
                let mut paths = vec![spec.onnx.clone()];
                paths.extend(io.external_files.iter().map(|f| folder.join(&f.location)));
                paths.extend(spec.tokenizer.clone());
                paths.extend(spec.dir.as_ref().map(|d| d.join("model.yaml")).filter(|p| p.is_file()));
                paths.extend(spec.inputs.values().filter_map(|s| value_file(&s.values)));
                if plan.runs_test_data(k) {
                    paths.extend(spec.test_data.iter().flat_map(|set| files_in(set)));
                }
                paths.dedup();
                out.extend(paths.into_iter().map(|p| (owner, p, base.clone())));
            }
            ModelSource::Op { onnx, .. } => out.push((owner, onnx.clone(), onnx.parent().unwrap_or(Path::new("")).to_path_buf())),
            ModelSource::Unavailable { .. } => {}
        }
    }
    for rt in &plan.runtimes {
        let file = match &rt.request.kind {
            RuntimeKind::External { program, .. } => Some(program),
            RuntimeKind::Ep { library: Some(lib), .. } => Some(lib),
            _ => None,
        };
        if let Some(p) = file.filter(|p| p.is_file()) {
            out.push((Owner::Runtime(rt.id.as_str()), p.clone(), scenario_dir.clone()));
        }
    }
    digest_all(&out)
}
