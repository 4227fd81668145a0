//! One external program with one model loaded: `hello`/`ready` at load, a `cell`/`result` exchange
//! per cell through safetensors files in a scratch folder, `bye`/`done` at the end. Every answer is
//! checked before xbench takes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::messages::{CellResult, Declared, FromProgram, HelloDecoder, HelloModel, HelloRuntime, Ready, Sent, ToProgram};
use super::peer::Peer;
use super::PROTOCOL;
use crate::inputs::Feed;
use crate::models::{Dim, ModelIo};
use crate::results::{tensors_from_bytes, write_tensors};
use crate::runtimes::{HostMemory, Output, RuntimeId, RuntimeOptions, SelfTimed, Session, SessionInfo, TimerClass, Timing};

/// How long an answer may take when the scenario sets no `cell_timeout_s`.
const DEFAULT_TIMEOUT_S: f64 = 600.0;

/// The longest time an answer may give, in milliseconds: a day, the longest `cell_timeout_s`
/// (everything a `result` reports happened within one).
pub const MAX_MS: f64 = 86_400_000.0;

/// A number as a message shows it: in scientific notation when very large or small.
fn show(ms: f64) -> String {
    if ms != 0.0 && !(1e-6..1e15).contains(&ms.abs()) {
        format!("{ms:e}")
    } else {
        format!("{ms}")
    }
}

/// The rule a time of `ms` milliseconds breaks, if any (`zero`: whether 0 is allowed).
fn broken_time_rule(ms: f64, zero: bool) -> Option<String> {
    if !ms.is_finite() {
        Some("it must be a finite number".into())
    } else if ms < 0.0 || (ms == 0.0 && !zero) {
        Some(if zero { "it must be 0 or more" } else { "it must be above 0" }.into())
    } else if ms > MAX_MS {
        Some(format!("it must be at most {MAX_MS:.0} ms (one day, the longest `cell_timeout_s`)"))
    } else {
        None
    }
}

const TIME_FIX: &str = "fix: send every time in milliseconds, as the program's clock read it";

/// `prepare_ms` and `warmup_ms` as sent (0 when absent), each checked against the protocol's bounds.
pub(super) fn untimed_ms(who: &str, prepare: &Option<Sent<f64>>, warmup: &Option<Sent<f64>>) -> Result<[f64; 2]> {
    let mut untimed = [0.0; 2];
    for (k, (key, v)) in [("prepare_ms", prepare), ("warmup_ms", warmup)].into_iter().enumerate() {
        let ms = match v {
            None => continue,
            Some(Sent::Valid(ms)) => *ms,
            Some(Sent::Invalid(json)) => bail!("{who} sent {json} as `{key}`; it must be a number of milliseconds, or left out"),
        };
        if let Some(rule) = broken_time_rule(ms, true) {
            bail!("{who} sent {} ms as `{key}`: {rule}\n  {TIME_FIX}", show(ms));
        }
        untimed[k] = ms;
    }
    Ok(untimed)
}

/// One time an answer sends (`what`, e.g. "sample 3 of `samples_ms`"): a number within the
/// protocol's bounds, above 0.
pub(super) fn timed_ms(who: &str, sent: &Sent<f64>, what: &str) -> Result<f64> {
    let ms = match sent {
        Sent::Valid(ms) => *ms,
        Sent::Invalid(json) => bail!("{who} sent {json} as {what}; every time must be a number of milliseconds"),
    };
    if let Some(rule) = broken_time_rule(ms, false) {
        bail!("{who} sent {} ms as {what}: {rule}\n  {TIME_FIX}", show(ms));
    }
    Ok(ms)
}

/// Everything an answer reports (`total_ms`: its `timed` times, `prepare_ms` and `warmup_ms`
/// together) happened between the message and the answer (`took_ms`), give or take rounding.
pub(super) fn within_exchange(who: &str, total_ms: f64, timed: &str, took_ms: f64) -> Result<()> {
    if total_ms > took_ms * 1.05 + 10.0 {
        bail!("{who} reported {total_ms:.1} ms of work ({timed}, `prepare_ms` and `warmup_ms` together) for a cell it answered {took_ms:.1} ms after it was asked\n  {TIME_FIX}, each time taken within the cell");
    }
    Ok(())
}

