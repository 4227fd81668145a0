//! Running a plan: each (model, runtime) group in its own child process (or in this process),
//! results written after every cell, outputs compared across runtimes, progress on stderr.

mod resume;
mod siblings;
pub mod stop;
mod worker;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};

pub use resume::check_resumable;
pub use worker::{run_group, GroupJob, WorkerMsg, MSG_PREFIX};

use crate::machine::Machine;
use crate::models::{read_io, ModelIo};
use crate::results::{self, compare_outputs, read_outputs, CellRecord, GroupRecord, ModelRecord, RunResults, Status};
use crate::runtimes::{self, Availability, RuntimeOptions};
use crate::scenario::{Plan, ScenarioFile};
use worker::{empty_record, outputs_path};

/// How groups are kept apart.
#[derive(Debug, Clone)]
pub enum Isolation {
    /// Each group in a child process started from this executable (`xbench worker JOB`):
    /// a crash loses one group, and no runtime's threads disturb another's timings.
    Process { exe: PathBuf },
    /// Every group in this process (for tests and debugging).
    InProcess,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    pub runtime: RuntimeOptions,
    pub isolation: Isolation,
    /// Fetch ONNX Runtime from PyPI when an `ort-*` runtime is asked for and no library is found.
    pub auto_setup: bool,
    pub quiet: bool,
    /// Results of an earlier, unfinished run of the same plan in `out_dir`: its finished cells are kept.
    pub resume: Option<RunResults>,
    /// Start every group's worker at once so that loads overlap (process isolation only); timed
    /// runs still go one group at a time, and only after every load has finished.
    pub parallel_loads: bool,
}

/// Files a run wrote.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub dir: PathBuf,
    pub json: PathBuf,
    pub csv: PathBuf,
    pub report: PathBuf,
    pub results: RunResults,
    /// True when Ctrl-C stopped the run before every cell was measured.
    pub stopped: bool,
}

/// How a worker process ended.
enum ChildEnd {
    Finished,
    /// It died before reporting every cell: why.
    Died(String),
    /// A stop was asked for and the worker was ended after its current cell.
    Stopped,
}

fn say(opts: &RunOptions, msg: impl AsRef<str>) {
    if !opts.quiet {
        eprintln!("{}", msg.as_ref());
    }
}

/// Checks each runtime of the plan, fetching ONNX Runtime first when allowed and needed.
pub fn check_runtimes(plan: &Plan, opts: &RunOptions) -> Vec<Availability> {
    if opts.auto_setup
        && opts.runtime.ort_lib.is_none()
        && plan.runtimes.iter().any(|r| r.is_ort())
        && runtimes::find_ort_library(None).is_err()
    {
        if let Err(e) = runtimes::setup_ort(false) {
            say(opts, format!("warning: could not fetch ONNX Runtime: {e:#}"));
        }
    }
    plan.runtimes.iter().map(|&r| runtimes::check(r, &opts.runtime)).collect()
}

