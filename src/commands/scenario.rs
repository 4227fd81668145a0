//! `xbench scenario`: validate, resolve, run, analyse, report — and the summary line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xbench::shard::ShardSpec;
use xbench::resolve::{resolve, ResolveOptions, ResolvedPlan};
use xbench::results::{self, FlagKind, ResultsStore, RunResults, Status};
use xbench::run::{self, Isolation, Observer, Progress, RunOptions};
use xbench::runtimes::{RuntimeId, RuntimeOptions, Timing};
use xbench::scenario::{self, Overrides, ScenarioFile, EMBEDDED_DEFAULT};

use super::{CellsFailed, Interrupted};
use crate::cli::TimingArg;
use crate::output::{self, Display};

/// The options of `xbench scenario`, as given.
pub struct Args {
    pub file: Option<PathBuf>,
    pub runtimes: Option<Vec<String>>,
    pub out: Option<PathBuf>,
    pub models_dir: PathBuf,
    pub ort_lib: Option<PathBuf>,
    pub ep_lib: Vec<(String, PathBuf)>,
    pub in_process: bool,
    pub no_setup: bool,
    pub quiet: bool,
    pub resume: Option<PathBuf>,
    pub timing: TimingArg,
    pub device: u32,
    pub pinned_io: bool,
    pub cuda_graph: bool,
    pub no_tf32: bool,
    pub parallel_loads: bool,
    pub ignore_failures: bool,
    pub retry_failed: bool,
    pub shard: Option<String>,
}

/// The display, and report.md's tables rewritten after every group.
struct Watch<'a> {
    display: Display,
    report: &'a Path,
}

