//! ONNX Runtime's optimized graphs kept between runs (`session: {optimized_cache: DIR}`): the
//! first load of a model saves the graph ONNX Runtime optimized for this provider and its options;
//! a later load of the same file, library, provider and options reads that graph with graph
//! optimization off instead of optimizing again. What happened is recorded with the session.

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
    Cached { hit: path.is_file(), path }
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
        assert!(lookup(&dir, &model, "1.31.1 CUDA {}").hit);
        std::fs::write(&model, b"other bytes").unwrap();
        assert!(!lookup(&dir, &model, "1.31.1 CUDA {}").hit);
        assert_ne!(partial(&a.path), a.path);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
