//! Line framing of a child's standard output: lines up to [`MAX_LINE`] bytes, read by a thread of
//! their own so that a silent child can be timed out.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;

/// The longest line a child may send: a `result` of 1,000,000 samples (or a worker's record of
/// one) fits in well under this.
pub const MAX_LINE: usize = 64 << 20;

/// How a child's lines are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Every line must be UTF-8 text: one that is not is garbage, and ends the reading.
    Strict,
    /// Text in any encoding (a native library's prints): bytes that are not UTF-8 are replaced.
    Lossy,
}

/// A line the child wrote (without its line end), or why it is not a line of text.
pub type Line = std::result::Result<String, String>;

/// Passes on the child's output line by line (without the `\n` or `\r\n`). A line longer than
/// [`MAX_LINE`], or (strictly framed) one that is not UTF-8, is passed on as the reason it is
/// garbage as soon as it is seen, and nothing more is read; `None` when the output ends.
pub fn read_lines(stdout: impl Read, framing: Framing, tx: mpsc::Sender<Option<Line>>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut buf = Vec::new();
        match (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let ended = buf.last() == Some(&b'\n');
        if !ended && buf.len() > MAX_LINE {
            let _ = tx.send(Some(Err(format!("a line longer than {} MiB", MAX_LINE >> 20))));
            return;
        }
        if ended {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = match framing {
            Framing::Lossy => Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
            Framing::Strict => String::from_utf8(buf).map_err(|e| {
                let bytes = e.as_bytes();
                let at = e.utf8_error().valid_up_to();
                format!("not UTF-8 text: byte {at} is 0x{:02x}: `{}`", bytes[at], clip(&String::from_utf8_lossy(bytes)))
            }),
        };
        let garbage = line.is_err();
        if tx.send(Some(line)).is_err() || garbage {
            return;
        }
    }
    let _ = tx.send(None);
}

/// The first 120 characters of `s`, with `…` when there were more.
pub fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(120).collect();
    if s.chars().count() > 120 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8], framing: Framing) -> Vec<Option<Line>> {
        let (tx, rx) = mpsc::channel();
        read_lines(bytes, framing, tx);
        rx.into_iter().collect()
    }

    #[test]
    fn lines_end_at_newlines_and_bytes_that_are_not_text_end_a_strict_reading() {
        assert_eq!(lines(b"a\r\nb\nc", Framing::Strict), vec![Some(Ok("a".into())), Some(Ok("b".into())), Some(Ok("c".into())), None]);
        let strict = lines(b"ok\n\xffx\nnever\n", Framing::Strict);
        assert_eq!(strict.len(), 2, "{strict:?}");
        assert!(strict[1].as_ref().unwrap().as_ref().unwrap_err().starts_with("not UTF-8 text: byte 0 is 0xff"), "{strict:?}");
        assert_eq!(lines(b"\xffx\nnext\n", Framing::Lossy), vec![Some(Ok("\u{fffd}x".into())), Some(Ok("next".into())), None]);
    }
}
