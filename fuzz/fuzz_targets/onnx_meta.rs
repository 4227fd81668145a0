//! ONNX metadata: `parse_io` never panics on arbitrary bytes (errors are fine).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xbench::models::parse_io(data);
});
