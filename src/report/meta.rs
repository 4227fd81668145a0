//! The report's opening: what was run, where, with which versions of xbench and of each runtime,
//! and how to read the numbers; then the runtimes and models tables.

use super::data::Merged;
use super::doc::Block;
use crate::results::RunResults;

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}

fn unique<T: PartialEq + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = vec![];
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

const STATISTIC: &str = "Statistic: mean latency in ms, with its 95% bootstrap confidence interval in brackets. `A vs B` = mean(B) / mean(A) − 1: positive when A is faster (the paper's speedup).";

fn agreement_text(r: &RunResults) -> String {
    let mut t = format!(
        "outputs compared with {} on the same inputs (real token positions), tolerance |a − r| ≤ abs + rel·|r| with fp32 {:e} + {:e}, fp16 {:e} + {:e}",
        r.reference_runtime, r.tolerances.fp32.abs, r.tolerances.fp32.rel, r.tolerances.fp16.abs, r.tolerances.fp16.rel
    );
    if r.models.iter().any(|m| m.compare_with.is_some()) {
        t.push_str("; models with a sibling (`compare_with`: fp16 vs its fp32 model) are also compared with the sibling's cell on the same runtime, see below");
    }
    t
}

fn run_span(r: &RunResults) -> String {
    format!("{} → {}{}", r.started_at, r.finished_at.as_deref().unwrap_or("not finished"), if r.complete { "" } else { " (partial results)" })
}

/// Title and bullets of one run: unchanged from the single-machine report.
fn single_header(r: &RunResults) -> Vec<Block> {
    let m = &r.machine;
    vec![
        Block::Title(format!("xbench report: {}", r.scenario.name)),
        Block::Bullets(vec![
            match &r.shards {
                Some(set) if set.parts.iter().any(|p| p.machine != *m) => format!("Machines: {} shards on `{}`, each listed under Shards", set.count, m.name),
                _ => format!("Machine: `{}` — {}, {} cores, {} GiB, {} ({})", m.name, m.cpu, m.cores, m.memory_gib, m.os, m.arch),
            },
            format!("xbench {} (commit {}), results format {}", r.xbench_version, r.git_commit, r.format_version),
            format!("Run: {}", run_span(r)),
            format!("Scenario: `{}`; {} warm-up runs, then {} timed iterations per cell", r.scenario_source, r.scenario.warmup, r.scenario.iterations),
            format!("Timer: {}", r.timer),
            STATISTIC.to_string(),
            format!("Agreement: {}. Marks: ✗ outputs disagree, ? suspicious (latency does not grow with work, or faster than the device could compute), ⚠ other warning; all listed below.", agreement_text(r)),
        ]),
    ]
}

/// Title, bullets and a machines table (with the versions of xbench and of each runtime) for several runs.
fn multi_header(m: &Merged) -> Vec<Block> {
    let names = unique(m.sources.iter().map(|s| s.results.scenario.name.clone()));
    let labels: Vec<String> = m.sources.iter().map(|s| format!("`{}`", s.label)).collect();
    let mut bullets = vec![format!(
        "Machines: {} — each machine's runtimes are series named `machine · runtime`; versions per machine below",
        labels.join(", ")
    )];
    let timers = unique(m.sources.iter().map(|s| s.results.timer.clone()));
    if timers.len() == 1 {
        bullets.push(format!("Timer: {}", timers[0]));
    } else {
        let per: Vec<String> = m.sources.iter().map(|s| format!("{}: {}", s.label, s.results.timer)).collect();
        bullets.push(format!("Timer (differs between machines): {}", per.join("; ")));
    }
    bullets.push(STATISTIC.to_string());
    let agreements = unique(m.sources.iter().map(|s| agreement_text(s.results)));
    if agreements.len() == 1 {
        bullets.push(format!("Agreement: {}, within each machine. Marks: ✗ outputs disagree, ? suspicious (latency does not grow with work, or faster than the device could compute), ⚠ other warning; all listed below.", agreements[0]));
    } else {
        let per: Vec<String> = m.sources.iter().map(|s| format!("{}: {}", s.label, agreement_text(s.results))).collect();
        bullets.push(format!("Agreement, within each machine: {}. Marks: ✗ outputs disagree, ? suspicious (latency does not grow with work, or faster than the device could compute), ⚠ other warning; all listed below.", per.join("; ")));
    }
    bullets.push("Speedups compare every series with the first, across machines too.".into());

    let head = ["machine", "host", "CPU", "cores", "memory (GiB)", "OS", "xbench (commit)", "runtime versions", "scenario", "run"];
    let rows = m
        .sources
        .iter()
        .map(|s| {
            let r = s.results;
            let mc = &r.machine;
            let versions: Vec<String> =
                r.runtimes.iter().map(|a| format!("{} {}", a.runtime, a.version.as_deref().unwrap_or("(unknown)"))).collect();
            vec![
                s.label.clone(),
                format!("`{}`", mc.name),
                mc.cpu.clone(),
                mc.cores.to_string(),
                mc.memory_gib.to_string(),
                format!("{} ({})", mc.os, mc.arch),
                format!("{} ({}), results format {}", r.xbench_version, r.git_commit, r.format_version),
                versions.join(", "),
                format!("`{}`; {} warm-up, {} iterations", r.scenario_source, r.scenario.warmup, r.scenario.iterations),
                run_span(r),
            ]
        })
        .collect();
    vec![
        Block::Title(format!("xbench report: {}", names.join(" + "))),
        Block::Bullets(bullets),
        Block::Heading("Machines".into()),
        Block::Table { head: head.iter().map(|s| s.to_string()).collect(), rows },
    ]
}