/// `ready`'s `generate_timer`, required with `"generate": true` in a generation scenario.
fn generate_timer(ready: &Ready) -> std::result::Result<String, String> {
    if ready.generate.as_ref().and_then(Sent::valid) != Some(&true) {
        return Err("does not generate (its `ready` has no `\"generate\": true`)\n  fix: use a program that answers `generate` messages (docs/runtime-protocol.md, *Generation*), or generate with ort-cpu, ort-cuda or tract-cpu".into());
    }
    match ready.generate_timer.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => Ok(t.to_string()),
        _ => Err("generates but its `ready` has no `generate_timer`\n  fix: send `generate_timer`: what a timed prefill and a timed step cover, in words (docs/runtime-protocol.md, *Generation*)".into()),
    }
}

pub struct ExternalSession {
    pub(super) peer: Peer,
    /// Fields drop in order: the program ends before its working folder is removed.
    scratch: tempfile::TempDir,
    io: ModelIo,
    timeout: Duration,
    info: SessionInfo,
    timer_label: String,
    /// `ready`'s `generate_timer`, in a generation scenario.
    pub(super) generate_timer: Option<String>,
    cells: usize,
    /// Why the program can no longer be asked anything (it exited, hung or spoke garbage).
    broken: Option<String>,
}

/// The `placement` of a `ready` message: [name, count] pairs; `Err` shows the first entry that is not one.
fn placement(ready: &Ready) -> std::result::Result<Vec<(String, usize)>, String> {
    match &ready.placement {
        None => Ok(vec![]),
        Some(Sent::Invalid(json)) => Err(json.clone()),
        Some(Sent::Valid(entries)) => entries
            .iter()
            .map(|p| match p {
                Sent::Valid((name, n)) => Ok((name.clone(), *n as usize)),
                Sent::Invalid(json) => Err(json.clone()),
            })
            .collect(),
    }
}

/// `ready`'s `timing` and `host_memory`, in the vocabulary of xbench's own series; `None` when
/// the program sends no `timing`.
fn timer_class(ready: &Ready) -> std::result::Result<Option<TimerClass>, String> {
    let shown = |v: &Sent<String>| match v {
        Sent::Valid(s) => serde_json::Value::String(s.clone()).to_string(),
        Sent::Invalid(json) => json.clone(),
    };
    let timing = match &ready.timing {
        None => return Ok(None),
        Some(v) => match v.valid().map(String::as_str) {
            Some("end-to-end") => Timing::EndToEnd,
            Some("device-resident") => Timing::DeviceResident,
            _ => return Err(format!("sent `timing` {}, which is not a timer xbench knows\n  fix: send \"end-to-end\" or \"device-resident\" (docs/runtime-protocol.md), or leave it out", shown(v))),
        },
    };
    let host = match &ready.host_memory {
        None => None,
        Some(v) => Some(v.valid().and_then(|s| HostMemory::parse(s)).ok_or_else(|| {
            let known: Vec<&str> = HostMemory::ALL.iter().map(|h| h.as_str()).collect();
            format!("sent `host_memory` {}, which is not a way host memory moves that xbench knows\n  fix: send one of {} (docs/runtime-protocol.md), or leave it out", shown(v), known.join(", "))
        })?),
    };
    Ok(Some(TimerClass::new(timing, host)))
}

