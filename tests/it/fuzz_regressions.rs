//! Inputs that once crashed the fuzz targets (fuzz/, tests/data/fuzz/<target>/) stay harmless:
//! `parse_io` answers each with inputs and outputs or an error with the fix, never a panic, and sizes a file claims beyond
//! what 64 bits hold stay at the maximum instead of wrapping to a small, plausible number.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz").join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())).collect();
    out.sort();
    out
}

#[test]
fn onnx_metadata_regressions_are_read_or_refused_with_the_fix() {
    let all = inputs("onnx_meta");
    assert!(all.len() >= 6, "{} regression inputs", all.len());
    let (mut read, mut refused) = (0, 0);
    for (name, bytes) in &all {
        match xbench::models::parse_io(bytes) {
            Ok(io) => {
                read += 1;
                assert!(!io.inputs.is_empty() || !io.outputs.is_empty(), "{name}: read, with no input or output");
                assert!(["fp32", "fp16", "bf16"].contains(&io.weights_precision.as_str()), "{name}: weights of precision {:?}", io.weights_precision);
            }
            Err(e) => {
                refused += 1;
                let msg = format!("{e:#}");
                assert!(msg.contains("not ONNX") && msg.contains("\n  fix: re-export or re-download the model"), "{name}: {msg}");
            }
        }
    }
    // The minimized crashes are graphs xbench reads (the overflows were in reading them).
    assert!(read > 0, "{read} read, {refused} refused");
}

#[test]
fn sizes_beyond_64_bits_saturate() {
    for (name, bytes) in inputs("onnx_meta").iter().filter(|(n, _)| n.starts_with("matmul-flops")) {
        let io = xbench::models::parse_io(bytes).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(io.flops_per_token, Some(u64::MAX), "{name}: a FLOP count past 2^64 wrapped");
    }
}