/// Runs every cell of `plan`, writing results under `opts.out_dir`.
pub fn run_plan(plan: &Plan, file: &ScenarioFile, origin: &str, opts: &RunOptions) -> Result<RunOutput> {
    let run_clock = Instant::now();
    std::fs::create_dir_all(&opts.out_dir).with_context(|| {
        format!("cannot create the output folder {}\n  fix: choose a writable folder with --out", opts.out_dir.display())
    })?;
    let dir = opts.out_dir.clone();
    // Operation cases get their single-operation graphs written under the run's folder first.
    let plan = &crate::ops::write_graphs(plan, &dir.join(".ops"))?;
    let json = dir.join("results.json");
    let csv = dir.join("results.csv");
    let report = dir.join("report.md");
    let outputs_dir = dir.join(".outputs");
    std::fs::create_dir_all(&outputs_dir).with_context(|| format!("cannot create {}", outputs_dir.display()))?;

    let availability = check_runtimes(plan, opts);
    for note in siblings::missing_notes(plan) {
        say(opts, format!("note: {note}"));
    }
    for a in &availability {
        let state = if a.usable { "ok" } else { "not usable, its cells are skipped" };
        say(opts, format!("{:<11} {state}: {}", a.runtime.as_str(), a.detail.replace('\n', "\n            ")));
    }

    let mut ios: Vec<std::result::Result<ModelIo, String>> = Vec::new();
    let mut models = Vec::new();
    for m in &plan.models {
        let io = match &m.unavailable {
            Some(why) => Err(why.clone()),
            None => read_io(&m.onnx).map_err(|e| format!("{e:#}")),
        };
        models.push(ModelRecord {
            name: m.name.clone(),
            onnx: m.onnx.display().to_string(),
            onnx_bytes: std::fs::metadata(&m.onnx).ok().filter(|md| md.is_file()).map(|md| md.len()).unwrap_or(0),
            tokenizer: m.tokenizer.as_ref().map(|p| p.display().to_string()),
            weights: m.meta.weights.clone().unwrap_or_else(|| "unknown".into()),
            precision: io.as_ref().map(|io| io.precision()).unwrap_or("fp32").to_string(),
            flops_per_token: io.as_ref().map(|io| io.flops_per_token).unwrap_or(0),
            max_positions: m.max_positions(io.as_ref().ok()),
            compare_with: m.sibling(),
            hub_id: m.meta.hub_id.clone(),
            revision: m.meta.revision.clone(),
        });
        ios.push(io);
    }

    let fresh = RunResults {
        format_version: results::FORMAT_VERSION,
        xbench_version: crate::VERSION.into(),
        git_commit: crate::GIT_COMMIT.into(),
        started_at: results::now_rfc3339(),
        finished_at: None,
        complete: false,
        machine: Machine::detect(),
        scenario_source: origin.into(),
        scenario: file.clone(),
        timer: {
            let base = match opts.runtime.timing {
                runtimes::Timing::EndToEnd => results::TIMER_END_TO_END,
                runtimes::Timing::DeviceResident => results::TIMER_DEVICE_RESIDENT,
            };
            let staged = match (opts.runtime.pinned_io || opts.runtime.cuda_graph, opts.runtime.timing) {
                (false, _) => "",
                (true, runtimes::Timing::EndToEnd) => results::TIMER_STAGED_END_TO_END,
                (true, runtimes::Timing::DeviceResident) => results::TIMER_STAGED_DEVICE,
            };
            let graph = if opts.runtime.cuda_graph { results::TIMER_CUDA_GRAPH } else { "" };
            format!("{base}{staged}{graph}")
        },
        gpu: availability
            .iter()
            .any(|a| a.usable && a.runtime == runtimes::RuntimeId::OrtCuda)
            .then(|| crate::gpu::Gpu::open(opts.runtime.device_id).ok().and_then(|g| g.info()))
            .flatten(),
        reference_runtime: plan.reference,
        tolerances: plan.tolerances,
        runtimes: availability.clone(),
        models,
        groups: plan
            .groups
            .iter()
            .map(|g| GroupRecord {
                model: plan.models[g.model].name.clone(),
                runtime: g.runtime,
                status: Status::Pending,
                error: None,
                load_ms: None,
                ready_ms: None,
                peak_rss_mib: None,
                session: None,
            })
            .collect(),
        cells: plan.cells.iter().map(|c| empty_record(plan, c, Status::Pending, None)).collect(),
        resumed_at: Vec::new(),
        wall: None,
    };
    let mut results = match &opts.resume {
        None => fresh,
        Some(prev) => {
            let mut r = prev.clone();
            r.resumed_at.push(results::now_rfc3339());
            r.runtimes = fresh.runtimes;
            r.models = fresh.models;
            r.complete = false;
            r.finished_at = None;
            r
        }
    };
    let save = |r: &RunResults| -> Result<()> {
        results::write_json(&json, r)?;
        results::write_csv(&csv, r)
    };
    save(&results)?;

    let total = plan.cells.len();
    let mut done = results.cells.iter().filter(|c| c.status != Status::Pending).count();
    let mut stopped = false;
    let mut measured_secs = 0.0f64;
    let mut measured_cells = 0usize;
    let mut wall = results::WallTime { parallel_loads: opts.parallel_loads, ..Default::default() };

    // What each group still has to do: its cells left to measure, and its job unless it cannot run.
    let mut todo: Vec<GroupTodo> = Vec::new();
    for group in &plan.groups {
        let avail = &availability[plan.runtimes.iter().position(|r| *r == group.runtime).unwrap()];
        // Cells still to measure (all of them, unless a resumed run finished some).
        let gcells: Vec<&crate::scenario::Cell> =
            plan.group_cells(group).iter().filter(|c| results.cells[c.index].status == Status::Pending).collect();
        let job = match (&ios[group.model], avail.usable) {
            (_, false) => Err((Status::Skipped, format!("{} is not usable here: {}", group.runtime, avail.detail))),
            (Err(e), _) => Err((Status::Failed, e.clone())),
            (Ok(io), true) => Ok(GroupJob {
                plan: plan.clone(),
                group: group.index,
                cells: gcells.iter().map(|c| c.index).collect(),
                io: io.clone(),
                runtime: opts.runtime.clone(),
                outputs_dir: outputs_dir.clone(),
                gated: false,
            }),
        };
        todo.push(GroupTodo { cells: gcells, job });
    }

    // Parallel loads: every worker starts now and loads its session, then waits for its turn.
    let mut preloaded: HashMap<usize, Spawned> = HashMap::new();
    if let (true, Isolation::Process { exe }) = (opts.parallel_loads, &opts.isolation) {
        let t = Instant::now();
        for (g, t) in todo.iter().enumerate() {
            if let (false, Ok(job)) = (t.cells.is_empty(), &t.job) {
                let job = GroupJob { gated: true, ..job.clone() };
                preloaded.insert(g, spawn_child(exe, &job, &dir)?);
            }
        }
        let n = preloaded.len();
        say(opts, format!("loading {n} sessions at once (--parallel-loads); cells run one group at a time once all have loaded"));
        // Read each worker's load report as it comes, so that each one's ready time is its own.
        std::thread::scope(|scope| {
            for s in preloaded.values_mut() {
                scope.spawn(move || s.read_until_loaded());
            }
        });
        wall.loads_ms = Some(t.elapsed().as_secs_f64() * 1e3);
    }
    wall.setup_ms = run_clock.elapsed().as_secs_f64() * 1e3 - wall.loads_ms.unwrap_or(0.0);

    let run_started = Instant::now();
    for (group, GroupTodo { cells: gcells, job }) in plan.groups.iter().zip(todo) {
        if stop::requested() {
            stopped = true;
            break;
        }
        if gcells.is_empty() {
            continue;
        }
        let group_fail = |results: &mut RunResults, status: Status, why: String| {
            results.groups[group.index].status = status;
            results.groups[group.index].error = Some(why.clone());
            for c in &gcells {
                results.cells[c.index] = empty_record(plan, c, status, Some(why.clone()));
            }
        };
        // A skipped or failed group still reaches the agreement step of its model below.
        'run: {
            let job = match job {
                Err((status, why)) => {
                    group_fail(&mut results, status, why);
                    done += gcells.len();
                    save(&results)?;
                    break 'run;
                }
                Ok(job) => job,
            };
            let group_clock = Instant::now();
            let mut on_msg = |msg: WorkerMsg, results: &mut RunResults| -> Result<()> {
                match msg {
                    WorkerMsg::Loaded { load_ms, session } => {
                        let g = &mut results.groups[group.index];
                        g.load_ms = Some(load_ms);
                        g.ready_ms.get_or_insert(group_clock.elapsed().as_secs_f64() * 1e3);
                        g.session = Some(session);
                    }
                    WorkerMsg::LoadFailed { error } => {
                        group_fail(results, Status::Failed, error.clone());
                        say(opts, format!("error: {} on {}: {}", plan.models[group.model].name, group.runtime, error));
                    }
                    WorkerMsg::Cell(record) => {
                        done += 1;
                        let idx = record.index;
                        if record.status == Status::Ok {
                            measured_secs += record.samples_ms.iter().sum::<f64>() / 1e3 * (1.0 + plan.warmup as f64 / plan.iterations as f64);
                            measured_cells += 1;
                        }
                        say(opts, progress_line(done, total, &record, run_started, measured_cells, measured_secs));
                        results.cells[idx] = *record;
                    }
                    WorkerMsg::Done { peak_rss_mib } => {
                        let g = &mut results.groups[group.index];
                        g.peak_rss_mib = peak_rss_mib;
                        if g.status == Status::Pending {
                            g.status = Status::Ok;
                        }
                    }
                }
                save(results)
            };
            match &opts.isolation {
                Isolation::InProcess => {
                    let mut err = None;
                    drop(run_group(
                        &job,
                        &mut |m| {
                            if let Err(e) = on_msg(m, &mut results) {
                                err.get_or_insert(e);
                            }
                        },
                        &stop::requested,
                    ));
                    if let Some(e) = err {
                        return Err(e);
                    }
                    stopped = stop::requested();
                }
                Isolation::Process { exe } => {
                    let child = match preloaded.remove(&group.index) {
                        Some(s) => {
                            // Loaded while the run was being set up: its load time is its own.
                            if let Some(ms) = s.ready_ms {
                                results.groups[group.index].ready_ms = Some(ms);
                            }
                            s
                        }
                        None => spawn_child(exe, &job, &dir)?,
                    };
                    let outcome = drive_child(child, &mut |m| on_msg(m, &mut results))?;
                    if let ChildEnd::Stopped = outcome {
                        stopped = true;
                    }
                    if let ChildEnd::Died(why) = outcome {
                        // The child died: whatever it had not reported is lost with it, and only that.
                        results.groups[group.index].status = Status::Failed;
                        results.groups[group.index].error = Some(why.clone());
                        for c in &gcells {
                            if results.cells[c.index].status == Status::Pending {
                                results.cells[c.index] = empty_record(plan, c, Status::Failed, Some(why.clone()));
                                done += 1;
                            }
                        }
                        say(opts, format!("error: {} on {}: {why}", plan.models[group.model].name, group.runtime));
                        save(&results)?;
                    }
                }
            }
        }
        crate::verdict::check_group(&mut results, &plan.models[group.model].name, group.runtime);
        // Once every runtime has run this model, compare each with the reference (which may be listed last).
        let last_of_model = plan.groups.get(group.index + 1).is_none_or(|n| n.model != group.model);
        if last_of_model {
            let reference = results.reference_runtime;
            for g in plan.groups.iter().filter(|g| g.model == group.model && g.runtime != reference) {
                agree(plan, g.index, &outputs_dir, &mut results);
            }
            // Models against their sibling (`compare_with`) once both have run; saved outputs go when nothing needs them.
            siblings::compare_and_release(plan, group.index, &outputs_dir, &mut results);
        }
        save(&results)?;
        // The tables only: figures are drawn once, at the end.
        std::fs::write(&report, crate::report::markdown(&results)).with_context(|| format!("cannot write {}", report.display()))?;
        if stopped {
            break;
        }
    }
    // Workers loaded ahead whose turn never came (a stopped run) are ended here.
    drop(preloaded);
    wall.groups_ms = run_started.elapsed().as_secs_f64() * 1e3;
    if !stopped {
        let _ = std::fs::remove_dir_all(&outputs_dir);
        results.finished_at = Some(results::now_rfc3339());
        results.complete = true;
    }
    save(&results)?;
    let report_clock = Instant::now();
    crate::report::write_all(std::slice::from_ref(&results), &crate::report::ReportOptions::default(), &dir)?;
    wall.report_ms = report_clock.elapsed().as_secs_f64() * 1e3;
    wall.total_ms = run_clock.elapsed().as_secs_f64() * 1e3;
    say(opts, wall_line(&wall, &results));
    results.wall = Some(wall);
    save(&results)?;
    Ok(RunOutput { dir, json, csv, report, results, stopped })
}

