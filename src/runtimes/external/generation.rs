//! Generation cells of an external program: a `generate` message with the prompt file, the
//! program's own loop (docs/runtime-protocol.md, *Generation*), and its `generated` answer checked
//! by every rule of the protocol before it is recorded as xbench's own loop records a cell.

use anyhow::{anyhow, bail, Result};
use ndarray::{Array2, Array3, Ix2, Ix3};

use super::messages::{FromProgram, Generated, Sent, ToProgram};
use super::session::{read_outputs, timed_ms, untimed_ms, within_exchange, ExternalSession};
use crate::generate::{self, Measured, Prompt, Timings};
use crate::results::write_tensors;
use crate::runtimes::decode::Generator;
use crate::runtimes::Output;
use crate::tensor::Tensor;

/// An external session asked to generate, with what xbench knows of the decoder.
pub struct Generating<'a> {
    session: &'a mut ExternalSession,
    vocab: Option<usize>,
    /// `ready`'s `generate_timer`, prefixed with the program's path.
    timer: String,
}

impl<'a> Generating<'a> {
    pub fn of(session: &'a mut ExternalSession, layout: &crate::models::DecoderLayout) -> Result<Box<dyn Generator + 'a>> {
        let Some(timer) = &session.generate_timer else {
            bail!("{} was started for a scenario without `generate:`, so it was not asked whether it generates", session.peer.program);
        };
        let timer = format!("{}: {timer}", session.peer.program);
        Ok(Box::new(Generating { vocab: layout.vocab, timer, session }))
    }
}

impl Generator for Generating<'_> {
    fn measure(&mut self, prompt: &Prompt, new_tokens: usize, warmup: usize, iterations: usize, keep_rows: usize) -> Result<Measured> {
        let s = &mut *self.session;
        let (file, outputs) = s.next_cell_files("prompt");
        let exchanged = s.exchange(
            |index| {
                let tensors = [("input_ids", prompt.ids.clone()), ("attention_mask", prompt.mask.clone()), ("position_ids", prompt.positions())];
                let tensors: Vec<Output> = tensors.into_iter().map(|(name, a)| Output { name: name.into(), data: Tensor::I64(a.into_dyn()) }).collect();
                write_tensors(&file, &tensors, Default::default())?;
                Ok(ToProgram::Generate { index, warmup, iterations, new_tokens, keep_logits: keep_rows, prompt: &file, outputs: &outputs })
            },
            &["generated", "cell_error"],
        );
        let _ = std::fs::remove_file(&file);
        let asked = Asked { prompt, new_tokens, iterations, keep_rows, vocab: self.vocab };
        let who = s.peer.program.clone();
        let result = exchanged.and_then(|(_, answer, took_ms)| match answer {
            FromProgram::Generated(g) => judge(&who, &g, &asked, &outputs, took_ms, &self.timer),
            other => Err(anyhow!("{who} sent a `{}` message where `generated` or `cell_error` was due", other.kind())),
        });
        let _ = std::fs::remove_file(&outputs);
        result
    }
}

/// What a `generate` message asked for.
struct Asked<'a> {
    prompt: &'a Prompt,
    new_tokens: usize,
    iterations: usize,
    keep_rows: usize,
    vocab: Option<usize>,
}

