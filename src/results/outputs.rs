//! A cell's outputs, saved by the process that ran it so that another runtime's (or a sibling
//! model's) cell can be compared with it: one safetensors file per cell (numpy, torch and
//! `safetensors.numpy.load_file` read it), with what the cell was fed in its metadata — the
//! mask of real tokens and a digest of each input. Written atomically.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::tensor::{ElemType, Output, Tensor};

/// What was saved for a cell: its outputs and what it was fed.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedOutputs {
    pub outputs: Vec<Output>,
    pub batch: usize,
    pub seq_len: usize,
    /// Row-major [batch, seq_len] mask of real tokens.
    pub mask: Vec<u8>,
    /// Each input tensor's name and a digest of its shape and values.
    pub inputs: Vec<(String, u64)>,
}

/// Marks the files this module writes.
const FORMAT: &str = "xbench-outputs-2";

fn dtype(t: ElemType) -> Option<Dtype> {
    Some(match t {
        ElemType::Float32 => Dtype::F32,
        ElemType::Float16 => Dtype::F16,
        ElemType::Bfloat16 => Dtype::BF16,
        ElemType::Float64 => Dtype::F64,
        ElemType::Int8 => Dtype::I8,
        ElemType::Int16 => Dtype::I16,
        ElemType::Int32 => Dtype::I32,
        ElemType::Int64 => Dtype::I64,
        ElemType::Uint8 => Dtype::U8,
        ElemType::Uint16 => Dtype::U16,
        ElemType::Uint32 => Dtype::U32,
        ElemType::Uint64 => Dtype::U64,
        ElemType::Bool => Dtype::BOOL,
        _ => return None,
    })
}

fn elem_type(d: Dtype) -> Option<ElemType> {
    ElemType::ALL.into_iter().find(|t| dtype(*t) == Some(d))
}

/// Writes `tensors` (fixed-size types; strings go into the metadata as JSON) with `meta` to a
/// safetensors file at `path`, replaced atomically.
pub fn write_tensors(path: &Path, tensors: &[Output], mut meta: HashMap<String, String>) -> Result<()> {
    let mut bytes: Vec<(String, ElemType, Vec<usize>, Vec<u8>)> = Vec::new();
    for o in tensors {
        match o.data.to_le_bytes() {
            // Packed types (8-bit floats, 4-bit types) have no safetensors type of their own: their
            // bytes are stored as uint8, their type and shape in the metadata.
            Some(b) if o.data.elem_type().packed_bits().is_some() => {
                meta.insert(format!("packed:{}", o.name), serde_json::to_string(&(o.data.elem_type().name(), o.data.shape()))?);
                bytes.push((o.name.clone(), ElemType::Uint8, vec![b.len()], b));
            }
            Some(b) => bytes.push((o.name.clone(), o.data.elem_type(), o.data.shape().to_vec(), b)),
            // Strings have no safetensors type: they go into the metadata, as JSON.
            None => {
                let strings = o.data.strings().unwrap_or_default();
                meta.insert(format!("strings:{}", o.name), serde_json::to_string(&(o.data.shape(), strings))?);
            }
        }
    }
    let views = bytes
        .iter()
        .map(|(name, ty, shape, data)| Ok((name.as_str(), TensorView::new(dtype(*ty).expect("fixed-size type"), shape.clone(), data)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .context("cannot lay out the tensors")?;
    let file = safetensors::serialize(views, Some(meta)).context("cannot serialize the tensors")?;
    super::files::replace(path, &file, false)
}

/// Reads every tensor of a safetensors file (in the file's order) and its metadata.
pub fn read_tensors(path: &Path) -> Result<(Vec<Output>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_tensors(&bytes, None).with_context(|| format!("{} is not a readable safetensors file", path.display()))
}

/// Every tensor (in the file's order) and the metadata of a safetensors file's bytes.
pub fn tensors_from_bytes(bytes: &[u8]) -> Result<(Vec<Output>, HashMap<String, String>)> {
    parse_tensors(bytes, None)
}

/// The tensors of a safetensors file: those `order` names, in that order (strings from the
/// metadata included), or else all of them in the file's order.
fn parse_tensors(bytes: &[u8], order: Option<Vec<String>>) -> Result<(Vec<Output>, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes)?;
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    let meta = header.metadata().clone().unwrap_or_default();
    let names = order.unwrap_or_else(|| {
        let mut found: Vec<(usize, String)> = st.tensors().into_iter().map(|(n, v)| (v.data().as_ptr() as usize, n)).collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect()
    });
    let mut outputs = Vec::new();
    for name in names {
        let data = match meta.get(&format!("strings:{name}")) {
            Some(json) => {
                let (shape, strings): (Vec<usize>, Vec<String>) = serde_json::from_str(json)?;
                Tensor::Str(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), strings)?)
            }
            None if meta.contains_key(&format!("packed:{name}")) => {
                let (ty, shape): (String, Vec<usize>) = serde_json::from_str(&meta[&format!("packed:{name}")])?;
                let ty = ElemType::from_name(&ty).with_context(|| format!("tensor `{name}` has type {ty}, which xbench does not read"))?;
                Tensor::from_le_bytes(ty, &shape, st.tensor(&name)?.data())?
            }
            None => {
                let view = st.tensor(&name)?;
                let ty = elem_type(view.dtype()).with_context(|| format!("tensor `{name}` has type {:?}, which xbench does not read", view.dtype()))?;
                Tensor::from_le_bytes(ty, view.shape(), view.data())?
            }
        };
        outputs.push(Output { name, data });
    }
    Ok((outputs, meta))
}

