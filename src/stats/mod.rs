//! Statistics of latency samples: pure functions, no I/O, nothing else of the project.

mod rng;

use serde::{Deserialize, Serialize};

pub use rng::Rng;

/// Summary of one cell's samples (milliseconds unless named otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    /// Arithmetic mean: the paper's statistic.
    pub mean_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Sample standard deviation (n − 1).
    pub std_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// 95% bootstrap confidence interval of the mean.
    pub mean_ci95_ms: [f64; 2],
    /// 95% bootstrap confidence interval of the median.
    pub median_ci95_ms: [f64; 2],
    /// Samples outside Tukey's fences (1.5 IQR beyond the quartiles); kept in every statistic.
    pub outliers: usize,
    /// Items (sequences, images, rows of the batch) per second at the mean latency.
    #[serde(alias = "sequences_per_s")]
    pub items_per_s: f64,
    /// Real (non-padding) tokens per second at the mean latency; none for a model that took no tokens.
    #[serde(default)]
    pub tokens_per_s: Option<f64>,
}

impl Summary {
    /// Whether every statistic is a finite number (what results.json can hold: JSON has no
    /// infinity or NaN).
    pub fn is_finite(&self) -> bool {
        let all = [self.mean_ms, self.median_ms, self.p90_ms, self.p99_ms, self.std_ms, self.min_ms, self.max_ms, self.items_per_s];
        all.iter().chain(&self.mean_ci95_ms).chain(&self.median_ci95_ms).chain(&self.tokens_per_s).all(|x| x.is_finite())
    }
}

/// Percentile by linear interpolation between closest ranks (`q` in 0..=1) of sorted data.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Arithmetic mean. A sum that would overflow is taken of the samples divided by their count
/// instead, so that the mean of finite samples is finite.
pub fn mean(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let sum = xs.iter().sum::<f64>();
    if sum.is_finite() {
        sum / n
    } else {
        xs.iter().map(|x| x / n).sum()
    }
}