/// Compares the outputs of group `g`'s cells with the reference runtime's cells on the same inputs.
fn agree(plan: &Plan, g: usize, outputs_dir: &Path, results: &mut RunResults) {
    let reference = results.reference_runtime;
    let tol = results.tolerances.for_precision(results.precision(&plan.cells[plan.groups[g].first_cell].model));
    for c in plan.group_cells(&plan.groups[g]) {
        if results.cells[c.index].status != Status::Ok || results.cells[c.index].agreement.is_some() {
            continue;
        }
        let Some(ref_cell) = results.cell(&c.model, reference, c.chars, c.batch) else { continue };
        if ref_cell.status != Status::Ok {
            continue;
        }
        let ref_index = ref_cell.index;
        let (Ok((got, b, s, mask)), Ok((want, ..))) =
            (read_outputs(&outputs_path(outputs_dir, c.index)), read_outputs(&outputs_path(outputs_dir, ref_index)))
        else {
            continue;
        };
        let a = compare_outputs(&got, &want, reference, b, s, &mask, tol);
        let cell = &mut results.cells[c.index];
        if !a.within_tolerance {
            let mut why = format!("outputs differ from {reference}: max abs diff {:.3e}", a.max_abs);
            for p in &a.problems {
                why.push_str("; ");
                why.push_str(p);
            }
            cell.flags.push(why);
        }
        cell.agreement = Some(a);
    }
}

