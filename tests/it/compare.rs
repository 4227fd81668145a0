//! `xbench compare`: verdicts from the ratio's interval, unmatched cells listed, and a non-zero
//! exit on a regression beyond the threshold.


use xbench::compare::{compare, Verdict};
use xbench::results::{read_results, write_json};

use crate::common;

fn fixture() -> xbench::results::RunResults {
    read_results("tests/data/machine-a.json".as_ref()).unwrap()
}

#[test]
fn verdicts_follow_the_interval_and_unmatched_cells_are_listed() {
    let a = fixture();
    let mut b = a.clone();
    // Cell 0 slower by half, cell 1 faster by half, cell 2 dropped from B; the rest identical.
    for s in b.cells[0].samples_ms.iter_mut() {
        *s *= 1.5;
    }
    for s in b.cells[1].samples_ms.iter_mut() {
        *s *= 0.5;
    }
    let dropped = b.cells.remove(2);
    let c = compare(&a, &b, 0.95);
    let find = |i: usize| c.cells.iter().find(|x| x.model == a.cells[i].model && x.runtime == a.cells[i].runtime && x.chars == a.cells[i].chars && x.batch == a.cells[i].batch).unwrap();
    assert_eq!(find(0).verdict, Verdict::Slower);
    assert!((find(0).ratio - 1.5).abs() < 1e-9);
    assert_eq!(find(1).verdict, Verdict::Faster);
    assert_eq!(find(3).verdict, Verdict::NoDifference);
    assert!(find(3).ratio_ci[0] <= 1.0 && 1.0 <= find(3).ratio_ci[1]);
    assert_eq!(c.unmatched.len(), 1);
    assert!(c.unmatched[0].starts_with("only in A") && c.unmatched[0].contains(&format!("{} chars", dropped.chars)));
    assert_eq!(c.regressions(0.2).len(), 1);
    assert_eq!(c.regressions(0.6).len(), 0);
    // One sample on a side is no verdict, however far apart the two are.
    let mut one = b.clone();
    one.cells[0].samples_ms.truncate(1);
    let c = compare(&a, &one, 0.95);
    assert_eq!(c.cells.iter().find(|x| x.chars == a.cells[0].chars && x.batch == a.cells[0].batch && x.runtime == a.cells[0].runtime && x.model == a.cells[0].model).unwrap().verdict, Verdict::NotEnoughSamples);
    assert!(c.table().contains("not enough samples"));
}

#[test]
fn the_command_fails_on_a_regression_when_asked_to() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = fixture();
    let mut b = a.clone();
    for s in b.cells[0].samples_ms.iter_mut() {
        *s *= 2.0;
    }
    write_json(&dir.join("a.json"), &a).unwrap();
    write_json(&dir.join("b.json"), &b).unwrap();
    let run = |extra: &[&str]| common::xbench().arg("compare").arg(dir.join("a.json")).arg(dir.join("b.json")).args(extra).output().unwrap();
    let plain = run(&[]);
    assert!(plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stdout).contains("slower"));
    let strict = run(&["--fail-above", "10"]);
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("1 cells are slower"));
    let lenient = run(&["--fail-above", "150"]);
    assert!(lenient.status.success());
}
