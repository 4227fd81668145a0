//! Reading a file the user named, within bounds: only a regular file (a named pipe would block,
//! `/dev/zero` would never end), and no more than a limit that no sensible file of its kind reaches.

use std::io::Read;
use std::path::Path;

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