impl Observer for Watch<'_> {
    fn note(&mut self, text: &str) {
        self.display.note(text)
    }
    fn runtimes(&mut self, a: &[results::Availability]) {
        self.display.runtimes(a)
    }
    fn cell(&mut self, r: &results::CellRecord, p: Progress) {
        self.display.cell(r, p)
    }
    fn group_failed(&mut self, model: &str, runtime: &str, why: &str) {
        self.display.group_failed(model, runtime, why)
    }
    fn group_done(&mut self, r: &RunResults) {
        // The tables only: figures are drawn once, at the end.
        // Never through a link put there while the run goes on (the report at the end then fails, saying so).
        if let Err(e) = xbench::report::write(self.report, xbench::report::markdown(r).as_bytes()) {
            tracing::warn!("{e:#}");
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    let clock = Instant::now();
    let asked = a.shard.as_deref().map(ShardSpec::parse).transpose().map_err(anyhow::Error::msg)?;
    let origin = scenario::origin_of(a.file.as_deref());
    let file = match &a.file {
        Some(path) => ScenarioFile::read(path)?,
        None => ScenarioFile::parse(EMBEDDED_DEFAULT, &origin)?,
    };
    let scenario_dir = a.file.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let plan = scenario::validate(&file, &origin, &scenario_dir, &Overrides { runtimes: a.runtimes.clone() })?;
    if a.retry_failed && a.resume.is_none() {
        bail!("--retry-failed runs the failed cells of an earlier run again, and no run was named\n  fix: name the run's folder with --resume DIR");
    }
    let early = match &a.resume {
        Some(rdir) => Some(read_resumable(rdir)?),
        None => None,
    };
    let shard = shard_to_run(asked, early.as_ref(), a.resume.as_deref())?;
    let dir = a.resume.clone().or(a.out.clone()).unwrap_or_else(|| match shard {
        Some(s) => run::default_out_dir(&format!("{}-shard-{}-of-{}", plan.name, s.index, s.count)),
        None => run::default_out_dir(&plan.name),
    });
    // Claimed before anything is written into it (operation graphs, results): for this run alone.
    // A resumed run's results are read again once the folder is this run's.
    let _claim = match &a.resume {
        Some(_) => run::outdir::claim_resumed(&dir)?,
        None => run::outdir::claim_new(&dir)?,
    };
    let mut previous = match &a.resume {
        None => None,
        Some(dir) => Some(read_resumable(dir)?),
    };
    let mut plan = resolve(plan, &ResolveOptions { models_root: a.models_dir.clone(), ops_dir: Some(dir.join(".ops")) })?;
    check_session_writes(&plan, a.file.as_deref())?;
    tracing::debug!("plan resolved {:.0} ms after the start", clock.elapsed().as_secs_f64() * 1e3);
    let cuda = |r: &&xbench::runtimes::RuntimeSpec| r.engine() == xbench::runtimes::Engine::OnnxRuntime && r.device() == xbench::runtimes::DeviceClass::CudaGpu;
    if a.cuda_graph && !plan.runtimes.iter().any(|r| cuda(&r)) {
        bail!(
            "--cuda-graph applies to ort-cuda, which this run does not use (runtimes: {})\n  fix: add ort-cuda to the runtimes (--runtimes ...,ort-cuda) or leave --cuda-graph out",
            plan.plan.runtime_ids().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let mut opts = RunOptions {
        runtime: RuntimeOptions {
            threads: plan.plan.settings.threads,
            ort_lib: a.ort_lib.clone(),
            device_id: a.device,
            timing: match a.timing {
                TimingArg::EndToEnd => Timing::EndToEnd,
                TimingArg::DeviceResident => Timing::DeviceResident,
            },
            pinned_io: a.pinned_io,
            cuda_graph: a.cuda_graph,
            no_tf32: a.no_tf32,
            cell_timeout_s: Some(plan.plan.settings.cell_timeout_s),
            ep_libs: a.ep_lib.iter().cloned().collect(),
        },
        isolation: if a.in_process {
            Isolation::InProcess
        } else {
            Isolation::Process { exe: std::env::current_exe().context("cannot find the xbench executable to start workers")? }
        },
        auto_setup: !a.no_setup,
        parallel_loads: a.parallel_loads,
        keep_outputs: None,
    };
    // A shard runs its groups of the whole plan only; its identity is the whole plan's.
    let shard_info = shard.map(|s| {
        let id = xbench::shard::plan_id(&plan.plan, &file, &run::record::timer_text(&opts), a.no_tf32);
        xbench::shard::restrict(&mut plan, s, id)
    });
    if let (Some(now), Some(before), Some(rdir)) = (&shard_info, previous.as_ref().and_then(|p| p.shard.as_ref()), &a.resume) {
        if now.plan_id != before.plan_id {
            bail!("{} holds shard {} of another plan ({}) than this scenario and these options give ({})\n  fix: resume with the same scenario file, --runtimes and timing options as the first run, or start a new run without --resume", rdir.display(), before.label(), before.plan_id, now.plan_id);
        }
    }
    if let (Some(prev), Some(rdir)) = (&mut previous, &a.resume) {
        run::record::check_resumable(prev, &plan, &file, rdir, a.retry_failed)?;
        if a.retry_failed {
            let n = run::record::retry_failed(prev, &plan);
            tracing::info!("{n} failed cells of {} will run again", rdir.display());
            if n > 0 && !rdir.join(".outputs").is_dir() {
                tracing::warn!(
                    "the finished run's saved outputs were removed when it ended: cells run again are compared only with cells that run again too (the others are marked not compared)"
                );
            }
        }
        let left = prev.cells.iter().filter(|c| c.status == Status::Pending).count();
        tracing::info!("resuming {}: {left} of {} cells left", rdir.display(), prev.cells.len());
    }
    if let Some(info) = &shard_info {
        tracing::info!("shard {} of scenario `{}` (plan {}): {} of its {} groups, {} of {} cells", info.label(), plan.plan.name, info.plan_id, info.groups.len(), info.plan_groups, info.cells.len(), info.plan_cells);
        if info.groups.is_empty() {
            tracing::warn!("shard {} has no group to run: the plan has {} groups for {} shards; its results are written all the same, so that every shard is there to merge", info.label(), info.plan_groups, info.count);
        }
        if !info.kept_outputs.is_empty() {
            opts.keep_outputs = Some(run::KeepOutputs { dir: dir.join("outputs"), cells: info.kept_outputs.clone() });
        }
    }
    run::stop::install();
    let p = &plan.plan;
    tracing::info!(
        "scenario `{}`: {} models × {} runtimes × {} lengths × {} batch sizes = {} cells",
        p.name,
        p.models.len(),
        p.runtimes.len(),
        p.input_chars.len(),
        p.batch_sizes.len(),
        shard_info.as_ref().map_or(p.cells.len(), |i| i.plan_cells)
    );
    // The model files are digested while the runtimes are checked (each takes a good part of a
    // second with gigabytes of models and a GPU runtime).
    let set_up = Instant::now();
    let (availability, digests) = std::thread::scope(|s| {
        let digests = s.spawn(|| run::conditions::digests(&plan));
        let availability = run::check_runtimes(&plan, &opts);
        tracing::debug!("runtimes checked in {:.0} ms", set_up.elapsed().as_secs_f64() * 1e3);
        (availability, digests.join().expect("digesting the model files panicked"))
    });
    tracing::debug!("runtimes checked and files digested in {:.0} ms", set_up.elapsed().as_secs_f64() * 1e3);
    let gpu = availability
        .iter()
        .any(|x| x.usable && x.runtime == RuntimeId::ORT_CUDA)
        .then(|| xbench::gpu::Gpu::open(a.device).ok().and_then(|g| g.info()))
        .flatten();
    let mut fresh = run::record::fresh(&plan, &file, availability, gpu, &opts, digests);
    fresh.shard = shard_info.clone();
    let record = match (previous, &a.resume) {
        (Some(prev), Some(rdir)) => {
            run::record::check_conditions(&prev, &fresh, rdir)?;
            run::record::resumed(prev, fresh)
        }
        _ => fresh,
    };
    let mut store = ResultsStore::create(record, &dir)?;
    let report = dir.join("report.md");
    let display = Display::new(a.quiet);
    let done = store.results().cells.iter().filter(|c| c.status != Status::Pending).count();
    display.start(p.cells.len(), done);
    let mut watch = Watch { display, report: &report };
    let end = run::run(&plan, &opts, &mut store, &dir.join(".outputs"), &mut watch, clock);
    output::finish();
    let end = end?;
    // Every result is saved (the last group's were synced): a second Ctrl-C or a SIGTERM from here
    // on ends xbench at once rather than after the report.
    run::stop::set_finishing();
    let mut wall = end.wall;
    let report_clock = Instant::now();
    xbench::report::write_all(std::slice::from_ref(store.results()), &xbench::report::ReportOptions::default(), &dir)?;
    wall.report_ms = report_clock.elapsed().as_secs_f64() * 1e3;
    wall.total_ms = clock.elapsed().as_secs_f64() * 1e3;
    tracing::info!("{}", super::summary::wall_line(&wall, store.results()));
    store.update(|r| r.wall = Some(wall))?;
    super::summary::summary(store.results());
    println!("report:  {} and {}", report.display(), dir.join("index.html").display());
    println!("results: {} and {}", store.json_path().display(), store.csv_path().display());
    if let Some(info) = &shard_info {
        if !info.kept_outputs.is_empty() {
            println!("outputs: {} (compared with other shards' cells when the shards are merged: keep them beside results.json)", dir.join("outputs").display());
        }
        println!("shard {}: merge every shard with `xbench report {} <the other shards' results.json> --out DIR`", info.label(), store.json_path().display());
    }
    if end.stopped {
        return Err(Interrupted(format!(
            "stopped before the grid was finished; the finished cells are saved\n  resume with: xbench scenario {}--resume {}{}",
            a.file.as_ref().map(|f| format!("{} ", f.display())).unwrap_or_default(),
            dir.display(),
            same_flags(&a)
        ))
        .into());
    }
    match failures(store.results(), &dir, &a) {
        Some(why) if !a.ignore_failures => Err(CellsFailed(why).into()),
        _ => Ok(()),
    }
}

/// The shard to run: `--shard`, or, resuming a shard's folder, the shard it holds.
fn shard_to_run(asked: Option<ShardSpec>, previous: Option<&RunResults>, resume: Option<&Path>) -> Result<Option<ShardSpec>> {
    let (Some(prev), Some(dir)) = (previous, resume) else { return Ok(asked) };
    match (asked, &prev.shard) {
        (None, Some(s)) => Ok(Some(ShardSpec { index: s.index, count: s.count })),
        (Some(a), Some(s)) if (a.index, a.count) == (s.index, s.count) => Ok(Some(a)),
        (Some(a), Some(s)) => bail!("{} holds shard {}, and --shard asks for {a}\n  fix: resume it with --shard {} (or without --shard), or run shard {a} into a folder of its own with --out", dir.display(), s.label(), s.label()),
        (Some(a), None) => bail!("{} holds a run of the whole scenario, not a shard, and --shard asks for {a}\n  fix: resume it without --shard, or run shard {a} into a folder of its own with --out", dir.display()),
        (None, None) => Ok(None),
    }
}

/// The flags a resume must repeat to continue under the same conditions.
fn same_flags(a: &Args) -> String {
    let mut f = String::new();
    if let Some(r) = &a.runtimes {
        f += &format!(" --runtimes {}", r.join(","));
    }
    if a.models_dir != Path::new("models") {
        f += &format!(" --models-dir {}", a.models_dir.display());
    }
    if let Some(lib) = &a.ort_lib {
        f += &format!(" --ort-lib {}", lib.display());
    }
    for (name, path) in &a.ep_lib {
        f += &format!(" --ep-lib {name}={}", path.display());
    }
    if matches!(a.timing, TimingArg::DeviceResident) {
        f += " --timing device-resident";
    }
    if a.device != 0 {
        f += &format!(" --device {}", a.device);
    }
    for (on, flag) in [(a.pinned_io, " --pinned-io"), (a.cuda_graph, " --cuda-graph"), (a.no_tf32, " --no-tf32"), (a.in_process, " --in-process")] {
        if on {
            f += flag;
        }
    }
    f
}

/// Why a finished run is a failure: cells that failed, whose outputs disagree with the
/// reference runtime, the expected outputs or the sibling model, or were not compared when they
/// should have been; or no cell measured at all (`None` when there are none).
fn failures(r: &RunResults, dir: &Path, a: &Args) -> Option<String> {
    let count = |s| r.cells.iter().filter(|c| c.status == s).count();
    let (failed, skipped) = (count(Status::Failed), count(Status::Skipped));
    let disagree = r.cells.iter().filter(|c| c.flags.iter().any(|f| f.kind.is_disagreement())).count();
    let not_compared = r.cells.iter().filter(|c| c.has_flag(FlagKind::NotCompared)).count();
    let retry = if failed > 0 {
        format!("; once their cause is fixed, run them again with: xbench scenario {}--resume {} --retry-failed{}", a.file.as_ref().map(|f| format!("{} ", f.display())).unwrap_or_default(), dir.display(), same_flags(a))
    } else {
        String::new()
    };
    if count(Status::Ok) == 0 && !r.cells.is_empty() {
        let first = r.cells.iter().find_map(|c| c.error.as_deref()).and_then(|e| e.lines().next()).unwrap_or("no reason recorded");
        return Some(format!("no cell was measured: {skipped} skipped and {failed} failed (the first: {first}); pass --ignore-failures to exit 0 all the same{retry}"));
    }
    if failed + disagree + not_compared == 0 {
        return None;
    }
    let not_compared = if not_compared > 0 { format!(", {not_compared} were not compared (a reference that did not run, outputs that could not be read)") } else { String::new() };
    Some(format!("{failed} cells failed and {disagree} disagree{not_compared} (the report lists them); pass --ignore-failures to exit 0 all the same{retry}"))
}

/// Refuses, before anything runs, an `optimized_model` path that xbench may not write: a link, a
/// file of the run (a model's file, the scenario, its text) or any file it did not save there.
fn check_session_writes(plan: &ResolvedPlan, file: Option<&Path>) -> Result<()> {
    let mut measured: Vec<PathBuf> = file.map(Path::to_path_buf).into_iter().collect();
    if let scenario::TextSource::File(p) = &plan.plan.settings.text {
        measured.push(p.clone());
    }
    for m in &plan.models {
        let Some(dir) = m.onnx().and_then(Path::parent) else { continue };
        measured.extend(std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()));
    }
    for r in &plan.runtimes {
        if let Some(p) = r.request.session.get("optimized_model") {
            let p = Path::new(p);
            xbench::files::check_write(p, "the optimized graph (`session: {optimized_model: …}`)", xbench::runtimes::ort::is_saved_graph, &measured)
                .with_context(|| format!("runtime `{}`", r.request.id))?;
            // ONNX Runtime would fail the load with a message about the model, not the folder.
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
                bail!("runtime `{}`: `session.optimized_model` is {}, in a folder {} that does not exist\n  fix: create the folder, or give a path in one that exists", r.request.id, p.display(), dir.display());
            }
        }
    }
    Ok(())
}

/// The results of the run in `dir` that `--resume` continues.
fn read_resumable(dir: &Path) -> Result<RunResults> {
    let path = dir.join("results.json");
    if !path.is_file() {
        let what = if dir.is_dir() { "the folder holds no results.json (`xbench scenario` did not write into it)" } else { "no such folder" };
        bail!("--resume {}: {what}\n  fix: name the folder of the run to continue, the one its `results:` line printed", dir.display());
    }
    results::read_results(&path)
}

/// Resolves a scenario file for commands that only read it (`xbench feeds`).
pub fn resolve_file(path: &Path, models_dir: &Path) -> Result<(ScenarioFile, ResolvedPlan)> {
    let file = ScenarioFile::read(path)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let plan = scenario::validate(&file, &path.display().to_string(), &dir, &Overrides::default())?;
    Ok((file, resolve(plan, &ResolveOptions { models_root: models_dir.to_path_buf(), ops_dir: None })?))
}
