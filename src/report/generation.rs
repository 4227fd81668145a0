//! The report of generation cells: per cell, time to first token, decode latency per token and
//! throughput, the cache, and whether the ids match the reference runtime's; and the same numbers
//! in llama-bench's form (`pp N` prompt processing, `tg M` token generation, tokens per second).

use super::data::{Merged, SeriesKind};
use super::doc::Block;
use crate::results::{CellRecord, Status};

/// The generation cells of every measured series, in record order, with their series' label.
fn cells<'m>(m: &'m Merged) -> Vec<(&'m str, &'m CellRecord)> {
    let mut out = Vec::new();
    for s in &m.series {
        if let SeriesKind::Measured { source, runtime } = &s.kind {
            for c in m.sources[*source].results.cells.iter().filter(|c| c.runtime == *runtime && c.new_tokens.is_some()) {
                out.push((s.label.as_str(), c));
            }
        }
    }
    out.sort_by_key(|(_, c)| (c.model.clone(), c.chars, c.new_tokens, c.batch));
    out
}

/// Whether the records hold generation cells.
pub fn has_generation(m: &Merged) -> bool {
    m.sources.iter().any(|s| s.results.cells.iter().any(|c| c.new_tokens.is_some()))
}

/// Whether every cell is a generation cell (the forward-pass tables and figures then have nothing to show).
pub fn only_generation(m: &Merged) -> bool {
    m.sources.iter().all(|s| s.results.cells.iter().all(|c| c.new_tokens.is_some()))
}

fn ids_text(c: &CellRecord) -> String {
    let Some(g) = &c.generation else { return "—".into() };
    match &g.agreement {
        Some(a) if a.identical => format!("same as {} ({} steps; logits ≤ {:.1e}{})", a.reference, a.steps, a.max_abs_logit_diff, if a.within { "" } else { " ✗" }),
        Some(a) => match &a.parted {
            Some(p) => format!("✗ part from {} at step {} (margin {}, diff {})", a.reference, p.step, p.reference_margin.map_or("—".into(), |m| format!("{m:.2e}")), p.logit_diff.map_or("—".into(), |d| format!("{d:.2e}"))),
            None => "✗".into(),
        },
        None if c.flags.iter().any(|f| f.kind == crate::results::FlagKind::NotCompared) => "not compared".into(),
        None => "reference".into(),
    }
}

fn point(c: &CellRecord) -> String {
    let prompt = c.generation.as_ref().map(|g| g.prompt_tokens.iter().max().copied().unwrap_or(0)).unwrap_or(c.chars);
    format!("{} / {prompt} → {} / batch {}", c.model, c.new_tokens.unwrap_or(0), c.batch)
}

