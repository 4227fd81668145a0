//! A generation cell's prompt: token ids of the scenario's text through the model's tokenizer
//! (cut to a number of tokens, or a number of characters tokenized and padded on the left), or
//! seeded ids for a model without a tokenizer; with its attention mask and position ids.

use anyhow::{bail, Result};
use ndarray::Array2;
use tokenizers::Tokenizer;

use crate::inputs::Prose;
use crate::scenario::PromptUnit;

/// Token ids `[batch, length]`, padded on the left where rows differ in length.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub ids: Array2<i64>,
    /// 1: a real token, 0: padding.
    pub mask: Array2<i64>,
    /// Real tokens per row.
    pub tokens_per_row: Vec<usize>,
    /// Where the ids came from, in words.
    pub from: String,
}

impl Prompt {
    /// Position ids of the prompt: each real token's place among its row's real tokens; padding
    /// gets 1, as Hugging Face's generation does.
    pub fn positions(&self) -> Array2<i64> {
        let mut pos = Array2::<i64>::ones(self.mask.raw_dim());
        for (r, row) in self.mask.rows().into_iter().enumerate() {
            let mut n = 0;
            for (c, &m) in row.iter().enumerate() {
                if m != 0 {
                    pos[[r, c]] = n;
                    n += 1;
                }
            }
        }
        pos
    }
}

/// Rows of the text's passages, `length` tokens each (`Tokens`) or `length` characters each
/// tokenized (`Chars`, padded on the left with `pad`).
pub fn from_text(prose: &Prose, tokenizer: &Tokenizer, unit: PromptUnit, length: usize, batch: usize, text_name: &str, pad: i64) -> Result<Prompt> {
    let encode = |s: &str| -> Result<Vec<i64>> {
        let e = tokenizer.encode(s, true).map_err(|e| anyhow::anyhow!("the tokenizer failed on the text: {e}"))?;
        Ok(e.get_ids().iter().map(|&i| i as i64).collect())
    };
    let rows: Vec<Vec<i64>> = match unit {
        PromptUnit::Chars => prose.passages(length, batch)?.iter().map(|p| encode(p)).collect::<Result<_>>()?,
        PromptUnit::Tokens => {
            // Passages long enough to give `length` tokens: a token is at least one character of
            // the text for the tokenizers xbench meets, so `length` characters may give fewer
            // tokens than asked only through special tokens; longer passages are tried then.
            let mut chars = length.max(8);
            loop {
                let rows: Vec<Vec<i64>> = prose.passages(chars, batch)?.iter().map(|p| encode(p)).collect::<Result<_>>()?;
                if rows.iter().all(|r| r.len() >= length) {
                    break rows.into_iter().map(|mut r| {
                        r.truncate(length);
                        r
                    }).collect();
                }
                chars = chars.checked_mul(2).filter(|&c| c <= 16 * length + 64).ok_or_else(|| anyhow::anyhow!("the text's passages give fewer than {length} tokens\n  fix: use a longer text (`text_file:`) or shorter prompts"))?;
            }
        }
    };
    let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
    if longest == 0 {
        bail!("the prompt has no tokens");
    }
    let mut ids = Array2::from_elem((batch, longest), pad);
    let mut mask = Array2::zeros((batch, longest));
    for (r, row) in rows.iter().enumerate() {
        let start = longest - row.len();
        for (c, &t) in row.iter().enumerate() {
            ids[[r, start + c]] = t;
            mask[[r, start + c]] = 1;
        }
    }
    let from = match unit {
        PromptUnit::Tokens => format!("{text_name} through tokenizer.json, cut to {length} tokens"),
        PromptUnit::Chars => format!("{text_name} passages of {length} characters through tokenizer.json, padded on the left"),
    };
    Ok(Prompt { tokens_per_row: rows.iter().map(Vec::len).collect(), ids, mask, from })
}

/// Seeded ids below `vocab` (a model without a tokenizer): the same for every runtime.
pub fn seeded(length: usize, batch: usize, vocab: usize, seed: u64) -> Prompt {
    let mut rng = crate::stats::Rng::new(seed);
    let ids = Array2::from_shape_fn((batch, length), |_| rng.below(vocab as u64) as i64);
    Prompt { ids, mask: Array2::ones((batch, length)), tokens_per_row: vec![length; batch], from: format!("seeded ids below {vocab} (seed {seed}; the model has no tokenizer.json)") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_real_tokens_and_padding_gets_one() {
        let p = Prompt { ids: Array2::zeros((2, 4)), mask: ndarray::arr2(&[[1, 1, 1, 1], [0, 0, 1, 1]]), tokens_per_row: vec![4, 2], from: String::new() };
        assert_eq!(p.positions(), ndarray::arr2(&[[0, 1, 2, 3], [1, 1, 0, 1]]));
    }

    #[test]
    fn seeded_ids_are_the_same_for_a_seed_and_below_the_vocabulary() {
        let (a, b) = (seeded(16, 2, 50, 7), seeded(16, 2, 50, 7));
        assert_eq!(a.ids, b.ids);
        assert!(a.ids.iter().all(|&i| (0..50).contains(&i)));
        assert_ne!(seeded(16, 2, 50, 8).ids, a.ids);
    }
}
