//! An ONNX file's graph without its weights: each large initializer's payload is replaced by an
//! external-data reference to the place it already holds in the file (`location`: the file's own
//! name, `offset`, `length`). A runtime given this graph reads each weight from the file when it
//! converts it, instead of first decoding the whole file — every weight copied into the decoded
//! message — and then copying every weight again into its own tensors: the file's contents are
//! never held twice, and the pages of the file are read once, as each weight needs them.
//!
//! The rewrite works on the protobuf encoding itself (ModelProto field 7, its GraphProto's
//! field 5, each TensorProto's `raw_data`, field 9), copying every other field byte for byte, so
//! that nothing it does not know about is lost; initializers of subgraphs, constants held by
//! nodes and weights already stored outside the file are left as they are.

use anyhow::{bail, Result};

/// Payloads smaller than this stay inside the graph.
const MIN_BYTES: usize = 4096;

/// `ModelProto.graph`, `GraphProto.initializer`, `TensorProto.raw_data`, `.external_data`,
/// `.data_location`, and `StringStringEntryProto.key` and `.value`.
const MODEL_GRAPH: u32 = 7;
const GRAPH_INITIALIZER: u32 = 5;
const TENSOR_RAW_DATA: u32 = 9;
const TENSOR_EXTERNAL_DATA: u32 = 13;
const TENSOR_DATA_LOCATION: u32 = 14;
/// `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: u64 = 1;

fn varint(b: &[u8], at: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&x) = b.get(*at) else { bail!("the file ends inside a number") };
        *at += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x < 0x80 {
            return Ok(v);
        }
    }
    bail!("a number longer than 10 bytes")
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One field of a message: its number, where it starts (its key), where its payload lies (for
/// length-delimited fields) and where it ends.
struct Field {
    number: u32,
    start: usize,
    payload: Option<(usize, usize)>,
    end: usize,
}

/// The fields of the message encoded in `b[start..end]`.
fn fields(b: &[u8], start: usize, end: usize) -> Result<Vec<Field>> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let begin = at;
        let key = varint(b, &mut at)?;
        let (number, wire) = ((key >> 3) as u32, key & 7);
        let payload = match wire {
            0 => {
                varint(b, &mut at)?;
                None
            }
            1 => {
                at += 8;
                None
            }
            5 => {
                at += 4;
                None
            }
            2 => {
                let n = usize::try_from(varint(b, &mut at)?)?;
                let from = at;
                at = at.checked_add(n).filter(|&e| e <= end).ok_or_else(|| anyhow::anyhow!("a field runs past its message"))?;
                Some((from, at))
            }
            other => bail!("wire type {other} is not one ONNX files use"),
        };
        if at > end {
            bail!("a field runs past its message");
        }
        out.push(Field { number, start: begin, payload, end: at });
    }
    Ok(out)
}

fn put_message(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, u64::from(number) << 3 | 2);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn entry(key: &str, value: &str) -> Vec<u8> {
    let mut e = Vec::new();
    put_message(&mut e, 1, key.as_bytes());
    put_message(&mut e, 2, value.as_bytes());
    e
}

/// A TensorProto with its payload referred to by offset, and whether it was.
fn tensor(b: &[u8], (start, end): (usize, usize), location: &str) -> Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut raw = None;
    for f in fields(b, start, end)? {
        match f.payload {
            Some((from, to)) if f.number == TENSOR_RAW_DATA && to - from >= MIN_BYTES => raw = Some((from, to)),
            _ => out.extend_from_slice(&b[f.start..f.end]),
        }
    }
    let Some((from, to)) = raw else { return Ok((out, false)) };
    for (k, v) in [("location", location.to_string()), ("offset", from.to_string()), ("length", (to - from).to_string())] {
        put_message(&mut out, TENSOR_EXTERNAL_DATA, &entry(k, &v));
    }
    put_varint(&mut out, u64::from(TENSOR_DATA_LOCATION) << 3);
    put_varint(&mut out, EXTERNAL);
    Ok((out, true))
}

/// The ONNX model encoded in `file` (the bytes of the file named `location` in its folder), with
/// each initializer of its graph of at least 4 KiB referred to by its offset in that file; `None`
/// when no initializer is (weights already outside the file, or none that large). An error says
/// the file is not an ONNX model as this rewrite reads one.
pub fn weights_by_offset(file: &[u8], location: &str) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(1 << 20);
    let mut moved = 0usize;
    for f in fields(file, 0, file.len())? {
        match f.payload {
            Some(graph) if f.number == MODEL_GRAPH => {
                let mut g = Vec::new();
                for gf in fields(file, graph.0, graph.1)? {
                    match gf.payload {
                        Some(t) if gf.number == GRAPH_INITIALIZER => {
                            let (tensor, by_offset) = tensor(file, t, location)?;
                            moved += usize::from(by_offset);
                            put_message(&mut g, GRAPH_INITIALIZER, &tensor);
                        }
                        _ => g.extend_from_slice(&file[gf.start..gf.end]),
                    }
                }
                put_message(&mut out, MODEL_GRAPH, &g);
            }
            _ => out.extend_from_slice(&file[f.start..f.end]),
        }
    }
    Ok((moved > 0).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use tract_onnx::pb;

    #[test]
    fn weights_become_references_to_their_bytes_and_everything_else_is_kept() {
        let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-bert/model.onnx")).unwrap();
        let whole = pb::ModelProto::decode(&file[..]).unwrap();
        let graph = weights_by_offset(&file, "model.onnx").unwrap().expect("the tiny BERT has weights of 4 KiB and more");
        assert!(graph.len() < file.len() / 4, "{} bytes of {}", graph.len(), file.len());
        let light = pb::ModelProto::decode(&graph[..]).unwrap();
        let (a, b) = (whole.graph.as_ref().unwrap(), light.graph.as_ref().unwrap());
        assert_eq!((a.node.len(), a.input.len(), a.output.len(), a.initializer.len()), (b.node.len(), b.input.len(), b.output.len(), b.initializer.len()));
        assert_eq!((whole.opset_import.clone(), whole.ir_version), (light.opset_import.clone(), light.ir_version));
        let mut moved = 0;
        for (t, u) in a.initializer.iter().zip(&b.initializer) {
            assert_eq!((&t.name, &t.dims, t.data_type), (&u.name, &u.dims, u.data_type));
            if t.raw_data.len() < MIN_BYTES {
                assert_eq!(t, u, "small tensors stay as they are");
                continue;
            }
            moved += 1;
            let get = |k: &str| u.external_data.iter().find(|e| e.key == k).map(|e| e.value.clone()).unwrap();
            assert_eq!(get("location"), "model.onnx");
            let (offset, length): (usize, usize) = (get("offset").parse().unwrap(), get("length").parse().unwrap());
            assert_eq!(&file[offset..offset + length], &t.raw_data[..], "`{}` points at its own bytes", t.name);
            assert!(u.raw_data.is_empty() && u.data_location == Some(pb::tensor_proto::DataLocation::External as i32));
        }
        assert!(moved > 10);
        assert!(weights_by_offset(&graph, "model.onnx").unwrap().is_none(), "nothing left to move");
        assert!(weights_by_offset(b"\x3a\xff\xff\xff\xff\x0f", "model.onnx").is_err(), "a field longer than the file");
    }
}
