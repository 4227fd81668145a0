//! Worker processes: `xbench worker` started for one group, its job sent as one JSON line on its
//! standard input, its messages read from its standard output; how it ended, said in words.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::job::{GroupJob, MSG_PREFIX};
use crate::results::RunEvent;
use super::stop::Stop;
use crate::child::{Child, Framing, Next};

/// How a worker process ended.
pub enum ChildEnd {
    Finished,
    /// It died before reporting every cell: why.
    Died(String),
    /// A stop was asked for and the worker was ended after its current cell.
    Stopped,
    /// It went silent for longer than the cell time limit and was killed: `cells` cells had been
    /// reported (the next one is the one it stalled on), or none, still loading.
    TimedOut { cells: usize, loaded: bool, limit_s: f64 },
}

/// A worker process, started and possibly loaded ahead of its turn.
pub struct Spawned {
    /// The worker, through the child-process layer: its lines are read, and its turn sent, with
    /// a time limit.
    child: Child,
    /// It waits for its turn (`go`) on its standard input.
    gated: bool,
    /// How long it may stay silent: loading, or measuring one cell.
    limit: Duration,
    /// The scenario's `cell_timeout_s`, as errors name it.
    timeout_s: f64,
    /// Messages read before its turn (the load), replayed when it is driven.
    early: Vec<RunEvent>,
    started: Instant,
    /// Start to session loaded, when read ahead.
    pub ready_ms: Option<f64>,
    /// The worker's output ended before its turn.
    ended: bool,
    /// It stayed silent past its limit.
    silent: bool,
    /// It sent a message xbench cannot read: what was wrong with it.
    garbled: Option<String>,
    finished: bool,
}

impl Spawned {
    /// Starts a worker for `job`. A gated worker loads its session and then waits on its standard
    /// input for its turn.
    pub fn start(exe: &Path, job: &GroupJob) -> Result<Spawned> {
        let mut cmd = Command::new(exe);
        cmd.arg("worker");
        let started = Instant::now();
        // A native library may print anything, in any encoding: lines are taken as they come.
        let child = Child::spawn(cmd, Framing::Lossy).with_context(|| format!("cannot start a worker process ({})", exe.display()))?;
        let timeout_s = job.options.cell_timeout_s.unwrap_or(crate::scenario::DEFAULT_CELL_TIMEOUT_S);
        let mut spawned = Spawned {
            child,
            gated: job.gated,
            limit: watchdog(timeout_s),
            timeout_s,
            silent: false,
            garbled: None,
            early: Vec::new(),
            started,
            ready_ms: None,
            ended: false,
            finished: false,
        };
        let line = serde_json::to_string(job)?;
        match spawned.child.send(line.as_bytes(), started + spawned.limit) {
            Ok(()) => {}
            // A worker that does not take its job within its limit is as stuck as a silent one.
            Err(crate::child::SendError::TimedOut) => {
                spawned.silent = true;
                spawned.ended = true;
            }
            // A worker that died before reading its job says why through its exit; read nothing more.
            Err(crate::child::SendError::Closed(e)) => tracing::debug!("the worker did not take its job: {e}"),
        }
        if !job.gated {
            spawned.child.close_input();
        }
        Ok(spawned)
    }

