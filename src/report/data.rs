//! The merged view that tables and figures are drawn from: one or several runs (one per machine),
//! their series (runtime, or machine · runtime), published series, the grid of measured cells,
//! and averages over that grid that refuse partial data.

use crate::results::{CellRecord, ModelInput, RunResults, Status};
use crate::scenario::RuntimeId;

/// A results file and the name its machine goes by in the report.
pub struct Source<'a> {
    pub label: String,
    pub results: &'a RunResults,
}

/// One published cell: a mean without any spread.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedCell {
    pub model: String,
    pub chars: usize,
    pub batch: usize,
    pub mean_ms: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SeriesKind {
    /// A runtime of one of the sources.
    Measured { source: usize, runtime: RuntimeId },
    /// Numbers copied from a publication.
    Published { cells: Vec<PublishedCell> },
}

/// A column of the tables and a series of the figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub kind: SeriesKind,
}

impl Series {
    pub fn is_published(&self) -> bool {
        matches!(self.kind, SeriesKind::Published { .. })
    }
}

/// What a series holds at one grid point.
#[derive(Debug, Clone, Copy)]
pub enum Value<'m> {
    Measured(&'m CellRecord),
    Published(f64),
}

/// A mean with its 95% confidence interval when one is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean_ms: f64,
    pub ci95_ms: Option<[f64; 2]>,
}

/// A series over a selection of grid cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coverage {
    /// The series has no cell in the selection at all.
    Absent,
    /// Some cell of the selection failed, was skipped, is pending or missing: no average.
    Partial,
    /// Every cell of the selection is measured: the mean of the means, and the mean of the CI bounds.
    Full(Estimate),
}

impl Coverage {
    pub fn estimate(self) -> Option<Estimate> {
        match self {
            Coverage::Full(e) => Some(e),
            _ => None,
        }
    }
}

/// A grid point: model, input length (characters), batch size.
pub type Key = (String, usize, usize);

pub struct Merged<'a> {
    pub sources: Vec<Source<'a>>,
    pub series: Vec<Series>,
    /// Models, lengths and batch sizes of the measured cells, in order of first appearance.
    pub models: Vec<String>,
    pub chars: Vec<usize>,
    pub batches: Vec<usize>,
    /// Every (model, chars, batch) that some source has a cell for.
    pub grid: Vec<Key>,
    /// Each source's cells by (model, runtime, chars, batch): the first such cell.
    cells: Vec<std::collections::HashMap<(&'a str, RuntimeId, usize, usize), &'a CellRecord>>,
}