/// What each series' timer covered: in the vocabulary every runtime shares (end to end or
/// device-resident, and how host memory moved), and in its runtime's own words where it gave them
/// (an external program, buffers of xbench's own). Series with different timers are not the same
/// measurement, and the tables' ratios between them say so.
fn timer_blocks(m: &Merged) -> Vec<Block> {
    let mut rows = vec![];
    let mut classes = vec![];
    for i in m.measured() {
        let session = m.session(i);
        let class = m.timer_class(i);
        classes.push(class);
        let label = m.timer_label(i).unwrap_or_default();
        let words = session.and_then(|x| x.io.as_ref()).map(|io| io.trim_end_matches('.').to_string()).unwrap_or_default();
        let precision = session.and_then(|x| x.precision).map_or_else(|| "—".into(), |p| p.to_string());
        let (timing, host) = match class {
            Some(c) => (c.timing.as_str().to_string(), c.host_memory.map(|h| h.as_str().to_string()).unwrap_or_else(|| "—".into())),
            None => ("not stated".into(), "not stated".into()),
        };
        rows.push(vec![m.series[i].label.clone(), timing, host, if label.is_empty() { "—".into() } else { format!("`{label}`") }, precision, words]);
    }
    if rows.is_empty() {
        return vec![];
    }
    classes.dedup();
    let mut para = "What each series' timer covers: `end-to-end` from host arrays to outputs in host memory, `device-resident` with inputs already on the device and outputs left there (device synchronised); host memory `none` (computed on host memory, no device copies), `pageable` or `pinned` (copies between that host memory and the device), `unified` (shared memory, no copies).".to_string();
    if classes.len() > 1 {
        para.push_str(" These series do not all time the same thing: a ratio between two of them (the tables' `vs` columns marked *timers differ*) compares different measurements.");
    }
    vec![
        Block::Para(para),
        Block::Table { head: ["series", "timer", "host memory", "label", "precision", "in the runtime's words"].iter().map(|s| s.to_string()).collect(), rows },
    ]
}

/// Title, bullets, runtimes and models. With several runs each row starts with its machine.
/// A runtime's version as checked, else as its sessions reported it (an external program says its
/// own when it loads), else "—".
fn version(r: &RunResults, av: &crate::results::Availability) -> String {
    if let Some(v) = &av.version {
        return v.clone();
    }
    let mut told: Vec<&str> = r.groups.iter().filter(|g| g.runtime == av.runtime).filter_map(|g| g.session.as_ref()).map(|x| x.version.as_str()).filter(|v| !v.is_empty() && *v != "unknown").collect();
    told.sort_unstable();
    told.dedup();
    if told.is_empty() {
        "—".into()
    } else {
        format!("{} (as its sessions said)", told.join(", "))
    }
}

pub fn header_blocks(m: &Merged) -> Vec<Block> {
    let mut out = if m.multi() { multi_header(m) } else { single_header(m.sources[0].results) };
    out.extend(super::shards::blocks(m));
    let lead = |label: &str| if m.multi() { vec![label.to_string()] } else { vec![] };

    out.push(Block::Heading("Runtimes".into()));
    let mut head = lead("machine");
    head.extend(["runtime", "usable", "version", "threads", "detail"].map(String::from));
    let mut rows = vec![];
    for s in &m.sources {
        let r = s.results;
        for av in &r.runtimes {
            let threads = r.groups.iter().find(|g| g.runtime == av.runtime).and_then(|g| g.session.as_ref()).map(|x| x.threads.clone()).unwrap_or_default();
            let mut row = lead(&s.label);
            row.extend([
                av.runtime.to_string(),
                if av.usable { "yes" } else { "no" }.to_string(),
                version(r, av),
                threads,
                av.detail.replace('\n', " ").replace('|', "\\|"),
            ]);
            rows.push(row);
        }
    }
    out.push(Block::Table { head, rows });
    out.extend(timer_blocks(m));

    out.push(Block::Heading("Models".into()));
    let mut head = lead("machine");
    head.extend(["model", "ONNX size (MB)", "weights", "max positions", "runtime", "graph nodes per provider", "load (ms)", "peak RSS (MiB)"].map(String::from));
    let with_siblings = super::siblings::any(m);
    if with_siblings {
        head.push("vs sibling (`compare_with`)".into());
    }
    let mut rows = vec![];
    for s in &m.sources {
        let r = s.results;
        for g in &r.groups {
            let mr = r.models.iter().find(|x| x.name == g.model);
            let mut row = lead(&s.label);
            // A model fetched from the Hub says from which repository and commit.
            let hub = mr.and_then(|x| x.hub_id.as_ref().map(|h| (h, x.revision.as_deref())));
            let model = match hub {
                Some((h, Some(rev))) => format!("{} (Hub: {h} at {})", g.model, rev.chars().take(12).collect::<String>()),
                Some((h, None)) => format!("{} (Hub: {h})", g.model),
                None => g.model.clone(),
            };
            row.extend([
                model,
                mr.map(|x| format!("{:.1}", x.onnx_bytes as f64 / 1e6)).unwrap_or_default(),
                mr.map(|x| x.weights.clone()).unwrap_or_default(),
                mr.and_then(|x| x.max_positions).map(|p| p.to_string()).unwrap_or_else(|| "—".into()),
                g.runtime.to_string(),
                g.session
                    .as_ref()
                    .filter(|x| !x.placement.is_empty())
                    .map(|x| x.placement.iter().map(|(ep, n)| format!("{ep} {n}")).collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|| "—".into()),
                fmt_opt(g.load_ms),
                fmt_opt(g.peak_rss_mib),
            ]);
            if with_siblings {
                row.push(super::siblings::group_cell(r, &g.model, g.runtime));
            }
            rows.push(row);
        }
    }
    out.push(Block::Table { head, rows });
    out
}
