//! Inputs that once crashed the fuzz targets (fuzz/, tests/data/fuzz/<target>/) stay harmless:
//! `parse_io` answers each with a value or an error, never a panic, and sizes a file claims beyond
//! what 64 bits hold stay at the maximum instead of wrapping to a small, plausible number.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz").join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())).collect();
    out.sort();
    out
}

#[test]
fn onnx_metadata_regressions_never_panic() {
    let all = inputs("onnx_meta");
    assert!(all.len() >= 6, "{} regression inputs", all.len());
    for (name, bytes) in &all {
        let got = std::panic::catch_unwind(|| xbench::models::parse_io(bytes));
        assert!(got.is_ok(), "{name}: parse_io panicked");
    }
}

#[test]
fn sizes_beyond_64_bits_saturate() {
    for (name, bytes) in inputs("onnx_meta").iter().filter(|(n, _)| n.starts_with("matmul-flops")) {
        let io = xbench::models::parse_io(bytes).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(io.flops_per_token, Some(u64::MAX), "{name}: a FLOP count past 2^64 wrapped");
    }
}
