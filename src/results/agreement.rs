//! Do two runtimes compute the same thing? Outputs of a cell are saved by the process that ran
//! it and compared with the reference runtime's on the same inputs, over real (non-padding)
//! positions only.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::inputs::{Feed, HostTensor};
use crate::runtimes::{Output, RuntimeId};

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

/// JSON has no infinity or NaN: serde_json writes them as null. A difference that was not finite
/// (a NaN or infinite output) reads back as infinity, so such results files stay readable.
fn non_finite_as_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// Differences in one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDiff {
    pub name: String,
    #[serde(deserialize_with = "non_finite_as_null")]
    pub max_abs: f64,
    /// Largest |a − r| / |r| over elements with |r| > the absolute tolerance.
    #[serde(deserialize_with = "non_finite_as_null")]
    pub max_rel: f64,
    pub compared: usize,
    pub within_tolerance: bool,
}

/// A cell's outputs against the reference runtime's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub reference: RuntimeId,
    #[serde(deserialize_with = "non_finite_as_null")]
    pub max_abs: f64,
    #[serde(deserialize_with = "non_finite_as_null")]
    pub max_rel: f64,
    pub within_tolerance: bool,
    pub outputs: Vec<OutputDiff>,
    /// Problems that prevent a comparison (missing output, shape mismatch).
    pub problems: Vec<String>,
}

/// A cell's outputs against the same cell of the model's sibling (`compare_with` in its
/// model.yaml: the fp32 model an fp16 model was made from), on the same inputs. Kept apart from
/// `Agreement`, which compares runtimes on one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiblingAgreement {
    /// The sibling model.
    pub sibling: String,
    /// The runtime of the sibling's cell used: the cell's own runtime, or the reference runtime
    /// when the sibling's cell on the same runtime has no outputs (`fallback` says why).
    pub runtime: RuntimeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The tolerance applied: fp16's when either model is fp16.
    pub tolerance: Tolerance,
    /// Largest differences over real token positions; null when nothing was compared.
    pub max_abs: Option<f64>,
    pub max_rel: Option<f64>,
    /// The verdict; null when the two cells' inputs differ, so that no verdict can be given.
    pub within_tolerance: Option<bool>,
    pub outputs: Vec<OutputDiff>,
    /// Why the comparison is off or impossible (inputs that differ, a missing output, a shape mismatch).
    pub problems: Vec<String>,
}

impl SiblingAgreement {
    /// Compares `got` with the sibling's `want`, after checking that both were fed the same inputs.
    pub fn new(got: &SavedOutputs, want: &SavedOutputs, sibling: &str, runtime: RuntimeId, fallback: Option<String>, tol: Tolerance) -> SiblingAgreement {
        let mut s = SiblingAgreement {
            sibling: sibling.to_string(),
            runtime,
            fallback,
            tolerance: tol,
            max_abs: None,
            max_rel: None,
            within_tolerance: None,
            outputs: Vec::new(),
            problems: Vec::new(),
        };
        if let Some(why) = feed_difference(got, want) {
            s.problems.push(format!("not compared: the inputs differ ({why})"));
            return s;
        }
        let a = compare_outputs(&got.outputs, &want.outputs, runtime, got.batch, got.seq_len, &got.mask, tol);
        s.max_abs = Some(a.max_abs).filter(|v| v.is_finite());
        s.max_rel = Some(a.max_rel).filter(|v| v.is_finite());
        s.within_tolerance = Some(a.within_tolerance);
        s.outputs = a.outputs;
        s.problems = a.problems;
        s
    }

    /// True when the outputs were compared and differ beyond the tolerance (or do not match up).
    pub fn disagrees(&self) -> bool {
        self.within_tolerance == Some(false)
    }
}

/// What a report or a run says about a model whose `compare_with` names a model the scenario does not run.
pub fn missing_sibling_note(model: &str, sibling: &str) -> String {
    format!("`{model}` is compared with `{sibling}` (`compare_with` in its model.yaml), which this scenario does not run: add `{sibling}` to `models` to compare them")
}

