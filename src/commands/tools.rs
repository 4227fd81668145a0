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
    let _claim = xbench::run::outdir::claim_report(&dir, files)?;
    let loaded = files.iter().map(|f| Ok((f.clone(), xbench::results::read_results(f)?))).collect::<Result<Vec<_>>>()?;
    let (mut results, merged) = gather(loaded, &dir)?;
    // The record's warnings and verdicts, judged again by this xbench (outputs are compared only
    // during a run, or here for the cells of merged shards that other shards' cells are compared with).
    for (k, r) in results.iter_mut().enumerate() {
        if merged.as_ref().map(|m| m.at) != Some(k) {
            xbench::analysis::analyze(r, None);
        }
    }
    let opts = ReportOptions { names, paper };
    let written = xbench::report::write_all(&results, &opts, &dir).with_context(|| {
        let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        format!("cannot draw the report of {}", list.join(", "))
    })?;
    if let Some(m) = &merged {
        let r = &results[m.at];
        let set = r.shards.as_ref().expect("a merged set lists its shards");
        let json = if results.len() == 1 { dir.join("results.json") } else { dir.join("results-merged.json") };
        xbench::results::write_json(&json, r)?;
        xbench::results::write_csv(&json.with_extension("csv"), r)?;
        let mut hosts: Vec<&str> = set.parts.iter().map(|p| p.machine.name.as_str()).collect();
        hosts.dedup();
        println!("merged:  {} shards of scenario `{}` (plan {}), run on {}: one result set of {} cells", set.count, r.scenario.name, set.plan_id, hosts.join(", "), r.cells.len());
        println!("results: {} and {}", json.display(), json.with_extension("csv").display());
    }
    println!("report:  {}", written.markdown.display());
    println!("page:    {}", written.html.display());
    println!("figures: {} files in {}", written.figures.len(), dir.display());
    Ok(())
}

/// Where the merged shards stand among the report's results.
struct MergedShards {
    at: usize,
}

/// The results of a report: each file as it is, except that the shards of one plan become one
/// result set (in the place of the first of them), compared across shards and judged again. A
/// lone shard file is reported as it is, as its run did.
fn gather(loaded: Vec<(PathBuf, xbench::results::RunResults)>, dir: &Path) -> Result<(Vec<xbench::results::RunResults>, Option<MergedShards>)> {
    use xbench::shard::merge;
    let lone = loaded.len() == 1 && loaded[0].1.shard.as_ref().is_some_and(|s| s.count > 1);
    let Some(first) = loaded.iter().position(|(_, r)| r.shard.is_some()).filter(|_| !lone) else {
        return Ok((loaded.into_iter().map(|(_, r)| r).collect(), None));
    };
    let (shards, others): (Vec<_>, Vec<_>) = loaded.into_iter().enumerate().partition(|(_, (_, r))| r.shard.is_some());
    let shards: Vec<(PathBuf, xbench::results::RunResults)> = shards.into_iter().map(|(_, f)| f).collect();
    let written = if others.is_empty() { "results.json" } else { "results-merged.json" };
    let target = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).join(written);
    if let Some((p, _)) = shards.iter().find(|(p, _)| std::fs::canonicalize(p).is_ok_and(|p| p == target)) {
        bail!("--out {} holds {}, which the merged results would replace\n  fix: choose another folder for the merged report with --out", dir.display(), p.display());
    }
    let mut merged = merge::merge(&shards)?;
    let scratch = tempfile::Builder::new().prefix("xbench-shard-outputs-").tempdir().context("cannot make a scratch folder for the shards' outputs")?;
    let missing = merge::gather_outputs(&shards, scratch.path())?;
    merge::flag_missing(&mut merged, &missing);
    xbench::analysis::analyze(&mut merged, Some(scratch.path()));
    let mut results: Vec<(usize, xbench::results::RunResults)> = others.into_iter().map(|(k, (_, r))| (k, r)).collect();
    results.push((first, merged));
    results.sort_by_key(|(k, _)| *k);
    let at = results.iter().position(|(k, _)| *k == first).expect("the merged set is there");
    Ok((results.into_iter().map(|(_, r)| r).collect(), Some(MergedShards { at })))
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
        cmp.gate(pct, &a.display().to_string(), &b.display().to_string()).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// Whether `path` holds feeds as `xbench feeds` writes them: a JSON list of objects, each with a
