//! How close two runs' outputs must be to count as the same computation, per model precision.

use serde::{Deserialize, Serialize};

/// Elementwise tolerance: |a − r| ≤ abs + rel·|r|, as numpy's `allclose`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

impl Default for Tolerance {
    /// For fp32 models.
    fn default() -> Self {
        Tolerance::FP32
    }
}

impl Tolerance {
    pub const FP32: Tolerance = Tolerance { abs: 1e-4, rel: 1e-3 };
    pub const FP16: Tolerance = Tolerance { abs: 1e-2, rel: 1e-2 };
}

/// Tolerances by model precision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    pub fp32: Tolerance,
    pub fp16: Tolerance,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances { fp32: Tolerance::FP32, fp16: Tolerance::FP16 }
    }
}

impl Tolerances {
    /// The tolerance for a model of `precision` (`fp16`, else fp32).
    pub fn for_precision(&self, precision: &str) -> Tolerance {
        if precision == "fp16" {
            self.fp16
        } else {
            self.fp32
        }
    }
}
