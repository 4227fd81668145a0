//! The run loop without worker processes: a resolved plan run in this process, its events applied
//! to a results store that writes after every one, what an observer is told, and the analysis
//! pass after each group.

use std::time::Instant;

use xbench::resolve::{resolve, ResolveOptions};
use xbench::results::{read_results, CellRecord, ResultsStore, RunResults, Status};
use xbench::run::{self, Isolation, Observer, Progress, RunOptions};
use xbench::runtimes::RuntimeOptions;
use xbench::scenario::{validate, Overrides, ScenarioFile};

#[derive(Default)]
struct Recorder {
    cells: Vec<(usize, usize, usize, Status)>,
    runtimes: usize,
    groups_done: Vec<usize>,
}

impl Observer for Recorder {
    fn runtimes(&mut self, a: &[xbench::results::Availability]) {
        self.runtimes = a.len();
    }
    fn cell(&mut self, r: &CellRecord, p: Progress) {
        self.cells.push((r.index, p.done, p.total, r.status));
    }
    fn group_done(&mut self, r: &RunResults) {
        self.groups_done.push(r.cells.iter().filter(|c| c.status != Status::Pending).count());
    }
}

#[test]
fn a_plan_runs_in_process_into_a_store_that_writes_every_event() {
    let yaml = "name: t\nmodels: [tiny-bert]\nruntimes: [tract-cpu]\ninput_chars: [20, 40]\nbatch_sizes: [1, 2]\niterations: 2\nwarmup: 0\n";
    let file = ScenarioFile::parse(yaml, "t.yaml").unwrap();
    let plan = validate(&file, "t.yaml", ".".as_ref(), &Overrides::default()).unwrap();
    let plan = resolve(plan, &ResolveOptions { models_root: "models".into(), ops_dir: None }).unwrap();
    let opts = RunOptions { runtime: RuntimeOptions { threads: Some(1), ..Default::default() }, isolation: Isolation::InProcess, auto_setup: false, parallel_loads: false, keep_outputs: None };
    let availability = run::check_runtimes(&plan, &opts);
    let dir = tempfile::tempdir().unwrap();
    let mut store = ResultsStore::create(run::record::fresh(&plan, &file, availability, None, &opts, run::conditions::digests(&plan)), dir.path()).unwrap();
    assert!(read_results(store.json_path()).unwrap().cells.iter().all(|c| c.status == Status::Pending), "written before anything runs");

    let mut seen = Recorder::default();
    let end = run::run(&plan, &opts, &mut store, &dir.path().join(".outputs"), &mut seen, &run::Stop::new(), Instant::now()).unwrap();
    assert!(!end.stopped && end.wall.groups_ms > 0.0);
    assert_eq!(seen.runtimes, 1);
    assert_eq!(seen.cells, (0..4).map(|i| (i, i + 1, 4, Status::Ok)).collect::<Vec<_>>(), "each cell told once, in order, with the count done");
    assert_eq!(seen.groups_done, vec![4]);
    let r = store.results();
    assert!(r.complete && r.finished_at.is_some());
    let g = &r.groups[0];
    assert_eq!(g.status, Status::Ok);
    assert!(g.load_ms.unwrap() > 0.0 && g.ready_ms.unwrap() >= g.load_ms.unwrap() && g.peak_rss_mib.unwrap() > 1.0, "{g:?}");
    assert!(r.cells.iter().all(|c| c.samples_ms.len() == 2 && c.summary.is_some() && c.agreement.is_none()));
    assert_eq!(&read_results(store.json_path()).unwrap(), r, "the file holds what the store holds");
    assert!(!dir.path().join(".outputs").exists(), "nothing is compared with one runtime, and the scratch folder goes at the end");
}