/// model, a length, a batch size and inputs.
fn is_feeds_file(path: &Path) -> bool {
    let Ok(bytes) = xbench::files::read_regular(path, 4 << 30) else { return false };
    serde_json::from_slice::<Vec<serde_json::Map<String, serde_json::Value>>>(&bytes).is_ok_and(|list| list.iter().all(|f| ["model", "chars", "batch", "inputs"].iter().all(|k| f.contains_key(*k))))
}

pub fn write_feeds(file: &Path, out: &Path, models_dir: &Path) -> Result<()> {
    use xbench::inputs::{self, Feed};
    use xbench::tensor::Scalar;
    let (_, plan) = super::scenario::resolve_file(file, models_dir)?;
    if plan.plan.settings.generate.is_some() {
        anyhow::bail!(
            "{}: a generation scenario's cells make their prompts as they run, step by step, so there are no fixed input tensors to write\n  fix: run it with `xbench scenario`; each cell's results.json entry records its prompt (`generation.prompt`, `prompt_tokens`) and the ids generated",
            file.display()
        );
    }
    // Never over the scenario, its text or a model's file; over an earlier feeds file only.
    let mut measured = vec![file.to_path_buf()];
    if let xbench::scenario::TextSource::File(p) = &plan.plan.settings.text {
        measured.push(p.clone());
    }
    for m in &plan.models {
        measured.extend(m.onnx().and_then(Path::parent).and_then(|d| std::fs::read_dir(d).ok()).into_iter().flatten().flatten().map(|e| e.path()));
    }
    xbench::files::check_write(out, "feeds", is_feeds_file, &measured)?;
    let text = inputs::load_text(&plan.plan.settings.text)?;
    let mut feeds = Vec::new();
    // Every model's cells, once (those of the first runtime: every runtime is fed the same).
    let first = plan.plan.runtimes[0].id;
    for g in plan.plan.groups.iter().filter(|g| g.runtime == first) {
        let m = &plan.models[g.model];
        let io = m.io().map_err(|why| anyhow::anyhow!("model `{}` cannot be read: {why}", m.name))?;
        let mut tok = m.tokenizer().map(inputs::load_tokenizer).transpose()?;
        let dims = &plan.dims_of(g.model);
        for cell in plan.plan.group_cells(g) {
            let feed = match (cell.data_set, tok.as_mut()) {
                (Some(n), _) => Feed::from_test_data(&m.name, &m.test_data()[n], &io.inputs)?,
                (None, tok) => {
                    let fills = m.inputs().map_err(|why| anyhow::anyhow!("{why}"))?;
                    match tok {
                        Some(tok) => {
                            let job = xbench::run::job::JobModel::of(m).expect("a model with inputs is ready");
                            let texts = inputs::passages(&text, cell.chars, cell.batch)?;
                            Feed::from_texts(tok, &texts, fills, job.position_offset, job.max_positions, dims)?
                        }
                        None => Feed::generated(fills, cell.batch, cell.chars, dims)?,
                    }
                }
            };
            let source = |name: &str| feed.fed.iter().find(|f| f.name == name).map_or("tokenizer".to_string(), |f| f.source.clone());
            let tensors: Vec<serde_json::Value> = feed
                .tensors
                .iter()
                .map(|(name, t)| {
                    let data: Vec<serde_json::Value> = t
                        .scalars()
                        .into_iter()
                        .map(|v| match v {
                            Scalar::Float(x) => serde_json::json!(x),
                            Scalar::Int(i) => i64::try_from(i).map_or_else(|_| serde_json::json!(i as u64), |i| serde_json::json!(i)),
                            Scalar::Bool(b) => serde_json::json!(b),
                            Scalar::Str(s) => serde_json::json!(s),
                        })
                        .collect();
                    serde_json::json!({"name": name, "dtype": t.elem_type().name(), "shape": t.shape(), "source": source(name), "data": data})
                })
                .collect();
            let tokens = feed.text.as_ref().map(|t| t.tokens_per_row.clone());
            feeds.push(serde_json::json!({"model": m.name, "onnx": m.onnx(), "chars": cell.chars, "batch": cell.batch, "data_set": cell.data_set, "tokens_per_row": tokens, "inputs": tensors}));
        }
    }
    xbench::results::write_atomic(out, &serde_json::to_vec(&feeds)?).with_context(|| format!("cannot write {}", out.display()))?;
    println!("{} feeds written to {}", feeds.len(), out.display());
    Ok(())
}
