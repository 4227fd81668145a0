//! The timed loop: warm-up runs, then timed iterations of `Session::run`. Returns raw samples
//! and the last outputs; prints nothing.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::inputs::Feed;
use crate::runtimes::{Output, Session};

/// How long to measure one cell.
#[derive(Debug, Clone, Copy)]
pub struct MeasureSpec {
    pub warmup: usize,
    /// Timed iterations at least.
    pub iterations: usize,
    /// Keep measuring until the timed iterations add up to this many seconds.
    pub min_time_s: Option<f64>,
}

/// Most iterations a minimum measuring time may add.
pub const MAX_ITERATIONS: usize = 1_000_000;

/// Raw measurements of one cell.
#[derive(Debug, Clone)]
pub struct Samples {
    /// Wall time of each timed iteration, in milliseconds.
    pub latency_ms: Vec<f64>,
    /// Outputs of the last timed iteration (for agreement checks).
    pub outputs: Vec<Output>,
    /// Time of the untimed per-cell preparation (shape concretization, optimization).
    pub prepare_ms: f64,
    /// Time of the untimed warm-up runs, all together.
    pub warmup_ms: f64,
    /// Smallest difference the clock reported between two readings, in milliseconds.
    pub timer_resolution_ms: f64,
    /// Energy counter difference over the timed iterations (millijoules), when a reader was given.
    pub energy_mj: Option<u64>,
}

/// Runs `spec.warmup` untimed and `spec.iterations` timed inferences of `feed`.
/// `energy` reads a cumulative energy counter (millijoules); it is read just before and after the
/// timed iterations, outside the timer.
pub fn measure(session: &mut dyn Session, feed: &Feed, spec: MeasureSpec, energy: Option<&dyn Fn() -> Option<u64>>) -> Result<Samples> {
    // A runtime with its own timed loop: its samples, and no energy (warm-ups would be in it).
    if let Some(timed) = session.times_itself(feed, spec.warmup, spec.iterations, spec.min_time_s) {
        let t = timed?;
        return Ok(Samples { latency_ms: t.latency_ms, outputs: t.outputs, prepare_ms: t.prepare_ms, warmup_ms: t.warmup_ms, timer_resolution_ms: timer_resolution_ms(), energy_mj: None });
    }
    let t = Instant::now();
    session.prepare(feed)?;
    let prepare_ms = ms(t.elapsed());
    let t = Instant::now();
    for _ in 0..spec.warmup {
        session.run(feed)?;
    }
    let warmup_ms = ms(t.elapsed());
    let mut latency_ms = Vec::with_capacity(spec.iterations);
    let min_total_ms = spec.min_time_s.unwrap_or(0.0) * 1e3;
    let mut total_ms = 0.0;
    let energy_before = energy.and_then(|e| e());
    while latency_ms.len() < spec.iterations || (total_ms < min_total_ms && latency_ms.len() < MAX_ITERATIONS) {
        let start = Instant::now();
        session.run(feed)?;
        let t = ms(start.elapsed());
        total_ms += t;
        latency_ms.push(t);
    }
    let energy_mj = match (energy_before, energy.and_then(|e| e())) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let outputs = session.outputs(feed)?;
    Ok(Samples { latency_ms, outputs, prepare_ms, warmup_ms, timer_resolution_ms: timer_resolution_ms(), energy_mj })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The smallest non-zero step between consecutive clock readings, in milliseconds.
pub fn timer_resolution_ms() -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..50 {
        let a = Instant::now();
        let mut b = Instant::now();
        while b == a {
            b = Instant::now();
        }
        best = best.min(ms(b - a));
    }
    best
}
