//! The paper's published tables, embedded as data: appendix C (mean latency of each model cell)
//! and appendix A (the operation cases and their times). Rows only; what they mean is read by
//! `scenario::ops` (the cases) and `report` (the published series).

use serde::Deserialize;

const MODEL_LATENCY_TSV: &str = include_str!("model-latency.tsv");
const OPS_TSV: &str = include_str!("ops.tsv");

/// One row of appendix C.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelLatencyRow {
    pub device: String,
    pub backend: String,
    pub model: String,
    pub input_chars: usize,
    pub batch: usize,
    pub mean_ms: f64,
}

/// One row of appendix A: an operation, its shapes as the paper writes them, and its times (ms)
/// for torch CPU and CUDA (NVIDIA A10 host) and MLX GPU and CPU (Apple M1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OpRow {
    pub op: String,
    pub dims: String,
    pub torch_cpu_ms_a10_host: f64,
    pub torch_cuda_ms_a10: f64,
    pub mlx_gpu_ms_m1: f64,
    pub mlx_cpu_ms_m1: f64,
}

impl OpRow {
    /// The four published times, in the order of their columns.
    pub fn published_ms(&self) -> [f64; 4] {
        [self.torch_cpu_ms_a10_host, self.torch_cuda_ms_a10, self.mlx_gpu_ms_m1, self.mlx_cpu_ms_m1]
    }
}

/// Parses a tab-separated table with a header line; an error names the line and what is wrong.
pub fn parse_tsv<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<Vec<T>, String> {
    let mut reader = csv::ReaderBuilder::new().delimiter(b'\t').has_headers(true).from_reader(text.as_bytes());
    reader
        .deserialize()
        .map(|row| {
            row.map_err(|e| {
                let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
                format!("{what}: {line}{e}")
            })
        })
        .collect()
}

/// Appendix C, as embedded.
pub fn model_latency_rows() -> Vec<ModelLatencyRow> {
    parse_tsv(MODEL_LATENCY_TSV, "model-latency.tsv").expect("the embedded model-latency.tsv is well formed (checked by a test)")
}

/// Appendix A, as embedded.
pub fn op_rows() -> Vec<OpRow> {
    parse_tsv(OPS_TSV, "ops.tsv").expect("the embedded ops.tsv is well formed (checked by a test)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_tables_parse_whole() {
        let rows = model_latency_rows();
        assert_eq!(rows.len(), MODEL_LATENCY_TSV.lines().count() - 1);
        assert!(rows.iter().all(|r| r.mean_ms > 0.0 && r.batch > 0 && r.input_chars > 0));
        let ops = op_rows();
        assert_eq!(ops.len(), 85);
        assert!(ops.iter().all(|r| r.published_ms().iter().all(|v| v.is_finite() && *v > 0.0)));
    }

    #[test]
    fn a_bad_line_is_an_error_naming_the_line_never_a_panic_or_nan() {
        let bad = "device\tbackend\tmodel\tinput_chars\tbatch\tmean_ms\na\tb\tm\t50\t1\t2.5\na\tb\tm\tfifty\t1\t2.5\n";
        let e = parse_tsv::<ModelLatencyRow>(bad, "t.tsv").unwrap_err();
        assert!(e.contains("t.tsv") && e.contains("line 3"), "{e}");
        let short = "device\tbackend\tmodel\tinput_chars\tbatch\tmean_ms\na\tb\tm\t50\n";
        assert!(parse_tsv::<ModelLatencyRow>(short, "t.tsv").is_err());
        let nan = "op\tdims\ttorch_cpu_ms_a10_host\ttorch_cuda_ms_a10\tmlx_gpu_ms_m1\tmlx_cpu_ms_m1\nRelu\tdim=4\tx\t1\t1\t1\n";
        assert!(parse_tsv::<OpRow>(nan, "ops.tsv").is_err());
    }
}
