//! Host tensors in every ONNX element type xbench feeds and reads: what goes into a runtime, what
//! comes out of it, and what is saved and compared. No runtime's own tensor type leaks past here.

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

mod any_elem;
mod elem;
mod packed;

pub use any_elem::AnyElemType;
pub use elem::ElemType;
pub use packed::Packed;

/// A tensor in host memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F32(ArrayD<f32>),
    F16(ArrayD<f16>),
    BF16(ArrayD<bf16>),
    F64(ArrayD<f64>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    Bool(ArrayD<bool>),
    Str(ArrayD<String>),
    /// 8-bit floats and 4-bit types, as ONNX lays them out: 4-bit elements two to a byte, the
    /// first in the low nibble.
    Packed(Packed),
}

/// Runs `$body` with `$a` bound to the tensor's array, whatever its element type.
#[macro_export]
macro_rules! each_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::tensor::Tensor::F32($a) => $body,
            $crate::tensor::Tensor::F16($a) => $body,
            $crate::tensor::Tensor::BF16($a) => $body,
            $crate::tensor::Tensor::F64($a) => $body,
            $crate::tensor::Tensor::I8($a) => $body,
            $crate::tensor::Tensor::I16($a) => $body,
            $crate::tensor::Tensor::I32($a) => $body,
            $crate::tensor::Tensor::I64($a) => $body,
            $crate::tensor::Tensor::U8($a) => $body,
            $crate::tensor::Tensor::U16($a) => $body,
            $crate::tensor::Tensor::U32($a) => $body,
            $crate::tensor::Tensor::U64($a) => $body,
            $crate::tensor::Tensor::Bool($a) => $body,
            $crate::tensor::Tensor::Str($a) => $body,
            $crate::tensor::Tensor::Packed(_) => unreachable!("packed tensors have no array"),
        }
    };
}

/// One value of a tensor, for comparisons: numbers as f64 (integers exactly up to 2^53 and
/// compared exactly anyway), booleans and strings as themselves.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Float(f64),
    Int(i128),
    Bool(bool),
    Str(&'a str),
}

