//! Host tensors to ONNX Runtime values and back, in every element type both know.

use anyhow::{bail, Result};
use ort::memory::AllocationDevice;
use ort::session::SessionInputValue;
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};

use crate::tensor::{ElemType, Packed, Tensor};

/// ONNX Runtime's name for an element type.
pub fn ort_type(t: ElemType) -> TensorElementType {
    match t {
        ElemType::Float32 => TensorElementType::Float32,
        ElemType::Float16 => TensorElementType::Float16,
        ElemType::Bfloat16 => TensorElementType::Bfloat16,
        ElemType::Float64 => TensorElementType::Float64,
        ElemType::Int8 => TensorElementType::Int8,
        ElemType::Int16 => TensorElementType::Int16,
        ElemType::Int32 => TensorElementType::Int32,
        ElemType::Int64 => TensorElementType::Int64,
        ElemType::Uint8 => TensorElementType::Uint8,
        ElemType::Uint16 => TensorElementType::Uint16,
        ElemType::Uint32 => TensorElementType::Uint32,
        ElemType::Uint64 => TensorElementType::Uint64,
        ElemType::Bool => TensorElementType::Bool,
        ElemType::String => TensorElementType::String,
        ElemType::Float8E4M3FN => TensorElementType::Float8E4M3FN,
        ElemType::Float8E4M3FNUZ => TensorElementType::Float8E4M3FNUZ,
        ElemType::Float8E5M2 => TensorElementType::Float8E5M2,
        ElemType::Float8E5M2FNUZ => TensorElementType::Float8E5M2FNUZ,
        ElemType::Uint4 => TensorElementType::Uint4,
        ElemType::Int4 => TensorElementType::Int4,
        ElemType::Float4E2M1 => TensorElementType::Float4E2M1,
    }
}

/// The element type of ONNX Runtime's type, when xbench reads it.
pub fn elem_type(t: TensorElementType) -> Option<ElemType> {
    ElemType::ALL.into_iter().find(|e| ort_type(*e) == t)
}

/// A packed tensor (8-bit floats, 4-bit types) as an ONNX Runtime value in host memory: a copy of its bytes.
fn packed_value(p: &Packed) -> Result<DynValue> {
    let shape: Vec<i64> = p.shape.iter().map(|&d| d as i64).collect();
    let mut v = ort::value::DynTensor::new(&ort::memory::Allocator::default(), ort_type(p.ty), shape)?;
    if !p.bytes.is_empty() {
        // SAFETY: a host tensor of this type and shape holds exactly `bytes.len()` bytes (Packed::byte_len).
        unsafe { std::ptr::copy_nonoverlapping(p.bytes.as_ptr(), v.data_ptr_mut() as *mut u8, p.bytes.len()) };
    }
    Ok(v.into_dyn())
}