fn push_new<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl<'a> Merged<'a> {
    /// Series are each source's runtimes in order; they are named by runtime alone for one source,
    /// `machine · runtime` for several.
    pub fn new(sources: Vec<Source<'a>>) -> Merged<'a> {
        let multi = sources.len() > 1;
        let mut m = Merged { sources, series: vec![], models: vec![], chars: vec![], batches: vec![], grid: vec![], cells: vec![] };
        let mut in_grid = std::collections::HashSet::new();
        for (i, s) in m.sources.iter().enumerate() {
            let mut runtimes = vec![];
            let mut cells = std::collections::HashMap::new();
            let results: &'a RunResults = s.results;
            for c in &results.cells {
                cells.entry((c.model.as_str(), c.runtime, c.chars, c.batch)).or_insert(c);
                push_new(&mut runtimes, c.runtime);
                push_new(&mut m.models, c.model.clone());
                // Operation cells (chars 0, batch 1) and test data sets are not points of the models'
                // length and batch axes.
                if !crate::scenario::ops::is_op(&c.model) && c.data_set.is_none() {
                    push_new(&mut m.chars, c.chars);
                    push_new(&mut m.batches, c.batch);
                }
                if in_grid.insert((c.model.as_str(), c.chars, c.batch)) {
                    m.grid.push((c.model.clone(), c.chars, c.batch));
                }
            }
            m.cells.push(cells);
            for rt in runtimes {
                let label = if multi { format!("{} · {rt}", s.label) } else { rt.to_string() };
                m.series.push(Series { label, kind: SeriesKind::Measured { source: i, runtime: rt } });
            }
        }
        m
    }

    /// The models that are not operation cases (those have their own tables and figure 1).
    pub fn model_names(&self) -> Vec<String> {
        self.models.iter().filter(|x| !crate::scenario::ops::is_op(x)).cloned().collect()
    }

    /// What `model`'s cells were fed (from the first source that ran it).
    pub fn input_of(&self, model: &str) -> ModelInput {
        self.sources.iter().find_map(|s| s.results.models.iter().find(|m| m.name == model)).map_or(ModelInput::Text, |m| m.input)
    }

    /// The models measured on the scenario's grid of lengths and batch sizes (not their own test data).
    pub fn grid_models(&self) -> Vec<String> {
        self.model_names().into_iter().filter(|m| self.input_of(m) != ModelInput::TestData).collect()
    }

    /// How a grid point of `model` is named in tables: `50 / 1` for text, `length 50 / 1` for
    /// generated inputs (`no length / 1` when no input took one), `test_data_set_0` for a data set.
    pub fn point_label(&self, model: &str, chars: usize, batch: usize) -> String {
        match self.input_of(model) {
            ModelInput::Text => format!("{model} / {chars} / {batch}"),
            ModelInput::Generated => format!("{model} / {} / {batch}", length_label(chars)),
            ModelInput::TestData => format!("{model} / test_data_set_{chars}"),
        }
    }

    pub fn multi(&self) -> bool {
        self.sources.len() > 1
    }

    /// The session a measured series' runtime recorded (its first group's that has one).
    pub fn session(&self, s: usize) -> Option<&'a crate::results::SessionInfo> {
        let SeriesKind::Measured { source, runtime } = &self.series[s].kind else { return None };
        self.sources[*source].results.groups.iter().filter(|g| g.runtime == *runtime).find_map(|g| g.session.as_ref())
    }

    /// The timer label a measured series' cells recorded (its first measured cell's).
    pub fn timer_label(&self, s: usize) -> Option<&'a str> {
        let SeriesKind::Measured { source, runtime } = &self.series[s].kind else { return None };
        self.sources[*source].results.cells.iter().find(|c| c.runtime == *runtime && c.summary.is_some()).map(|c| c.timer.as_str())
    }

    /// What series `s`'s timer covers in the vocabulary every runtime shares, where its runtime said.
    pub fn timer_class(&self, s: usize) -> Option<crate::results::TimerClass> {
        let session = self.session(s)?;
        session.timer_class.or_else(|| crate::results::TimerClass::of_earlier_record(&session.providers, self.timer_label(s)?))
    }

    /// Indices of the measured series.
    pub fn measured(&self) -> Vec<usize> {
        (0..self.series.len()).filter(|&i| !self.series[i].is_published()).collect()
    }

    pub fn value(&self, s: usize, model: &str, chars: usize, batch: usize) -> Option<Value<'_>> {
        match &self.series[s].kind {
            SeriesKind::Measured { source, runtime } => {
                self.cells[*source].get(&(model, *runtime, chars, batch)).map(|c| Value::Measured(c))
            }
            SeriesKind::Published { cells } => cells
                .iter()
                .find(|c| c.model == model && c.chars == chars && c.batch == batch)
                .map(|c| Value::Published(c.mean_ms)),
        }
    }

    /// The cell's mean and CI when it was measured successfully (or published).
    pub fn estimate(&self, s: usize, model: &str, chars: usize, batch: usize) -> Option<Estimate> {
        match self.value(s, model, chars, batch)? {
            Value::Measured(c) if c.status == Status::Ok => {
                c.summary.as_ref().map(|sm| Estimate { mean_ms: sm.mean_ms, ci95_ms: Some(sm.mean_ci95_ms) })
            }
            Value::Measured(_) => None,
            Value::Published(mean_ms) => Some(Estimate { mean_ms, ci95_ms: None }),
        }
    }

    /// Series `s` over the grid cells that `select` picks: the mean of the cells' means, and the mean
    /// of their CI bounds; only when every selected grid cell has a value.
    pub fn coverage(&self, s: usize, select: impl Fn(&str, usize, usize) -> bool) -> Coverage {
        let keys: Vec<&Key> = self.grid.iter().filter(|(m, ch, b)| select(m, *ch, *b)).collect();
        self.coverage_of(s, &keys)
    }

    /// Series `s` over the grid points `keys`, as [`Merged::coverage`] says.
    pub fn coverage_of(&self, s: usize, keys: &[&Key]) -> Coverage {
        if !keys.iter().any(|(m, ch, b)| self.value(s, m, *ch, *b).is_some()) {
            return Coverage::Absent;
        }
        let mut ests = Vec::with_capacity(keys.len());
        for &(m, ch, b) in keys {
            match self.estimate(s, m, *ch, *b) {
                Some(e) => ests.push(e),
                None => return Coverage::Partial,
            }
        }
        let n = ests.len() as f64;
        let mean_ms = ests.iter().map(|e| e.mean_ms).sum::<f64>() / n;
        let ci95_ms = if ests.iter().all(|e| e.ci95_ms.is_some()) {
            let lo = ests.iter().map(|e| e.ci95_ms.unwrap()[0]).sum::<f64>() / n;
            let hi = ests.iter().map(|e| e.ci95_ms.unwrap()[1]).sum::<f64>() / n;
            Some([lo, hi])
        } else {
            None
        };
        Coverage::Full(Estimate { mean_ms, ci95_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(cells: &[(&str, RuntimeId, usize, usize, Option<f64>)]) -> RunResults {
        let text = include_str!("../../tests/data/machine-a.json");
        let mut r = crate::results::parse_results(text, "machine-a.json").unwrap();
        let template = r.cells[0].clone();
        r.cells = cells
            .iter()
            .map(|&(m, rt, ch, b, mean)| {
                let mut c = template.clone();
                c.model = m.into();
                c.runtime = rt;
                c.chars = ch;
                c.batch = b;
                match mean {
                    Some(v) => {
                        let s = c.summary.as_mut().unwrap();
                        s.mean_ms = v;
                        s.mean_ci95_ms = [v - 1.0, v + 2.0];
                    }
                    None => {
                        c.status = Status::Failed;
                        c.summary = None;
                    }
                }
                c
            })
            .collect();
        r
    }

    #[test]
    fn averages_refuse_partial_data_and_average_ci_bounds() {
        let (tract, ort) = (RuntimeId::TRACT_CPU, RuntimeId::ORT_CPU);
        let r = results(&[
            ("m", tract, 50, 1, Some(10.0)),
            ("m", tract, 100, 1, Some(20.0)),
            ("m", ort, 50, 1, Some(4.0)),
            ("m", ort, 100, 1, None),
        ]);
        let m = Merged::new(vec![Source { label: "a".into(), results: &r }]);
        assert_eq!(m.series.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(), ["tract-cpu", "ort-cpu"]);
        assert_eq!(m.coverage(0, |_, _, _| true), Coverage::Full(Estimate { mean_ms: 15.0, ci95_ms: Some([14.0, 17.0]) }));
        assert_eq!(m.coverage(1, |_, _, _| true), Coverage::Partial);
        assert_eq!(m.coverage(1, |_, ch, _| ch == 50).estimate().unwrap().mean_ms, 4.0);
        assert_eq!(m.coverage(0, |model, _, _| model == "other"), Coverage::Absent);
    }

    #[test]
    fn a_cell_missing_on_one_machine_makes_its_average_partial() {
        let ort = RuntimeId::ORT_CPU;
        let a = results(&[("m", ort, 50, 1, Some(1.0)), ("m", ort, 100, 1, Some(3.0))]);
        let b = results(&[("m", ort, 50, 1, Some(2.0))]);
        let m = Merged::new(vec![Source { label: "a".into(), results: &a }, Source { label: "b".into(), results: &b }]);
        assert_eq!(m.series[1].label, "b · ort-cpu");
        assert_eq!(m.coverage(0, |_, _, _| true).estimate().unwrap().mean_ms, 2.0);
        assert_eq!(m.coverage(1, |_, _, _| true), Coverage::Partial);
        assert_eq!(m.coverage(1, |_, ch, _| ch == 100), Coverage::Absent);
    }
}

/// The input length of a cell of a model not fed from text: `length 50`, or `no length` when no
/// input took one (its cells are run once along that axis, at length 0).
pub fn length_label(chars: usize) -> String {
    if chars == 0 {
        "no length".to_string()
    } else {
        format!("length {chars}")
    }
}
