//! Tensors stored in files: ONNX `TensorProto` files (`.pb`, the layout of ONNX's backend tests and
//! of ONNX Runtime's onnx_test_runner) and numpy `.npy` files — a model's own test data, and input
//! values a user gives.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use prost::Message;
use tract_onnx::pb::TensorProto;

use crate::tensor::{ElemType, Tensor};

/// Largest tensor file read (a test input, a value file), so that a mistaken path cannot fill memory.
const MAX_BYTES: u64 = 1 << 31;

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let md = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !md.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if md.len() > MAX_BYTES {
        bail!("{} holds {} bytes, more than the {} a tensor file may\n  fix: give a smaller tensor", path.display(), md.len(), MAX_BYTES);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A `.pb` or `.npy` file, by its extension; the name is the proto's own, else the file's stem.
pub fn read_tensor_file(path: &Path) -> Result<(String, Tensor)> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => Ok((path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(), read_npy(path)?)),
        _ => read_tensor_proto(path),
    }
}

/// An ONNX `TensorProto` file: its name (possibly empty) and tensor.
pub fn read_tensor_proto(path: &Path) -> Result<(String, Tensor)> {
    let bytes = read_bounded(path)?;
    let t = TensorProto::decode(bytes.as_slice()).map_err(|e| anyhow!("{} is not an ONNX TensorProto file ({e})", path.display()))?;
    let tensor = from_proto(&t).with_context(|| format!("{}", path.display()))?;
    Ok((t.name.clone(), tensor))
}

fn from_proto(t: &TensorProto) -> Result<Tensor> {
    if t.data_location == Some(1) {
        bail!("the tensor's data is stored in another file (external data), which xbench does not read here");
    }
    let ty = ElemType::from_onnx_code(t.data_type).ok_or_else(|| anyhow!("element type #{} is not one xbench reads (float8, int4 and complex types are not)", t.data_type))?;
    let shape: Vec<usize> = t.dims.iter().map(|&d| usize::try_from(d).map_err(|_| anyhow!("dim {d} is negative"))).collect::<Result<_>>()?;
    if !t.raw_data.is_empty() {
        return Tensor::from_le_bytes(ty, &shape, &t.raw_data);
    }
    fn arr<T>(shape: &[usize], v: Vec<T>) -> Result<ArrayD<T>> {
        let (n, got) = (shape.iter().product::<usize>(), v.len());
        ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|_| anyhow!("{n} values expected for shape {shape:?}, the file holds {got}"))
    }
    // Values in the typed fields, as onnx.proto stores each type.
    Ok(match ty {
        ElemType::Float32 => Tensor::F32(arr(&shape, t.float_data.clone())?),
        ElemType::Float64 => Tensor::F64(arr(&shape, t.double_data.clone())?),
        ElemType::Int64 => Tensor::I64(arr(&shape, t.int64_data.clone())?),
        ElemType::Uint64 => Tensor::U64(arr(&shape, t.uint64_data.clone())?),
        ElemType::Uint32 => Tensor::U32(arr(&shape, t.uint64_data.iter().map(|&v| v as u32).collect())?),
        ElemType::Int32 => Tensor::I32(arr(&shape, t.int32_data.clone())?),
        ElemType::Int16 => Tensor::I16(arr(&shape, t.int32_data.iter().map(|&v| v as i16).collect())?),
        ElemType::Int8 => Tensor::I8(arr(&shape, t.int32_data.iter().map(|&v| v as i8).collect())?),
        ElemType::Uint16 => Tensor::U16(arr(&shape, t.int32_data.iter().map(|&v| v as u16).collect())?),
        ElemType::Uint8 => Tensor::U8(arr(&shape, t.int32_data.iter().map(|&v| v as u8).collect())?),
        ElemType::Bool => Tensor::Bool(arr(&shape, t.int32_data.iter().map(|&v| v != 0).collect())?),
        ElemType::Float16 => Tensor::F16(arr(&shape, t.int32_data.iter().map(|&v| f16::from_bits(v as u16)).collect())?),
        ElemType::Bfloat16 => Tensor::BF16(arr(&shape, t.int32_data.iter().map(|&v| bf16::from_bits(v as u16)).collect())?),
        ElemType::String => {
            let strings = t.string_data.iter().map(|b| String::from_utf8(b.clone()).map_err(|_| anyhow!("a string is not UTF-8"))).collect::<Result<Vec<_>>>()?;
            Tensor::Str(arr(&shape, strings)?)
        }
        // 8-bit floats and 4-bit types: one byte per int32 (two 4-bit elements to a byte).
        packed => Tensor::from_le_bytes(packed, &shape, &t.int32_data.iter().map(|&v| v as u8).collect::<Vec<_>>())?,
    })
}

/// A numpy `.npy` file (format 1–3, little-endian or one-byte types, C order).
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = read_bounded(path)?;
    parse_npy(&bytes).with_context(|| format!("{} is not a .npy file xbench reads", path.display()))
}

