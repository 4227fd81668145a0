//! Models under the models root: a folder holding an `.onnx` file (with its tokenizer.json and
//! an optional model.yaml), or a loose `.onnx` file. Paths that leave the root are refused.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::inside::{is_plain_relative, real_inside};
use super::{ModelMeta, ModelSpec};
use crate::scenario::model_name;

/// Finds a scenario's model entry: a folder or `.onnx` file under `root`.
/// Paths that leave the models root are refused.
pub fn find(entry: &str, root: &Path) -> Result<ModelSpec> {
    let rel = Path::new(entry);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_))) {
        bail!(
            "the model path leaves the models root {}\n  fix: put the model under {} and name it by its folder",
            root.display(),
            root.display()
        );
    }
    if !root.is_dir() {
        bail!(
            "the models folder {} does not exist (looked from {})\n  fix: run xbench in the folder that holds models/, or name the folder with --models-dir",
            root.display(),
            std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "?".into())
        );
    }
    let path = root.join(rel);
    if !path.exists() {
        let known = discover(root).into_iter().filter_map(|m| m.ok()).map(|m| m.name).collect::<Vec<_>>();
        bail!(
            "no model `{entry}` under {} (looked for {})\n  fix: use one of [{}], or put a folder with an ONNX file and its tokenizer.json at {}",
            root.display(),
            path.display(),
            known.join(", "),
            path.display()
        );
    }
    check_inside(&path, root)?;
    let name = model_name(entry);
    if path.is_dir() {
        from_dir(&name, &path, root)
    } else {
        if path.extension().and_then(|e| e.to_str()) != Some("onnx") {
            bail!("{} is not an .onnx file\n  fix: name a model folder or an .onnx file", path.display());
        }
        Ok(ModelSpec { name, onnx: path, tokenizer: None, meta: ModelMeta::default(), inputs: Default::default(), test_data: Vec::new(), dir: None })
    }
}

/// Refuses paths whose real location (symlinks followed) lies outside the models root.
fn check_inside(path: &Path, root: &Path) -> Result<()> {
    let real_root = root
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("cannot open the models root {}: {e}\n  fix: name an existing folder with --models-dir", root.display()))?;
    let real = path
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}\n  fix: replace it with a folder or an .onnx file (a link that leads nowhere is not a model)", path.display()))?;
    if !real.starts_with(&real_root) {
        bail!(
            "{} points outside the models root {} (to {})\n  fix: copy the model into the models root instead of linking to it",
            path.display(),
            root.display(),
            real.display()
        );
    }
    Ok(())
}

/// A file of model `name`'s folder `dir` (named in its model.yaml as `key`, or found there),
/// refused when it really lies outside the folder.
fn check_own(name: &str, key: &str, path: &Path, dir: &Path) -> Result<()> {
    real_inside(path, dir).map(|_| ()).map_err(|why| {
        anyhow::anyhow!(
            "model `{name}`: {key} {} {why}; the files of a model stay inside its folder\n  fix: copy the file into {} instead of linking to it",
            path.display(),
            dir.display()
        )
    })
}

/// A path model.yaml gives under `key`: a plain path inside the model's folder.
fn own_path(name: &str, meta_path: &Path, key: &str, value: &str, dir: &Path) -> Result<PathBuf> {
    if !is_plain_relative(value) {
        bail!(
            "model `{name}`: {}: `{key}: {value}` is not a path inside the model's folder\n  fix: put the file in {} and name it relative to that folder (no `..`, no absolute path)",
            meta_path.display(),
            dir.display()
        );
    }
    Ok(dir.join(value))
}