/// A host tensor as a session input, borrowed where ONNX Runtime can read it in place (strings and
/// packed types are copied).
pub fn input_value(t: &Tensor) -> Result<SessionInputValue<'_>> {
    Ok(match t {
        Tensor::Packed(p) => packed_value(p)?.into(),
        Tensor::Str(a) => ort::value::Tensor::from_string_array(a)?.into(),
        Tensor::F32(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::F16(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::BF16(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::F64(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::I8(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::I16(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::I32(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::I64(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::U8(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::U16(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::U32(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::U64(a) => TensorRef::from_array_view(a.view())?.into(),
        Tensor::Bool(a) => TensorRef::from_array_view(a.view())?.into(),
    })
}

/// A copy of a host tensor, placed on `device` (for inputs bound once before timing).
pub fn owned_value(t: &Tensor, device: &(AllocationDevice<'static>, i32)) -> Result<DynValue> {
    fn place<T: ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static>(
        a: &ndarray::ArrayD<T>,
        device: &(AllocationDevice<'static>, i32),
    ) -> Result<DynValue> {
        let t = ort::value::Tensor::from_array(a.clone())?;
        Ok(if device.0 == AllocationDevice::CPU { t.into_dyn() } else { t.to(device.0.clone(), device.1)?.into_dyn() })
    }
    match t {
        Tensor::Str(a) if device.0 == AllocationDevice::CPU => Ok(ort::value::Tensor::from_string_array(a)?.into_dyn()),
        Tensor::Str(_) => bail!("string inputs stay in host memory; they cannot be bound on the device\n  fix: run this model with end-to-end timing"),
        Tensor::Packed(p) if device.0 == AllocationDevice::CPU => packed_value(p),
        Tensor::Packed(p) => bail!("{} inputs stay in host memory; they cannot be bound on the device\n  fix: run this model with end-to-end timing", p.ty),
        Tensor::F32(a) => place(a, device),
        Tensor::F16(a) => place(a, device),
        Tensor::BF16(a) => place(a, device),
        Tensor::F64(a) => place(a, device),
        Tensor::I8(a) => place(a, device),
        Tensor::I16(a) => place(a, device),
        Tensor::I32(a) => place(a, device),
        Tensor::I64(a) => place(a, device),
        Tensor::U8(a) => place(a, device),
        Tensor::U16(a) => place(a, device),
        Tensor::U32(a) => place(a, device),
        Tensor::U64(a) => place(a, device),
        Tensor::Bool(a) => place(a, device),
    }
}

/// An input's element type, host address and size in bytes, for copies into bound buffers.
pub fn host_view(name: &str, t: &Tensor) -> Result<(TensorElementType, *const std::ffi::c_void, usize)> {
    fn view<T>(a: &ndarray::ArrayD<T>) -> (*const std::ffi::c_void, usize) {
        assert!(a.is_standard_layout(), "feeds are built in standard layout");
        (a.as_ptr() as *const std::ffi::c_void, a.len() * std::mem::size_of::<T>())
    }
    let (ptr, bytes) = match t {
        Tensor::Str(_) => bail!("input `{name}` holds strings, which cannot be copied into a bound buffer\n  fix: run this model without --pinned-io and --cuda-graph"),
        Tensor::Packed(p) => (p.bytes.as_ptr() as *const std::ffi::c_void, p.bytes.len()),
        Tensor::F32(a) => view(a),
        Tensor::F16(a) => view(a),
        Tensor::BF16(a) => view(a),
        Tensor::F64(a) => view(a),
        Tensor::I8(a) => view(a),
        Tensor::I16(a) => view(a),
        Tensor::I32(a) => view(a),
        Tensor::I64(a) => view(a),
        Tensor::U8(a) => view(a),
        Tensor::U16(a) => view(a),
        Tensor::U32(a) => view(a),
        Tensor::U64(a) => view(a),
        Tensor::Bool(a) => view(a),
    };
    Ok((ort_type(t.elem_type()), ptr, bytes))
}

/// An output value in host memory as a host tensor of its own type.
pub fn to_tensor(name: &str, value: &DynValue) -> Result<Tensor> {
    let ty = match value.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => bail!("output `{name}` is not a tensor ({other:?}); xbench reads tensor outputs only"),
    };
    let Some(elem) = elem_type(ty) else { bail!("output `{name}` has a type xbench cannot read ({ty:?})") };
    Ok(match elem {
        ElemType::String => Tensor::Str(value.try_extract_string_array()?),
        ElemType::Float32 => Tensor::F32(value.try_extract_array()?.to_owned()),
        ElemType::Float16 => Tensor::F16(value.try_extract_array()?.to_owned()),
        ElemType::Bfloat16 => Tensor::BF16(value.try_extract_array()?.to_owned()),
        ElemType::Float64 => Tensor::F64(value.try_extract_array()?.to_owned()),
        ElemType::Int8 => Tensor::I8(value.try_extract_array()?.to_owned()),
        ElemType::Int16 => Tensor::I16(value.try_extract_array()?.to_owned()),
        ElemType::Int32 => Tensor::I32(value.try_extract_array()?.to_owned()),
        ElemType::Int64 => Tensor::I64(value.try_extract_array()?.to_owned()),
        ElemType::Uint8 => Tensor::U8(value.try_extract_array()?.to_owned()),
        ElemType::Uint16 => Tensor::U16(value.try_extract_array()?.to_owned()),
        ElemType::Uint32 => Tensor::U32(value.try_extract_array()?.to_owned()),
        ElemType::Uint64 => Tensor::U64(value.try_extract_array()?.to_owned()),
        ElemType::Bool => Tensor::Bool(value.try_extract_array()?.to_owned()),
        packed => {
            let ValueType::Tensor { shape, .. } = value.dtype() else { unreachable!("a tensor, checked above") };
            let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
            let len = Packed::byte_len(packed, dims.iter().product());
            let t = value.view().downcast::<ort::value::DynTensorValueType>()?;
            let ptr = t.data_ptr() as *const u8;
            // SAFETY: an output in host memory of this type and shape holds `len` bytes.
            let bytes = if len == 0 || ptr.is_null() { Vec::new() } else { unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec() };
            Tensor::from_le_bytes(packed, &dims, &bytes)?
        }
    })
}

/// Host bytes of an output of ONNX Runtime's type `ty`, as a host tensor.
pub fn bytes_to_tensor(name: &str, ty: TensorElementType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
    match elem_type(ty).filter(|e| *e != ElemType::String) {
        Some(e) => Tensor::from_le_bytes(e, shape, bytes),
        None => bail!("output `{name}` has a type xbench cannot read from a bound buffer ({ty:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_bytes_convert_exactly() {
        let bytes: Vec<u8> = [0x3c00u16, 0x4000, 0xbc00, 0x7bff].iter().flat_map(|h| h.to_le_bytes()).collect();
        let Tensor::F16(a) = bytes_to_tensor("o", TensorElementType::Float16, &[1, 4], &bytes).unwrap() else { panic!("float16 expected") };
        assert_eq!(a.iter().map(|v| v.to_f32()).collect::<Vec<_>>(), [1.0, 2.0, -1.0, 65504.0]);
        assert!(bytes_to_tensor("o", TensorElementType::String, &[1], &[1]).is_err());
        for e in ElemType::ALL {
            assert_eq!(elem_type(ort_type(e)), Some(e));
        }
    }
}
