//! A model's own test data: `test_data_set_N/` folders beside its ONNX file holding
//! `input_K.pb` and `output_K.pb` (ONNX `TensorProto` files), the layout of ONNX's backend node
//! tests and of ONNX Runtime's onnx_test_runner. A model that has them runs on those inputs, and
//! the outputs are judged against the expected ones.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::inside::real_inside;
use super::{read_tensor_proto, IoInfo};
use crate::tensor::{Output, Tensor};

/// Most data sets read from one model folder.
const MAX_SETS: usize = 1000;

/// The `test_data_set_N` folders in `dir`, in order of N.
pub fn discover(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut sets: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("test_data_set_")?.parse::<usize>().ok()?;
            // A folder, or a link to one (`check_inside` refuses links that leave the model's folder).
            e.file_type().ok().filter(|t| t.is_dir() || (t.is_symlink() && e.path().is_dir())).map(|_| (n, e.path()))
        })
        .collect();
    sets.sort();
    sets.into_iter().take(MAX_SETS).map(|(_, p)| p).collect()
}

/// Refuses data sets, and `input_K.pb`/`output_K.pb` files in them, that really lie outside the
/// model's folder `dir` (links followed), and such files that are not regular files (a pipe or a
/// device would never end).
pub fn check_inside(sets: &[PathBuf], dir: &Path) -> Result<()> {
    let fix = "copy the test data into the model's folder instead of linking to it";
    for set in sets {
        if let Err(why) = real_inside(set, dir) {
            bail!("its test data folder {} {why}; the files of a model stay inside its folder\n  fix: {fix}", set.display());
        }
        let entries = std::fs::read_dir(set).with_context(|| format!("cannot list {}", set.display()))?;
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let numbered = ["input_", "output_"].iter().any(|p| name.strip_prefix(p).and_then(|r| r.strip_suffix(".pb")).is_some_and(|k| k.parse::<usize>().is_ok()));
            if !numbered {
                continue;
            }
            let path = e.path();
            if let Err(why) = real_inside(&path, dir) {
                bail!("its test data file {} {why}; the files of a model stay inside its folder\n  fix: {fix}", path.display());
            }
            if !path.is_file() {
                bail!("its test data file {} is not a regular file\n  fix: write the tensor into a regular file (an ONNX TensorProto) at that path", path.display());
            }
        }
    }
    Ok(())
}

