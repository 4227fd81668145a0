//! The scenario file exactly as written: serde types that reject unknown keys.

use serde::{Deserialize, Serialize};

/// One scenario file. Sizes are read as signed integers so that a negative or zero value gets an
/// error naming its key instead of a bare type error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// A short name for the run; used in report titles and folder names.
    pub name: String,
    /// Model names (folders under the models root), paths to `.onnx` files, or Hub repositories
    /// (`hf:owner/name` or `hf:owner/name@revision`, fetched into the models root on first use);
    /// each may be a table with settings of the model's own (see `ModelItem`).
    #[serde(default)]
    pub models: Vec<super::ModelItem>,
    /// Runtimes: registered names (`tract-cpu`, `ort-cpu`, …) or tables naming a runtime of the
    /// user's own (see `RuntimeEntry`).
    pub runtimes: Vec<super::RuntimeEntry>,
    /// Input lengths in characters (the paper's 50/100/200/500).
    #[serde(default)]
    pub input_chars: Vec<i64>,
    /// Batch sizes (the paper's 1/16/32).
    #[serde(default)]
    pub batch_sizes: Vec<i64>,
    /// Timed iterations per cell.
    pub iterations: i64,
    /// Untimed warm-up runs per cell before the timed ones.
    #[serde(default = "default_warmup")]
    pub warmup: i64,
    /// Built-in prose to cut inputs from (`botchan`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A UTF-8 text file to cut inputs from instead, relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_file: Option<String>,
    /// Intra-op threads for runtimes that take a thread count (default: the cores available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<i64>,
    /// Runtime whose outputs the others are compared with (default: `ort-cpu` when it runs, else the
    /// first listed). A model's own expected outputs (its test data) are compared with every runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Agreement tolerances per precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<TolerancesFile>,
    /// Measure each cell for at least this many seconds (more iterations than `iterations` if needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_time_s: Option<f64>,
    /// Longest a cell may take, in seconds, before it is failed (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_timeout_s: Option<f64>,
    /// Memory a cell may need at least (text, inputs, declared outputs), in GiB, before it is
    /// refused (default: half the machine's memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget_gib: Option<f64>,
    /// Values of dims for models that do not take text, by symbol (`{height: 224}`) or by input
    /// and axis (`{pixel_values.2: 224}`), for every model that has them (a model's own `dims:`
    /// wins).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dims: std::collections::BTreeMap<String, i64>,
    /// What inputs are fed, by input name, for every model that has them (see `scenario::inputs`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inputs: std::collections::BTreeMap<String, serde_yaml::Value>,
    /// Whether a model folder's own test data (`test_data_set_N/`) is run, with its expected
    /// outputs as the reference (default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_data: Option<bool>,
    /// Warn when a cell's 95% interval of the mean is wider than this share of the mean (default 0.10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_warn_share: Option<f64>,
    /// Operation cases instead of models (`ops: paper`, or a list; see `crate::ops`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<serde_yaml::Value>,
    /// Generation instead of one forward pass: prompt lengths and tokens generated (see
    /// `scenario::generate`); the cells run decoders with their key/value cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<super::GenerateFile>,
}

/// `tolerance:` in a scenario: `|a − r| ≤ abs + rel·|r|` per precision class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TolerancesFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp32: Option<ToleranceFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tf32: Option<ToleranceFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp16: Option<ToleranceFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bf16: Option<ToleranceFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8: Option<ToleranceFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int4: Option<ToleranceFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp8: Option<ToleranceFile>,
}

