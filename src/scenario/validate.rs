//! `validate`: a parsed scenario file into a typed `Plan`. Pure: it reads no file, asks no
//! network and prints nothing; models, runtimes and texts are looked up when the plan is resolved.
//! Every error names the file, the key, the value and the fix.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, Result};

use super::hub_ref::HubRef;
use super::plan::{grid, ModelEntry, ModelSettings, Plan, Settings, TextSource};
use super::{ops, texts, RuntimeEntry, RuntimeId, RuntimeRequest, ScenarioFile, Precision, Tolerance, Tolerances};

/// Largest values accepted; beyond them a value is taken for a typo.
const MAX_CHARS: i64 = 100_000;
const MAX_BATCH: i64 = 4_096;
const MAX_ITERATIONS: i64 = 1_000_000;
const MAX_WARMUP: i64 = 100_000;
const MAX_THREADS: i64 = 1_024;
/// Longest list of sizes, and most cells a grid may have: far beyond any real grid, and small
/// enough that a scenario of a few lines cannot ask for gigabytes before anything runs.
const MAX_SIZES: usize = 1_000;
pub const MAX_CELLS: usize = 100_000;
/// How long a cell may take when the scenario does not say.
pub const DEFAULT_CELL_TIMEOUT_S: f64 = 600.0;

/// What the command line changes in a scenario.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Runtimes chosen on the command line (`--runtimes`), replacing the file's list.
    pub runtimes: Option<Vec<String>>,
}