impl ExternalSession {
    pub fn start(id: RuntimeId, program: &Path, python: Option<&Path>, options: &BTreeMap<String, String>, onnx: &Path, opts: &RuntimeOptions) -> Result<ExternalSession> {
        let io = crate::models::read_io(onnx)?;
        let scratch = tempfile::Builder::new().prefix(&super::scratch_prefix(std::process::id())).tempdir().map_err(|e| {
            anyhow!("cannot make a scratch folder for {} in the temporary folder {} ({e})\n  fix: point TMPDIR at a folder that exists and is writable, or unset it", program.display(), std::env::temp_dir().display())
        })?;
        let mut peer = Peer::start(program, python, scratch.path())?;
        let timeout = Duration::from_secs_f64(opts.cell_timeout_s.unwrap_or(DEFAULT_TIMEOUT_S));
        let dir = onnx.parent().unwrap_or(Path::new("."));
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let hello = ToProgram::Hello {
            protocol: PROTOCOL,
            runtime: HelloRuntime { name: id, options },
            model: HelloModel {
                name: dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                dir: absolute(dir),
                onnx: absolute(onnx),
                inputs: Declared::all(&io.inputs),
                outputs: Declared::all(&io.outputs),
            },
            threads: opts.threads,
            device: opts.device_id,
            task: opts.generate.as_ref().map(|_| "generate"),
            decoder: opts.generate.as_ref().map(HelloDecoder::of),
        };
        let FromProgram::Ready(ready) = peer.ask(&hello, timeout, &["ready"])? else { bail!("{} sent no `ready`", peer.program) };
        if ready.protocol.as_ref().and_then(Sent::valid) != Some(&PROTOCOL) {
            bail!("{} speaks protocol {}, xbench speaks {PROTOCOL}\n  fix: use a version of the program made for protocol {PROTOCOL}", peer.program, Sent::shown(&ready.protocol));
        }
        let engine = ready.engine.clone().unwrap_or_else(|| "external".into());
        let device = ready.device.clone().unwrap_or_default();
        let placement = placement(&ready).map_err(|bad| {
            anyhow!("{} sent a `placement` entry {bad}, which is not a [name, count] pair\n  fix: send `placement` as pairs of a name and a non-negative integer, e.g. [[\"cuda\", 1]], or leave it out", peer.program)
        })?;
        let info = SessionInfo {
            threads: ready.threads.clone().unwrap_or_default(),
            providers: vec![if device.is_empty() { engine } else { format!("{engine} ({device})") }],
            version: ready.version.clone().unwrap_or_else(|| "unknown".into()),
            placement,
            io: ready.timer.as_ref().map(|t| format!("{}: {t}", peer.program)),
            precision: match ready.precision.as_deref() {
                None => None,
                Some(p) => Some(p.parse().map_err(|_| {
                    anyhow!(
                        "{} says it computes in precision `{p}`, which xbench has no tolerance for\n  fix: send one of {} (lower case) as `precision`, or leave it out for fp32",
                        peer.program,
                        crate::scenario::Precision::names()
                    )
                })?),
            },
            settings: options.clone(),
            timer_class: timer_class(&ready).map_err(|why| anyhow!("{} {why}", peer.program))?,
            notes: ready.notes.clone(),
        };
        let timer_label = ready.timer_label.clone().unwrap_or_else(|| "external".into());
        let generate_timer = match opts.generate {
            None => None,
            Some(_) => Some(generate_timer(&ready).map_err(|why| anyhow!("{} {why}", peer.program))?),
        };
        Ok(ExternalSession { peer, scratch, io, timeout, info, timer_label, generate_timer, cells: 0, broken: None })
    }

    /// The scratch files of the next cell: what xbench writes for it (`cell-N-WHAT.safetensors`)
    /// and where the program writes its outputs.
    pub(super) fn next_cell_files(&self, what: &str) -> (PathBuf, PathBuf) {
        let at = |name: &str| self.scratch.path().join(format!("cell-{}-{name}.safetensors", self.cells));
        (at(what), at("outputs"))
    }