/// How the inputs of two saved cells differ, if they do.
pub fn feed_difference(a: &SavedOutputs, b: &SavedOutputs) -> Option<String> {
    if (a.batch, a.seq_len) != (b.batch, b.seq_len) {
        return Some(format!("{}×{} tokens against the sibling's {}×{}", a.batch, a.seq_len, b.batch, b.seq_len));
    }
    if a.mask != b.mask {
        let real = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
        return Some(format!("the real-token masks differ ({} against {} real tokens)", real(&a.mask), real(&b.mask)));
    }
    let differing: Vec<String> = a
        .inputs
        .iter()
        .filter(|(name, d)| b.inputs.iter().any(|(n, e)| n == name && e != d))
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    if !differing.is_empty() {
        return Some(format!("input {} holds other values", differing.join(", ")));
    }
    None
}

#[derive(Serialize, Deserialize)]
struct Header {
    batch: usize,
    seq_len: usize,
    mask: Vec<u8>,
    outputs: Vec<(String, Vec<usize>)>,
    /// Each input's name and a digest of its shape and values (absent in older files).
    #[serde(default)]
    inputs: Vec<(String, u64)>,
}

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

/// FNV-1a over an input's shape and values; integer inputs hash as i64 whatever their width, so
/// the same token ids fed as int32 and as int64 digest alike.
fn digest(t: &HostTensor) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for d in t.shape() {
        eat(&(*d as u64).to_le_bytes());
    }
    match t {
        HostTensor::I64(a) => a.iter().for_each(|v| eat(&v.to_le_bytes())),
        HostTensor::I32(a) => a.iter().for_each(|v| eat(&(*v as i64).to_le_bytes())),
        HostTensor::F32(a) => a.iter().for_each(|v| eat(&v.to_le_bytes())),
    }
    h
}

const MAGIC: &str = "xbench-outputs-1";

/// Saves outputs and the mask of real tokens.
pub fn write_outputs(path: &Path, outputs: &[Output], batch: usize, seq_len: usize, mask: &[u8]) -> Result<()> {
    write_with_inputs(path, outputs, batch, seq_len, mask, Vec::new())
}

/// Saves a cell's outputs with what it was fed (the mask of real tokens and a digest of each input).
pub fn save_outputs(path: &Path, outputs: &[Output], feed: &Feed) -> Result<()> {
    let inputs = feed.tensors.iter().map(|(name, t)| (name.clone(), digest(t))).collect();
    write_with_inputs(path, outputs, feed.batch, feed.seq_len, &feed.mask, inputs)
}

fn write_with_inputs(path: &Path, outputs: &[Output], batch: usize, seq_len: usize, mask: &[u8], inputs: Vec<(String, u64)>) -> Result<()> {
    let header = Header {
        batch,
        seq_len,
        mask: mask.to_vec(),
        outputs: outputs.iter().map(|o| (o.name.clone(), o.data.shape().to_vec())).collect(),
        inputs,
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?);
    writeln!(f, "{MAGIC}")?;
    serde_json::to_writer(&mut f, &header)?;
    writeln!(f)?;
    for o in outputs {
        for v in o.data.iter() {
            f.write_all(&v.to_le_bytes())?;
        }
    }
    f.flush()?;
    Ok(())
}

/// Reads what `write_outputs` saved: (outputs, batch, seq_len, mask).
pub fn read_outputs(path: &Path) -> Result<(Vec<Output>, usize, usize, Vec<u8>)> {
    let s = read_saved(path)?;
    Ok((s.outputs, s.batch, s.seq_len, s.mask))
}

