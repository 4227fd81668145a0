//! Reading a file the user named, within bounds: only a regular file (a named pipe would block,
//! `/dev/zero` would never end), and no more than a limit that no sensible file of its kind reaches.
//! Writing a file the user named, by one rule: only a new file, or one xbench made for the same
//! purpose; never through a link, never over a file of the run being measured.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Checks that xbench may write `what` (e.g. "the optimized graph") at `path`: nothing is there,
/// or a regular file that `ours` recognizes as one xbench made for this purpose. A link, a file of
/// the run being measured (`measured`: the model's files, the scenario, its text), or any other
/// file is refused, naming it and the fix; nothing is written before this says yes.
pub fn check_write(path: &Path, what: &str, ours: impl Fn(&Path) -> bool, measured: &[PathBuf]) -> anyhow::Result<()> {
    let Ok(md) = std::fs::symlink_metadata(path) else { return Ok(()) };
    let fix = "fix: give a path where nothing is yet (or remove what is there, if it is not needed)";
    if md.file_type().is_symlink() {
        anyhow::bail!("{} is a symbolic link: xbench does not write {what} through a link, which would replace the file it points to\n  {fix}", path.display());
    }
    let here = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if measured.iter().any(|m| std::fs::canonicalize(m).is_ok_and(|m| m == here)) {
        anyhow::bail!("{} is a file of the run being measured (a model's file or the scenario): writing {what} there would destroy it\n  {fix}", path.display());
    }
    if !md.is_file() {
        anyhow::bail!("{} {}: xbench writes {what} only as a new file\n  {fix}", path.display(), is_kind(&md));
    }
    if !ours(path) {
        anyhow::bail!("{} exists, and xbench did not make it as {what}: writing there would replace it\n  {fix}", path.display());
    }
    Ok(())
}

/// The bytes of the regular file at `path` (links followed), refused past `limit` bytes. The error
/// says what is wrong in words that follow the path in a message ("… is not a regular file").
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let md = std::fs::metadata(path).map_err(|e| format!("cannot be read ({e})"))?;
    if !md.is_file() {
        return Err(format!("is not a regular file (it is {})", kind(&md)));
    }
    if md.len() > limit {
        return Err(format!("is {} bytes, more than the {limit} bytes such a file may have", md.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read ({e})"))?;
    let mut bytes = Vec::with_capacity(md.len() as usize);
    // A file that grows while it is read is still cut at the limit.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot be read ({e})"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("grew past the {limit} bytes such a file may have while it was read"));
    }
    Ok(bytes)
}

/// What a file that is not a regular one is, in words.
fn kind(md: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = md.file_type();
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if md.is_dir() {
        "a folder"
    } else {
        "not a plain file"
    }
}

/// The same, as a predicate: "is a folder", "is a named pipe".
fn is_kind(md: &std::fs::Metadata) -> String {
    format!("is {}", kind(md))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a.txt");
        std::fs::write(&f, "hello").unwrap();
        assert_eq!(read_regular(&f, 5).unwrap(), b"hello");
        assert!(read_regular(&f, 4).unwrap_err().contains("5 bytes, more than the 4"));
        assert!(read_regular(tmp.path(), 10).unwrap_err().contains("a folder"));
        #[cfg(unix)]
        assert!(read_regular(Path::new("/dev/zero"), 10).unwrap_err().contains("a device"));
        assert!(read_regular(&tmp.path().join("none"), 10).unwrap_err().starts_with("cannot be read"));
    }
}
