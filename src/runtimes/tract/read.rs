//! Reading an ONNX file into tract with its weights read by offset.

use anyhow::bail;
use tract_onnx::prelude::*;

/// Reads the ONNX file at `onnx` into tract. The graph is given to tract without its weights,
/// which tract then reads from the file one by one by offset (`weights_by_offset`), so that the
/// file's contents are never held twice (tract's own reading decodes the whole file, every weight
/// copied, before copying each weight again into its tensors). A file that cannot be read so is
/// read by tract as it is.
pub(super) fn read_model(onnx: &std::path::Path) -> TractResult<InferenceModel> {
    // value_info (intermediate shapes) is ignored: exporters write it with the graph's symbolic
    // dims (`batch`, `sequence`), which clash with the concrete input shapes set in `prepare`.
    // tract infers those shapes itself.
    let mut framework = tract_onnx::onnx().with_ignore_value_info(true);
    let light = || -> Option<(Vec<u8>, String)> {
        let path = std::fs::canonicalize(onnx).ok()?;
        let file = std::fs::File::open(&path).ok()?;
        // SAFETY: the map is only read; the weights' pages are skipped, not read.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let graph = crate::onnx::by_offset::weights_by_offset(&map, path.file_name()?.to_str()?).ok()??;
        Some((graph, path.parent()?.to_str()?.to_string()))
    };
    framework.provider = std::sync::Arc::new(ReadAt);
    let Some((graph, dir)) = light() else { return framework.model_for_path(onnx) };
    let parse = || -> TractResult<InferenceModel> {
        use prost::Message;
        let proto = tract_onnx::pb::ModelProto::decode(&graph[..])?;
        let parsed = framework.parse(&proto, Some(&dir))?;
        if !parsed.unresolved_inputs.is_empty() {
            bail!("could not resolve inputs at top-level: {:?}", parsed.unresolved_inputs)
        }
        Ok(parsed.model)
    };
    // A graph tract does not take so is read as it is (its own error, if any, is the one told).
    parse().or_else(|e| {
        tracing::debug!("{}: the graph without its weights was refused ({e:#}); reading the file as it is", onnx.display());
        framework.model_for_path(onnx)
    })
}

/// Reads a weight's bytes from its file, straight into the buffer tract converts them from.
struct ReadAt;

impl tract_onnx::data_resolver::ModelDataResolver for ReadAt {
    fn read_bytes_from_path(&self, buf: &mut Vec<u8>, p: &std::path::Path, offset: usize, length: Option<usize>) -> TractResult<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(p)?;
        let size = file.metadata()?.len() as usize;
        let length = length.unwrap_or(size.saturating_sub(offset));
        if offset.checked_add(length).is_none_or(|end| end > size) {
            bail!("{}: {length} bytes at offset {offset} lie past its end ({size} bytes)", p.display());
        }
        file.seek(SeekFrom::Start(offset as u64))?;
        buf.clear();
        buf.reserve_exact(length);
        file.take(length as u64).read_to_end(buf)?;
        if buf.len() != length {
            bail!("{}: read {} of {length} bytes at offset {offset}", p.display(), buf.len());
        }
        Ok(())
    }
}