fn from_dir(name: &str, dir: &Path, root: &Path) -> Result<ModelSpec> {
    let meta_path = dir.join("model.yaml");
    if meta_path.symlink_metadata().is_ok() {
        check_own(name, "model.yaml", &meta_path, dir)?;
    }
    let meta: ModelMeta = if meta_path.is_file() {
        let text = std::fs::read_to_string(&meta_path).with_context(|| format!("cannot read {}", meta_path.display()))?;
        // A byte-order mark some editors write is not part of the YAML.
        serde_yaml::from_str(text.strip_prefix('\u{feff}').unwrap_or(&text)).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}\n  fix: the keys a model.yaml takes are hub_id, revision, architecture, onnx, tokenizer, max_positions, position_offset, weights, description, compare_with, inputs, decoder",
                meta_path.display()
            )
        })?
    } else {
        ModelMeta::default()
    };
    if meta.max_positions == Some(0) {
        bail!(
            "model `{name}`: {}: `max_positions: 0` leaves no room for a single token\n  fix: give the longest input the model takes, special tokens included (e.g. `max_positions: 512`), or remove the key to take it from the graph's position table",
            meta_path.display()
        );
    }
    if let Some(sibling) = &meta.compare_with {
        check_sibling(name, sibling, root, &meta_path)?;
    }
    let onnx = match &meta.onnx {
        Some(file) => own_path(name, &meta_path, "onnx", file, dir)?,
        None => {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("onnx"))
                .collect();
            found.sort();
            match found.len() {
                1 => found.remove(0),
                0 => bail!(
                    "model `{name}`: no .onnx file in {}\n  fix: export the model into that folder (scripts/export_models.py) or drop an .onnx file there",
                    dir.display()
                ),
                _ => bail!(
                    "model `{name}`: {} has several .onnx files ({})\n  fix: name the one to use with `onnx: FILE` in {}/model.yaml",
                    dir.display(),
                    found.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>().join(", "),
                    dir.display()
                ),
            }
        }
    };
    if !onnx.is_file() {
        bail!(
            "model `{name}`: ONNX file {} is missing\n  fix: export it (see models/README.md) or correct `onnx:` in model.yaml",
            onnx.display()
        );
    }
    check_inside(&onnx, root)?;
    check_own(name, "ONNX file", &onnx, dir)?;
    let tokenizer = match &meta.tokenizer {
        Some(file) => {
            let p = own_path(name, &meta_path, "tokenizer", file, dir)?;
            if p.symlink_metadata().is_ok() {
                check_own(name, "tokenizer", &p, dir)?;
            }
            if !p.is_file() {
                bail!("model `{name}`: tokenizer {} is missing\n  fix: copy the model's tokenizer.json there or correct `tokenizer:` in model.yaml", p.display());
            }
            Some(p)
        }
        None => {
            let p = dir.join("tokenizer.json");
            if p.symlink_metadata().is_ok() {
                check_own(name, "tokenizer", &p, dir)?;
            }
            Some(p).filter(|p| p.is_file())
        }
    };
    let inputs = crate::scenario::inputs::parse_inputs(&meta.inputs, dir).map_err(|(key, m)| anyhow::anyhow!("model `{name}`: {}: `inputs{key}` {m}", meta_path.display()))?;
    // Value files named in model.yaml stay inside the model's folder.
    for (input, spec) in &inputs {
        if let Some(crate::scenario::Values::File(p)) = &spec.values {
            let leaves = p.strip_prefix(dir).map_or(true, |rel| rel.components().any(|c| !matches!(c, Component::Normal(_))));
            let linked_out = p.symlink_metadata().is_ok() && real_inside(p, dir).is_err();
            if leaves || linked_out {
                bail!(
                    "model `{name}`: {}: `inputs.{input}.file` = {} lies outside the model's folder\n  fix: put the file in {} and name it relative to that folder",
                    meta_path.display(),
                    p.display(),
                    dir.display()
                );
            }
            if p.exists() && !p.is_file() {
                bail!("model `{name}`: {}: `inputs.{input}.file` = {} is not a regular file\n  fix: write the values into a .npy or .pb file there", meta_path.display(), p.display());
            }
        }
    }
    let test_data = super::test_data::discover(dir);
    super::test_data::check_inside(&test_data, dir).map_err(|e| anyhow::anyhow!("model `{name}`: {e}"))?;
    Ok(ModelSpec { name: name.to_string(), onnx, tokenizer, meta, inputs, test_data, dir: Some(dir.to_path_buf()) })
}

/// A `compare_with` must name another model under the models root, as a scenario would.
fn check_sibling(name: &str, sibling: &str, root: &Path, meta_path: &Path) -> Result<()> {
    let rel = Path::new(sibling);
    let fix = |what: String| {
        let known: Vec<String> = entry_names(root).iter().map(|e| model_name(e)).filter(|n| n != name).collect();
        anyhow::anyhow!(
            "model `{name}`: {}: `compare_with: {sibling}` {what}\n  fix: name the model this one was made from by its folder under {} (one of [{}]), or remove `compare_with`",
            meta_path.display(),
            root.display(),
            known.join(", ")
        )
    };
    if sibling.trim().is_empty() || rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(fix("is not a model name".into()));
    }
    if model_name(sibling) == name {
        return Err(fix("names the model itself".into()));
    }
    if !entry_names(root).iter().any(|e| model_name(e) == model_name(sibling)) {
        return Err(fix(format!("names no model under {}", root.display())));
    }
    Ok(())
}

/// Names of the entries under `root` that look like models: folders holding an ONNX file or a
/// model.yaml, and loose `.onnx` files.
fn entry_names(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            if p.is_dir() {
                let has_onnx = std::fs::read_dir(&p)
                    .map(|rd| rd.filter_map(|e| e.ok()).any(|e| e.path().extension().and_then(|x| x.to_str()) == Some("onnx")))
                    .unwrap_or(false);
                (has_onnx || p.join("model.yaml").is_file()).then_some(name)
            } else {
                (p.extension().and_then(|x| x.to_str()) == Some("onnx")).then_some(name)
            }
        })
        .collect();
    names.sort();
    names
}

/// Every model under `root`, sorted by name: folders holding an ONNX file, and loose `.onnx` files.
/// Entries that fail to resolve are returned as errors so that a listing can show why.
pub fn discover(root: &Path) -> Vec<Result<ModelSpec>> {
    entry_names(root).iter().map(|n| find(n, root).with_context(|| format!("model `{n}`"))).collect()
}
