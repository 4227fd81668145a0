//! Scenario YAML: parsing and validation never panic, and every error names the file and
//! carries a `fix:` line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xbench::scenario::{validate, Overrides, ScenarioFile};

const ORIGIN: &str = "fuzz.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let result = ScenarioFile::parse(text, ORIGIN)
        .and_then(|file| validate(&file, ORIGIN, std::path::Path::new("."), &Overrides::default()));
    if let Err(e) = result {
        let msg = format!("{e:#}");
        assert!(
            msg.contains(ORIGIN) && msg.contains("\n  fix: "),
            "error without the file name or a fix line for {text:?}:\n{msg}"
        );
    }
});
