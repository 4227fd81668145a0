//! The smaller commands: fetch, report, compare, feeds.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xbench::models::hub;
use xbench::report::ReportOptions;
use xbench::scenario::HubRef;

pub fn fetch(repo: &str, revision: Option<String>, file: Option<String>, name: Option<String>, models_dir: PathBuf) -> Result<()> {
    let mut hub = HubRef::parse(repo)?;
    if let Some(rev) = revision {
        if let Some(given) = &hub.revision {
            bail!("`{repo}` names revision {given} and --revision names {rev}\n  fix: give the revision once");
        }
        hub = HubRef::new(&hub.repo, Some(&rev))?;
    }
    let fetched = hub::fetch(&hub::FetchRequest { hub: hub.clone(), file, name, models_root: models_dir })?;
    let rev = fetched.meta.revision.as_deref().unwrap_or("?");
    let from = if fetched.offline { " from the Hub cache (HF_HUB_OFFLINE)" } else { "" };
    println!("{} at commit {rev}{from} -> {}", hub.repo, fetched.dir.display());
    for (f, bytes) in &fetched.files {
        println!("  {f:<24} {:>12} bytes", bytes);
    }
    println!("name it in a scenario as `{}` (or `hf:{hub}`); `xbench models` shows what it takes", fetched.name);
    Ok(())
}

pub fn report(files: &[PathBuf], out: Option<PathBuf>, names: Vec<String>, paper: bool) -> Result<()> {
    let dir = match out {
        Some(dir) => dir,
        None if files.len() == 1 => match files[0].parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => bail!("{} results files make one report: say which folder it goes to with --out DIR", files.len()),
    };
    xbench::run::outdir::check_report_dir(&dir)?;
    let mut results = files.iter().map(|f| xbench::results::read_results(f)).collect::<Result<Vec<_>>>()?;
    // The record's warnings and verdicts, judged again by this xbench (outputs are compared only during a run).
    for r in &mut results {
        xbench::analysis::analyze(r, None);
    }
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

pub fn compare(a: &Path, b: &Path, level: f64, fail_above: Option<f64>) -> Result<()> {
    if !(level.is_finite() && level > 0.0 && level < 1.0) {
        bail!("--level {level} is not a confidence level: it must lie strictly between 0 and 1\n  fix: e.g. --level 0.95 (the default)");
    }
    if let Some(pct) = fail_above.filter(|p| !(p.is_finite() && *p >= 0.0)) {
        bail!("--fail-above {pct} is not a percentage a cell can be slower by: it must be a finite number, 0 or more (a NaN or infinite one would let every regression pass)\n  fix: e.g. --fail-above 10 (fail when a cell is more than 10% slower than in A)");
    }
    let ra = xbench::results::read_results(a)?;
    let rb = xbench::results::read_results(b)?;
    let cmp = xbench::compare::compare(&ra, &rb, level);
    print!("{}", cmp.table());
    if cmp.cells.is_empty() {
        bail!("no cell was measured in both {} and {}\n  fix: compare runs of the same scenario", a.display(), b.display());
    }
    if let Some(pct) = fail_above {
        let reg = cmp.regressions(pct / 100.0);
        if !reg.is_empty() {
            bail!("{} cells are slower than in {} by more than {pct}%\n  fix: find what made them slower (the table above lists them), or raise --fail-above if the change is expected", reg.len(), a.display());
        }
    }
    Ok(())
}

pub fn write_feeds(file: &Path, out: &Path, models_dir: &Path) -> Result<()> {
    use xbench::inputs::{self, Feed};
    use xbench::tensor::Tensor;
    let (_, plan) = super::scenario::resolve_file(file, models_dir)?;
    let text = inputs::load_text(&plan.plan.settings.text)?;
    let mut feeds = Vec::new();
    for m in &plan.models {
        m.io().map_err(|why| anyhow::anyhow!("model `{}` cannot be read: {why}", m.name))?;
        let Some(tok_path) = m.tokenizer() else { continue };
        let fills = m.inputs().map_err(|why| anyhow::anyhow!("{why}"))?;
        let job = xbench::run::job::JobModel::of(m).expect("a model with inputs is ready");
        let mut tok = inputs::load_tokenizer(tok_path)?;
        for &chars in &plan.plan.input_chars {
            for &batch in &plan.plan.batch_sizes {
                let texts = inputs::passages(&text, chars, batch)?;
                let feed = Feed::from_texts(&mut tok, &texts, fills, job.position_offset, job.max_positions, &plan.plan.settings.dims)?;
                let tensors: Vec<serde_json::Value> = feed
                    .tensors
                    .iter()
                    .map(|(name, t)| -> Result<serde_json::Value> {
                        let data: Vec<f64> = match t {
                            Tensor::I64(a) => a.iter().map(|&v| v as f64).collect(),
                            Tensor::I32(a) => a.iter().map(|&v| v as f64).collect(),
                            Tensor::F32(a) => a.iter().map(|&v| v as f64).collect(),
                            other => bail!("input `{name}` of model `{}` is {}; text feeds are int64, int32 or float32", m.name, other.elem_type()),
                        };
                        let dtype = t.elem_type().name();
                        Ok(serde_json::json!({"name": name, "dtype": dtype, "shape": t.shape(), "data": data}))
                    })
                    .collect::<Result<_>>()?;
                feeds.push(serde_json::json!({"model": m.name, "onnx": m.onnx(), "chars": chars, "batch": batch, "tokens_per_row": feed.text.map(|t| t.tokens_per_row), "inputs": tensors}));
            }
        }
    }
    std::fs::write(out, serde_json::to_vec(&feeds)?).with_context(|| format!("cannot write {}", out.display()))?;
    println!("{} feeds written to {}", feeds.len(), out.display());
    Ok(())
}
