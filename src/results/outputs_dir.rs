//! A run's folder of saved outputs: the one place that names its files (each cell's outputs, each
//! test data set's expected outputs) and writes, reads, keeps and removes them. Workers write a
//! cell's outputs, the analysis reads and releases them, shards keep some beside their results
//! and a merge gathers those back.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::SavedOutputs;

/// A folder of saved outputs (it need not exist yet).
#[derive(Debug, Clone, Copy)]
pub struct OutputsDir<'a> {
    dir: &'a Path,
}

impl<'a> OutputsDir<'a> {
    pub fn at(dir: &'a Path) -> OutputsDir<'a> {
        OutputsDir { dir }
    }

    pub fn path(&self) -> &'a Path {
        self.dir
    }

    /// The file of cell `cell`'s outputs (by its index in the plan).
    pub fn cell_file(&self, cell: usize) -> PathBuf {
        self.dir.join(format!("cell-{cell}.safetensors"))
    }

    /// The file of the expected outputs of model `model`'s test data set `set`.
    pub fn expected_file(&self, model: usize, set: usize) -> PathBuf {
        self.dir.join(format!("expected-{model}-{set}.safetensors"))
    }

    pub fn write(&self, cell: usize, saved: &SavedOutputs) -> Result<()> {
        saved.write(&self.cell_file(cell))
    }

    pub fn read(&self, cell: usize) -> Result<SavedOutputs> {
        SavedOutputs::read(&self.cell_file(cell))
    }

    pub fn has_expected(&self, model: usize, set: usize) -> bool {
        self.expected_file(model, set).is_file()
    }

    pub fn write_expected(&self, model: usize, set: usize, saved: &SavedOutputs) -> Result<()> {
        saved.write(&self.expected_file(model, set))
    }

    pub fn read_expected(&self, model: usize, set: usize) -> Result<SavedOutputs> {
        SavedOutputs::read(&self.expected_file(model, set))
    }

    /// Removes cell `cell`'s outputs, and the expected outputs of `data_set` (model, set) with
    /// them; files already gone are no error.
    pub fn remove(&self, cell: usize, data_set: Option<(usize, usize)>) {
        let _ = std::fs::remove_file(self.cell_file(cell));
        if let Some((model, set)) = data_set {
            let _ = std::fs::remove_file(self.expected_file(model, set));
        }
    }

    /// Removes the folder and all it holds.
    pub fn remove_all(&self) {
        let _ = std::fs::remove_dir_all(self.dir);
    }

    /// Puts `from`'s outputs of cell `from_cell` here as cell `to_cell`'s (a link where the file
    /// system allows, else a copy), creating the folder; returns the file here.
    pub fn take(&self, from: OutputsDir, from_cell: usize, to_cell: usize) -> Result<PathBuf> {
        std::fs::create_dir_all(self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let (src, to) = (from.cell_file(from_cell), self.cell_file(to_cell));
        let _ = std::fs::remove_file(&to);
        if std::fs::hard_link(&src, &to).is_err() {
            std::fs::copy(&src, &to).with_context(|| format!("cannot copy {} to {}", src.display(), to.display()))?;
        }
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{Output, Tensor};

    #[test]
    fn outputs_are_written_read_taken_and_removed_by_cell() {
        let root = tempfile::tempdir().unwrap();
        let (run_dir, kept_dir) = (root.path().join("run"), root.path().join("kept"));
        let (run, kept) = (OutputsDir::at(&run_dir), OutputsDir::at(&kept_dir));
        std::fs::create_dir_all(&run_dir).unwrap();
        let saved = SavedOutputs { outputs: vec![Output { name: "y".into(), data: Tensor::F32(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[2]), 1.5)) }], batch: 1, seq_len: 2, mask: vec![1, 1], inputs: Vec::new() };
        run.write(4, &saved).unwrap();
        run.write_expected(0, 1, &saved).unwrap();
        assert!(run.cell_file(4).is_file() && run.has_expected(0, 1) && !run.has_expected(0, 2));
        assert_eq!(run.read(4).unwrap().outputs, saved.outputs);
        assert!(run.read(5).is_err(), "a cell with nothing saved");
        let to = kept.take(run, 4, 9).unwrap();
        assert_eq!((to, kept.read(9).unwrap().outputs), (kept_dir.join("cell-9.safetensors"), saved.outputs.clone()));
        run.remove(4, Some((0, 1)));
        assert!(!run.cell_file(4).exists() && !run.has_expected(0, 1));
        assert!(kept.read(9).is_ok(), "the kept file outlives the run's");
        run.remove_all();
        assert!(!run_dir.exists());
    }
}