    /// Sends the message `ask(index)` for the next cell and waits for its answer (one of
    /// `answers`, or `cell_error`), checking that it answers that cell. `Ok` holds the answer and
    /// the time from sending the message to reading the answer, in milliseconds.
    pub(super) fn exchange<'m>(&mut self, ask: impl FnOnce(usize) -> Result<ToProgram<'m>>, answers: &[&str]) -> Result<(usize, FromProgram, f64)> {
        if let Some(why) = &self.broken {
            bail!("{} can no longer be asked: {why}", self.peer.program);
        }
        let index = self.cells;
        self.cells += 1;
        let msg = ask(index)?;
        let asked = Instant::now();
        let answer = self.peer.ask(&msg, self.timeout, answers);
        let took_ms = asked.elapsed().as_secs_f64() * 1e3;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.broken = Some(format!("{e:#}"));
                return Err(e);
            }
        };
        // An answer for another cell puts every later answer off by one: ask nothing more.
        let answered = match &answer {
            FromProgram::Result(r) => &r.index,
            FromProgram::Generated(g) => &g.index,
            FromProgram::CellError(e) => &e.index,
            _ => &None,
        };
        if answered.as_ref().and_then(Sent::valid) != Some(&(index as u64)) {
            let why = format!("{} answered for cell {} when cell {index} was asked", self.peer.program, Sent::shown(answered));
            self.broken = Some(why.clone());
            bail!("{why}\n  fix: answer each cell with its own `index`, in order");
        }
        if let FromProgram::CellError(e) = &answer {
            bail!("{}: {}", self.peer.program, e.message.as_deref().unwrap_or("(no message)"));
        }
        Ok((index, answer, took_ms))
    }

    fn cell(&mut self, feed: &Feed, warmup: usize, iterations: usize, min_time_s: Option<f64>) -> Result<SelfTimed> {
        let (inputs, outputs) = self.next_cell_files("inputs");
        let exchanged = self.exchange(
            |index| {
                let tensors: Vec<Output> = feed.tensors.iter().map(|(name, t)| Output { name: name.clone(), data: t.clone() }).collect();
                write_tensors(&inputs, &tensors, Default::default())?;
                Ok(ToProgram::Cell { index, warmup, iterations, min_time_s, inputs: &inputs, outputs: &outputs })
            },
            &["result", "cell_error"],
        );
        let _ = std::fs::remove_file(&inputs);
        let result = exchanged.and_then(|(_, answer, took_ms)| match answer {
            FromProgram::Result(r) => self.judge(&r, feed, iterations, &outputs, took_ms),
            other => Err(anyhow!("{} sent a `{}` message where `result` or `cell_error` was due", self.peer.program, other.kind())),
        });
        let _ = std::fs::remove_file(&outputs);
        result
    }

    /// Checks an answer against the rules of the protocol and what the model declares; `took_ms`:
    /// from the `cell` message to the answer.
    fn judge(&self, answer: &CellResult, feed: &Feed, iterations: usize, outputs: &PathBuf, took_ms: f64) -> Result<SelfTimed> {
        let who = &self.peer.program;
        let Some(Sent::Valid(sent)) = &answer.samples_ms else {
            bail!("{who} sent no `samples_ms` list\n  fix: answer with every timed iteration's time in milliseconds, `\"samples_ms\": [2.46, 2.45, …]`");
        };
        if sent.len() > crate::measure::MAX_ITERATIONS {
            bail!("{who} sent {} samples, more than the {} iterations xbench takes in one cell\n  fix: stop at {} iterations (a minimum time may add iterations up to that)", sent.len(), crate::measure::MAX_ITERATIONS, crate::measure::MAX_ITERATIONS);
        }
        let mut samples = Vec::with_capacity(sent.len());
        for (i, s) in sent.iter().enumerate() {
            samples.push(timed_ms(who, s, &format!("sample {i} of `samples_ms`"))?);
        }
        if samples.len() < iterations {
            bail!("{who} sent {} samples where at least {iterations} timed iterations were asked\n  fix: the program must time every iteration it is asked for", samples.len());
        }
        let untimed = untimed_ms(who, &answer.prepare_ms, &answer.warmup_ms)?;
        within_exchange(who, samples.iter().sum::<f64>() + untimed[0] + untimed[1], "samples", took_ms)?;
        let (got, _) = read_outputs(outputs).map_err(|e| anyhow!("{who} wrote no readable outputs: {e:#}"))?;
        // An empty file would leave nothing to compare, and nothing compared must not read as agreement.
        if got.is_empty() {
            bail!(
                "{who} wrote an outputs file with no tensor in it\n  fix: write the model's outputs ({}) as computed in the last timed iteration",
                self.io.outputs.iter().map(|d| format!("`{}`", d.name)).collect::<Vec<_>>().join(", ")
            );
        }
        for o in &got {
            let Some(declared) = self.io.outputs.iter().find(|d| d.name == o.name) else {
                bail!("{who} wrote an output `{}` the model does not have (it has {})", o.name, self.io.outputs.iter().map(|d| format!("`{}`", d.name)).collect::<Vec<_>>().join(", "));
            };
            if let Some(dims) = &declared.dims {
                let shape = o.data.shape();
                let fits = shape.len() == dims.len()
                    && dims.iter().zip(shape).all(|(d, &s)| match d {
                        Dim::Fixed(n) => *n as usize == s,
                        Dim::Symbol(name) if crate::inputs::is_batch_dim(name) => s == feed.batch,
                        Dim::Symbol(name) if crate::inputs::is_sequence_dim(name) => s == feed.seq_len,
                        _ => true,
                    });
                if !fits {
                    bail!("{who} wrote output `{}` of shape {shape:?}, but the model declares {} for {} rows of {} tokens", o.name, declared.shape_string(), feed.batch, feed.seq_len);
                }
            }
        }
        Ok(SelfTimed { latency_ms: samples, outputs: got, prepare_ms: untimed[0], warmup_ms: untimed[1] })
    }
}