impl Tensor {
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::Packed(p) => &p.shape,
            _ => each_tensor!(self, a => a.shape()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Tensor::Packed(p) => p.shape.iter().product(),
            _ => each_tensor!(self, a => a.len()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn elem_type(&self) -> ElemType {
        match self {
            Tensor::F32(_) => ElemType::Float32,
            Tensor::F16(_) => ElemType::Float16,
            Tensor::BF16(_) => ElemType::Bfloat16,
            Tensor::F64(_) => ElemType::Float64,
            Tensor::I8(_) => ElemType::Int8,
            Tensor::I16(_) => ElemType::Int16,
            Tensor::I32(_) => ElemType::Int32,
            Tensor::I64(_) => ElemType::Int64,
            Tensor::U8(_) => ElemType::Uint8,
            Tensor::U16(_) => ElemType::Uint16,
            Tensor::U32(_) => ElemType::Uint32,
            Tensor::U64(_) => ElemType::Uint64,
            Tensor::Bool(_) => ElemType::Bool,
            Tensor::Str(_) => ElemType::String,
            Tensor::Packed(p) => p.ty,
        }
    }

    /// The values in row-major order, as comparable scalars.
    pub fn scalars(&self) -> Vec<Scalar<'_>> {
        match self {
            Tensor::F32(a) => a.iter().map(|v| Scalar::Float(*v as f64)).collect(),
            Tensor::F16(a) => a.iter().map(|v| Scalar::Float(v.to_f64())).collect(),
            Tensor::BF16(a) => a.iter().map(|v| Scalar::Float(v.to_f64())).collect(),
            Tensor::F64(a) => a.iter().map(|v| Scalar::Float(*v)).collect(),
            Tensor::I8(a) => a.iter().map(|v| Scalar::Int(*v as i128)).collect(),
            Tensor::I16(a) => a.iter().map(|v| Scalar::Int(*v as i128)).collect(),
            Tensor::I32(a) => a.iter().map(|v| Scalar::Int(*v as i128)).collect(),
            Tensor::I64(a) => a.iter().map(|v| Scalar::Int(*v as i128)).collect(),
            Tensor::U8(a) => a.iter().map(|v| Scalar::Int(*v as i128)).collect(),
            Tensor::U16(a) => a.iter().map(|v| Scalar::Int(*v as i128)).collect(),
            Tensor::U32(a) => a.iter().map(|v| Scalar::Int(*v as i128)).collect(),
            Tensor::U64(a) => a.iter().map(|v| Scalar::Int(*v as i128)).collect(),
            Tensor::Bool(a) => a.iter().map(|v| Scalar::Bool(*v)).collect(),
            Tensor::Str(a) => a.iter().map(|v| Scalar::Str(v.as_str())).collect(),
            Tensor::Packed(p) => (0..self.len()).map(|i| p.scalar(i)).collect(),
        }
    }

    /// The values as little-endian bytes (strings: none; see [`Tensor::strings`]).
    pub fn to_le_bytes(&self) -> Option<Vec<u8>> {
        fn bytes<T: Copy, const N: usize>(a: &ArrayD<T>, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            a.iter().flat_map(|v| f(*v)).collect()
        }
        Some(match self {
            Tensor::F32(a) => bytes(a, f32::to_le_bytes),
            Tensor::F16(a) => bytes(a, f16::to_le_bytes),
            Tensor::BF16(a) => bytes(a, bf16::to_le_bytes),
            Tensor::F64(a) => bytes(a, f64::to_le_bytes),
            Tensor::I8(a) => bytes(a, i8::to_le_bytes),
            Tensor::I16(a) => bytes(a, i16::to_le_bytes),
            Tensor::I32(a) => bytes(a, i32::to_le_bytes),
            Tensor::I64(a) => bytes(a, i64::to_le_bytes),
            Tensor::U8(a) => bytes(a, u8::to_le_bytes),
            Tensor::U16(a) => bytes(a, u16::to_le_bytes),
            Tensor::U32(a) => bytes(a, u32::to_le_bytes),
            Tensor::U64(a) => bytes(a, u64::to_le_bytes),
            Tensor::Bool(a) => a.iter().map(|v| *v as u8).collect(),
            Tensor::Str(_) => return None,
            Tensor::Packed(p) => p.bytes.clone(),
        })
    }

    /// The strings of a string tensor.
    pub fn strings(&self) -> Option<Vec<String>> {
        match self {
            Tensor::Str(a) => Some(a.iter().cloned().collect()),
            _ => None,
        }
    }

    /// A tensor of `ty` and `shape` from little-endian bytes.
    pub fn from_le_bytes(ty: ElemType, shape: &[usize], bytes: &[u8]) -> anyhow::Result<Tensor> {
        let n: usize = shape.iter().product();
        if ty.packed_bits().is_some() {
            let need = Packed::byte_len(ty, n);
            if bytes.len() != need {
                anyhow::bail!("{} bytes do not hold a {ty} tensor of shape {shape:?} ({need} bytes)", bytes.len());
            }
            return Ok(Tensor::Packed(Packed { ty, shape: shape.to_vec(), bytes: bytes.to_vec() }));
        }
        let size = ty.size().ok_or_else(|| anyhow::anyhow!("{ty} tensors have no fixed-size bytes"))?;
        if bytes.len() != n * size {
            anyhow::bail!("{} bytes do not hold a {ty} tensor of shape {shape:?} ({} bytes)", bytes.len(), n * size);
        }
        fn arr<T, const N: usize>(shape: &[usize], bytes: &[u8], f: impl Fn([u8; N]) -> T) -> anyhow::Result<ArrayD<T>> {
            let data = bytes.chunks_exact(N).map(|c| f(c.try_into().expect("chunks of N bytes"))).collect();
            Ok(ArrayD::from_shape_vec(IxDyn(shape), data)?)
        }
        Ok(match ty {
            ElemType::Float32 => Tensor::F32(arr(shape, bytes, f32::from_le_bytes)?),
            ElemType::Float16 => Tensor::F16(arr(shape, bytes, f16::from_le_bytes)?),
            ElemType::Bfloat16 => Tensor::BF16(arr(shape, bytes, bf16::from_le_bytes)?),
            ElemType::Float64 => Tensor::F64(arr(shape, bytes, f64::from_le_bytes)?),
            ElemType::Int8 => Tensor::I8(arr(shape, bytes, i8::from_le_bytes)?),
            ElemType::Int16 => Tensor::I16(arr(shape, bytes, i16::from_le_bytes)?),
            ElemType::Int32 => Tensor::I32(arr(shape, bytes, i32::from_le_bytes)?),
            ElemType::Int64 => Tensor::I64(arr(shape, bytes, i64::from_le_bytes)?),
            ElemType::Uint8 => Tensor::U8(arr(shape, bytes, u8::from_le_bytes)?),
            ElemType::Uint16 => Tensor::U16(arr(shape, bytes, u16::from_le_bytes)?),
            ElemType::Uint32 => Tensor::U32(arr(shape, bytes, u32::from_le_bytes)?),
            ElemType::Uint64 => Tensor::U64(arr(shape, bytes, u64::from_le_bytes)?),
            ElemType::Bool => Tensor::Bool(arr(shape, bytes, |[b]: [u8; 1]| b != 0)?),
            _ => unreachable!("strings have no size; packed types are handled above"),
        })
    }

    /// FNV-1a over the shape and values. Integers digest as 64-bit values whatever their width, so
    /// the same token ids fed as int32 and as int64 digest alike.
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for d in self.shape() {
            eat(&(*d as u64).to_le_bytes());
        }
        match self {
            Tensor::I8(a) => a.iter().for_each(|v| eat(&(*v as i64).to_le_bytes())),
            Tensor::I16(a) => a.iter().for_each(|v| eat(&(*v as i64).to_le_bytes())),
            Tensor::I32(a) => a.iter().for_each(|v| eat(&(*v as i64).to_le_bytes())),
            Tensor::I64(a) => a.iter().for_each(|v| eat(&v.to_le_bytes())),
            Tensor::U8(a) => a.iter().for_each(|v| eat(&(*v as u64).to_le_bytes())),
            Tensor::U16(a) => a.iter().for_each(|v| eat(&(*v as u64).to_le_bytes())),
            Tensor::U32(a) => a.iter().for_each(|v| eat(&(*v as u64).to_le_bytes())),
            Tensor::U64(a) => a.iter().for_each(|v| eat(&v.to_le_bytes())),
            Tensor::Str(a) => a.iter().for_each(|s| {
                eat(&(s.len() as u64).to_le_bytes());
                eat(s.as_bytes());
            }),
            other => eat(&other.to_le_bytes().expect("fixed-size types have bytes")),
        }
        h
    }
}