/// Checks a `generated` answer and its outputs file against the protocol's rules; `took_ms`: from
/// the `generate` message to the answer.
fn judge(who: &str, g: &Generated, asked: &Asked, outputs: &std::path::Path, took_ms: f64, timer: &str) -> Result<Measured> {
    let (iterations, new_tokens) = (asked.iterations, asked.new_tokens);
    let Some(Sent::Valid(sent)) = &g.prefill_ms else {
        bail!("{who} sent no `prefill_ms` list\n  fix: answer with each timed generation's prefill time in milliseconds, `\"prefill_ms\": [12.5, …]`");
    };
    if sent.len() != iterations {
        bail!("{who} sent {} prefill times where {iterations} timed generations were asked\n  fix: time exactly `iterations` generations, one prefill time each", sent.len());
    }
    let prefill_ms = sent.iter().enumerate().map(|(i, s)| timed_ms(who, s, &format!("prefill {i} of `prefill_ms`"))).collect::<Result<Vec<_>>>()?;
    let Some(Sent::Valid(sent)) = &g.step_ms else {
        bail!("{who} sent no `step_ms` list of lists\n  fix: answer with one list of step times per timed generation, `\"step_ms\": [[2.1, …], …]`");
    };
    if sent.len() != iterations {
        bail!("{who} sent {} lists of step times where {iterations} timed generations were asked\n  fix: send one list of step times per timed generation", sent.len());
    }
    let mut step_ms = Vec::with_capacity(iterations);
    for (i, steps) in sent.iter().enumerate() {
        let steps = match steps {
            Sent::Valid(steps) => steps,
            Sent::Invalid(json) => bail!("{who} sent {json} as generation {i} of `step_ms`; each must be a list of times in milliseconds"),
        };
        if steps.len() + 1 != new_tokens {
            bail!("{who} sent {} step times for generation {i} where {new_tokens} new tokens take {} steps after the prefill\n  fix: time every step after the prefill, one time each", steps.len(), new_tokens - 1);
        }
        step_ms.push(steps.iter().enumerate().map(|(k, s)| timed_ms(who, s, &format!("step {} of generation {i} in `step_ms`", k + 1))).collect::<Result<Vec<_>>>()?);
    }
    let [prepare_ms, warmup_ms] = untimed_ms(who, &g.prepare_ms, &g.warmup_ms)?;
    let cache_bytes = match &g.cache_bytes {
        Some(Sent::Valid(b)) => *b,
        Some(Sent::Invalid(json)) => bail!("{who} sent {json} as `cache_bytes`; it must be an integer of 0 or more (bytes the key/value cache holds)"),
        None => bail!("{who} sent no `cache_bytes`\n  fix: send the bytes the key/value cache holds at the end of the last generation"),
    };
    let repeatable = match &g.repeatable {
        Some(Sent::Valid(r)) => *r,
        Some(Sent::Invalid(json)) => bail!("{who} sent {json} as `repeatable`; it must be true or false"),
        None => bail!("{who} sent no `repeatable`\n  fix: send whether every generation of the cell (warm-ups included) picked the same ids"),
    };
    let timed: f64 = prefill_ms.iter().sum::<f64>() + step_ms.iter().flatten().sum::<f64>();
    within_exchange(who, timed + prepare_ms + warmup_ms, "prefill and step times", took_ms)?;
    let (ids, logits) = generated_outputs(who, outputs, asked)?;
    let t = Timings { prefill_ms, step_ms, warmup_ms, prepare_ms: Some(prepare_ms), ids, logits, cache_bytes, timer: timer.to_string(), repeatable };
    Ok(generate::record(asked.prompt, new_tokens, t))
}