fn parse_npy(bytes: &[u8]) -> Result<Tensor> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("it does not start with numpy's magic string");
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => bail!("format version {v} is unknown"),
    };
    let header = std::str::from_utf8(bytes.get(start..start + header_len).context("the header is cut short")?).context("the header is not text")?;
    let dict: py_literal::Value = header.trim().parse().map_err(|e| anyhow!("its header is not a Python literal ({e})"))?;
    let py_literal::Value::Dict(entries) = dict else { bail!("its header is not a dictionary") };
    let get = |key: &str| entries.iter().find(|(k, _)| matches!(k, py_literal::Value::String(s) if s == key)).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(py_literal::Value::String(s)) => s.clone(),
        _ => bail!("its header has no `descr`"),
    };
    if matches!(get("fortran_order"), Some(py_literal::Value::Boolean(true))) {
        bail!("it is stored in Fortran order; save it in C order (numpy.ascontiguousarray)");
    }
    let shape: Vec<usize> = match get("shape") {
        Some(py_literal::Value::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                py_literal::Value::Integer(i) => usize::try_from(i.clone()).map_err(|_| anyhow!("dim {i} is out of range")),
                other => Err(anyhow!("dim {other} is not a whole number")),
            })
            .collect::<Result<_>>()?,
        _ => bail!("its header has no `shape`"),
    };
    let ty = match descr.trim_start_matches(['<', '|', '=']) {
        "f4" => ElemType::Float32,
        "f2" => ElemType::Float16,
        "f8" => ElemType::Float64,
        "i1" => ElemType::Int8,
        "i2" => ElemType::Int16,
        "i4" => ElemType::Int32,
        "i8" => ElemType::Int64,
        "u1" => ElemType::Uint8,
        "u2" => ElemType::Uint16,
        "u4" => ElemType::Uint32,
        "u8" => ElemType::Uint64,
        "b1" => ElemType::Bool,
        other => bail!("its element type `{other}` is not one xbench reads (big-endian, strings and objects are not)"),
    };
    let body = &bytes[start + header_len..];
    let need = shape.iter().product::<usize>() * ty.size().expect("fixed-size");
    if body.len() != need {
        bail!("it holds {} bytes of data where shape {shape:?} of {ty} needs {need}", body.len());
    }
    Tensor::from_le_bytes(ty, &shape, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn npy_files_of_each_type_read_as_numpy_wrote_them() {
        let t = parse_npy(&npy("<i8", "(2,)", &[16000i64.to_le_bytes(), 8000i64.to_le_bytes()].concat())).unwrap();
        assert_eq!(t, Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![16000, 8000]).unwrap()));
        let t = parse_npy(&npy("<f4", "()", &1.5f32.to_le_bytes())).unwrap();
        assert_eq!((t.shape(), t.elem_type()), (&[][..], ElemType::Float32));
        let t = parse_npy(&npy("|b1", "(1, 3)", &[1, 0, 1])).unwrap();
        assert_eq!(t, Tensor::Bool(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![true, false, true]).unwrap()));
        assert!(parse_npy(&npy(">f4", "(1,)", &[0; 4])).is_err(), "big-endian data is refused");
        let e = format!("{:#}", parse_npy(&npy("<f4", "(3,)", &[0; 4])).unwrap_err());
        assert!(e.contains("needs 12"), "{e}");
        assert!(parse_npy(b"not numpy").is_err());
    }

    #[test]
    fn tensor_protos_read_from_raw_and_typed_fields() {
        let mut t = TensorProto { dims: vec![2], data_type: 7, raw_data: [3i64.to_le_bytes(), (-4i64).to_le_bytes()].concat(), ..Default::default() };
        assert_eq!(from_proto(&t).unwrap(), Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![3, -4]).unwrap()));
        t.raw_data.clear();
        t.int64_data = vec![5, 6];
        assert_eq!(from_proto(&t).unwrap(), Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![5, 6]).unwrap()));
        let b = TensorProto { dims: vec![3], data_type: 9, int32_data: vec![1, 0, 1], ..Default::default() };
        assert_eq!(from_proto(&b).unwrap(), Tensor::Bool(ArrayD::from_shape_vec(IxDyn(&[3]), vec![true, false, true]).unwrap()));
        let s = TensorProto { dims: vec![2], data_type: 8, string_data: vec![b"ab".to_vec(), b"c".to_vec()], ..Default::default() };
        assert_eq!(from_proto(&s).unwrap().strings().unwrap(), vec!["ab".to_string(), "c".into()]);
        let bad = TensorProto { dims: vec![3], data_type: 1, float_data: vec![1.0], ..Default::default() };
        assert!(from_proto(&bad).is_err());
        assert!(from_proto(&TensorProto { data_type: 17, ..Default::default() }).is_err());
    }
}