/// Validates `file`, read from `origin` in the folder `scenario_dir`, into a plan.
pub fn validate(file: &ScenarioFile, origin: &str, scenario_dir: &Path, overrides: &Overrides) -> Result<Plan> {
    let err = |key: &str, msg: String| anyhow!("{origin}: `{key}` {msg}");
    if file.name.trim().is_empty() {
        return Err(err("name", "is empty\n  fix: give the scenario a short name, e.g. `name: quick`".into()));
    }
    // The name is printed in the terminal and heads report.md: a line break there would let it write lines of its own.
    if let Some(c) = file.name.chars().find(|c| c.is_control()) {
        return Err(err("name", format!("= {:?} holds a control character ({:?}, such as a line break), which would print as lines or codes of its own in the terminal and report.md\n  fix: write the name on one line, in plain characters", file.name, c)));
    }
    // Operation cases (`ops:`) replace models, input lengths and batch sizes: one cell each per runtime.
    let op_cases = match &file.ops {
        None => None,
        Some(value) => {
            for (key, given) in [
                ("models", !file.models.is_empty()),
                ("input_chars", !file.input_chars.is_empty()),
                ("batch_sizes", !file.batch_sizes.is_empty()),
                ("text", file.text.is_some()),
                ("text_file", file.text_file.is_some()),
                ("dims", !file.dims.is_empty()),
            ] {
                if given {
                    return Err(anyhow!("{origin}: `{key}` is given together with `ops`; an operation scenario takes its shapes from `ops` alone\n  fix: remove `{key}`, or put model runs in a scenario of their own"));
                }
            }
            Some(ops::cases_of(value).map_err(|(key, msg)| err(&key, msg))?)
        }
    };
    let generate = match &file.generate {
        None => None,
        Some(g) => {
            for (key, given) in [("ops", file.ops.is_some()), ("input_chars", !file.input_chars.is_empty())] {
                if given {
                    return Err(anyhow!("{origin}: `{key}` is given together with `generate`; a generation scenario takes its prompt lengths from `generate` alone\n  fix: remove `{key}`, or measure forward passes in a scenario of their own"));
                }
            }
            if file.batch_sizes.is_empty() {
                return Err(err("batch_sizes", "is empty, but `generate` needs the batch sizes to generate at\n  fix: e.g. `batch_sizes: [1, 4]`".into()));
            }
            Some(super::generate::validate(g, sizes).map_err(|(k, m)| err(&k, m))?)
        }
    };
    let (input_chars, batch_sizes) = match (&op_cases, &generate) {
        (_, Some(g)) => (g.prompts.clone(), sizes(&file.batch_sizes, "batch_sizes", 1, MAX_BATCH, "[1, 4, 16]").map_err(|(k, m)| err(&k, m))?),
        (Some(_), None) => (vec![0], vec![1]),
        // Both empty: every model must bring its own test data (checked when models are found).
        (None, None) if file.input_chars.is_empty() && file.batch_sizes.is_empty() => (Vec::new(), Vec::new()),
        (None, None) => (
            sizes(&file.input_chars, "input_chars", 1, MAX_CHARS, "[50, 100, 200, 500]").map_err(|(k, m)| err(&k, m))?,
            sizes(&file.batch_sizes, "batch_sizes", 1, MAX_BATCH, "[1, 16, 32]").map_err(|(k, m)| err(&k, m))?,
        ),
    };
    let iterations = one_size(file.iterations, 1, MAX_ITERATIONS, "`iterations: 10`").map_err(|m| err("iterations", m))?;
    let warmup = one_size(file.warmup, 0, MAX_WARMUP, "`warmup: 3`").map_err(|m| err("warmup", m))?;
    let threads = match file.threads {
        None => None,
        Some(t) => Some(one_size(t, 1, MAX_THREADS, "`threads: 4`").map_err(|m| err("threads", m))?),
    };

    let (entries, runtimes_key) = match &overrides.runtimes {
        // `--runtimes` picks among the file's own entries by name, else names registered runtimes.
        Some(list) => {
            let pick = |n: &String| file.runtimes.iter().find(|e| matches!(e, RuntimeEntry::Table(_)) && e.name() == Some(n.trim())).cloned().unwrap_or_else(|| RuntimeEntry::Name(n.clone()));
            (list.iter().map(pick).collect::<Vec<_>>(), "--runtimes")
        }
        None => (file.runtimes.clone(), "runtimes"),
    };
    if entries.is_empty() {
        return Err(err(runtimes_key, "is empty\n  fix: list at least one runtime; `xbench runtimes` shows them".into()));
    }
    let mut runtimes: Vec<RuntimeRequest> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("{runtimes_key}[{i}]");
        let request = entry.request(scenario_dir).map_err(|(sub, m)| err(&format!("{key}{sub}"), m))?;
        if runtimes.iter().any(|r| r.id == request.id) {
            return Err(err(&key, format!("lists `{}` twice\n  fix: list each runtime once (a runtime of your own needs a name of its own)", request.id)));
        }
        runtimes.push(request);
    }
    let ids: Vec<RuntimeId> = runtimes.iter().map(|r| r.id).collect();

    if file.models.is_empty() && op_cases.is_none() {
        return Err(err("models", "is empty\n  fix: list at least one model; `xbench models` shows those found (or list operation cases under `ops:`)".into()));
    }
    let mut models: Vec<ModelEntry> = op_cases.unwrap_or_default().into_iter().map(ModelEntry::Op).collect();
    let mut own = BTreeMap::new();
    for (i, item) in file.models.iter().enumerate() {
        let written = item.name();
        let at = |msg: String| anyhow!("{origin}: `models[{i}]` = `{written}`: {msg}");
        let entry = match HubRef::from_entry(written) {
            Some(hub) => ModelEntry::Hub(hub.map_err(|e| at(format!("{e:#}")))?),
            None => ModelEntry::Local(local_entry(written).map_err(at)?),
        };
        let name = entry.name();
        // `m`, `./m`, `m/` and `m/.` are one model: it is listed once, never run twice.
        if let Some(k) = models.iter().position(|m| m.name() == name) {
            // Operation cases never come with `models:`, so `models` holds the entries in order.
            let first = file.models.get(k).map_or_else(|| name.clone(), |m| m.name().to_string());
            let what = match (&models[k], &entry) {
                (ModelEntry::Local(_), ModelEntry::Local(_)) if first == *written => format!("lists `{written}` twice"),
                (ModelEntry::Local(_), ModelEntry::Local(_)) => format!("= `{written}` is model `{name}` again, already listed as `{first}`"),
                _ => format!("lists `{written}`, whose folder `{name}` is already listed"),
            };
            return Err(err(&format!("models[{i}]"), format!("{what}\n  fix: list each model once")));
        }
        if let super::ModelItem::Table(t) = item {
            let dims = parse_dims(&t.dims).map_err(|(k, m)| err(&format!("models[{i}].dims{k}"), m))?;
            let inputs = super::inputs::parse_inputs(&t.inputs, scenario_dir).map_err(|(k, m)| err(&format!("models[{i}].inputs{k}"), m))?;
            if !dims.is_empty() || !inputs.is_empty() {
                own.insert(name, ModelSettings { dims, inputs });
            }
        }
        models.push(entry);
    }

    let reference = match &file.reference {
        // The most trusted runtime present: ONNX Runtime on the CPU, else the first listed.
        None => if ids.contains(&RuntimeId::ORT_CPU) { RuntimeId::ORT_CPU } else { ids[0] },
        Some(name) => {
            let id = RuntimeId::new(name.trim());
            if !ids.contains(&id) {
                return Err(err(
                    "reference",
                    format!("= `{name}` is not among the runtimes run\n  fix: name one of: {}", ids.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")),
                ));
            }
            id
        }
    };
    let mut tolerances = Tolerances::default();
    if let Some(t) = &file.tolerance {
        for class in Precision::ALL {
            if let Some(g) = t.of(class) {
                if !(g.abs.is_finite() && g.abs >= 0.0 && g.rel.is_finite() && g.rel >= 0.0) {
                    return Err(err(&format!("tolerance.{class}"), format!("= {{abs: {}, rel: {}}} must be finite and not negative\n  fix: e.g. `{{abs: 1e-4, rel: 1e-3}}`", g.abs, g.rel)));
                }
                *tolerances.slot(class) = Tolerance { abs: g.abs, rel: g.rel };
            }
        }
    }
    let min_time_s = match file.min_time_s {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => Some(t),
        Some(t) => return Err(err("min_time_s", format!("is {t}: it must be more than 0 and at most 3600 seconds\n  fix: e.g. `min_time_s: 1.0`"))),
    };
    let cell_timeout_s = match file.cell_timeout_s {
        None => DEFAULT_CELL_TIMEOUT_S,
        Some(t) if t.is_finite() && t > 0.0 && t <= 86_400.0 => t,
        Some(t) => return Err(err("cell_timeout_s", format!("is {t}: it must be more than 0 and at most 86400 seconds\n  fix: e.g. `cell_timeout_s: 600`"))),
    };
    let memory_budget_gib = match file.memory_budget_gib {
        None => None,
        Some(g) if g.is_finite() && g > 0.0 && g <= 1e6 => Some(g),
        Some(g) if g.is_finite() && g > 1e6 => return Err(err("memory_budget_gib", format!("is {g}: more than 1000000 GiB, which no machine has (it would switch the memory check off)\n  fix: give the memory the cells may use, in GiB, e.g. `memory_budget_gib: 16`, or leave it out for half the machine's memory"))),
        Some(g) => return Err(err("memory_budget_gib", format!("is {g}: it must be more than 0 GiB\n  fix: e.g. `memory_budget_gib: 16`, or leave it out for the machine's memory"))),
    };
    let ci_warn_share = match file.ci_warn_share {
        None => 0.10,
        Some(s) if s.is_finite() && s > 0.0 => s,
        Some(s) => return Err(err("ci_warn_share", format!("is {s}: it must be a positive share of the mean\n  fix: e.g. `ci_warn_share: 0.1` (10%)"))),
    };
    let dims = parse_dims(&file.dims).map_err(|(k, m)| err(&format!("dims{k}"), m))?;
    let inputs = super::inputs::parse_inputs(&file.inputs, scenario_dir).map_err(|(k, m)| err(&format!("inputs{k}"), m))?;
    let text = match (&file.text, &file.text_file) {
        (Some(_), Some(_)) => return Err(err("text_file", "is given together with `text`\n  fix: keep one of the two".into())),
        (_, Some(path)) => TextSource::File(scenario_dir.join(path)),
        (Some(name), None) => {
            if texts::builtin(name).is_none() {
                return Err(err("text", format!("= `{name}` is not a built-in text\n  fix: use one of: {}, or `text_file: path/to/prose.txt`", texts::names().join(", "))));
            }
            TextSource::Builtin(name.clone())
        }
        (None, None) => TextSource::Builtin(texts::BUILTIN_TEXTS[0].0.to_string()),
    };

    let new_counts = generate.as_ref().map_or(1, |g| g.new_tokens.len());
    let cells = [models.len(), ids.len(), input_chars.len().max(1), new_counts, batch_sizes.len().max(1)].iter().try_fold(1usize, |a, &n| a.checked_mul(n));
    if cells.is_none_or(|n| n > MAX_CELLS) {
        let new = if generate.is_some() { format!(" × {new_counts} new token counts") } else { String::new() };
        return Err(anyhow!(
            "{origin}: {} models × {} runtimes × {} input lengths{new} × {} batch sizes make more than {MAX_CELLS} cells\n  fix: measure fewer sizes, or split the grid into several scenarios",
            models.len(),
            ids.len(),
            input_chars.len(),
            batch_sizes.len()
        ));
    }
    let test_data = file.test_data.unwrap_or(true) && generate.is_none();
    let mut plan = Plan {
        name: file.name.clone(),
        origin: origin.to_string(),
        scenario_dir: scenario_dir.to_path_buf(),
        models,
        runtimes,
        runtimes_key,
        input_chars,
        batch_sizes,
        settings: Settings { iterations, warmup, text, threads, reference, tolerances, min_time_s, cell_timeout_s, memory_budget_gib, ci_warn_share, dims, inputs, own, test_data, generate },
        groups: Vec::new(),
        cells: Vec::new(),
    };
    let points = plan.grid_points();
    (plan.groups, plan.cells) = grid(&plan.models, &ids, &vec![points; plan.models.len()]);
    Ok(plan)
}

