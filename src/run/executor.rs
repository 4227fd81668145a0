//! Executors: where a group's worker runs — a child process per group (started when its turn
//! comes, or all loaded ahead with `--parallel-loads`), or this process — and the events its
//! messages become.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::job::GroupJob;
use super::process::{ChildEnd, Spawned};
use super::stop::Stop;
use crate::results::{RunEvent, Status};

/// How groups are kept apart.
#[derive(Debug, Clone)]
pub enum Isolation {
    /// Each group in a child process started from this executable (`xbench worker`): a crash
    /// loses one group, and no runtime's threads disturb another's timings.
    Process { exe: PathBuf },
    /// Every group in this process (for tests and debugging).
    InProcess,
}

/// How a group's run ended, as far as the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupEnd {
    Finished,
    /// A stop was asked for: the run ends after this group.
    Stopped,
    /// A cell outlived the time limit and was failed; the group's other cells still to run need
    /// a new worker.
    Retry,
}

pub struct Executor<'a> {
    isolation: &'a Isolation,
    stop: &'a Stop,
    /// Workers started ahead of their turn (`--parallel-loads`), by group.
    preloaded: HashMap<usize, Spawned>,
}

impl<'a> Executor<'a> {
    pub fn new(isolation: &'a Isolation, stop: &'a Stop) -> Executor<'a> {
        Executor { isolation, stop, preloaded: HashMap::new() }
    }

    /// Starts a worker for every job at once and waits until each has loaded its session (or
    /// failed to); they then wait for their turn. Only with process isolation.
    pub fn preload(&mut self, jobs: &[&GroupJob]) -> Result<()> {
        let Isolation::Process { exe } = self.isolation else { return Ok(()) };
        for job in jobs.iter().filter(|j| !j.cells.is_empty()) {
            let job = GroupJob { gated: true, ..(*job).clone() };
            self.preloaded.insert(job.group, Spawned::start(exe, &job)?);
        }
        // Read each worker's load report as it comes, so that each one's ready time is its own.
        std::thread::scope(|scope| {
            for s in self.preloaded.values_mut() {
                scope.spawn(move || s.read_until_loaded());
            }
        });
        Ok(())
    }

    /// Runs `job`'s cells, passing each event to `sink` as it happens; `last`: no group runs after
    /// this one (its worker's exit is then not waited for, `Spawned::drive`).
    pub fn run(&mut self, job: &GroupJob, last: bool, sink: &mut dyn FnMut(RunEvent) -> Result<()>) -> Result<GroupEnd> {
        let g = job.group;
        match self.isolation {
            Isolation::InProcess => {
                self.stop.set_in_process(true);
                let clock = Instant::now();
                let mut err = None;
                let session = super::worker::run_group(
                    job,
                    &mut |m| {
                        if err.is_none() {
                            if let Err(e) = sink(ready_at(m, clock.elapsed().as_secs_f64() * 1e3)) {
                                err = Some(e);
                            }
                        }
                    },
                    &|| self.stop.requested(),
                );
                drop(session);
                if let Some(e) = err {
                    return Err(e);
                }
                Ok(if self.stop.requested() { GroupEnd::Stopped } else { GroupEnd::Finished })
            }
            Isolation::Process { exe } => {
                let started = Instant::now();
                let child = match self.preloaded.remove(&g) {
                    Some(s) => s,
                    None => Spawned::start(exe, job)?,
                };
                // Loaded while the run was being set up, its ready time is its own; else it is from its start.
                let ready = child.ready_ms;
                let end = child.drive(last, self.stop, &mut |m| sink(ready_at(m, ready.unwrap_or_else(|| started.elapsed().as_secs_f64() * 1e3))))?;
                match end {
                    ChildEnd::Finished => Ok(GroupEnd::Finished),
                    ChildEnd::Stopped => Ok(GroupEnd::Stopped),
                    ChildEnd::TimedOut { cells, loaded, limit_s } => {
                        let fix = "fix: set a longer `cell_timeout_s` in the scenario if it needs more time, or find what stalled it (a stopped or starved process, a runtime that hangs)";
                        // Every cell reported, silent at the end (an external program that does
                        // not answer `bye`): the group is finished, its peak memory unknown.
                        if loaded && cells >= job.cells.len() {
                            sink(RunEvent::GroupDone { group: g, peak_rss_mib: None })?;
                            return Ok(GroupEnd::Finished);
                        }
                        match job.cells.get(cells).filter(|_| loaded) {
                            Some(cell) => {
                                let why = format!("took longer than `cell_timeout_s` ({limit_s} s) without finishing; its worker was stopped and the group goes on in a new one\n  {fix}");
                                sink(RunEvent::Cell(Box::new(job.empty_record(cell, Status::Failed, Some(why)))))?;
                                Ok(if cells + 1 < job.cells.len() { GroupEnd::Retry } else { GroupEnd::Finished })
                            }
                            None => {
                                let why = format!("loading the model took longer than `cell_timeout_s` ({limit_s} s); its worker was stopped\n  {fix}");
                                sink(RunEvent::GroupEnded { group: g, status: Status::Failed, why })?;
                                Ok(GroupEnd::Finished)
                            }
                        }
                    }
                    ChildEnd::Died(why) => {
                        // Whatever the worker had not reported is lost with it, and only that.
                        sink(RunEvent::GroupEnded { group: g, status: Status::Failed, why })?;
                        Ok(GroupEnd::Finished)
                    }
                }
            }
        }
    }
}

/// A worker's event with a load's ready time set: `ready_ms`, from the worker's start to now.
fn ready_at(mut m: RunEvent, ready_ms: f64) -> RunEvent {
    if let RunEvent::Loaded { ready_ms: r, .. } = &mut m {
        *r = ready_ms;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workers_event_crosses_the_pipe_whole_and_only_a_load_gets_the_ready_time() {
        let session = serde_json::from_str(r#"{"threads": "1 thread", "providers": ["fake"], "version": "1"}"#).unwrap();
        let loaded = RunEvent::Loaded { group: 3, load_ms: 5.0, ready_ms: 5.0, session };
        let line = format!("{}{}", super::super::MSG_PREFIX, serde_json::to_string(&loaded).unwrap());
        let read: RunEvent = serde_json::from_str(line.strip_prefix(super::super::MSG_PREFIX).unwrap()).unwrap();
        assert_eq!(read, loaded);
        let RunEvent::Loaded { group, load_ms, ready_ms, .. } = ready_at(read, 42.0) else { panic!("a load stays a load") };
        assert_eq!((group, load_ms, ready_ms), (3, 5.0, 42.0));
        let done = RunEvent::GroupDone { group: 3, peak_rss_mib: Some(1.0) };
        assert_eq!(ready_at(done.clone(), 42.0), done);
    }
}