/// Sample standard deviation; 0 for fewer than two samples. The deviations are scaled by the
/// largest before they are squared, so that it stays finite for finite samples.
pub fn std_dev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let scale = xs.iter().map(|x| (x - m).abs()).fold(0.0, f64::max);
    if scale == 0.0 || !scale.is_finite() {
        return scale;
    }
    scale * (xs.iter().map(|x| ((x - m) / scale).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// Number of samples outside Tukey's fences.
pub fn tukey_outliers(xs: &[f64]) -> usize {
    let s = sorted(xs);
    let (q1, q3) = (percentile(&s, 0.25), percentile(&s, 0.75));
    let iqr = q3 - q1;
    xs.iter().filter(|&&x| x < q1 - 1.5 * iqr || x > q3 + 1.5 * iqr).count()
}

/// Percentile-bootstrap confidence interval (`level`, e.g. 0.95) of `stat` over `resamples` resamples.
pub fn bootstrap_ci(xs: &[f64], stat: impl Fn(&[f64]) -> f64, level: f64, resamples: usize, seed: u64) -> [f64; 2] {
    if xs.len() < 2 {
        let v = stat(xs);
        return [v, v];
    }
    let mut rng = Rng::new(seed);
    let mut buf = vec![0.0; xs.len()];
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| {
            for b in buf.iter_mut() {
                *b = xs[rng.below(xs.len() as u64) as usize];
            }
            stat(&buf)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    [percentile(&stats, alpha), percentile(&stats, 1.0 - alpha)]
}

/// Percentile-bootstrap interval of mean(b) / mean(a), resampling both sets independently.
pub fn bootstrap_ratio_ci(a: &[f64], b: &[f64], level: f64, resamples: usize, seed: u64) -> [f64; 2] {
    assert!(!a.is_empty() && !b.is_empty(), "ratio of empty samples");
    let mut rng = Rng::new(seed);
    let mut resample_mean = |xs: &[f64]| mean(&(0..xs.len()).map(|_| xs[rng.below(xs.len() as u64) as usize]).collect::<Vec<_>>());
    let mut ratios: Vec<f64> = (0..resamples).map(|_| resample_mean(b) / resample_mean(a)).collect();
    ratios.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    [percentile(&ratios, alpha), percentile(&ratios, 1.0 - alpha)]
}

/// Splits timed iterations into those kept and those a stall spoiled: a sample over a second and
/// over 100× the median timed a stopped or starved process, not the model. The median of all
/// samples is the yardstick, so fewer than half can ever be dropped.
pub fn split_stalled(samples_ms: &[f64]) -> (Vec<f64>, Vec<f64>) {
    if samples_ms.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let limit = (100.0 * median(samples_ms)).max(1000.0);
    samples_ms.iter().partition(|&&x| x <= limit)
}

pub fn median(xs: &[f64]) -> f64 {
    percentile(&sorted(xs), 0.5)
}

/// Summarizes latency samples of a batch of `batch` items holding `tokens` real tokens (none for
/// a model that takes no text).
pub fn summarize(latency_ms: &[f64], batch: usize, tokens: Option<usize>) -> Summary {
    assert!(!latency_ms.is_empty(), "summary of no samples");
    let s = sorted(latency_ms);
    let m = mean(latency_ms);
    Summary {
        n: s.len(),
        mean_ms: m,
        median_ms: percentile(&s, 0.5),
        p90_ms: percentile(&s, 0.9),
        p99_ms: percentile(&s, 0.99),
        std_ms: std_dev(latency_ms),
        min_ms: s[0],
        max_ms: s[s.len() - 1],
        mean_ci95_ms: bootstrap_ci(latency_ms, mean, 0.95, 2000, 0x5EED),
        median_ci95_ms: bootstrap_ci(latency_ms, median, 0.95, 2000, 0x5EED + 1),
        outliers: tukey_outliers(latency_ms),
        items_per_s: batch as f64 / (m / 1e3),
        tokens_per_s: tokens.map(|t| t as f64 / (m / 1e3)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_spoils_only_the_samples_it_stretched() {
        // A 15 s sample taken across a SIGSTOP among 2 ms runs is dropped; the rest are kept in order.
        let (kept, stalled) = split_stalled(&[2.0, 2.1, 15000.0, 1.9, 2.2]);
        assert_eq!(kept, [2.0, 2.1, 1.9, 2.2]);
        assert_eq!(stalled, [15000.0]);
        // A slow model is not a stall: 2 s runs with a 3 s one stay (under 100× the median).
        let (kept, stalled) = split_stalled(&[2000.0, 3000.0, 2100.0]);
        assert_eq!(kept.len(), 3);
        assert!(stalled.is_empty());
        // Fast runs with a 0.9 s hiccup stay too: under a second is never called a stall.
        assert!(split_stalled(&[0.1, 0.1, 900.0]).1.is_empty());
        assert_eq!(split_stalled(&[]), (vec![], vec![]));
    }

    #[test]
    fn summary_of_known_samples() {
        let xs = [4.0, 1.0, 3.0, 2.0, 5.0];
        let s = summarize(&xs, 2, Some(10));
        assert_eq!(s.n, 5);
        assert_eq!(s.mean_ms, 3.0);
        assert_eq!(s.median_ms, 3.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 5.0);
        assert!((s.p90_ms - 4.6).abs() < 1e-12);
        assert!((s.p99_ms - 4.96).abs() < 1e-12);
        assert!((s.std_ms - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((s.items_per_s - 2.0 / 0.003).abs() < 1e-9);
        assert!((s.tokens_per_s.unwrap() - 10.0 / 0.003).abs() < 1e-9);
        assert_eq!(summarize(&xs, 2, None).tokens_per_s, None, "no tokens for a model that took none");
        assert_eq!(s.outliers, 0);
        assert!(s.mean_ci95_ms[0] <= 3.0 && 3.0 <= s.mean_ci95_ms[1]);
    }

    #[test]
    fn ratio_interval_brackets_the_true_ratio_and_excludes_one_when_clearly_different() {
        let a: Vec<f64> = (0..30).map(|i| 10.0 + (i % 5) as f64 * 0.1).collect();
        let b: Vec<f64> = a.iter().map(|x| x * 1.5).collect();
        let ci = bootstrap_ratio_ci(&a, &b, 0.95, 2000, 1);
        assert!(ci[0] < 1.5 + 1e-9 && 1.5 - 1e-9 < ci[1] && ci[0] > 1.0, "{ci:?}");
        let same = bootstrap_ratio_ci(&a, &a, 0.95, 2000, 2);
        assert!(same[0] <= 1.0 && 1.0 <= same[1], "{same:?}");
    }

    #[test]
    fn statistics_of_huge_finite_samples_stay_finite() {
        let xs = [1e307, 1.5e308, 1e308, 1.7e308];
        let s = summarize(&xs, 1, Some(1));
        assert!(s.is_finite(), "{s:?}");
        assert!((s.mean_ms - 1.075e308).abs() < 1e295, "{}", s.mean_ms);
        // The same deviations a million times smaller give the same standard deviation, scaled.
        let small: Vec<f64> = xs.iter().map(|x| x / 1e300).collect();
        assert!((s.std_ms / 1e300 - std_dev(&small)).abs() < 1e-6 * std_dev(&small), "{} {}", s.std_ms, std_dev(&small));
        let ci = bootstrap_ratio_ci(&xs, &xs, 0.95, 200, 3);
        assert!(ci.iter().all(|r| r.is_finite()), "{ci:?}");
        assert!(!Summary { mean_ms: f64::INFINITY, ..s.clone() }.is_finite());
        assert!(!Summary { tokens_per_s: Some(f64::NAN), ..s }.is_finite());
    }

    #[test]
    fn even_count_median_interpolates() {
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), 2.5);
    }

    #[test]
    fn tukey_counts_far_points_only() {
        let xs = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 30.0];
        assert_eq!(tukey_outliers(&xs), 1);
        assert_eq!(tukey_outliers(&[1.0, 2.0, 3.0, 4.0]), 0);
    }

    #[test]
    fn single_sample_has_degenerate_interval() {
        let s = summarize(&[2.0], 1, Some(1));
        assert_eq!(s.mean_ci95_ms, [2.0, 2.0]);
        assert_eq!(s.std_ms, 0.0);
    }

    #[test]
    fn bootstrap_interval_covers_true_mean_at_about_the_stated_rate() {
        // Synthetic exponential-ish samples with a known mean of 1.0.
        let mut rng = Rng::new(42);
        let trials = 300;
        let mut covered = 0;
        for t in 0..trials {
            let xs: Vec<f64> = (0..40)
                .map(|_| {
                    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    -(1.0 - u).ln()
                })
                .collect();
            let ci = bootstrap_ci(&xs, mean, 0.95, 1000, t);
            if ci[0] <= 1.0 && 1.0 <= ci[1] {
                covered += 1;
            }
        }
        let rate = covered as f64 / trials as f64;
        // Percentile bootstrap under-covers a little for skewed data at n = 40.
        assert!((0.88..=0.99).contains(&rate), "coverage {rate}");
    }
}