impl TolerancesFile {
    /// What the scenario sets for `precision`, when it does.
    pub fn of(&self, precision: super::Precision) -> Option<&ToleranceFile> {
        use super::Precision::*;
        match precision {
            Fp32 => self.fp32.as_ref(),
            Tf32 => self.tf32.as_ref(),
            Fp16 => self.fp16.as_ref(),
            Bf16 => self.bf16.as_ref(),
            Int8 => self.int8.as_ref(),
            Int4 => self.int4.as_ref(),
            Fp8 => self.fp8.as_ref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToleranceFile {
    pub abs: f64,
    pub rel: f64,
}

/// Largest scenario file read: every real scenario is a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Deepest nesting of brackets or `- ` items accepted. The YAML parser gets slow (minutes) on
/// hundreds of thousands of nested brackets before its own recursion limit applies.
const MAX_DEPTH: usize = 64;

/// The first line where flow brackets (`[`, `{`) or block items (`- - -`) nest deeper than
/// `MAX_DEPTH`, with that depth. Quoted text and comments do not count.
fn too_deep(yaml: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    for (n, line) in yaml.lines().enumerate() {
        let dashes = line.trim_start().split_inclusive(' ').take_while(|t| t.trim_end() == "-").count();
        if dashes > MAX_DEPTH {
            return Some((n + 1, dashes));
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '#') if prev.is_whitespace() => break,
                (None, '"' | '\'') if matches!(prev, ' ' | '[' | '{' | ',' | ':') => quote = Some(c),
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some((n + 1, depth));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
    }
    None
}

fn default_warmup() -> i64 {
    3
}

impl ScenarioFile {
    /// Parses YAML text; `origin` names the file in error messages.
    pub fn parse(yaml: &str, origin: &str) -> anyhow::Result<ScenarioFile> {
        // A byte-order mark some editors write is not part of the YAML.
        let yaml = yaml.strip_prefix('\u{feff}').unwrap_or(yaml);
        if yaml.len() as u64 > MAX_FILE_BYTES {
            anyhow::bail!("{origin}: {} bytes, more than a scenario may have ({MAX_FILE_BYTES})\n  fix: a scenario is a few kilobytes of keys and lists; split a larger one", yaml.len());
        }
        if let Some((line, depth)) = too_deep(yaml) {
            anyhow::bail!("{origin}: line {line} nests {depth} levels deep, more than a scenario needs ({MAX_DEPTH})\n  fix: write the values out flat; a scenario's deepest value (a runtime's options) is three levels down");
        }
        if yaml.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            anyhow::bail!("{origin}: the scenario file is empty\n  fix: write at least `name`, `models`, `runtimes`, `input_chars`, `batch_sizes` and `iterations` (see scenarios/quick.yaml)");
        }
        serde_yaml::from_str(yaml).map_err(|e| {
            let msg = e.to_string();
            let hint = if msg.starts_with("models[") {
                "a model is a name (`tiny-bert`) or a table of settings of its own, with the keys name, dims, inputs, e.g. `{name: ocr-rec, dims: {x.3: 320}}`"
            } else if msg.contains("unknown field") {
                "remove or rename that key; the keys a scenario takes are: name, models, runtimes, input_chars, batch_sizes, iterations, warmup, text, text_file, threads, reference, tolerance (fp32, tf32, fp16, bf16, int8, int4, fp8: abs, rel), min_time_s, cell_timeout_s, memory_budget_gib, ci_warn_share, dims, inputs, test_data, ops, generate (prompt_tokens or prompt_chars, new_tokens, seed)"
            } else if msg.contains("missing field") {
                "add that key (see scenarios/quick.yaml for a complete example)"
            } else if msg.contains("expected struct ScenarioFile") {
                "a scenario is a mapping of keys to values, one `key: value` per line (see scenarios/quick.yaml)"
            } else if msg.contains("untagged enum RuntimeEntry") {
                "a runtime is a name (`ort-cpu`) or a table such as `{name: ov-fp32, runtime: ort-openvino, options: {precision: FP32}}`"
            } else if msg.contains("invalid type") {
                "give the key a value of the type named (lists are written `[a, b]`, sizes as whole numbers)"
            } else if msg.contains("recursion limit") || msg.contains("repetition limit") {
                "the file nests or repeats aliases too deeply to be a scenario; write the values out"
            } else {
                "fix the YAML syntax at the position given"
            };
            anyhow::anyhow!("{origin}: {msg}\n  fix: {hint}")
        })
    }
}

impl ScenarioFile {
    /// Reads and parses the scenario file at `path`.
    pub fn read(path: &std::path::Path) -> anyhow::Result<ScenarioFile> {
        let origin = path.display().to_string();
        let bytes = crate::files::read_regular(path, MAX_FILE_BYTES).map_err(|why| {
            anyhow::anyhow!("scenario file {origin} {why}\n  fix: name a scenario file (YAML text of a few kilobytes); `xbench scenario` with no file runs the built-in quick scenario")
        })?;
        let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{origin}: not UTF-8 text\n  fix: save the scenario as UTF-8"))?;
        ScenarioFile::parse(&text, &origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_before_parsing() {
        let deep = format!("name: x\nruntimes: {}{}\n", "[".repeat(200_000), "]".repeat(200_000));
        let clock = std::time::Instant::now();
        let e = ScenarioFile::parse(&deep, "deep.yaml").unwrap_err().to_string();
        assert!(e.contains("deep.yaml: line 2 nests 65 levels") && e.contains("fix:"), "{e}");
        assert!(clock.elapsed().as_secs() < 5);
        let dashes = format!("name: x\nruntimes:\n{}ort-cpu\n", "- ".repeat(100));
        assert!(ScenarioFile::parse(&dashes, "d.yaml").unwrap_err().to_string().contains("line 3 nests 100 levels"));
        // Brackets in quotes and comments are text, and a real scenario's options pass.
        let ok = "name: '[[[['\nruntimes: [ort-cpu, {name: a, runtime: ort-cpu, options: {x: \"{{{{\"}}]  # [[[[\niterations: 1\n";
        assert_eq!(too_deep(&ok.replace("[[[[", &"[".repeat(100))), None);
        assert!(ScenarioFile::parse(ok, "ok.yaml").is_ok());
    }

    #[test]
    fn a_model_is_a_name_or_a_table_of_its_own_settings() {
        let f = ScenarioFile::parse("name: x\nruntimes: [ort-cpu]\niterations: 1\nmodels:\n  - cls\n  - {name: rec, dims: {x.3: 320}, inputs: {x: {uniform: [0, 1]}, sr: 16000}}\n", "s.yaml").unwrap();
        assert_eq!(f.models[0], super::super::ModelItem::Name("cls".into()));
        assert_eq!((f.models[1].name(), f.models[1].dims()), ("rec", [("x.3".to_string(), 320)].into()));
        assert_eq!(f.models[1].inputs().keys().collect::<Vec<_>>(), ["sr", "x"]);
        assert!(f.models[0].dims().is_empty() && f.models[0].inputs().is_empty());
        // Written back as read: a plain name stays a name, a table a table (results.json, resume).
        let again: ScenarioFile = serde_yaml::from_str(&serde_yaml::to_string(&f).unwrap()).unwrap();
        assert_eq!(again, f);
        for (yaml, says) in [
            ("[{name: rec, dim: {x.3: 320}}]", "models[0]: unknown field `dim`, expected one of `name`, `dims`, `inputs`"),
            ("[a, {dims: {x.3: 320}}]", "models[1]: missing field `name`"),
            ("[{name: rec, dims: [1]}]", "invalid type"),
            ("[[rec]]", "models[0]: invalid type: sequence"),
            ("[a, 7]", "models[1]: invalid type: integer `7`, expected a model entry"),
        ] {
            let e = ScenarioFile::parse(&format!("name: x\nruntimes: [ort-cpu]\niterations: 1\nmodels: {yaml}\n"), "s.yaml").unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("fix: a model is a name (`tiny-bert`) or a table") && e.contains("name, dims, inputs"), "{yaml}: {e}");
        }
    }
}
