//! Reading results of format version 1, whose cell flags were free text: each is given its kind
//! here, once, from the words version 1 wrote. Nothing else reads flag text.

use serde_json::Value;

/// The kind of a version 1 flag, from how version 1 worded it, and its detail.
fn kind_of(text: &str) -> (&'static str, &str) {
    if let Some(rest) = text.strip_prefix("suspicious:") {
        return ("suspicious", rest.trim_start());
    }
    let kind = if text.starts_with("outputs differ from the ") && text.contains(" sibling `") {
        "sibling_disagrees"
    } else if text.starts_with("outputs differ") {
        "disagrees"
    } else if text.starts_with("not compared with ") {
        "sibling_not_compared"
    } else if text.contains("rows truncated at the model's") {
        "truncated"
    } else if text.starts_with("fastest run (") {
        "timer_resolution"
    } else if text.starts_with("95% interval of the mean") {
        "noisy_interval"
    } else {
        "other"
    };
    (kind, text)
}

/// Rewrites a version 1 results value in place so that it reads as the current format.
pub fn upgrade_v1(results: &mut Value) {
    let Some(cells) = results.get_mut("cells").and_then(Value::as_array_mut) else { return };
    for cell in cells {
        let Some(flags) = cell.get_mut("flags").and_then(Value::as_array_mut) else { continue };
        for flag in flags.iter_mut() {
            if let Value::String(text) = flag {
                let (kind, detail) = kind_of(text);
                *flag = serde_json::json!({ "kind": kind, "detail": detail });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Flag, FlagKind};

    #[test]
    fn version_1_flags_get_their_kinds_and_print_as_before() {
        for (text, kind) in [
            ("suspicious: faster (1.000 ms) than 50 chars × batch 1 (2.000 ms), which has 2.0× less work", FlagKind::Suspicious),
            ("outputs differ from tract-cpu: max abs diff 5.000e-1", FlagKind::Disagrees),
            ("outputs differ from the fp32 sibling `base` (fp16 vs fp32, ort-cpu cell): max abs diff 5.000e-1, tolerance 1e-2 + 1e-2·|r|", FlagKind::SiblingDisagrees),
            ("not compared with the fp32 sibling `base` (fp16 vs fp32, ort-cpu cell): the inputs differ", FlagKind::SiblingNotCompared),
            ("2 of 32 rows truncated at the model's 512 positions", FlagKind::Truncated),
            ("fastest run (0.0010 ms) is under 100× the timer's resolution (0.000020 ms)", FlagKind::TimerResolution),
            ("95% interval of the mean [1.0, 2.0] ms is wider than 10% of the mean: noisy", FlagKind::NoisyInterval),
            ("something else", FlagKind::Other),
        ] {
            let mut v = serde_json::json!({ "cells": [{ "flags": [text] }] });
            upgrade_v1(&mut v);
            let flag: Flag = serde_json::from_value(v["cells"][0]["flags"][0].clone()).unwrap();
            assert_eq!(flag.kind, kind, "{text}");
            assert_eq!(flag.to_string(), text, "printed as version 1 printed it");
        }
    }
}