impl Session for ExternalSession {
    fn times_itself(&mut self, feed: &Feed, warmup: usize, iterations: usize, min_time_s: Option<f64>) -> Option<Result<SelfTimed>> {
        Some(self.cell(feed, warmup, iterations, min_time_s))
    }

    fn run(&mut self, _feed: &Feed) -> Result<()> {
        bail!("an external runtime times its own iterations")
    }

    fn outputs(&mut self, _feed: &Feed) -> Result<Vec<Output>> {
        bail!("an external runtime sends its outputs with its samples")
    }

    fn generator(&mut self, layout: &crate::models::DecoderLayout, _io: &ModelIo) -> Result<Box<dyn crate::runtimes::decode::Generator + '_>> {
        super::generation::Generating::of(self, layout)
    }

    fn timer_label(&self) -> String {
        self.timer_label.clone()
    }

    fn info(&self) -> SessionInfo {
        self.info.clone()
    }

    /// `bye`, then the program's `done`; its peak memory counts with the worker's (the program is
    /// waited for). Then whatever it left running is ended and its scratch folder removed, before
    /// the group reports that it is done (a worker may be ended as soon as it has).
    fn close(&mut self) {
        if self.broken.is_none() {
            let _ = self.peer.ask(&ToProgram::Bye, self.timeout.min(Duration::from_secs(10)), &["done"]);
        }
        self.peer.wait();
        self.peer.end();
        let _ = std::fs::remove_dir_all(self.scratch.path());
    }
}

/// The outputs file, read only if it is a regular file: a named pipe, a device or a link there
/// (which could block, or lead out of the scratch folder) is refused at once.
pub(super) fn read_outputs(path: &Path) -> Result<(Vec<Output>, std::collections::HashMap<String, String>)> {
    use std::io::Read;
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let kind = |m: &std::fs::Metadata| {
        let t = m.file_type();
        if t.is_symlink() { "a symbolic link" } else if t.is_dir() { "a folder" } else { "not a regular file (a named pipe, socket or device)" }
    };
    if let Some(m) = std::fs::symlink_metadata(path).ok().filter(|m| !m.is_file()) {
        bail!("{} is {}\n  fix: write the outputs as a regular safetensors file at the `outputs` path", path.display(), kind(&m));
    }
    let mut file = open.open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let m = file.metadata()?;
    if !m.is_file() {
        bail!("{} is {}\n  fix: write the outputs as a regular safetensors file at the `outputs` path", path.display(), kind(&m));
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    file.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    tensors_from_bytes(&bytes).with_context(|| format!("{} is not a readable safetensors file", path.display()))
}
