//! Tensors of the types ONNX packs: 8-bit floats (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ) and 4-bit
//! types (int4, uint4, FP4 E2M1), kept as their bytes and decoded element by element for
//! comparisons.

use super::{ElemType, Scalar};

/// A tensor of a type smaller than a byte or without a Rust type of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub ty: ElemType,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Packed {
    /// The bytes `n` elements of `ty` take.
    pub fn byte_len(ty: ElemType, n: usize) -> usize {
        (n * ty.packed_bits().unwrap_or(8)).div_ceil(8)
    }

    /// The raw code of element `i`.
    fn code(&self, i: usize) -> u8 {
        match self.ty.packed_bits() {
            Some(4) => (self.bytes[i / 2] >> (4 * (i % 2))) & 0x0f,
            _ => self.bytes[i],
        }
    }

    /// Element `i`, decoded.
    pub(super) fn scalar(&self, i: usize) -> Scalar<'static> {
        let c = self.code(i);
        match self.ty {
            ElemType::Uint4 => Scalar::Int(c as i128),
            ElemType::Int4 => Scalar::Int(((c << 4) as i8 >> 4) as i128),
            ElemType::Float8E4M3FN => Scalar::Float(minifloat(c, 4, 3, 7, Special::NanAllOnes)),
            ElemType::Float8E4M3FNUZ => Scalar::Float(minifloat(c, 4, 3, 8, Special::NanNegZero)),
            ElemType::Float8E5M2 => Scalar::Float(minifloat(c, 5, 2, 15, Special::Ieee)),
            ElemType::Float8E5M2FNUZ => Scalar::Float(minifloat(c, 5, 2, 16, Special::NanNegZero)),
            _ => Scalar::Float(minifloat(c, 2, 1, 1, Special::None)),
        }
    }
}

/// How a small float type spends its codes on infinities and NaN.
#[derive(Clone, Copy, PartialEq)]
enum Special {
    /// IEEE: an all-ones exponent is infinity (zero mantissa) or NaN.
    Ieee,
    /// No infinities; the all-ones code (either sign) is NaN.
    NanAllOnes,
    /// No infinities, no negative zero: the code 0x80 is NaN.
    NanNegZero,
    /// Every code is a number.
    None,
}

/// The value of a small float's code: `e` exponent bits, `m` mantissa bits, exponent `bias`.
fn minifloat(code: u8, e: u32, m: u32, bias: i32, special: Special) -> f64 {
    let sign = if code >> (e + m) & 1 == 1 { -1.0 } else { 1.0 };
    let exp = ((code >> m) & ((1 << e) - 1) as u8) as i32;
    let man = (code & ((1 << m) - 1) as u8) as f64;
    let all_exp = (1 << e) - 1;
    match special {
        Special::NanNegZero if code == 0x80 => return f64::NAN,
        Special::NanAllOnes if exp == all_exp && man as u32 == (1 << m) - 1 => return f64::NAN,
        Special::Ieee if exp == all_exp => return if man == 0.0 { sign * f64::INFINITY } else { f64::NAN },
        _ => {}
    }
    let scale = (1u32 << m) as f64;
    if exp == 0 {
        sign * (man / scale) * 2f64.powi(1 - bias)
    } else {
        sign * (1.0 + man / scale) * 2f64.powi(exp - bias)
    }
}


#[cfg(test)]
mod tests {
    use super::super::Tensor;
    use super::*;

    #[test]
    fn small_types_decode_as_onnx_defines_them() {
        let floats = |ty, bytes: Vec<u8>| -> Vec<f64> {
            let n = bytes.len() * 8 / ty_bits(ty);
            let t = Tensor::from_le_bytes(ty, &[n], &bytes).unwrap();
            t.scalars().into_iter().map(|s| if let Scalar::Float(f) = s { f } else { panic!("{s:?}") }).collect()
        };
        fn ty_bits(ty: ElemType) -> usize {
            ty.packed_bits().unwrap()
        }
        // E4M3FN: 1.0 = 0x38, 448 = 0x7e (the largest), 0x7f NaN, 2^-9 the smallest subnormal.
        let v = floats(ElemType::Float8E4M3FN, vec![0x38, 0x7e, 0xb8, 0x01, 0x7f]);
        assert_eq!(&v[..4], &[1.0, 448.0, -1.0, 2f64.powi(-9)]);
        assert!(v[4].is_nan());
        // E5M2: 1.0 = 0x3c, infinity 0x7c, 57344 the largest (0x7b).
        assert_eq!(floats(ElemType::Float8E5M2, vec![0x3c, 0x7c, 0x7b]), [1.0, f64::INFINITY, 57344.0]);
        // FNUZ: 0x80 is NaN, the bias one more.
        let v = floats(ElemType::Float8E4M3FNUZ, vec![0x40, 0x80]);
        assert_eq!(v[0], 1.0);
        assert!(v[1].is_nan());
        assert_eq!(floats(ElemType::Float8E5M2FNUZ, vec![0x40])[0], 1.0);
        // FP4 E2M1, two to a byte, low nibble first: 0x2 = 1.0, 0x7 = 6.0, 0xf = -6.0.
        assert_eq!(floats(ElemType::Float4E2M1, vec![0x72, 0x0f]), [1.0, 6.0, -6.0, 0.0]);
        let ints = Tensor::from_le_bytes(ElemType::Int4, &[3], &[0x8f, 0x07]).unwrap();
        assert_eq!(ints.scalars(), [Scalar::Int(-1), Scalar::Int(-8), Scalar::Int(7)]);
        assert!(Tensor::from_le_bytes(ElemType::Uint4, &[3], &[0]).is_err(), "3 elements need 2 bytes");
    }

}