fn progress_line(done: usize, total: usize, r: &CellRecord, started: Instant, measured: usize, measured_secs: f64) -> String {
    let width = total.to_string().len();
    let what = format!("{} · {} · {} chars × batch {}", r.model, r.runtime, r.chars, r.batch);
    // Operation cases have no text: their line names the case and the runtime only.
    let what = if crate::ops::is_op(&r.model) { format!("{} · {}", r.model, r.runtime) } else { what };
    let result = match (&r.status, &r.summary) {
        (Status::Ok, Some(s)) if crate::ops::is_op(&r.model) => {
            format!("mean {:.4} ms [{:.4}, {:.4}]", s.mean_ms, s.mean_ci95_ms[0], s.mean_ci95_ms[1])
        }
        (Status::Ok, Some(s)) => format!(
            "mean {:.3} ms [{:.3}, {:.3}] ({} tokens padded to {})",
            s.mean_ms,
            s.mean_ci95_ms[0],
            s.mean_ci95_ms[1],
            r.tokens.as_ref().map(|t| t.tokens_per_row.iter().sum::<usize>()).unwrap_or(0),
            r.tokens.as_ref().map(|t| t.padded_len).unwrap_or(0)
        ),
        _ => format!("FAILED: {}", r.error.as_deref().unwrap_or("").lines().next().unwrap_or("")),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let eta = if done > 0 && done < total {
        let per = if measured > 0 { (elapsed.max(measured_secs)) / done as f64 } else { elapsed / done as f64 };
        format!(" — ETA {}", fmt_secs(per * (total - done) as f64))
    } else {
        String::new()
    };
    format!("[{done:>width$}/{total}] {what}: {result}{eta}")
}

fn fmt_secs(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// A group's share of a run: the cells it still has to measure, and the job that measures them,
/// or the status and reason its cells get when it cannot run.
struct GroupTodo<'a> {
    cells: Vec<&'a crate::scenario::Cell>,
    job: std::result::Result<GroupJob, (Status, String)>,
}

/// Where the run's wall time went, one line.
fn wall_line(w: &results::WallTime, r: &RunResults) -> String {
    let ok = r.cells.iter().filter(|c| c.status == Status::Ok);
    let timed: f64 = ok.clone().map(|c| c.samples_ms.iter().sum::<f64>()).sum::<f64>() / 1e3;
    let warm: f64 = ok.map(|c| c.warmup_ms.unwrap_or(0.0) + c.prepare_ms.unwrap_or(0.0)).sum::<f64>() / 1e3;
    let loads: f64 = r.groups.iter().filter_map(|g| g.load_ms).sum::<f64>() / 1e3;
    let loads = match w.loads_ms {
        Some(ms) => format!("session loads {loads:.1} s, overlapped in {:.1} s", ms / 1e3),
        None => format!("session loads {loads:.1} s"),
    };
    format!(
        "time: {:.1} s in all; set-up {:.1} s, {loads}, cell preparation and warm-ups {warm:.1} s, timed runs {timed:.1} s, report {:.1} s",
        w.total_ms / 1e3,
        w.setup_ms / 1e3,
        w.report_ms / 1e3
    )
}

/// A worker process, started and possibly loaded ahead of its turn.
struct Spawned {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<std::io::BufReader<ChildStdout>>,
    job_path: PathBuf,
    /// Messages read before its turn (the load), replayed when it is driven.
    early: Vec<WorkerMsg>,
    started: Instant,
    /// Start to session loaded, when read ahead.
    ready_ms: Option<f64>,
    /// The worker's output ended before its turn.
    ended: bool,
    finished: bool,
}

impl Spawned {
    /// The worker's next message; other lines it prints (a native library's) go to stderr. `None`
    /// once its output has ended.
    fn next_msg(&mut self) -> Option<WorkerMsg> {
        while !self.ended {
            let Some(Ok(line)) = self.lines.next() else {
                self.ended = true;
                break;
            };
            match line.strip_prefix(MSG_PREFIX) {
                Some(msg) => match serde_json::from_str::<WorkerMsg>(msg) {
                    Ok(m) => return Some(m),
                    Err(e) => eprintln!("xbench: unreadable worker message ({e})"),
                },
                None => eprintln!("{line}"),
            }
        }
        None
    }

    /// Reads messages until the session has loaded or failed to (or the worker is gone).
    fn read_until_loaded(&mut self) {
        while let Some(m) = self.next_msg() {
            let loaded = matches!(m, WorkerMsg::Loaded { .. } | WorkerMsg::LoadFailed { .. });
            self.early.push(m);
            if loaded {
                self.ready_ms = Some(self.started.elapsed().as_secs_f64() * 1e3);
                return;
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.job_path);
        }
    }
}

/// Starts a worker for `job`. A gated worker loads its session and then waits on its standard
/// input for its turn.
fn spawn_child(exe: &Path, job: &GroupJob, dir: &Path) -> Result<Spawned> {
    let job_path = dir.join(format!(".job-{}.json", job.group));
    std::fs::write(&job_path, serde_json::to_vec(job)?).with_context(|| format!("cannot write {}", job_path.display()))?;
    let mut cmd = Command::new(exe);
    let stdin = if job.gated { Stdio::piped() } else { Stdio::null() };
    cmd.arg("worker").arg(&job_path).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::inherit());
    #[cfg(unix)]
    {
        // Its own process group: Ctrl-C in the terminal reaches xbench, which decides when the worker stops.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("cannot start a worker process ({})", exe.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let stdin = child.stdin.take();
    Ok(Spawned {
        child,
        stdin,
        lines: std::io::BufReader::new(stdout).lines(),
        job_path,
        early: Vec::new(),
        started,
        ready_ms: None,
        ended: false,
        finished: false,
    })
}

/// Runs a started worker's group to the end, forwarding its messages, and says how it ended.
fn drive_child(mut s: Spawned, on_msg: &mut dyn FnMut(WorkerMsg) -> Result<()>) -> Result<ChildEnd> {
    stop::set_child(s.child.id());
    let mut outcome = Ok(());
    let mut stopped = false;
    for m in std::mem::take(&mut s.early) {
        if let Err(e) = on_msg(m) {
            outcome = Err(e);
            break;
        }
    }
    // Its turn: a gated worker waits for this line before its first cell.
    if let Some(mut stdin) = s.stdin.take() {
        let _ = stdin.write_all(b"go\n").and_then(|_| stdin.flush());
    }
    while outcome.is_ok() {
        let Some(m) = s.next_msg() else { break };
        let was_cell = matches!(m, WorkerMsg::Cell(_));
        if let Err(e) = on_msg(m) {
            outcome = Err(e);
            break;
        }
        if was_cell && stop::requested() {
            stopped = true;
            break;
        }
    }
    if stopped || outcome.is_err() {
        let _ = s.child.kill();
    }
    let status = s.child.wait().context("cannot wait for the worker process")?;
    s.finished = true;
    stop::set_child(0);
    let _ = std::fs::remove_file(&s.job_path);
    outcome?;
    if stopped {
        return Ok(ChildEnd::Stopped);
    }
    if status.success() {
        return Ok(ChildEnd::Finished);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                9 => " (SIGKILL: out of memory?)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            return Ok(ChildEnd::Died(format!("the runtime process crashed with signal {sig}{name}")));
        }
    }
    Ok(ChildEnd::Died(format!("the runtime process exited with {status}")))
}

