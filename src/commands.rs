//! One function per subcommand; each prints its own output.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use xbench::models::{self, read_io};
use xbench::report::ReportOptions;
use xbench::run::{self, Isolation, RunOptions};
use xbench::runtimes::{self, RuntimeId, RuntimeOptions};
use xbench::scenario::{Plan, PlanOptions, ScenarioFile, EMBEDDED_DEFAULT};

use crate::cli::{Cmd, SetupCmd};

/// A run stopped by Ctrl-C (exit code 130, as shells expect).
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

pub fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Scenario { file, runtimes, out, models_dir, ort_lib, in_process, no_setup, quiet, resume, timing, device, pinned_io, cuda_graph, parallel_loads, no_tf32 } => {
            xbench::hub::set_quiet(quiet);
            let runtimes_flag = runtimes.as_ref().map(|r| format!(" --runtimes {}", r.join(","))).unwrap_or_default();
            let (scenario, plan, origin) = match &file {
                Some(path) => {
                    let (f, p) = Plan::from_path(path, &models_dir, runtimes)?;
                    (f, p, path.display().to_string())
                }
                None => {
                    let origin = "built-in scenario (scenarios/quick.yaml)".to_string();
                    let f = ScenarioFile::parse(EMBEDDED_DEFAULT, &origin)?;
                    let p = Plan::new(&f, &origin, &PlanOptions { models_root: models_dir.clone(), scenario_dir: ".".into(), runtimes_override: runtimes })?;
                    (f, p, origin)
                }
            };
            if cuda_graph && !plan.runtimes.contains(&xbench::runtimes::RuntimeId::OrtCuda) {
                bail!(
                    "--cuda-graph applies to ort-cuda, which this run does not use (runtimes: {})\n  fix: add ort-cuda to the runtimes (--runtimes ...,ort-cuda) or leave --cuda-graph out",
                    plan.runtimes.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                );
            }
            let isolation = if in_process {
                Isolation::InProcess
            } else {
                Isolation::Process { exe: std::env::current_exe().context("cannot find the xbench executable to start workers")? }
            };
            if let Some(dir) = out.as_ref().filter(|d| d.is_file()) {
                bail!("--out `{}` is a file; it takes the folder where results and the report go\n  fix: name a new or existing folder", dir.display());
            }
            let previous = match &resume {
                None => None,
                Some(dir) => {
                    let prev = xbench::results::read_results(&dir.join("results.json"))?;
                    run::check_resumable(&prev, &plan, &scenario, dir)?;
                    let left = prev.cells.iter().filter(|c| c.status == xbench::results::Status::Pending).count();
                    if !quiet {
                        eprintln!("xbench: resuming {}: {left} of {} cells left", dir.display(), prev.cells.len());
                    }
                    Some(prev)
                }
            };
            run::stop::install();
            let opts = RunOptions {
                out_dir: resume.clone().or(out).unwrap_or_else(|| run::default_out_dir(&plan)),
                runtime: RuntimeOptions {
                    threads: plan.threads,
                    ort_lib,
                    device_id: device,
                    timing: match timing {
                        crate::cli::TimingArg::EndToEnd => xbench::runtimes::Timing::EndToEnd,
                        crate::cli::TimingArg::DeviceResident => xbench::runtimes::Timing::DeviceResident,
                    },
                    pinned_io,
                    cuda_graph,
                    no_tf32,
                },
                parallel_loads,
                isolation,
                auto_setup: !no_setup,
                quiet,
                resume: previous,
            };
            if !quiet {
                eprintln!(
                    "xbench: scenario `{}`: {} models × {} runtimes × {} lengths × {} batch sizes = {} cells",
                    plan.name,
                    plan.models.len(),
                    plan.runtimes.len(),
                    plan.input_chars.len(),
                    plan.batch_sizes.len(),
                    plan.cells.len()
                );
            }
            let out = run::run_plan(&plan, &scenario, &origin, &opts)?;
            let r = &out.results;
            let count = |s| r.cells.iter().filter(|c| c.status == s).count();
            use xbench::results::Status;
            let disagree = r.cells.iter().filter(|c| c.agreement.as_ref().is_some_and(|a| !a.within_tolerance)).count();
            let suspicious = r.cells.iter().filter(|c| c.flags.iter().any(|f| f.starts_with(xbench::verdict::SUSPICIOUS))).count();
            let warned = r.cells.iter().filter(|c| !c.flags.is_empty()).count();
            // Models with a sibling (`compare_with`): how many of their compared cells disagree with it.
            let judged: Vec<bool> = r.cells.iter().filter_map(|c| c.sibling_agreement.as_ref()?.within_tolerance).collect();
            let siblings = if judged.is_empty() {
                String::new()
            } else {
                format!("{} of {} compared with their sibling model disagree with it; ", judged.iter().filter(|ok| !**ok).count(), judged.len())
            };
            println!(
                "{} cells: {} ok, {} failed, {} skipped; {} disagree with {}; {siblings}{} suspicious; {} with warnings (listed in the report)",
                r.cells.len(),
                count(Status::Ok),
                count(Status::Failed),
                count(Status::Skipped),
                disagree,
                r.reference_runtime,
                suspicious,
                warned
            );
            println!("report:  {} and {}", out.report.display(), out.dir.join("index.html").display());
            println!("results: {} and {}", out.json.display(), out.csv.display());
            if out.stopped {
                return Err(Interrupted(format!(
                    "stopped before the grid was finished; the finished cells are saved\n  resume with: xbench scenario {}--resume {}{}",
                    file.as_ref().map(|f| format!("{} ", f.display())).unwrap_or_default(),
                    out.dir.display(),
                    runtimes_flag
                ))
                .into());
            }
            Ok(())
        }
        Cmd::Runtimes { ort_lib } => {
            let opts = RuntimeOptions { threads: None, ort_lib, ..Default::default() };
            println!("{:<11} {:<7} {:<8} detail", "runtime", "usable", "version");
            for id in RuntimeId::ALL {
                let a = runtimes::check(id, &opts);
                println!(
                    "{:<11} {:<7} {:<8} {}",
                    id.as_str(),
                    if a.usable { "yes" } else { "no" },
                    a.version.as_deref().unwrap_or("-"),
                    a.detail.replace('\n', "\n                             ")
                );
            }
            Ok(())
        }
        Cmd::Models { models_dir } => list_models(&models_dir),
        Cmd::Setup { what: SetupCmd::Ort { gpu } } => {
            let lib = runtimes::setup_ort(gpu)?;
            println!("{}", lib.display());
            Ok(())
        }
        Cmd::Report { results, out, name_as, paper } => report(&results, out, name_as, paper),
        Cmd::MakeTinyBert { out, fp16, seed } => {
            use xbench::onnx::tiny_bert;
            let cfg = tiny_bert::TinyBertConfig { seed, ..Default::default() };
            let path = if fp16 { tiny_bert::write_fp16(&cfg, &out)? } else { tiny_bert::write(&cfg, &out)? };
            println!("{}", path.display());
            Ok(())
        }
        Cmd::Compare { a, b, level, fail_above } => {
            if !(level > 0.0 && level < 1.0) {
                anyhow::bail!("--level {level} must lie between 0 and 1, e.g. 0.95");
            }
            let ra = xbench::results::read_results(&a)?;
            let rb = xbench::results::read_results(&b)?;
            let cmp = xbench::compare::compare(&ra, &rb, level);
            print!("{}", cmp.table());
            if cmp.cells.is_empty() {
                anyhow::bail!("no cell was measured in both {} and {}\n  fix: compare runs of the same scenario", a.display(), b.display());
            }
            if let Some(pct) = fail_above {
                let reg = cmp.regressions(pct / 100.0);
                if !reg.is_empty() {
                    anyhow::bail!("{} cells are slower than in {} by more than {pct}%", reg.len(), a.display());
                }
            }
            Ok(())
        }
        Cmd::Feeds { file, out, models_dir } => write_feeds(&file, &out, &models_dir),
        Cmd::Fetch { repo, revision, file, name, models_dir, quiet } => fetch(&repo, revision, file, name, models_dir, quiet),
        Cmd::Worker { job } => run::worker_main(&job),
    }
}

