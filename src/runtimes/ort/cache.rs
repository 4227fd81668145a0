//! ONNX Runtime's optimized graphs kept between runs (`session: {optimized_cache: DIR}`): the
//! first load of a model saves the graph ONNX Runtime optimized for this provider and its options;
//! a later load of the same file, library, provider and options reads that graph with graph
//! optimization off instead of optimizing again. What happened is recorded with the session.
//! Each graph is kept with a record of what it was made from (`NAME.onnx.source`: the digest of
//! the source model's bytes, the options, and the digest of the graph itself): a graph that does
//! not match its record (replaced by another model's, edited, or without one) is not used; the
//! model is optimized afresh and the entry replaced.

use std::path::{Path, PathBuf};

/// Where a model's optimized graph is (or will be) kept, and whether it is there already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub path: PathBuf,
    pub hit: bool,
}

/// The cache file for `onnx` under `dir`. `key` holds everything besides the file that decides the
/// optimized graph (library version, provider, its options, optimization level); the file is known
/// by its path, size and modification time, so a re-exported model is optimized afresh.
pub fn lookup(dir: &Path, onnx: &Path, key: &str) -> Cached {
    let meta = std::fs::metadata(onnx).ok();
    let modified = meta.as_ref().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let size = meta.map_or(0, |m| m.len());
    let full = std::fs::canonicalize(onnx).unwrap_or_else(|_| onnx.to_path_buf());
    let hash = fnv1a(format!("{}\n{size}\n{modified}\n{key}", full.display()).as_bytes());
    // The model's folder names it (models/NAME/model.onnx); the file stem otherwise.
    let name = onnx.parent().and_then(Path::file_name).or_else(|| onnx.file_stem()).map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let path = dir.join(format!("{name}-{hash:016x}.onnx"));
    let hit = path.is_file() && {
        let matches = std::fs::read_to_string(source_record(&path)).ok().zip(provenance(onnx, key, &path)).is_some_and(|(kept, now)| kept == now);
        if !matches {
            tracing::warn!(
                "the optimized graph {} is not the one made from {} with these options (it does not match its record {}), so it is not used: the model is optimized afresh and the entry replaced",
                path.display(),
                onnx.display(),
                source_record(&path).display()
            );
        }
        matches
    };
    Cached { hit, path }
}

/// The record of what the graph at `path` was made from (`PATH.source`).
fn source_record(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".source");
    PathBuf::from(name)
}

/// Whether `path` holds a graph xbench saved (`optimized_model`, `optimized_cache`): its record
/// is there and names the graph's digest.
pub fn is_recorded(path: &Path) -> bool {
    let Ok(record) = std::fs::read_to_string(source_record(path)) else { return false };
    crate::digest::file(path).is_ok_and(|(size, digest)| record.lines().any(|l| l == format!("graph {size} bytes, xxh64 {digest:016x}")))
}

/// What a graph was made from, as its record holds it: the source model's size and digest, the
/// options, the graph's own size and digest.
fn provenance(onnx: &Path, key: &str, graph: &Path) -> Option<String> {
    let (size, digest) = crate::digest::file(onnx).ok()?;
    let (graph_size, graph_digest) = crate::digest::file(graph).ok()?;
    Some(format!("source {size} bytes, xxh64 {digest:016x}\noptions {}\ngraph {graph_size} bytes, xxh64 {graph_digest:016x}\n", key.replace('\n', " ")))
}

/// Records what the graph just put at `path` was made from (after it is in place).
pub fn record(path: &Path, onnx: &Path, key: &str) -> anyhow::Result<()> {
    let text = provenance(onnx, key, path).ok_or_else(|| anyhow::anyhow!("cannot read {} or {} to record the optimized graph's source", onnx.display(), path.display()))?;
    crate::results::write_atomic(&source_record(path), text.as_bytes())
}

/// Where ONNX Runtime writes the graph before it is put in place (a load that fails leaves no
/// half-written graph for the next run to read).
pub fn partial(path: &Path) -> PathBuf {
    path.with_extension(format!("partial-{}", std::process::id()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_per_model_provider_and_options_and_a_changed_model_misses() {
        let dir = std::env::temp_dir().join(format!("xbench-cache-test-{}", std::process::id()));
        let model = dir.join("m").join("model.onnx");
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, b"one").unwrap();
        let a = lookup(&dir, &model, "1.31.1 CUDA {}");
        assert!(!a.hit && a.path.starts_with(&dir) && a.path.file_name().unwrap().to_string_lossy().starts_with("m-"));
        assert_eq!(lookup(&dir, &model, "1.31.1 CUDA {}"), a);
        assert_ne!(lookup(&dir, &model, "1.31.1 CPU {}").path, a.path);
        std::fs::write(&a.path, b"graph").unwrap();
        assert!(!lookup(&dir, &model, "1.31.1 CUDA {}").hit, "a graph without its record is not used");
        assert!(!is_recorded(&a.path));
        record(&a.path, &model, "1.31.1 CUDA {}").unwrap();
        assert!(lookup(&dir, &model, "1.31.1 CUDA {}").hit && is_recorded(&a.path));
        // Another model's graph put in its place (same size even) is not used.
        std::fs::write(&a.path, b"GRAPH").unwrap();
        assert!(!lookup(&dir, &model, "1.31.1 CUDA {}").hit, "a swapped entry is not used");
        std::fs::write(&a.path, b"graph").unwrap();
        assert!(lookup(&dir, &model, "1.31.1 CUDA {}").hit);
        std::fs::write(&model, b"other bytes").unwrap();
        assert!(!lookup(&dir, &model, "1.31.1 CUDA {}").hit);
        assert_ne!(partial(&a.path), a.path);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
