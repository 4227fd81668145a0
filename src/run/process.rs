//! Worker processes: `xbench worker` started for one group, its job sent as one JSON line on its
//! standard input, its messages read from its standard output; how it ended, said in words.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};

use super::job::{GroupJob, WorkerMsg, MSG_PREFIX};
use super::stop;

/// How a worker process ended.
pub enum ChildEnd {
    Finished,
    /// It died before reporting every cell: why.
    Died(String),
    /// A stop was asked for and the worker was ended after its current cell.
    Stopped,
}

/// A worker process, started and possibly loaded ahead of its turn.
pub struct Spawned {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<std::io::BufReader<ChildStdout>>,
    /// Messages read before its turn (the load), replayed when it is driven.
    early: Vec<WorkerMsg>,
    started: Instant,
    /// Start to session loaded, when read ahead.
    pub ready_ms: Option<f64>,
    /// The worker's output ended before its turn.
    ended: bool,
    finished: bool,
}

impl Spawned {
    /// Starts a worker for `job`. A gated worker loads its session and then waits on its standard
    /// input for its turn.
    pub fn start(exe: &Path, job: &GroupJob) -> Result<Spawned> {
        let mut cmd = Command::new(exe);
        cmd.arg("worker").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        #[cfg(unix)]
        {
            // Its own process group: Ctrl-C in the terminal reaches xbench, which decides when the worker stops.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("cannot start a worker process ({})", exe.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut stdin = child.stdin.take().expect("piped");
        let sent = serde_json::to_string(job).map_err(anyhow::Error::from).and_then(|line| Ok(writeln!(stdin, "{line}").and_then(|_| stdin.flush())?));
        let mut spawned = Spawned {
            child,
            stdin: Some(stdin),
            lines: std::io::BufReader::new(stdout).lines(),
            early: Vec::new(),
            started,
            ready_ms: None,
            ended: false,
            finished: false,
        };
        // A worker that died before reading its job says why through its exit; read nothing more.
        if let Err(e) = sent {
            tracing::debug!("the worker did not take its job: {e:#}");
        }
        if !job.gated {
            spawned.stdin = None;
        }
        Ok(spawned)
    }

    /// From the worker's start to now, in milliseconds.
    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1e3
    }

    /// The worker's next message; other lines it prints (a native library's) are passed on as
    /// diagnostics. `None` once its output has ended.
    fn next_msg(&mut self) -> Option<WorkerMsg> {
        while !self.ended {
            let Some(Ok(line)) = self.lines.next() else {
                self.ended = true;
                break;
            };
            match line.strip_prefix(MSG_PREFIX) {
                Some(msg) => match serde_json::from_str::<WorkerMsg>(msg) {
                    Ok(m) => return Some(m),
                    Err(e) => tracing::warn!("unreadable worker message ({e})"),
                },
                None => tracing::info!(target: "xbench::worker", "{line}"),
            }
        }
        None
    }

    /// Reads messages until the session has loaded or failed to (or the worker is gone).
    pub fn read_until_loaded(&mut self) {
        while let Some(m) = self.next_msg() {
            let loaded = matches!(m, WorkerMsg::Loaded { .. } | WorkerMsg::LoadFailed { .. });
            self.early.push(m);
            if loaded {
                self.ready_ms = Some(self.elapsed_ms());
                return;
            }
        }
    }

    /// Runs the worker's group to the end, forwarding its messages, and says how it ended.
    pub fn drive(mut self, on_msg: &mut dyn FnMut(WorkerMsg) -> Result<()>) -> Result<ChildEnd> {
        stop::set_child(self.child.id());
        let mut outcome = Ok(());
        let mut stopped = false;
        for m in std::mem::take(&mut self.early) {
            if let Err(e) = on_msg(m) {
                outcome = Err(e);
                break;
            }
        }
        // Its turn: a gated worker waits for this line before its first cell.
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"go\n").and_then(|_| stdin.flush());
        }
        while outcome.is_ok() {
            let Some(m) = self.next_msg() else { break };
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
            let _ = self.child.kill();
        }
        let status = self.child.wait().context("cannot wait for the worker process")?;
        self.finished = true;
        stop::set_child(0);
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
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `xbench worker` entry point: reads its job from standard input, runs the group and prints
/// messages on standard output.
pub fn worker_main() -> Result<()> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the worker's job from standard input")?;
    let job: GroupJob = serde_json::from_str(&line).context("standard input did not hold a worker job (`xbench worker` is started by `xbench scenario`)")?;
    let stdout = std::io::stdout();
    let session = super::worker::run_group(
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