impl SavedOutputs {
    /// Writes the file at `path`, replacing it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("batch".to_string(), self.batch.to_string());
        meta.insert("seq_len".to_string(), self.seq_len.to_string());
        meta.insert("mask".to_string(), self.mask.iter().map(|&m| if m != 0 { '1' } else { '0' }).collect());
        meta.insert("inputs".to_string(), serde_json::to_string(&self.inputs)?);
        meta.insert("outputs".to_string(), serde_json::to_string(&self.outputs.iter().map(|o| &o.name).collect::<Vec<_>>())?);
        write_tensors(path, &self.outputs, meta)
    }

    /// Reads what [`SavedOutputs::write`] wrote; an error names the file.
    pub fn read(path: &Path) -> Result<SavedOutputs> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read the saved outputs {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("{} is not a readable outputs file", path.display()))
    }

    fn parse(bytes: &[u8]) -> Result<SavedOutputs> {
        let (_, header) = SafeTensors::read_metadata(bytes)?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| meta.get(k).with_context(|| format!("no `{k}` in its metadata"));
        if get("format")? != FORMAT {
            bail!("it was not written by this version of xbench");
        }
        let (outputs, _) = parse_tensors(bytes, Some(serde_json::from_str(get("outputs")?)?))?;
        Ok(SavedOutputs {
            outputs,
            batch: get("batch")?.parse()?,
            seq_len: get("seq_len")?.parse()?,
            mask: get("mask")?.bytes().map(|b| (b == b'1') as u8).collect(),
            inputs: serde_json::from_str(get("inputs")?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;

    #[test]
    fn outputs_of_every_type_round_trip_with_what_was_fed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cell-0.safetensors");
        let out = |name: &str, data: Tensor| Output { name: name.into(), data };
        let saved = SavedOutputs {
            outputs: vec![
                out("z", Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, 2, 3]), (0..6).map(|v| v as f32 * 0.5).collect()).unwrap())),
                out("a", Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![7, -8, 9]).unwrap())),
                out("h", Tensor::F16(ArrayD::from_elem(IxDyn(&[2]), half::f16::from_f32(1.5)))),
                out("b", Tensor::Bool(ArrayD::from_shape_vec(IxDyn(&[2]), vec![true, false]).unwrap())),
                out("s", Tensor::Str(ArrayD::from_shape_vec(IxDyn(&[2]), vec!["x".into(), "yz".into()]).unwrap())),
                out("e", Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[0, 4]), vec![]).unwrap())),
            ],
            batch: 1,
            seq_len: 2,
            mask: vec![1, 0],
            inputs: vec![("input_ids".into(), 42)],
        };
        saved.write(&p).unwrap();
        assert_eq!(SavedOutputs::read(&p).unwrap(), saved, "order, types, shapes, values and feed all come back");
        std::fs::write(&p, b"not a safetensors file").unwrap();
        let e = format!("{:#}", SavedOutputs::read(&p).unwrap_err());
        assert!(e.contains("cell-0.safetensors") && e.contains("not a readable outputs file"), "{e}");
    }
}
