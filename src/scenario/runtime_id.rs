//! A runtime's name as scenarios, results and reports write it (`ort-cpu`, `tract-cpu`, or a name
//! the user gives). Which runtime a name stands for is the registry's business (`runtimes`).

use std::collections::HashSet;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A runtime's name. Copied freely: the text is interned once per process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuntimeId(&'static str);

impl RuntimeId {
    pub const TRACT_CPU: RuntimeId = RuntimeId("tract-cpu");
    pub const ORT_CPU: RuntimeId = RuntimeId("ort-cpu");
    pub const ORT_CUDA: RuntimeId = RuntimeId("ort-cuda");
    pub const ORT_COREML: RuntimeId = RuntimeId("ort-coreml");

    /// The id of `name` (not checked: see [`RuntimeId::check_name`]).
    pub fn new(name: &str) -> RuntimeId {
        static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
        let mut guard = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        let names = guard.get_or_insert_with(HashSet::new);
        if let Some(known) = names.get(name) {
            return RuntimeId(known);
        }
        let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
        names.insert(leaked);
        RuntimeId(leaked)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Whether `name` can name a runtime: 1 to 64 characters, lowercase letters, digits, `-`, `_`
    /// and `.`, starting with a letter or digit (it becomes a column heading and a file name part).
    pub fn check_name(name: &str) -> Result<(), String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if ok {
            Ok(())
        } else {
            Err(format!("`{name}` cannot name a runtime: use 1 to 64 lowercase letters, digits, `-`, `_` or `.`, starting with a letter or digit"))
        }
    }
}

impl std::fmt::Display for RuntimeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Debug for RuntimeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RuntimeId({})", self.0)
    }
}

impl Serialize for RuntimeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for RuntimeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(RuntimeId::new(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::RuntimeId;

    #[test]
    fn ids_compare_by_name_and_round_trip_through_json() {
        assert_eq!(RuntimeId::new("ort-cpu"), RuntimeId::ORT_CPU);
        assert_eq!(RuntimeId::new("my-ep").as_str(), "my-ep");
        let json = serde_json::to_string(&vec![RuntimeId::TRACT_CPU, RuntimeId::new("x")]).unwrap();
        assert_eq!(json, r#"["tract-cpu","x"]"#);
        let back: Vec<RuntimeId> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![RuntimeId::TRACT_CPU, RuntimeId::new("x")]);
        assert!(RuntimeId::check_name("ort-openvino-fp32").is_ok());
        for bad in ["", "Ort", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(RuntimeId::check_name(bad).is_err(), "{bad}");
        }
    }
}
