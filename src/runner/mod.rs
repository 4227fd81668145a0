//! The whole of `xbench scenario`, above the stages: a validated request (`config`) read,
//! resolved, sharded, checked against the run it resumes, run, recorded and reported, in that
//! order. The binary only parses flags into a request and prints what came of it.

pub mod config;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

pub use config::{Given, Request, Resume};

use crate::resolve::{resolve, ResolveOptions, ResolvedPlan};
use crate::results::{Availability, CellRecord, ResultsStore, RunConfig, RunResults, ShardInfo, Status, WallTime};
use crate::run::{self, Isolation, Observer, Progress, RunOptions, Stop};
use crate::runtimes::{RuntimeId, RuntimeOptions};
use crate::scenario::{self, Overrides, ScenarioFile, EMBEDDED_DEFAULT};
use crate::shard::ShardSpec;

/// How a run ended.
pub struct Outcome {
    /// The run's folder.
    pub dir: PathBuf,
    /// Its record, written (results.json and results.csv).
    pub store: ResultsStore,
    /// The shard it ran, if any.
    pub shard: Option<ShardInfo>,
    /// A stop was asked for before every cell was measured.
    pub stopped: bool,
    /// A stop at once came while the report was being written: every result is saved, the
    /// report is not (`xbench report` draws it from the results).
    pub abandoned: bool,
    pub wall: WallTime,
}

/// The display of a run, and report.md's tables rewritten after groups, spaced as results.json is.
struct Tables<'a> {
    inner: &'a mut dyn Observer,
    report: PathBuf,
    spacing: crate::results::Spacing,
}

impl Observer for Tables<'_> {
    fn note(&mut self, text: &str) {
        self.inner.note(text)
    }
    fn runtimes(&mut self, a: &[Availability]) {
        self.inner.runtimes(a)
    }
    fn cell(&mut self, r: &CellRecord, p: Progress) {
        self.inner.cell(r, p)
    }
    fn group_failed(&mut self, model: &str, runtime: &str, why: &str) {
        self.inner.group_failed(model, runtime, why)
    }
    fn group_done(&mut self, r: &RunResults) {
        self.inner.group_done(r);
        if !self.spacing.due() {
            return;
        }
        // The tables only: figures are drawn once, at the end.
        // Never through a link put there while the run goes on (the report at the end then fails, saying so).
        let at = Instant::now();
        if let Err(e) = crate::report::write(&self.report, crate::report::markdown(r).as_bytes()) {
            tracing::warn!("{e:#}");
        }
        self.spacing.wrote(at);
    }
}