    /// From the worker's start to now, in milliseconds.
    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1e3
    }

    /// The worker's next message; other lines it prints (a native library's) are passed on as
    /// diagnostics. `None` once its output has ended, or when it stayed silent past its limit
    /// (then `silent` is set).
    fn next_msg(&mut self) -> Option<RunEvent> {
        let deadline = Instant::now() + self.limit;
        while !self.ended {
            let line = match self.child.next_line(deadline) {
                Next::Line(line) => line,
                Next::TimedOut => {
                    self.silent = true;
                    self.ended = true;
                    break;
                }
                Next::Garbage(why) => {
                    self.garbled = Some(why);
                    self.ended = true;
                    break;
                }
                Next::Ended => {
                    self.ended = true;
                    break;
                }
            };
            match line.strip_prefix(MSG_PREFIX) {
                // A message lost would leave its cell pending in a run that says it is complete.
                Some(msg) => match serde_json::from_str::<RunEvent>(msg) {
                    Ok(m) => return Some(m),
                    Err(e) => {
                        self.garbled = Some(format!("{e}"));
                        self.ended = true;
                        break;
                    }
                },
                None => tracing::info!(target: "xbench::worker", "{line}"),
            }
        }
        None
    }

    /// Reads messages until the session has loaded or failed to, and a worker waiting for its turn
    /// has made its first run (or the worker is gone, or silent past its limit).
    pub fn read_until_loaded(&mut self) {
        let gated = self.gated;
        while let Some(m) = self.next_msg() {
            let loaded = match m {
                RunEvent::Loaded { .. } => !gated,
                RunEvent::LoadFailed { .. } | RunEvent::FirstRun { .. } => true,
                _ => false,
            };
            self.early.push(m);
            if loaded {
                self.ready_ms = Some(self.elapsed_ms());
                return;
            }
        }
    }

    /// Runs the worker's group to the end, forwarding its messages, and says how it ended. With
    /// `last` (no group runs after this one) the worker's exit is not waited for once it has
    /// reported everything: its teardown (a CUDA context, 0.1–0.3 s) then overlaps the analysis
    /// and the report instead of holding them up, and it is reaped in the background.
    pub fn drive(mut self, last: bool, stop: &Stop, on_msg: &mut dyn FnMut(RunEvent) -> Result<()>) -> Result<ChildEnd> {
        stop.set_child(self.child.id());
        let mut outcome = Ok(());
        let mut stopped = false;
        // Loaded ahead (`--parallel-loads`): the session's load is among the early messages.
        let mut loaded = self.early.iter().any(|m| matches!(m, RunEvent::Loaded { .. }));
        for m in std::mem::take(&mut self.early) {
            if let Err(e) = on_msg(m) {
                outcome = Err(e);
                break;
            }
        }
        // Its turn: a gated worker waits for this line before its first cell. One that does not
        // take it within its limit is as stuck as a silent one.
        if std::mem::take(&mut self.gated) && !self.ended {
            if let Err(crate::child::SendError::TimedOut) = self.child.send(b"go", Instant::now() + self.limit) {
                self.silent = true;
                self.ended = true;
            }
            self.child.close_input();
        }
        let mut cells = 0;
        while outcome.is_ok() {
            let Some(m) = self.next_msg() else { break };
            let was_cell = matches!(m, RunEvent::Cell(_));
            let was_done = matches!(m, RunEvent::GroupDone { .. });
            cells += was_cell as usize;
            loaded |= matches!(m, RunEvent::Loaded { .. });
            if let Err(e) = on_msg(m) {
                outcome = Err(e);
                break;
            }
            if was_cell && stop.requested() {
                stopped = true;
                break;
            }
            if was_done && last && cfg!(unix) {
                self.finished = true;
                stop.set_child(0);
                self.reap_in_background();
                return Ok(ChildEnd::Finished);
            }
        }
        if stopped || outcome.is_err() || self.silent || self.garbled.is_some() {
            self.kill();
        }
        let exiting = std::time::Instant::now();
        let status = self.child.wait().context("cannot wait for the worker process")?;
        tracing::debug!("worker reaped {:.1} ms after its output ended", exiting.elapsed().as_secs_f64() * 1e3);
        self.finished = true;
        stop.set_child(0);
        outcome?;
        // Killed by xbench on a stop at once: its unfinished cells stay pending.
        if stopped || stop.at_once() {
            return Ok(ChildEnd::Stopped);
        }
        if self.silent {
            return Ok(ChildEnd::TimedOut { cells, loaded, limit_s: self.timeout_s });
        }
        if let Some(why) = self.garbled.take() {
            return Ok(ChildEnd::Died(format!("the runtime process sent a message xbench cannot read ({why}) and was stopped; the cells it had reported are kept")));
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
                    6 => " (SIGABRT: a library aborted, e.g. on a failed allocation)",
                    7 => " (SIGBUS)",
                    9 => " (SIGKILL, not sent by xbench: the kernel's out-of-memory killer sends it when memory runs out, as does `kill -9`)",
                    11 => " (SIGSEGV)",
                    _ => "",
                };
                return Ok(ChildEnd::Died(format!("the runtime process crashed with signal {sig}{name}")));
            }
        }
        Ok(ChildEnd::Died(format!("the runtime process exited with {status}")))
    }
}

/// How long the worker may stay silent: `cell_timeout_s` and a grace of a tenth (at least 2 s),
/// so that a limit the worker keeps itself (an external program's answer) is met first and
/// reported with what the worker knows; this one catches a worker that cannot report (stopped,
/// starved, stuck in a runtime).
fn watchdog(cell_timeout_s: f64) -> Duration {
    let t = cell_timeout_s.clamp(0.001, 1e7);
    Duration::from_secs_f64(t + (t / 10.0).max(2.0))
}

impl Spawned {
    /// Kills the worker and everything it started (an external runtime's program and what that
    /// started), by the child layer's one rule, and removes the scratch folders it left.
    fn kill(&mut self) {
        let pid = self.child.id();
        self.child.kill();
        crate::runtimes::external::remove_scratch(pid);
    }

    /// Leaves a worker that has reported everything to exit on its own, reaped in the background.
    fn reap_in_background(&mut self) {
        self.child.reap_in_background();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !self.finished {
            self.kill();
        }
    }
}

/// The `xbench worker` entry point: reads its job from standard input, runs the group and prints
/// messages on standard output; returns the exit code the process is to end with (`main` ends
/// it at once, without unloading the session).
pub fn worker_main() -> Result<i32> {
    // A worker outlives no xbench: the child layer that started it (`crate::child`) set it to die
    // with its parent before it ran.
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the worker's job from standard input")?;
    let job: GroupJob = serde_json::from_str(&line).context("standard input did not hold a worker job (`xbench worker` is started by `xbench scenario`)")?;
    let stdout = std::io::stdout();
    // xbench is gone (killed or crashed) once a message cannot be sent: nobody reads the rest.
    let gone = std::cell::Cell::new(false);
    let session = super::worker::run_group(
        &job,
        &mut |m| {
            if gone.get() {
                return;
            }
            let mut out = stdout.lock();
            let sent = writeln!(out, "{MSG_PREFIX}{}", serde_json::to_string(&m).unwrap_or_default()).and_then(|_| out.flush());
            gone.set(sent.is_err());
        },
        &|| gone.get(),
    );
    // Everything is reported: the process ends without unloading, which can take longer than a
    // small cell (a CUDA session frees its arena and handles). The system reclaims it all —
    // except what an external program's session holds outside this process (the program, its
    // scratch folder).
    if matches!(job.runtime.kind, crate::scenario::RuntimeKind::External { .. }) {
        drop(session);
    } else {
        std::mem::forget(session);
    }
    Ok(if gone.get() { 1 } else { 0 })
}