/// The `xbench worker JOB` entry point: runs the job's group and prints messages on stdout.
pub fn worker_main(job_path: &Path) -> Result<()> {
    let job: GroupJob = serde_json::from_slice(&std::fs::read(job_path).with_context(|| format!("cannot read {}", job_path.display()))?)
        .with_context(|| format!("{} is not a worker job", job_path.display()))?;
    let stdout = std::io::stdout();
    let session = run_group(
        &job,
        &mut |m| {
            let mut out = stdout.lock();
            let sent = writeln!(out, "{MSG_PREFIX}{}", serde_json::to_string(&m).unwrap_or_default()).and_then(|_| out.flush());
            if sent.is_err() {
                // xbench is gone (killed or crashed): nobody will read the rest.
                std::process::exit(1);
            }
        },
        &|| false,
    );
    // Everything is reported: exit without unloading, which can take longer than a small cell
    // (a CUDA session frees its arena and handles). The system reclaims it all.
    std::mem::forget(session);
    std::process::exit(0)
}

/// Default output folder: `reports/<scenario name>-<UTC time>`.
pub fn default_out_dir(plan: &Plan) -> PathBuf {
    let stamp: String = results::now_rfc3339().chars().filter(|c| c.is_ascii_digit()).collect();
    let safe: String = plan.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    PathBuf::from("reports").join(format!("{safe}-{}-{}", &stamp[..8], &stamp[8..]))
}