/// The numbered `prefix_K.pb` files of a data set, in order of K.
fn numbered(set: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(set)
        .with_context(|| format!("cannot list {}", set.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let k = name.strip_prefix(prefix)?.strip_suffix(".pb")?.parse::<usize>().ok()?;
            Some((k, e.path()))
        })
        .collect();
    files.sort();
    for (i, (k, _)) in files.iter().enumerate() {
        if *k != i {
            bail!("{} has no {prefix}{i}.pb (files are numbered from 0 without gaps)", set.display());
        }
    }
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// The name a TensorProto file gives its tensor, read without its data.
fn tensor_name(path: &Path) -> Result<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Named {
        #[prost(string, tag = "8")]
        name: String,
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(<Named as prost::Message>::decode(bytes.as_slice()).with_context(|| format!("{} is not an ONNX TensorProto", path.display()))?.name)
}

/// The `prefix_K.pb` files matched to `declared` (the graph's inputs or outputs): by the name each
/// file's tensor carries, by position only for a tensor with no name. A file that matches nothing
/// is refused, named, as is a graph input or output no file gives. Each file comes with the index
/// of what it gives in `declared`.
fn match_files(set: &Path, prefix: &str, declared: &[IoInfo]) -> Result<Vec<(PathBuf, usize)>> {
    let what = if prefix == "input_" { "input" } else { "output" };
    let list = || declared.iter().map(|d| format!("`{}`", d.name)).collect::<Vec<_>>().join(", ");
    let mut matched: Vec<(PathBuf, usize)> = Vec::new();
    for (k, path) in numbered(set, prefix)?.into_iter().enumerate() {
        let name = tensor_name(&path)?;
        let i = if name.is_empty() {
            if k >= declared.len() {
                bail!(
                    "{}: its tensor has no name, and position {k} is past the graph's {} {what}s ({})\n  fix: remove the file, or name its tensor after a graph {what}",
                    path.display(),
                    declared.len(),
                    list()
                );
            }
            k
        } else {
            let Some(i) = declared.iter().position(|d| d.name == name) else {
                bail!("{}: its tensor is named `{name}`, which is no graph {what} (the graph's {what}s: {})\n  fix: remove the file, or name its tensor after a graph {what} (or leave the name empty to match by position)", path.display(), list());
            };
            i
        };
        if let Some((other, _)) = matched.iter().find(|(_, j)| *j == i) {
            let file = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            bail!("{}: {} and {} both give the graph {what} `{}`\n  fix: name each file's tensor after a different one, or leave the names empty", set.display(), file(other), file(&path), declared[i].name);
        }
        matched.push((path, i));
    }
    if let Some(missing) = declared.iter().enumerate().find(|(i, _)| !matched.iter().any(|(_, j)| j == i)).map(|(_, d)| d) {
        bail!("{} gives no {prefix}K.pb file for the graph {what} `{}` (the graph's {what}s: {})\n  fix: give one file per graph {what}, named after it", set.display(), missing.name, list());
    }
    matched.sort_by_key(|(_, i)| *i);
    Ok(matched)
}

/// Checks that every file of a data set gives a graph input or output and that all are given,
/// reading only the tensors' names.
pub fn check_names(set: &Path, inputs: &[IoInfo], outputs: &[IoInfo]) -> Result<()> {
    match_files(set, "input_", inputs)?;
    match_files(set, "output_", outputs).map(|_| ())
}

/// The tensors of `prefix_K.pb` files matched to `declared` ([`match_files`]), in the graph's
/// order, each with its source (which says when a file was taken by position).
fn read_matched(set: &Path, prefix: &str, declared: &[IoInfo]) -> Result<Vec<(String, Tensor, String)>> {
    let what = if prefix == "input_" { "input" } else { "output" };
    let set_name = set.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = Vec::new();
    for (path, i) in match_files(set, prefix, declared)? {
        let (name, tensor) = read_tensor_proto(&path)?;
        let io = &declared[i];
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if io.elem_type != tensor.elem_type() {
            bail!("{}: `{}` is {}, but the graph's {what} `{}` is {}\n  fix: write the file with the graph's type", path.display(), name, tensor.elem_type(), io.name, io.elem_type);
        }
        let source = if name.is_empty() { format!("{set_name}/{file} (unnamed: taken by position as `{}`)", io.name) } else { format!("{set_name}/{file}") };
        out.push((io.name.clone(), tensor, source));
    }
    Ok(out)
}

/// A data set's inputs, in the graph's input order, each with the file it came from.
pub fn read_inputs(set: &Path, inputs: &[IoInfo]) -> Result<Vec<(String, Tensor, String)>> {
    read_matched(set, "input_", inputs)
}

/// A data set's expected outputs, named as the graph names them.
pub fn read_expected(set: &Path, outputs: &[IoInfo]) -> Result<Vec<Output>> {
    Ok(read_matched(set, "output_", outputs)?.into_iter().map(|(name, data, _)| Output { name, data }).collect())
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use tract_onnx::pb::TensorProto;

    use super::*;

    fn write_pb(path: &Path, name: &str, data_type: i32, raw: Vec<u8>, dims: Vec<i64>) {
        let t = TensorProto { name: name.into(), data_type, raw_data: raw, dims, ..Default::default() };
        std::fs::write(path, t.encode_to_vec()).unwrap();
    }

    fn io(name: &str, ty: &str) -> IoInfo {
        IoInfo { name: name.into(), elem_type: ty.into(), dims: None, structural_use: None }
    }

    #[test]
    fn data_sets_are_found_in_order_and_matched_by_name_then_position() {
        let dir = tempfile::tempdir().unwrap();
        for n in [10, 2, 0] {
            std::fs::create_dir(dir.path().join(format!("test_data_set_{n}"))).unwrap();
        }
        std::fs::create_dir(dir.path().join("test_data_set_x")).unwrap();
        let sets = discover(dir.path());
        let names: Vec<String> = sets.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["test_data_set_0", "test_data_set_2", "test_data_set_10"]);

        let set = &sets[0];
        // Files named after the graph's inputs in the other order, and one without a name.
        write_pb(&set.join("input_0.pb"), "b", 7, 5i64.to_le_bytes().to_vec(), vec![1]);
        write_pb(&set.join("input_1.pb"), "a", 1, 1.5f32.to_le_bytes().to_vec(), vec![1]);
        let got = read_inputs(set, &[io("a", "float32"), io("b", "int64")]).unwrap();
        assert_eq!(got.iter().map(|(n, _, f)| (n.as_str(), f.as_str())).collect::<Vec<_>>(), [("a", "test_data_set_0/input_1.pb"), ("b", "test_data_set_0/input_0.pb")]);
        let e = read_inputs(set, &[io("a", "float32"), io("b", "int32")]).unwrap_err().to_string();
        assert!(e.contains("`b` is int64") && e.contains("is int32"), "{e}");
        // A named file that matches no input is refused, naming it; an unnamed one goes by position, said so.
        let e = read_inputs(set, &[io("a", "float32")]).unwrap_err().to_string();
        assert!(e.contains("input_0.pb: its tensor is named `b`, which is no graph input (the graph's inputs: `a`)"), "{e}");
        let e = read_inputs(set, &[io("a", "float32"), io("b", "int64"), io("c", "int64")]).unwrap_err().to_string();
        assert!(e.contains("gives no input_K.pb file for the graph input `c`"), "{e}");
        write_pb(&set.join("output_0.pb"), "", 9, vec![1, 0], vec![2]);
        let out = read_expected(set, &[io("y", "bool")]).unwrap();
        assert_eq!((out[0].name.as_str(), out[0].data.shape()), ("y", &[2][..]));
        write_pb(&set.join("output_1.pb"), "", 9, vec![1, 0], vec![2]);
        let e = read_expected(set, &[io("y", "bool")]).unwrap_err().to_string();
        assert!(e.contains("output_1.pb: its tensor has no name, and position 1 is past the graph's 1 outputs (`y`)") && e.contains("remove the file"), "{e}");
        std::fs::remove_file(set.join("output_1.pb")).unwrap();
        std::fs::write(set.join("output_2.pb"), b"").unwrap();
        assert!(read_expected(set, &[io("y", "bool")]).unwrap_err().to_string().contains("no output_1.pb"));
    }
}
