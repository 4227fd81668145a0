//! Cells by what they are: a cell's key (model or operation case, runtime, point of the grid) and
//! an index of a record's cells by key and by model, so that joining cells costs one look-up, not
//! a scan of the record.

use std::collections::HashMap;

use super::{CellRecord, RunResults, Status};
use crate::scenario::RuntimeId;

/// Where a cell lies in its model's grid: an input length (characters, or the length fed) and a
/// batch size, or one of the model's own test data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Point {
    pub chars: usize,
    pub batch: usize,
    pub data_set: Option<usize>,
    /// Generation cells: tokens generated after the prompt.
    pub new_tokens: Option<usize>,
}

/// What a cell is: two cells of one record never share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CellKey<'a> {
    /// The model's name (an operation case's, for operation cells).
    pub model: &'a str,
    pub runtime: RuntimeId,
    pub point: Point,
}

impl CellRecord {
    pub fn point(&self) -> Point {
        Point { chars: self.chars, batch: self.batch, data_set: self.data_set, new_tokens: self.new_tokens }
    }

    pub fn key(&self) -> CellKey<'_> {
        CellKey { model: &self.model, runtime: self.runtime, point: self.point() }
    }
}

/// A record's cells by key and by model. It holds positions, not borrows: the record's cells may
/// change while it is used, as long as none is added, removed or moved to another key.
#[derive(Debug, Default)]
pub struct CellIndex {
    models: HashMap<String, usize>,
    /// The models, in the order their first cell comes.
    names: Vec<String>,
    cells: HashMap<(usize, RuntimeId, Point), usize>,
    by_model: Vec<Vec<usize>>,
}

impl CellIndex {
    pub fn of(r: &RunResults) -> CellIndex {
        let mut ix = CellIndex::default();
        for (k, c) in r.cells.iter().enumerate() {
            let m = match ix.models.get(c.model.as_str()) {
                Some(&m) => m,
                None => {
                    ix.models.insert(c.model.clone(), ix.by_model.len());
                    ix.names.push(c.model.clone());
                    ix.by_model.push(Vec::new());
                    ix.by_model.len() - 1
                }
            };
            ix.by_model[m].push(k);
            ix.cells.entry((m, c.runtime, c.point())).or_insert(k);
        }
        ix
    }

    /// The position of the cell with `key`.
    pub fn get(&self, key: CellKey) -> Option<usize> {
        let m = *self.models.get(key.model)?;
        self.cells.get(&(m, key.runtime, key.point)).copied()
    }

    /// The cell of `model` on `runtime` at `c`'s point.
    pub fn at(&self, model: &str, runtime: RuntimeId, c: &CellRecord) -> Option<usize> {
        self.get(CellKey { model, runtime, point: c.point() })
    }

    /// Positions of the cells of `model`, in the record's order.
    pub fn of_model(&self, model: &str) -> &[usize] {
        self.models.get(model).map_or(&[], |&m| &self.by_model[m])
    }

    /// The models, each once, in the order their first cell comes.
    pub fn models(&self) -> &[String] {
        &self.names
    }

    /// Whether every cell of `model` has run (or ended without running).
    pub fn done(&self, r: &RunResults, model: &str) -> bool {
        self.of_model(model).iter().all(|&k| r.cells[k].status != Status::Pending)
    }
}