/// The outputs file's `ids` `[batch, new_tokens]` (each below the vocabulary, when known) and,
/// when asked for, `logits` `[new_tokens, rows, vocab]` as f32.
fn generated_outputs(who: &str, path: &std::path::Path, asked: &Asked) -> Result<(Array2<i64>, Option<Array3<f32>>)> {
    let (got, _) = read_outputs(path).map_err(|e| anyhow!("{who} wrote no readable outputs: {e:#}"))?;
    let batch = asked.prompt.ids.nrows();
    let tensor = |name: &str| got.iter().find(|o| o.name == name).map(|o| &o.data);
    if let Some(other) = got.iter().find(|o| o.name != "ids" && o.name != "logits") {
        bail!("{who} wrote a tensor `{}`; a generation's outputs file holds `ids` and `logits`", other.name);
    }
    let ids = match tensor("ids") {
        None => bail!("{who} wrote no `ids`\n  fix: write the last timed generation's ids, I64 [batch, new_tokens], as `ids`"),
        Some(Tensor::I64(a)) => a.clone(),
        Some(Tensor::I32(a)) => a.mapv(i64::from),
        Some(t) => bail!("{who} wrote `ids` as {}; they must be I64 (or I32)", t.elem_type()),
    };
    let shape = ids.shape().to_vec();
    let ids = ids.into_dimensionality::<Ix2>().ok().filter(|a| a.dim() == (batch, asked.new_tokens));
    let Some(ids) = ids else { bail!("{who} wrote `ids` of shape {shape:?} where [{batch}, {}] (batch, new tokens) was asked", asked.new_tokens) };
    let below = asked.vocab.map_or(i64::MAX, |v| v as i64);
    if let Some(((r, k), id)) = ids.indexed_iter().find(|(_, &id)| id < 0 || id >= below) {
        let range = asked.vocab.map_or("0 or more".to_string(), |v| format!("in [0, {v}), the vocabulary"));
        bail!("{who} wrote id {id} for row {r} at new token {k}; ids must be {range}");
    }
    if asked.keep_rows == 0 {
        return Ok((ids, None));
    }
    let logits = match tensor("logits") {
        None => bail!("{who} wrote no `logits` where those of {} rows were asked\n  fix: write the last timed generation's logits of each step for the first `keep_logits` rows, [new_tokens, keep_logits, vocab]", asked.keep_rows),
        Some(Tensor::F32(a)) => a.clone(),
        Some(Tensor::F16(a)) => a.mapv(f32::from),
        Some(Tensor::BF16(a)) => a.mapv(f32::from),
        Some(t) => bail!("{who} wrote `logits` as {}; they must be F32, F16 or BF16", t.elem_type()),
    };
    let shape = logits.shape().to_vec();
    let want = format!("[{}, {}, {}]", asked.new_tokens, asked.keep_rows, asked.vocab.map_or("vocab".to_string(), |v| v.to_string()));
    let logits = logits.into_dimensionality::<Ix3>().ok().filter(|a| {
        let (n, rows, v) = a.dim();
        n == asked.new_tokens && rows == asked.keep_rows && asked.vocab.is_none_or(|want| v == want)
    });
    let Some(logits) = logits else { bail!("{who} wrote `logits` of shape {shape:?} where {want} (new tokens, rows kept, vocabulary) was asked") };
    Ok((ids, Some(logits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> Prompt {
        let ids = Array2::from_elem((2, 3), 5i64);
        Prompt { mask: Array2::ones((2, 3)), ids, tokens_per_row: vec![3, 3], from: "test".into() }
    }

    /// An outputs file holding `ids` [2, 2].
    fn outputs(dir: &std::path::Path, ids: [i64; 4]) -> std::path::PathBuf {
        let path = dir.join("out.safetensors");
        let ids = Array2::from_shape_vec((2, 2), ids.to_vec()).unwrap();
        write_tensors(&path, &[Output { name: "ids".into(), data: Tensor::I64(ids.into_dyn()) }], Default::default()).unwrap();
        path
    }

    #[test]
    fn ids_are_checked_against_the_vocabulary_when_it_is_known_and_only_for_sign_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = prompt();
        let asked = |vocab| Asked { prompt: &p, new_tokens: 2, iterations: 1, keep_rows: 0, vocab };
        let path = outputs(dir.path(), [0, 1, 258, 7]);
        let (ids, logits) = generated_outputs("prog", &path, &asked(None)).unwrap();
        assert_eq!((ids[[1, 0]], logits.is_none()), (258, true));
        assert!(generated_outputs("prog", &path, &asked(Some(259))).is_ok());
        let e = generated_outputs("prog", &path, &asked(Some(100))).unwrap_err().to_string();
        assert!(e.contains("id 258 for row 1 at new token 0") && e.contains("[0, 100)"), "{e}");
        let path = outputs(dir.path(), [0, -1, 2, 3]);
        let e = generated_outputs("prog", &path, &asked(None)).unwrap_err().to_string();
        assert!(e.contains("id -1 for row 0 at new token 1") && e.contains("0 or more"), "{e}");
    }
}