fn fetch(repo: &str, revision: Option<String>, file: Option<String>, name: Option<String>, models_dir: PathBuf, quiet: bool) -> Result<()> {
    xbench::hub::set_quiet(quiet);
    let mut hub = xbench::hub::HubRef::parse(repo)?;
    if let Some(rev) = revision {
        if let Some(given) = &hub.revision {
            bail!("`{repo}` names revision {given} and --revision names {rev}\n  fix: give the revision once");
        }
        hub = xbench::hub::HubRef::new(&hub.repo, Some(&rev))?;
    }
    let fetched = xbench::hub::fetch(&xbench::hub::FetchRequest { hub: hub.clone(), file, name, models_root: models_dir })?;
    let rev = fetched.meta.revision.as_deref().unwrap_or("?");
    let from = if fetched.offline { " from the Hub cache (HF_HUB_OFFLINE)" } else { "" };
    println!("{} at commit {rev}{from} -> {}", hub.repo, fetched.dir.display());
    for (f, bytes) in &fetched.files {
        println!("  {f:<24} {:>12} bytes", bytes);
    }
    println!("name it in a scenario as `{}` (or `hf:{hub}`); `xbench models` shows what it takes", fetched.name);
    Ok(())
}

fn report(files: &[PathBuf], out: Option<PathBuf>, names: Vec<String>, paper: bool) -> Result<()> {
    let dir = match out {
        Some(dir) => dir,
        None if files.len() == 1 => match files[0].parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => bail!("{} results files make one report: say which folder it goes to with --out DIR", files.len()),
    };
    if dir.is_file() {
        bail!("--out {} is a file; it takes the folder where report.md, index.html and the figures go", dir.display());
    }
    let results = files.iter().map(|f| xbench::results::read_results(f)).collect::<Result<Vec<_>>>()?;
    let opts = ReportOptions { names, paper };
    let written = xbench::report::write_all(&results, &opts, &dir).with_context(|| {
        let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        format!("cannot draw the report of {}", list.join(", "))
    })?;
    println!("report:  {}", written.markdown.display());
    println!("page:    {}", written.html.display());
    println!("figures: {} files in {}", written.figures.len(), dir.display());
    Ok(())
}