/// Runs `req` to its end: every pending cell measured (or `stop` asking otherwise), results
/// written after every cell, the report at the end. `observer` is told what happens.
pub fn execute(req: &Request, stop: &Stop, observer: &mut dyn Observer) -> Result<Outcome> {
    let clock = Instant::now();
    let c = &req.config;
    let origin = scenario::origin_of(c.scenario.as_deref());
    let file = match &c.scenario {
        Some(path) => ScenarioFile::read(path)?,
        None => ScenarioFile::parse(EMBEDDED_DEFAULT, &origin)?,
    };
    let scenario_dir = c.scenario.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let plan = scenario::validate(&file, &origin, &scenario_dir, &Overrides { runtimes: c.runtimes.clone() })?;
    let resume = req.resume.as_ref();
    let shard = shard_to_run(req.shard, resume)?;
    let dir = match (resume, &req.out, shard) {
        (Some(r), _, _) => r.dir.clone(),
        (None, Some(out), _) => out.clone(),
        (None, None, Some(s)) => run::default_out_dir(&format!("{}-shard-{}-of-{}", plan.name, s.index, s.count)),
        (None, None, None) => run::default_out_dir(&plan.name),
    };
    // Claimed before anything is written into it (operation graphs, results): for this run alone.
    // A resumed run's results are read again once the folder is this run's.
    let _claim = match resume {
        Some(_) => run::outdir::claim_resumed(&dir)?,
        None => run::outdir::claim_new(&dir)?,
    };
    // Read once, when the options were validated; again only if the files changed since.
    let mut previous = match resume {
        None => None,
        Some(r) if config::record_files(&r.dir) == r.files => Some(r.results.clone()),
        Some(r) => Some(config::read_resumable(&r.dir)?),
    };
    let mut plan = resolve(plan, &ResolveOptions { models_root: c.models_dir.clone(), ops_dir: Some(dir.join(".ops")) })?;
    check_session_writes(&plan, c.scenario.as_deref())?;
    tracing::debug!("plan resolved {:.0} ms after the start", clock.elapsed().as_secs_f64() * 1e3);
    let cuda = |r: &&crate::runtimes::RuntimeSpec| r.engine() == crate::runtimes::Engine::OnnxRuntime && r.device() == crate::runtimes::DeviceClass::CudaGpu;
    if c.cuda_graph && !plan.runtimes.iter().any(|r| cuda(&r)) {
        bail!(
            "--cuda-graph applies to ort-cuda, which this run does not use (runtimes: {})\n  fix: add ort-cuda to the runtimes (--runtimes ...,ort-cuda) or leave --cuda-graph out",
            plan.plan.runtime_ids().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let mut opts = run_options(c, &plan, req.auto_setup)?;
    // A shard runs its groups of the whole plan only; its identity is the whole plan's.
    let shard_info = shard.map(|s| {
        let id = crate::shard::plan_id(&plan.plan, &file, crate::shard::TimerKey::new(opts.runtime.timing, opts.runtime.pinned_io, opts.runtime.cuda_graph), c.no_tf32);
        crate::shard::restrict(&mut plan, s, id)
    });
    if let (Some(now), Some(before), Some(r)) = (&shard_info, previous.as_ref().and_then(|p| p.shard.as_ref()), resume) {
        if now.plan_id != before.plan_id {
            bail!("{} holds shard {} of another plan ({}) than this scenario and these options give ({})\n  fix: resume with the same scenario file, --runtimes and timing options as the first run, or start a new run without --resume", r.dir.display(), before.label(), before.plan_id, now.plan_id);
        }
    }
    if let (Some(prev), Some(r)) = (&mut previous, resume) {
        run::record::check_resumable(prev, &plan, &file, &r.dir, r.retry_failed)?;
        if r.retry_failed {
            let n = run::record::retry_failed(prev, &plan);
            tracing::info!("{n} failed cells of {} will run again", r.dir.display());
            if n > 0 && !r.dir.join(".outputs").is_dir() {
                tracing::warn!(
                    "the finished run's saved outputs were removed when it ended: cells run again are compared only with cells that run again too (the others are marked not compared)"
                );
            }
        }
        let left = prev.cells.iter().filter(|c| c.status == Status::Pending).count();
        tracing::info!("resuming {}: {left} of {} cells left", r.dir.display(), prev.cells.len());
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
    stop.install();
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
        (availability, digests.join().expect("digesting the model files panicked"))
    });
    tracing::debug!("runtimes checked and files digested in {:.0} ms", set_up.elapsed().as_secs_f64() * 1e3);
    let gpu = availability
        .iter()
        .any(|x| x.usable && x.runtime == RuntimeId::ORT_CUDA)
        .then(|| crate::gpu::Gpu::open(c.device).ok().and_then(|g| g.info()))
        .flatten();
    let mut fresh = run::record::fresh(&plan, &file, availability, gpu, &opts, digests);
    fresh.shard = shard_info.clone();
    let mut record = match (previous, resume) {
        (Some(prev), Some(r)) => {
            run::record::check_conditions(&prev, &fresh, &r.dir)?;
            run::record::resumed(prev, fresh)
        }
        _ => fresh,
    };
    // The options this run goes on under: a resume needs no flag repeated.
    record.run = Some(c.clone());
    let mut store = ResultsStore::create(record, &dir)?;
    let done = store.results().cells.iter().filter(|c| c.status != Status::Pending).count();
    observer.start(p.cells.len(), done);
    let mut tables = Tables { inner: observer, report: dir.join("report.md"), spacing: Default::default() };
    let end = run::run(&plan, &opts, &mut store, &dir.join(".outputs"), &mut tables, stop, clock);
    observer.finished();
    let end = end?;
    // Every result is saved (the last group's were synced): a second Ctrl-C or a SIGTERM from here
    // on ends xbench at once rather than after the report.
    let abandoned = stop.set_finishing(!end.stopped);
    let mut wall = end.wall;
    if !abandoned {
        hold_report_for_tests();
        let report_clock = Instant::now();
        crate::report::write_all(std::slice::from_ref(store.results()), &crate::report::ReportOptions::default(), &dir)?;
        wall.report_ms = report_clock.elapsed().as_secs_f64() * 1e3;
        wall.total_ms = clock.elapsed().as_secs_f64() * 1e3;
        store.update(|r| r.wall = Some(wall.clone()))?;
    }
    Ok(Outcome { dir, store, shard: shard_info, stopped: end.stopped || abandoned, abandoned, wall })
}

/// `XBENCH_TEST_REPORT_DELAY_MS`: the report waits this long before it is drawn, so that the
/// tests can send a signal while a run is finishing (the report of a small grid takes a few
/// milliseconds). Unset: no wait.
fn hold_report_for_tests() {
    if let Some(ms) = std::env::var("XBENCH_TEST_REPORT_DELAY_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
    }
}

/// The run's options for the stages: runtime options, isolation, fetching.
fn run_options(c: &RunConfig, plan: &ResolvedPlan, auto_setup: bool) -> Result<RunOptions> {
    Ok(RunOptions {
        runtime: RuntimeOptions {
            threads: plan.plan.settings.threads,
            ort_lib: c.ort_lib.clone(),
            device_id: c.device,
            timing: c.timing,
            pinned_io: c.pinned_io,
            cuda_graph: c.cuda_graph,
            no_tf32: c.no_tf32,
            cell_timeout_s: Some(plan.plan.settings.cell_timeout_s),
            ep_libs: c.ep_libs.clone().into_iter().collect(),
            generate: None,
        },
        isolation: if c.in_process {
            Isolation::InProcess
        } else {
            Isolation::Process { exe: std::env::current_exe().context("cannot find the xbench executable to start workers")? }
        },
        auto_setup,
        parallel_loads: c.parallel_loads,
        keep_outputs: None,
    })
}

/// The shard to run: `--shard`, or, resuming a shard's folder, the shard it holds.
fn shard_to_run(asked: Option<ShardSpec>, resume: Option<&Resume>) -> Result<Option<ShardSpec>> {
    let Some(r) = resume else { return Ok(asked) };
    let dir = r.dir.display();
    match (asked, &r.results.shard) {
        (None, Some(s)) => Ok(Some(ShardSpec { index: s.index, count: s.count })),
        (Some(a), Some(s)) if (a.index, a.count) == (s.index, s.count) => Ok(Some(a)),
        (Some(a), Some(s)) => bail!("{dir} holds shard {}, and --shard asks for {a}\n  fix: resume it with --shard {} (or without --shard), or run shard {a} into a folder of its own with --out", s.label(), s.label()),
        (Some(a), None) => bail!("{dir} holds a run of the whole scenario, not a shard, and --shard asks for {a}\n  fix: resume it without --shard, or run shard {a} into a folder of its own with --out"),
        (None, None) => Ok(None),
    }
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
            crate::files::check_write(p, "the optimized graph (`session: {optimized_model: …}`)", crate::runtimes::ort::is_saved_graph, &measured)
                .with_context(|| format!("runtime `{}`", r.request.id))?;
            // ONNX Runtime would fail the load with a message about the model, not the folder.
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
                bail!("runtime `{}`: `session.optimized_model` is {}, in a folder {} that does not exist\n  fix: create the folder, or give a path in one that exists", r.request.id, p.display(), dir.display());
            }
        }
    }
    Ok(())
}