/// Parses a `dims:` table (the scenario's, or a model's own); an error carries the key below
/// `dims` (`.x.3`) and the message with its fix.
fn parse_dims(table: &BTreeMap<String, i64>) -> std::result::Result<BTreeMap<String, usize>, (String, String)> {
    let mut dims = BTreeMap::new();
    for (name, &v) in table {
        let key = format!(".{name}");
        // `input.axis` names one dim of one input; the axis must be a whole number.
        if let Some((input, axis)) = name.rsplit_once('.') {
            if input.is_empty() || axis.parse::<usize>().is_err() {
                return Err((key, "is neither a dim's name nor `input.axis`\n  fix: e.g. `dims: {height: 224}` or `dims: {pixel_values.2: 224}`".into()));
            }
        }
        dims.insert(name.clone(), one_size(v, 0, 1 << 24, &format!("`dims: {{{name}: 224}}`")).map_err(|m| (key, m))?);
    }
    Ok(dims)
}

/// A local model entry, normalised (`./m`, `m/`, `m/.` are all `m`); paths that leave the models
/// root are refused.
fn local_entry(written: &str) -> std::result::Result<String, String> {
    let path = Path::new(written.trim());
    let mut parts = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err("the model path leaves the models root (it is absolute or climbs out with `..`)\n  fix: put the model under the models folder (--models-dir) and name it by its folder there".into())
            }
        }
    }
    let normal = parts.to_string_lossy().into_owned();
    if normal.is_empty() {
        return Err("names no model\n  fix: name a model folder under the models folder; `xbench models` lists them".into());
    }
    Ok(normal)
}