/// A named output of a run, in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub data: Tensor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_size_type_round_trips_through_bytes() {
        let shape = [2, 2];
        for ty in ElemType::ALL.into_iter().filter(|t| *t != ElemType::String) {
            let len = ty.size().map_or_else(|| Packed::byte_len(ty, 4), |s| 4 * s);
            let bytes: Vec<u8> = (0..len).map(|i| if ty == ElemType::Bool { (i % 2) as u8 } else { (i * 7 % 251) as u8 }).collect();
            let t = Tensor::from_le_bytes(ty, &shape, &bytes).unwrap();
            assert_eq!((t.elem_type(), t.shape()), (ty, &shape[..]));
            assert_eq!(t.to_le_bytes().unwrap(), bytes, "{ty}");
            assert_eq!(ElemType::from_onnx_code(ty.onnx_code()), Some(ty));
            assert_eq!(ElemType::from_name(ty.name()), Some(ty));
            assert_eq!(ty.name().parse::<ElemType>(), Ok(ty));
        }
        assert_eq!("float".parse::<ElemType>(), Ok(ElemType::Float32));
        assert_eq!("tensor(float)".parse::<ElemType>(), Err("unknown ONNX element type `tensor(float)`".to_string()));
        assert!(Tensor::from_le_bytes(ElemType::Int32, &[3], &[0; 8]).is_err());
    }

    #[test]
    fn integer_widths_digest_alike_and_values_do_not() {
        let a = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![101, 7, 0]).unwrap());
        let b = Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![101, 7, 0]).unwrap());
        let c = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![101, 8, 0]).unwrap());
        let d = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[3, 1]), vec![101, 7, 0]).unwrap());
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
        assert_ne!(a.digest(), d.digest());
        let s = Tensor::Str(ArrayD::from_shape_vec(IxDyn(&[2]), vec!["ab".to_string(), "c".into()]).unwrap());
        let t = Tensor::Str(ArrayD::from_shape_vec(IxDyn(&[2]), vec!["a".to_string(), "bc".into()]).unwrap());
        assert_ne!(s.digest(), t.digest());
    }
}
