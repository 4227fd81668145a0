//! How close two runs' outputs must be to count as the same computation, per precision class: the
//! arithmetic a model or a session computes in.

use serde::{Deserialize, Serialize};

use super::Precision;

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
    /// Two fp32 runtimes on BERT-family models differ by at most ~1e-5 (H200 CUDA without TF32
    /// against the CPU: 2.98e-6–7.39e-6; reports/gpu-h200).
    pub const FP32: Tolerance = Tolerance { abs: 1e-4, rel: 1e-3 };
    /// TF32 matrix products (CUDA's default) put BERT-family outputs 1.97e-3–2.87e-3 from fp32
    /// (reports/gpu-h200).
    pub const TF32: Tolerance = Tolerance { abs: 5e-3, rel: 5e-3 };
    pub const FP16: Tolerance = Tolerance { abs: 1e-2, rel: 1e-2 };
    /// bfloat16 keeps 8 bits of mantissa to fp16's 11. PyTorch in bf16 against ONNX Runtime in
    /// fp32 on the same BERT-base and token ids: 5.8e-2–7.2e-2 (H200); tiny BERT on the CPU
    /// 2.1e-2–3.2e-2.
    pub const BF16: Tolerance = Tolerance { abs: 0.1, rel: 5e-2 };
    /// Two runtimes on one dynamically quantized model: integer products are exact, but a value
    /// that rounds to the other side of a quantization step moves by a whole step, and the moves
    /// add up through the layers. BERT-base int8 (random weights, outputs up to |5|): tract
    /// against ONNX Runtime 0.074–0.095, ONNX Runtime against itself at two optimization levels
    /// 0.028–0.105; tiny BERT 3.7e-4. Twice the largest, so a correct runtime passes; a runtime
    /// computing something else is off by far more. (The model against its fp32 original differs
    /// by 0.12–0.17: int8 agreement cannot tell those apart.)
    pub const INT8: Tolerance = Tolerance { abs: 0.2, rel: 1e-2 };
}

/// Tolerances by precision class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    pub fp32: Tolerance,
    #[serde(default = "tf32")]
    pub tf32: Tolerance,
    pub fp16: Tolerance,
    #[serde(default = "bf16")]
    pub bf16: Tolerance,
    #[serde(default = "int8")]
    pub int8: Tolerance,
    /// Weights stored in 4 bits (MatMulNBits, int4 initializers): not measured here, int8's default.
    #[serde(default = "int8")]
    pub int4: Tolerance,
    /// Weights or activations in 8-bit floats: not measured here, int8's default.
    #[serde(default = "int8")]
    pub fp8: Tolerance,
}

fn tf32() -> Tolerance {
    Tolerance::TF32
}
fn bf16() -> Tolerance {
    Tolerance::BF16
}
fn int8() -> Tolerance {
    Tolerance::INT8
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances { fp32: Tolerance::FP32, tf32: Tolerance::TF32, fp16: Tolerance::FP16, bf16: Tolerance::BF16, int8: Tolerance::INT8, int4: Tolerance::INT8, fp8: Tolerance::INT8 }
    }
}

impl Tolerances {
    /// The tolerance of a precision class.
    pub fn for_precision(&self, precision: Precision) -> Tolerance {
        let mut t = *self;
        *t.slot(precision)
    }

    /// Of some precisions (the model's, each session's), the one with the loosest tolerance, and
    /// that tolerance: what two runs are judged by when they compute in different arithmetic.
    pub fn loosest(&self, precisions: impl IntoIterator<Item = Precision>) -> (Precision, Tolerance) {
        let key = |p: &Precision| {
            let t = self.for_precision(*p);
            (t.abs, t.rel)
        };
        let p = precisions.into_iter().max_by(|a, b| key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal)).unwrap_or_default();
        (p, self.for_precision(p))
    }

    /// The slot of a precision class, to set it.
    pub fn slot(&mut self, precision: Precision) -> &mut Tolerance {
        match precision {
            Precision::Fp32 => &mut self.fp32,
            Precision::Tf32 => &mut self.tf32,
            Precision::Fp16 => &mut self.fp16,
            Precision::Bf16 => &mut self.bf16,
            Precision::Int8 => &mut self.int8,
            Precision::Int4 => &mut self.int4,
            Precision::Fp8 => &mut self.fp8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loosest_precision_decides() {
        let t = Tolerances::default();
        use Precision::*;
        assert_eq!(t.loosest([Fp32, Tf32]), (Tf32, Tolerance::TF32));
        assert_eq!(t.loosest([Fp16, Int8, Fp32]).0, Int8);
        assert_eq!(t.loosest([Fp32]).0, Fp32);
        assert_eq!(t.loosest([]).0, Fp32);
        let mut mine = t;
        *mine.slot(Int8) = Tolerance { abs: 1e-3, rel: 0.0 };
        assert_eq!(mine.loosest([Fp16, Int8]).0, Fp16, "the scenario's own values decide");
        assert_eq!(mine.for_precision(Int8), Tolerance { abs: 1e-3, rel: 0.0 });
    }
}
