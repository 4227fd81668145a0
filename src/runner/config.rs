//! `xbench scenario`'s options validated once into a run's configuration (`RunConfig`, recorded
//! in its results): a new run's from the flags given; a resumed run's from what its results
//! recorded, with the flags given on `--resume` laid over it (a contradiction is refused).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::results::{self, RunConfig, RunResults, Timing};
use crate::shard::ShardSpec;

/// The options as given on the command line: `None` (or `false`) where a flag was left out.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub scenario: Option<PathBuf>,
    pub runtimes: Option<Vec<String>>,
    pub models_dir: Option<PathBuf>,
    pub ort_lib: Option<PathBuf>,
    pub ep_libs: Vec<(String, PathBuf)>,
    pub timing: Option<Timing>,
    pub device: Option<u32>,
    pub pinned_io: bool,
    pub cuda_graph: bool,
    pub no_tf32: bool,
    pub in_process: bool,
    pub parallel_loads: bool,
    pub no_setup: bool,
    pub out: Option<PathBuf>,
    pub resume: Option<PathBuf>,
    pub retry_failed: bool,
    /// `--shard I/N`, as written.
    pub shard: Option<String>,
}

/// A run to make: its configuration and what this invocation adds to it.
#[derive(Debug, Clone)]
pub struct Request {
    pub config: RunConfig,
    /// The folder of a new run (`--out`; default `reports/<name>-<time>`).
    pub out: Option<PathBuf>,
    /// The run continued (`--resume`).
    pub resume: Option<Resume>,
    /// `--shard`.
    pub shard: Option<ShardSpec>,
    /// Fetch ONNX Runtime and plugin providers when missing (not `--no-setup`).
    pub auto_setup: bool,
}

/// The run a resume continues.
#[derive(Debug, Clone)]
pub struct Resume {
    pub dir: PathBuf,
    /// Its results as read when the options were validated (read again once its folder is claimed
    /// only if its files changed in between: `files`).
    pub results: RunResults,
    /// Length and modification time of results.json and the log when `results` was read.
    pub files: Vec<Option<(u64, std::time::SystemTime)>>,
    /// `--retry-failed`: its failed cells run again.
    pub retry_failed: bool,
}

impl Given {
    /// Validates the options into a request: for `--resume DIR`, the configuration DIR's results
    /// recorded, with the flags given laid over it.
    pub fn validate(self) -> Result<Request> {
        let shard = self.shard.as_deref().map(ShardSpec::parse).transpose().map_err(anyhow::Error::msg)?;
        if self.retry_failed && self.resume.is_none() {
            bail!("--retry-failed runs the failed cells of an earlier run again, and no run was named\n  fix: name the run's folder with --resume DIR");
        }
        let resume = match &self.resume {
            Some(dir) => Some(Resume { dir: dir.clone(), files: record_files(dir), results: read_resumable(dir)?, retry_failed: self.retry_failed }),
            None => None,
        };
        let config = match resume.as_ref().and_then(|r| r.results.run.as_ref().map(|c| (r, c))) {
            Some((r, recorded)) => self.over(recorded, Some(&r.dir))?,
            // A new run, or one whose results record no options (an older xbench's): the flags as given.
            None => self.over(&RunConfig::default(), None)?,
        };
        Ok(Request { config, out: self.out, resume, shard, auto_setup: !self.no_setup })
    }

    /// `base` with the flags given laid over it. The runtimes fix the run's grid: other ones than
    /// a resumed run's are refused here; the options a finished cell's meaning depends on (timing,
    /// I/O modes, device, isolation) are checked against its recorded conditions later, each
    /// difference named.
    fn over(&self, base: &RunConfig, resumed: Option<&Path>) -> Result<RunConfig> {
        let mut c = base.clone();
        if let Some(r) = &self.runtimes {
            if let Some(dir) = resumed.filter(|_| base.runtimes.as_ref() != Some(r)) {
                let recorded = match &base.runtimes {
                    Some(b) => format!("was run with --runtimes {}", b.join(",")),
                    None => "was run with the scenario's runtimes (no --runtimes)".to_string(),
                };
                bail!(
                    "--runtimes {} contradicts the run in {}, which {recorded}\n  fix: leave --runtimes out to resume with the run's own, or start a new run with --out instead of --resume",
                    r.join(","),
                    dir.display()
                );
            }
            c.runtimes = Some(r.clone());
        }
        if let Some(f) = &self.scenario {
            c.scenario = Some(f.clone());
        }
        if let Some(m) = &self.models_dir {
            c.models_dir = m.clone();
        }
        if let Some(l) = &self.ort_lib {
            c.ort_lib = Some(l.clone());
        }
        c.ep_libs.extend(self.ep_libs.iter().cloned());
        if let Some(t) = self.timing {
            c.timing = t;
        }
        if let Some(d) = self.device {
            c.device = d;
        }
        c.pinned_io |= self.pinned_io;
        c.cuda_graph |= self.cuda_graph;
        c.no_tf32 |= self.no_tf32;
        c.in_process |= self.in_process;
        c.parallel_loads |= self.parallel_loads;
        if c.in_process && c.parallel_loads {
            bail!("--parallel-loads starts a worker process per group, and --in-process runs every group in xbench's own process{}\n  fix: leave one of them out", resumed.map(|dir| format!(" ({} was run with one of them)", dir.display())).unwrap_or_default());
        }
        Ok(c)
    }
}

