//! Prose → distinct passages of exactly N characters.

use anyhow::{bail, Context, Result};

use crate::scenario::TextSource;

/// Largest text file read: many times any input a scenario can ask for.
const MAX_TEXT_BYTES: u64 = 64 << 20;

/// The whole text of a source, checked to be usable prose.
pub fn load_text(source: &TextSource) -> Result<String> {
    match source {
        TextSource::Builtin(name) => crate::scenario::texts::builtin(name).map(str::to_string).with_context(|| format!("no built-in text `{name}`")),
        TextSource::File(path) => {
            let bytes = crate::files::read_regular(path, MAX_TEXT_BYTES)
                .map_err(|why| anyhow::anyhow!("text file {} {why}\n  fix: give a regular UTF-8 file of prose (at most {} MiB)", path.display(), MAX_TEXT_BYTES >> 20))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                anyhow::anyhow!(
                    "text file {} is not UTF-8 (invalid byte at offset {})\n  fix: convert it to UTF-8, e.g. `iconv -t UTF-8`",
                    path.display(),
                    e.utf8_error().valid_up_to()
                )
            })?;
            if text.trim().is_empty() {
                bail!("text file {} is empty\n  fix: give a file of prose, at least as long as the longest input", path.display());
            }
            Ok(text)
        }
    }
}

/// `count` distinct passages of exactly `chars` characters (Unicode scalar values) from `text`.
///
/// Whitespace runs become single spaces. Passage k starts at the first word boundary at or after
/// character k·chars, so passages do not overlap while the text lasts; past that, starts move
/// on one word at a time. Every passage ends on a non-space character.
pub fn passages(text: &str, chars: usize, count: usize) -> Result<Vec<String>> {
    Prose::new(text).passages(chars, count)
}

/// A text with its whitespace runs made single spaces and its word starts found, once, for the
/// passages of every cell.
pub struct Prose {
    norm: Vec<char>,
    word_starts: Vec<usize>,
}

impl Prose {
    pub fn new(text: &str) -> Prose {
        let mut norm: Vec<char> = text.split_whitespace().flat_map(|w| w.chars().chain(std::iter::once(' '))).collect();
        norm.pop();
        let word_starts = (0..norm.len()).filter(|&i| norm[i] != ' ' && (i == 0 || norm[i - 1] == ' ')).collect();
        Prose { norm, word_starts }
    }

    /// As [`passages`].
    pub fn passages(&self, chars: usize, count: usize) -> Result<Vec<String>> {
        let (norm, word_starts) = (&self.norm[..], &self.word_starts[..]);
        if chars == 0 {
            bail!("an input length of 0 characters gives no text\n  fix: ask for at least 1 character");
        }
        if norm.len() < chars {
            bail!(
                "the text has {} characters, fewer than the {chars} asked for\n  fix: use a longer text or a shorter input length",
                norm.len()
            );
        }
        let fits = |s: usize| s + chars <= norm.len() && norm[s + chars - 1] != ' ';
        let mut out = Vec::with_capacity(count);
        let mut used: std::collections::HashSet<&[char]> = std::collections::HashSet::new();
        let mut next_word = 0usize;
        for k in 0..count {
            // Non-overlapping start if the text still has room, else the next unused word start.
            let target = k * chars;
            let from = word_starts.partition_point(|&s| s < target).max(next_word);
            let start = word_starts[from.min(word_starts.len())..]
                .iter()
                .position(|&s| fits(s) && !used.contains(&norm[s..s + chars]))
                .map(|p| from + p)
                .or_else(|| word_starts.iter().position(|&s| fits(s) && !used.contains(&norm[s..s + chars])));
            let Some(wi) = start else {
                bail!(
                    "the text yields only {} distinct passages of {chars} characters, fewer than the {count} asked for\n  fix: use a longer text, a smaller batch or a shorter input length",
                    out.len()
                );
            };
            let s = word_starts[wi];
            used.insert(&norm[s..s + chars]);
            next_word = wi + 1;
            out.push(norm[s..s + chars].iter().collect());
        }
        Ok(out)
    }
}