/// The generation section: method, the detailed table and llama-bench's table.
pub fn generation_blocks(m: &Merged) -> Vec<Block> {
    let cells = cells(m);
    if cells.is_empty() {
        return vec![];
    }
    let mut out = vec![
        Block::Heading("Generation".into()),
        Block::Para(
            "Each cell generates its new tokens after a prompt, greedily (the largest logit each step; end-of-text does not stop it), with the decoder's key/value cache kept by the runtime between steps. Time to first token: the prompt run with an empty cache, up to the first token picked. Decode: each later step on its own (one token per row), all timed generations' steps together. Throughputs count the tokens of every row. The ids column compares the generated ids with the reference runtime's, and the logits of the steps whose inputs were the same (up to the step where ids part, if they do); a parting step shows the reference's top-2 margin there and the logits difference, so that a near-tie is told apart from a bug."
                .into(),
        ),
    ];
    let head: Vec<String> = ["model / prompt tokens → new / batch", "runtime", "time to first token (ms, mean [95% CI])", "prompt t/s", "decode ms/token (median, p90, p99)", "decode t/s", "end to end (ms)", "cache (MiB)", "ids"].iter().map(|s| s.to_string()).collect();
    let mut rows = Vec::new();
    for (series, c) in &cells {
        let mut row = vec![point(c), series.to_string()];
        match (c.status, &c.generation, &c.summary) {
            (Status::Ok, Some(g), Some(s)) => {
                row.push(format!("{:.3} [{:.3}, {:.3}]", g.prefill.mean_ms, g.prefill.mean_ci95_ms[0], g.prefill.mean_ci95_ms[1]));
                row.push(format!("{:.0}", g.prefill_tokens_per_s));
                row.push(g.decode.as_ref().map_or("—".into(), |d| format!("{:.3}, {:.3}, {:.3}", d.median_ms, d.p90_ms, d.p99_ms)));
                row.push(g.decode_tokens_per_s.map_or("—".into(), |t| format!("{t:.0}")));
                row.push(format!("{:.2}", s.mean_ms));
                row.push(format!("{:.2}", g.cache_bytes as f64 / (1 << 20) as f64));
                row.push(ids_text(c));
            }
            (status, _, _) => {
                let why = c.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("");
                row.push(format!("{status:?}: {why}").to_lowercase());
                row.extend(std::iter::repeat_n("—".to_string(), 6));
            }
        }
        rows.push(row);
    }
    out.push(Block::Table { head, rows });
    // llama-bench's table: one row per test, tokens per second.
    let mut rows = Vec::new();
    for (series, c) in cells.iter().filter(|(_, c)| c.status == Status::Ok) {
        let Some(g) = &c.generation else { continue };
        let prompt = g.prompt_tokens.iter().max().copied().unwrap_or(0);
        rows.push(vec![c.model.clone(), series.to_string(), c.batch.to_string(), format!("pp{prompt}"), format!("{:.2}", g.prefill_tokens_per_s)]);
        if let Some(t) = g.decode_tokens_per_s {
            rows.push(vec![c.model.clone(), series.to_string(), c.batch.to_string(), format!("tg{}", g.new_tokens), format!("{t:.2}")]);
        }
    }
    out.push(Block::Para("In llama-bench's form: `ppN` is the prompt of N tokens per row (tokens per second of time to first token), `tgM` the M tokens generated after it (tokens per second of the decode steps, the first token excepted), all rows counted.".into()));
    out.push(Block::Table { head: ["model", "runtime", "batch", "test", "t/s"].iter().map(|s| s.to_string()).collect(), rows });
    let timers: Vec<String> = {
        let mut t: Vec<String> = Vec::new();
        for line in cells.iter().filter_map(|(s, c)| c.generation.as_ref().map(|g| format!("{s}: {}", g.timer))) {
            if !t.contains(&line) {
                t.push(line);
            }
        }
        t
    };
    out.push(Block::Bullets(timers));
    out
}

/// Points of figs. 5 and 6: per series and (model, batch, new tokens), decode tokens per second
/// and time to first token against prompt tokens.
pub fn points(m: &Merged) -> (Vec<super::figures::LinePoint>, Vec<super::figures::LinePoint>) {
    let (mut decode, mut first) = (Vec::new(), Vec::new());
    for (series, c) in cells(m) {
        let line = format!("{} · batch {} · {} new", c.model, c.batch, c.new_tokens.unwrap_or(0));
        let g = c.generation.as_ref().filter(|_| c.status == Status::Ok);
        let x = g.map_or(c.chars, |g| g.prompt_tokens.iter().max().copied().unwrap_or(0)) as f64;
        decode.push(super::figures::LinePoint { model: line.clone(), series: series.to_string(), x, mean_ms: g.and_then(|g| g.decode_tokens_per_s), ci95_ms: None });
        first.push(super::figures::LinePoint { model: line, series: series.to_string(), x, mean_ms: g.map(|g| g.prefill.mean_ms), ci95_ms: g.map(|g| g.prefill.mean_ci95_ms) });
    }
    (decode, first)
}
