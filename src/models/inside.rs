//! The files that come with a model stay inside it: a path written in a model's own files
//! (model.yaml, an ONNX graph's external data entries, a Hub snapshot) is a plain relative path,
//! and every file is checked where it really is, symlinks followed, against where its folder
//! really is. A link that leads out of the folder is refused before the file is read.

use std::path::{Component, Path, PathBuf};

/// Whether `value` is a plain relative path: at least one name, and no root, drive or `..`.
pub(crate) fn is_plain_relative(value: &str) -> bool {
    let p = Path::new(value);
    !value.contains('\\')
        && p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && p.components().any(|c| matches!(c, Component::Normal(_)))
}

/// Where `path` really is (symlinks followed), when that lies inside where `dir` really is.
/// Otherwise what is wrong, worded to follow the path in a message ("… leads outside …").
pub(crate) fn real_inside(path: &Path, dir: &Path) -> Result<PathBuf, String> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let real_dir = dir.canonicalize().map_err(|e| format!("cannot be checked: its folder {} cannot be opened ({e})", dir.display()))?;
    let real = path.canonicalize().map_err(|e| format!("cannot be resolved ({e})"))?;
    if real.starts_with(&real_dir) {
        Ok(real)
    } else {
        Err(format!("leads outside {} (to {})", dir.display(), real.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_only() {
        for ok in ["tokenizer.json", "./model.onnx", "onnx/model.onnx", "a/./b"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/../../x", "/etc/shadow", "a\\..\\b", "./.."] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_before_the_check() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, outside) = (tmp.path().join("model"), tmp.path().join("secret.txt"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(&outside, "s").unwrap();
        std::fs::write(dir.join("own.txt"), "o").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("out.txt")).unwrap();
        std::os::unix::fs::symlink("own.txt", dir.join("alias.txt")).unwrap();
        assert_eq!(real_inside(&dir.join("alias.txt"), &dir).unwrap(), dir.join("own.txt").canonicalize().unwrap());
        let e = real_inside(&dir.join("out.txt"), &dir).unwrap_err();
        assert!(e.starts_with("leads outside") && e.contains("secret.txt"), "{e}");
        assert!(real_inside(&dir.join("none.txt"), &dir).unwrap_err().starts_with("cannot be resolved"));
        // A folder reached through a link is checked where it really is.
        std::os::unix::fs::symlink(&dir, tmp.path().join("linked")).unwrap();
        assert!(real_inside(&tmp.path().join("linked/own.txt"), &dir).is_ok());
    }
}
