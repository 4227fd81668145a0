//! The precision classes: the arithmetic a model or a session computes in, each with its own
//! agreement tolerance. Written in results, scenarios and reports as its lower-case name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A precision class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    /// fp32 with TF32 matrix products (CUDA's default, TensorRT's).
    Tf32,
    Fp16,
    Bf16,
    Int8,
    /// Weights stored in 4 bits (MatMulNBits, int4 initializers).
    Int4,
    /// Weights or activations in 8-bit floats.
    Fp8,
}

impl Precision {
    pub const ALL: [Precision; 7] = [Precision::Fp32, Precision::Tf32, Precision::Fp16, Precision::Bf16, Precision::Int8, Precision::Int4, Precision::Fp8];

    /// Its name, as results and scenarios write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
            Precision::Int4 => "int4",
            Precision::Fp8 => "fp8",
        }
    }

    /// The names of all classes, for messages: `fp32, tf32, …`.
    pub fn names() -> String {
        Precision::ALL.map(Precision::as_str).join(", ")
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;

    /// A class by its lower-case name; any other name is refused with the valid ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Precision::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| format!("`{s}` is not a precision class: one of {}", Precision::names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_precision_reads_back_from_its_name_in_text_and_json() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()), "serialized as its lower-case name");
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
        assert_eq!(Precision::names(), "fp32, tf32, fp16, bf16, int8, int4, fp8");
    }

    #[test]
    fn unknown_or_upper_case_names_are_refused_naming_the_valid_ones() {
        let e = "fp4".parse::<Precision>().unwrap_err();
        assert!(e.contains("`fp4`") && e.contains("fp32, tf32, fp16, bf16, int8, int4, fp8"), "{e}");
        assert!("FP16".parse::<Precision>().is_err());
        assert!(serde_json::from_str::<Precision>("\"fp4\"").is_err());
    }
}
