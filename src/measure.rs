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

/// Shortest timed window that gets an energy figure. A GPU's energy counter moves in coarse steps
/// (on an H200, 22–24 of 48 windows of 22–254 ms saw it not move at all, and the others implied up
/// to 1.7 kW on a 700 W card), so a short window gives 0 or a whole step, not the energy of its
/// runs. The counter is not read at all when the warm-ups show the window will be shorter.
pub const ENERGY_MIN_WINDOW_MS: f64 = 1000.0;

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
/// timed iterations, outside the timer, when they last at least [`ENERGY_MIN_WINDOW_MS`].
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
    // The window the timed runs will take, as the warm-ups predict it (unknown without warm-ups).
    let expected_ms = if spec.warmup > 0 { warmup_ms / spec.warmup as f64 * spec.iterations as f64 } else { f64::INFINITY };
    let energy = energy.filter(|_| expected_ms.max(min_total_ms) >= ENERGY_MIN_WINDOW_MS);
    let energy_before = energy.and_then(|e| e());
    while latency_ms.len() < spec.iterations || (total_ms < min_total_ms && latency_ms.len() < MAX_ITERATIONS) {
        let start = Instant::now();
        session.run(feed)?;
        let t = ms(start.elapsed());
        total_ms += t;
        latency_ms.push(t);
    }
    let energy_mj = match (energy_before, energy.and_then(|e| e())) {
        (Some(a), Some(b)) if total_ms >= ENERGY_MIN_WINDOW_MS => Some(b.saturating_sub(a)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SessionInfo;
    use std::cell::Cell;

    /// A session whose every run sleeps `run_ms`.
    struct Sleeps {
        run_ms: u64,
    }

    impl Session for Sleeps {
        fn run(&mut self, _feed: &Feed) -> Result<()> {
            std::thread::sleep(Duration::from_millis(self.run_ms));
            Ok(())
        }
        fn outputs(&mut self, _feed: &Feed) -> Result<Vec<Output>> {
            Ok(vec![])
        }
        fn info(&self) -> SessionInfo {
            SessionInfo::default()
        }
    }

    fn feed() -> Feed {
        Feed { batch: 1, seq_len: 1, tensors: vec![], mask: vec![1], text: None, fed: vec![] }
    }

    /// Measures with an energy counter that adds 7 mJ at each reading; returns the energy and the readings.
    fn energy_of(run_ms: u64, spec: MeasureSpec) -> (Option<u64>, usize) {
        let reads = Cell::new(0usize);
        let counter = || {
            reads.set(reads.get() + 1);
            Some(7 * reads.get() as u64)
        };
        let s = measure(&mut Sleeps { run_ms }, &feed(), spec, Some(&counter)).unwrap();
        (s.energy_mj, reads.get())
    }

    #[test]
    fn a_timed_window_shorter_than_the_counter_can_resolve_gets_no_energy_and_no_reading() {
        let (energy, reads) = energy_of(2, MeasureSpec { warmup: 2, iterations: 5, min_time_s: None });
        assert_eq!((energy, reads), (None, 0), "5 runs of 2 ms: the warm-ups foretell a 10 ms window");
    }

    #[test]
    fn a_long_enough_window_gets_the_counters_difference() {
        let (energy, reads) = energy_of(2, MeasureSpec { warmup: 1, iterations: 3, min_time_s: Some(1.05) });
        assert_eq!((energy, reads), (Some(7), 2), "read before and after the timed runs");
        // Without warm-ups the window is not foretold: the counter is read, and the figure dropped.
        let (energy, reads) = energy_of(2, MeasureSpec { warmup: 0, iterations: 3, min_time_s: None });
        assert_eq!((energy, reads), (None, 2));
    }
}