fn one_size(v: i64, min: i64, max: i64, example: &str) -> std::result::Result<usize, String> {
    if v < min {
        let what = if v < 0 { "negative" } else if v == 0 { "zero" } else { "too small" };
        return Err(format!("is {v}: {what}; it must be at least {min}\n  fix: e.g. {example}"));
    }
    if v > max {
        return Err(format!("is {v}: larger than the limit of {max}\n  fix: e.g. {example}"));
    }
    Ok(v as usize)
}

/// Validates a list of sizes; an error carries the key (with the index) and the message.
fn sizes(list: &[i64], key: &str, min: i64, max: i64, example: &str) -> std::result::Result<Vec<usize>, (String, String)> {
    if list.is_empty() {
        return Err((key.into(), format!("is empty\n  fix: list at least one value, e.g. `{key}: {example}`")));
    }
    if list.len() > MAX_SIZES {
        return Err((key.into(), format!("lists {} values, more than the {MAX_SIZES} a grid may have\n  fix: list the sizes that matter, e.g. `{key}: {example}`", list.len())));
    }
    let mut out = Vec::new();
    for (i, &v) in list.iter().enumerate() {
        let s = one_size(v, min, max, &format!("`{key}: {example}`")).map_err(|m| (format!("{key}[{i}]"), m))?;
        if out.contains(&s) {
            return Err((format!("{key}[{i}]"), format!("lists {v} twice\n  fix: list each value once")));
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::local_entry;
    use crate::scenario::{validate, Overrides, ScenarioFile, Values};

    fn validated(models: &str) -> anyhow::Result<crate::scenario::Plan> {
        let yaml = format!("name: x\nruntimes: [ort-cpu]\ninput_chars: [4]\nbatch_sizes: [1]\niterations: 1\ndims: {{x.3: 192}}\nmodels: {models}\n");
        validate(&ScenarioFile::parse(&yaml, "s.yaml")?, "s.yaml", "sc".as_ref(), &Overrides::default())
    }

    #[test]
    fn a_models_own_settings_are_kept_apart_from_the_scenarios() {
        let p = validated("[cls, {name: ./rec/, dims: {x.3: 320, height: 48}, inputs: {x: {uniform: [0, 1]}, h: {file: h.npy}}}, {name: plain}]").unwrap();
        assert_eq!(p.settings.dims, [("x.3".to_string(), 192)].into(), "the scenario-wide value stays the scenario's");
        let own = &p.settings.own["rec"];
        assert_eq!(own.dims, [("height".to_string(), 48), ("x.3".to_string(), 320)].into());
        assert_eq!(own.inputs["x"].values, Some(Values::Uniform(0.0, 1.0)));
        assert_eq!(own.inputs["h"].values, Some(Values::File("sc/h.npy".into())), "paths are the scenario's, like its `inputs:`");
        assert!(!p.settings.own.contains_key("cls") && !p.settings.own.contains_key("plain"), "a name alone, or a table of a name alone, has no settings of its own");
        assert_eq!(p.settings.own_of("cls"), Default::default());
        for (models, key, says) in [
            ("[{name: rec, dims: {x.3: -1}}]", "`models[0].dims.x.3`", "is -1: negative"),
            ("[{name: rec, dims: {x.y: 3}}]", "`models[0].dims.x.y`", "neither a dim's name nor `input.axis`"),
            ("[a, {name: rec, inputs: {x: {uniform: [1, 0]}}}]", "`models[1].inputs.x.uniform`", "not a range"),
            ("[rec, {name: rec, dims: {x.3: 1}}]", "`models[1]`", "twice"),
        ] {
            let e = validated(models).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(says) && e.contains("\n  fix: "), "{models}: {e}");
        }
    }

    #[test]
    fn local_entries_are_normalised_and_kept_inside_the_root() {
        for (written, want) in [("tiny-bert", "tiny-bert"), ("./tiny-bert", "tiny-bert"), ("tiny-bert/.", "tiny-bert"), ("tiny-bert/", "tiny-bert"), ("a/./b", "a/b")] {
            assert_eq!(local_entry(written).unwrap(), want, "{written}");
        }
        for bad in ["../x", "/etc", "a/../../b", ".", ""] {
            assert!(local_entry(bad).is_err(), "{bad}");
        }
    }
}