/// Length and modification time of the run's results.json and log in `dir` (`None` for one not there).
pub fn record_files(dir: &Path) -> Vec<Option<(u64, std::time::SystemTime)>> {
    ["results.json", results::LOG_FILE].iter().map(|f| std::fs::metadata(dir.join(f)).ok().and_then(|m| Some((m.len(), m.modified().ok()?)))).collect()
}

/// The results of the run in `dir` that `--resume` continues.
pub fn read_resumable(dir: &Path) -> Result<RunResults> {
    let path = dir.join("results.json");
    if !path.is_file() {
        let what = if dir.is_dir() { "the folder holds no results.json (`xbench scenario` did not write into it)" } else { "no such folder" };
        bail!("--resume {}: {what}\n  fix: name the folder of the run to continue, the one its `results:` line printed", dir.display());
    }
    results::read_results(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_given_on_a_resume_lay_over_the_recorded_ones() {
        let recorded = RunConfig { scenario: Some("s.yaml".into()), runtimes: Some(vec!["tract-cpu".into()]), timing: Timing::DeviceResident, pinned_io: true, ..RunConfig::default() };
        let dir = Path::new("reports/r");
        // Nothing given: the recorded options, whole.
        assert_eq!(Given::default().over(&recorded, Some(dir)).unwrap(), recorded);
        // The same runtimes, another models folder: taken.
        let g = Given { runtimes: Some(vec!["tract-cpu".into()]), models_dir: Some("elsewhere".into()), ..Given::default() };
        let c = g.over(&recorded, Some(dir)).unwrap();
        assert_eq!((c.models_dir.as_path(), c.timing, c.pinned_io), (Path::new("elsewhere"), Timing::DeviceResident, true));
        // Other runtimes: refused, naming the flag and the recorded value.
        let e = Given { runtimes: Some(vec!["ort-cpu".into()]), ..Given::default() }.over(&recorded, Some(dir)).unwrap_err().to_string();
        assert!(e.contains("--runtimes ort-cpu contradicts the run in reports/r") && e.contains("--runtimes tract-cpu") && e.contains("fix: leave --runtimes out"), "{e}");
        let plain = RunConfig::default();
        let e = Given { runtimes: Some(vec!["ort-cpu".into()]), ..Given::default() }.over(&plain, Some(dir)).unwrap_err().to_string();
        assert!(e.contains("the scenario's runtimes"), "{e}");
    }

    #[test]
    fn a_new_run_takes_the_flags_and_the_defaults() {
        let g = Given { runtimes: Some(vec!["ort-cpu".into()]), device: Some(1), no_tf32: true, ..Given::default() };
        let c = g.over(&RunConfig::default(), None).unwrap();
        assert_eq!(c, RunConfig { runtimes: Some(vec!["ort-cpu".into()]), device: 1, no_tf32: true, ..RunConfig::default() });
        let e = Given { in_process: true, parallel_loads: true, ..Given::default() }.over(&RunConfig::default(), None).unwrap_err();
        assert!(e.to_string().contains("fix: leave one of them out"));
    }

    #[test]
    fn the_recorded_options_read_back_as_written() {
        let c = RunConfig { scenario: Some("a b.yaml".into()), ep_libs: [("openvino".to_string(), PathBuf::from("/x/lib.so"))].into(), timing: Timing::DeviceResident, cuda_graph: true, ..RunConfig::default() };
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains("\"timing\":\"device-resident\""), "{text}");
        assert_eq!(serde_json::from_str::<RunConfig>(&text).unwrap(), c);
    }
}