/// Reads what `save_outputs` (or `write_outputs`) saved.
pub fn read_saved(path: &Path) -> Result<SavedOutputs> {
    let mut r = BufReader::new(std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    if line.trim_end() != MAGIC {
        bail!("{} is not an xbench outputs file", path.display());
    }
    line.clear();
    r.read_line(&mut line)?;
    let h: Header = serde_json::from_str(&line)?;
    let mut outputs = Vec::new();
    for (name, shape) in h.outputs {
        let n: usize = shape.iter().product();
        let mut buf = vec![0u8; n * 4];
        r.read_exact(&mut buf)?;
        let data = buf.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        outputs.push(Output { name, data: ArrayD::from_shape_vec(IxDyn(&shape), data)? });
    }
    Ok(SavedOutputs { outputs, batch: h.batch, seq_len: h.seq_len, mask: h.mask, inputs: h.inputs })
}

/// Compares `got` with `reference`. Outputs shaped [batch, seq_len, …] are compared at real
/// token positions only; padding positions carry no meaning and differ between runtimes.
pub fn compare_outputs(
    got: &[Output],
    reference: &[Output],
    reference_id: RuntimeId,
    batch: usize,
    seq_len: usize,
    mask: &[u8],
    tol: Tolerance,
) -> Agreement {
    let mut diffs = Vec::new();
    let mut problems = Vec::new();
    for r in reference {
        let Some(g) = got.iter().find(|g| g.name == r.name) else {
            problems.push(format!("output `{}` is missing", r.name));
            continue;
        };
        if g.data.shape() != r.data.shape() {
            problems.push(format!("output `{}` has shape {:?}, the reference {:?}", r.name, g.data.shape(), r.data.shape()));
            continue;
        }
        let shape = r.data.shape();
        let per_position = shape.len() >= 2 && shape[0] == batch && shape[1] == seq_len && mask.len() == batch * seq_len;
        let inner: usize = if per_position { shape[2..].iter().product() } else { 1 };
        let (mut max_abs, mut max_rel, mut compared, mut ok) = (0f64, 0f64, 0usize, true);
        for (i, (a, b)) in g.data.iter().zip(r.data.iter()).enumerate() {
            if per_position && mask[i / inner] == 0 {
                continue;
            }
            let (a, b) = (*a as f64, *b as f64);
            let d = (a - b).abs();
            if !d.is_finite() && !(a.is_nan() && b.is_nan()) {
                ok = false;
                max_abs = f64::INFINITY;
            } else if d.is_finite() {
                max_abs = max_abs.max(d);
                if b.abs() > tol.abs {
                    max_rel = max_rel.max(d / b.abs());
                }
                if d > tol.abs + tol.rel * b.abs() {
                    ok = false;
                }
            }
            compared += 1;
        }
        diffs.push(OutputDiff { name: r.name.clone(), max_abs, max_rel, compared, within_tolerance: ok });
    }
    Agreement {
        reference: reference_id,
        max_abs: diffs.iter().map(|d| d.max_abs).fold(0.0, f64::max),
        max_rel: diffs.iter().map(|d| d.max_rel).fold(0.0, f64::max),
        within_tolerance: problems.is_empty() && diffs.iter().all(|d| d.within_tolerance),
        outputs: diffs,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(name: &str, shape: &[usize], data: Vec<f32>) -> Output {
        Output { name: name.into(), data: ArrayD::from_shape_vec(IxDyn(shape), data).unwrap() }
    }

    #[test]
    fn padding_positions_are_ignored() {
        // batch 1, seq 2, hidden 2; second position is padding and differs wildly.
        let r = [out("h", &[1, 2, 2], vec![1.0, 2.0, 3.0, 4.0])];
        let g = [out("h", &[1, 2, 2], vec![1.00001, 2.0, 99.0, -99.0])];
        let a = compare_outputs(&g, &r, RuntimeId::OrtCpu, 1, 2, &[1, 0], Tolerance::default());
        assert!(a.within_tolerance, "{a:?}");
        assert_eq!(a.outputs[0].compared, 2);
        let a = compare_outputs(&g, &r, RuntimeId::OrtCpu, 1, 2, &[1, 1], Tolerance::default());
        assert!(!a.within_tolerance);
        assert!((a.max_abs - 103.0).abs() < 1e-9);
    }

    #[test]
    fn wrong_shape_or_missing_output_is_a_problem() {
        let r = [out("h", &[2], vec![1.0, 2.0]), out("p", &[1], vec![0.0])];
        let g = [out("h", &[1, 2], vec![1.0, 2.0])];
        let a = compare_outputs(&g, &r, RuntimeId::OrtCpu, 1, 1, &[1], Tolerance::default());
        assert!(!a.within_tolerance);
        assert_eq!(a.problems.len(), 2);
    }

    fn feed(ids: HostTensor, mask: Vec<u8>) -> Feed {
        let (batch, seq_len) = (ids.shape()[0], ids.shape()[1]);
        Feed { batch, seq_len, tensors: vec![("input_ids".into(), ids)], mask, text: Default::default() }
    }

    #[test]
    fn saved_inputs_tell_feeds_apart() {
        let dir = std::env::temp_dir().join(format!("xbench-saved-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = vec![out("h", &[1, 3, 1], vec![1.0, 2.0, 3.0])];
        let ids64 = HostTensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![101, 7, 0]).unwrap());
        let ids32 = HostTensor::I32(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![101, 7, 0]).unwrap());
        let other = HostTensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![101, 8, 0]).unwrap());
        let read = |name: &str, ids: HostTensor, mask: Vec<u8>| {
            let p = dir.join(name);
            save_outputs(&p, &o, &feed(ids, mask)).unwrap();
            read_saved(&p).unwrap()
        };
        let a = read("a", ids64, vec![1, 1, 0]);
        assert_eq!((a.batch, a.seq_len, a.outputs.clone()), (1, 3, o.clone()));
        assert_eq!(a.inputs.len(), 1);
        // The same ids as int32 are the same feed.
        assert_eq!(feed_difference(&a, &read("b", ids32, vec![1, 1, 0])), None);
        let d = feed_difference(&a, &read("c", other, vec![1, 1, 0])).unwrap();
        assert!(d.contains("`input_ids`"), "{d}");
        let ids = HostTensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![101, 7, 0]).unwrap());
        let d = feed_difference(&a, &read("d", ids, vec![1, 0, 0])).unwrap();
        assert!(d.contains("masks differ (2 against 1 real tokens)"), "{d}");
        // Files written without inputs (older ones) compare on the mask alone.
        write_outputs(&dir.join("e"), &o, 1, 3, &[1, 1, 0]).unwrap();
        assert_eq!(feed_difference(&a, &read_saved(&dir.join("e")).unwrap()), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_non_finite_difference_survives_a_json_round_trip() {
        let r = [out("h", &[1, 1, 2], vec![1.0, 2.0])];
        let g = [out("h", &[1, 1, 2], vec![f32::NAN, 2.0])];
        let a = compare_outputs(&g, &r, RuntimeId::OrtCpu, 1, 1, &[1], Tolerance::default());
        assert!(!a.within_tolerance && a.max_abs.is_infinite());
        let back: Agreement = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert!(back.max_abs.is_infinite() && !back.within_tolerance);
        assert!(back.outputs[0].max_abs.is_infinite());
    }

    #[test]
    fn outputs_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("xbench-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("o.bin");
        let o = vec![out("a", &[1, 2, 3], (0..6).map(|v| v as f32 * 0.5).collect()), out("b", &[1, 3], vec![7.0, 8.0, 9.0])];
        write_outputs(&p, &o, 1, 2, &[1, 1]).unwrap();
        let (back, b, s, m) = read_outputs(&p).unwrap();
        assert_eq!((b, s, m), (1, 2, vec![1, 1]));
        assert_eq!(back, o);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