fn list_models(root: &Path) -> Result<()> {
    let found = models::discover(root);
    if found.is_empty() {
        println!("no models under {} (a model is a folder with an .onnx file and its tokenizer.json)", root.display());
        return Ok(());
    }
    for m in found {
        match m {
            Err(e) => println!("{e:#}\n"),
            Ok(m) => {
                println!("{}  ({})", m.name, m.onnx.display());
                match &m.tokenizer {
                    Some(t) => println!("  tokenizer: {}", t.display()),
                    None => println!("  tokenizer: none"),
                }
                if let Some(h) = &m.meta.hub_id {
                    println!("  hub id:    {h}");
                }
                if let Some(r) = &m.meta.revision {
                    println!("  revision:  {r}");
                }
                if let Some(w) = &m.meta.weights {
                    println!("  weights:   {w}");
                }
                if let Some(s) = m.sibling() {
                    println!("  compared with: {s} (compare_with)");
                }
                match read_io(&m.onnx) {
                    Err(e) => println!("  unreadable: {e:#}"),
                    Ok(io) => {
                        for i in &io.inputs {
                            println!("  input  {:<16} {:<8} {}", i.name, i.elem_type, i.shape_string());
                        }
                        for o in &io.outputs {
                            println!("  output {:<16} {:<8} {}", o.name, o.elem_type, o.shape_string());
                        }
                        let opsets: Vec<String> = io.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
                        println!("  opsets:    {}", opsets.join(", "));
                    }
                }
                println!();
            }
        }
    }
    Ok(())
}

fn write_feeds(file: &Path, out: &Path, models_dir: &Path) -> Result<()> {
    use xbench::inputs::{self, Feed, HostTensor};
    let (_, plan) = Plan::from_path(file, models_dir, None)?;
    let text = inputs::load_text(&plan.text)?;
    let mut feeds = Vec::new();
    for m in &plan.models {
        if let Some(why) = &m.unavailable {
            bail!("model `{}` cannot be read: {why}", m.name);
        }
        let io = read_io(&m.onnx)?;
        let Some(tok_path) = &m.tokenizer else { continue };
        let mut tok = inputs::load_tokenizer(tok_path)?;
        let max_positions = m.max_positions(Some(&io));
        for &chars in &plan.input_chars {
            for &batch in &plan.batch_sizes {
                let texts = inputs::passages(&text, chars, batch)?;
                let feed = Feed::from_texts(&mut tok, &texts, m, &io.inputs, max_positions)?;
                let tensors: Vec<serde_json::Value> = feed
                    .tensors
                    .iter()
                    .map(|(name, t)| {
                        let (dtype, data): (&str, Vec<f64>) = match t {
                            HostTensor::I64(a) => ("int64", a.iter().map(|&v| v as f64).collect()),
                            HostTensor::I32(a) => ("int32", a.iter().map(|&v| v as f64).collect()),
                            HostTensor::F32(a) => ("float32", a.iter().map(|&v| v as f64).collect()),
                        };
                        serde_json::json!({"name": name, "dtype": dtype, "shape": t.shape(), "data": data})
                    })
                    .collect();
                feeds.push(serde_json::json!({"model": m.name, "onnx": m.onnx, "chars": chars, "batch": batch, "tokens_per_row": feed.text.tokens_per_row, "inputs": tensors}));
            }
        }
    }
    std::fs::write(out, serde_json::to_vec(&feeds)?).with_context(|| format!("cannot write {}", out.display()))?;
    println!("{} feeds written to {}", feeds.len(), out.display());
    Ok(())
}
