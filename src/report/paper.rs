//! The paper's published model latencies (appendix C, `crate::paper`)
//! and their matching to measured cells, as extra series labelled as published.

use super::data::{Key, PublishedCell, Series, SeriesKind};

/// Every published series label starts with this.
pub const PUBLISHED_PREFIX: &str = "paper: ";

/// One row of the paper's appendix C.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedRow {
    pub device: String,
    pub backend: String,
    pub cell: PublishedCell,
}

/// The label of a published series.
pub fn series_label(device: &str, backend: &str) -> String {
    format!("{PUBLISHED_PREFIX}{device} {backend} (published)")
}

/// The embedded table's rows (`crate::paper`).
pub fn rows() -> Vec<PublishedRow> {
    crate::paper::model_latency_rows()
        .into_iter()
        .map(|r| PublishedRow { device: r.device, backend: r.backend, cell: PublishedCell { model: r.model, chars: r.input_chars, batch: r.batch, mean_ms: r.mean_ms } })
        .collect()
}

/// Published series restricted to the cells of `grid` (model name, length and batch size all equal),
/// in the order the paper lists its devices; series without any matching cell are left out.
pub fn matching_series(grid: &[Key]) -> Vec<Series> {
    let mut series: Vec<(String, Vec<PublishedCell>)> = vec![];
    for row in rows() {
        let label = series_label(&row.device, &row.backend);
        let idx = match series.iter().position(|(l, _)| *l == label) {
            Some(i) => i,
            None => {
                series.push((label, vec![]));
                series.len() - 1
            }
        };
        let c = row.cell;
        if grid.iter().any(|(m, ch, b)| *m == c.model && *ch == c.chars && *b == c.batch) {
            series[idx].1.push(c);
        }
    }
    series
        .into_iter()
        .filter(|(_, cells)| !cells.is_empty())
        .map(|(label, cells)| Series { label, kind: SeriesKind::Published { cells } })
        .collect()
}

/// The paper's grid in words, for the note printed when nothing matches.
pub fn grid_description() -> String {
    let rows = rows();
    let mut models: Vec<&str> = vec![];
    let mut chars: Vec<usize> = vec![];
    let mut batches: Vec<usize> = vec![];
    for r in &rows {
        if !models.contains(&r.cell.model.as_str()) {
            models.push(&r.cell.model);
        }
        if !chars.contains(&r.cell.chars) {
            chars.push(r.cell.chars);
        }
        if !batches.contains(&r.cell.batch) {
            batches.push(r.cell.batch);
        }
    }
    chars.sort_unstable();
    batches.sort_unstable();
    let list = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
    format!("models {}; input lengths {} characters; batch sizes {}", models.join(", "), list(&chars), list(&batches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_has_the_papers_240_cells() {
        let rows = rows();
        assert_eq!(rows.len(), 240);
        let first = &rows[0];
        assert_eq!((first.device.as_str(), first.backend.as_str()), ("nvidia-a10", "torch-cpu"));
        assert_eq!(first.cell, PublishedCell { model: "bert-base-uncased".into(), chars: 50, batch: 1, mean_ms: 41.82 });
    }

    #[test]
    fn only_matching_cells_become_series() {
        let grid: Vec<Key> = vec![("bert-base-uncased".into(), 50, 1), ("bert-base-uncased".into(), 1000, 1), ("tiny-bert".into(), 50, 1)];
        let s = matching_series(&grid);
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].label, "paper: nvidia-a10 torch-cpu (published)");
        for series in &s {
            let SeriesKind::Published { cells } = &series.kind else { panic!("not published") };
            assert_eq!(cells.len(), 1, "{}", series.label);
            assert_eq!((cells[0].chars, cells[0].batch), (50, 1));
        }
        assert!(matching_series(&[("tiny-bert".into(), 50, 1)]).is_empty());
    }

    #[test]
    fn malformed_rows_are_refused_with_their_line() {
        let e = crate::paper::parse_tsv::<crate::paper::ModelLatencyRow>("device\tbackend\tmodel\tinput_chars\tbatch\tmean_ms\nnvidia\ttorch\tbert\tfifty\t1\t2.0\n", "t.tsv").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
