//! Reports from committed results files: Markdown snapshots, figures that decode and carry their
//! labels, merged machines, the paper's published series, and clear errors.

use std::path::{Path, PathBuf};

use xbench::report::{self, figures, ReportOptions};
use xbench::results::{read_results, RunResults, Status};

use crate::common::{assert_snapshot, xbench};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn load(name: &str) -> RunResults {
    read_results(&data(name)).unwrap()
}

/// A fresh, empty folder under the system's temporary folder, removed when dropped.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("xbench-report-{name}-")).tempdir().unwrap()
}

/// Machine A with its model renamed, so that its cells match the paper's grid.
fn as_bert_base(mut r: RunResults) -> RunResults {
    for c in &mut r.cells {
        c.model = "bert-base-uncased".into();
    }
    r
}

/// Machine A plus two operation cases (fig. 1 draws any model named `op:…`).
fn with_operations(mut r: RunResults) -> RunResults {
    let base: Vec<_> = r.cells.iter().filter(|c| c.chars == 50 && c.batch == 1).cloned().collect();
    for (name, ms) in [("op:MatMul 64x64", 0.02), ("op:Softmax 128x1024", 3.0)] {
        for c in &base {
            let mut c = c.clone();
            c.model = name.into();
            let s = c.summary.as_mut().unwrap();
            s.mean_ms = ms;
            s.mean_ci95_ms = [ms * 0.9, ms * 1.1];
            r.cells.push(c);
        }
    }
    r
}

fn png_size_and_pixels(path: &Path) -> (u32, u32, Vec<u8>, png::ColorType) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    buf.truncate(frame.buffer_size());
    (frame.width, frame.height, buf, frame.color_type)
}

/// Whether the SVG has a text element reading exactly `text`.
fn svg_has_text(svg: &str, text: &str) -> bool {
    svg.contains(&format!(">\n{text}\n</text>"))
}

fn has_rgb(pixels: &[u8], channels: usize, rgb: [u8; 3]) -> bool {
    pixels.chunks(channels).any(|p| p[..3] == rgb)
}

#[test]
fn single_machine_markdown_is_unchanged() {
    assert_snapshot("single-machine-a.md", &report::markdown(&load("machine-a.json")));
    assert_snapshot("single-machine-b.md", &report::markdown(&load("machine-b.json")));
}

#[test]
fn merged_markdown_matches_its_snapshot() {
    let results = [load("machine-a.json"), load("machine-b.json")];
    let md = report::markdown_report(&results, &ReportOptions { names: vec!["Linux VM".into()], paper: false }).unwrap();
    assert_snapshot("merged-two-machines.md", &md);
}

#[test]
fn every_figure_renders_to_png_and_svg_with_its_labels() {
    let tmp = scratch("all-figures");
    let dir = tmp.path();
    let results = [with_operations(load("machine-a.json"))];
    let files = report::write_all(&results, &ReportOptions::default(), &dir).unwrap();
    assert_eq!(files.figures.len(), 8);
    let expect = [
        ("fig1-operations", figures::FIG1_TITLE, "operation case", vec!["MatMul 64x64", "Softmax 128x1024"]),
        ("fig2-models", figures::FIG2_TITLE, "model", vec!["tiny-bert"]),
        ("fig3-length", figures::FIG3_TITLE, "input length (characters)", vec!["tiny-bert", "500"]),
        ("fig4-batch", figures::FIG4_TITLE, "batch size", vec!["tiny-bert", "32"]),
    ];
    for (stem, title, x_desc, words) in expect {
        let (w, h, pixels, color) = png_size_and_pixels(&dir.join(format!("{stem}.png")));
        assert_eq!((w, h), figures::SIZE, "{stem}.png");
        let channels = match color {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("{stem}.png has colour type {other:?}"),
        };
        assert!(has_rgb(&pixels, channels, [78, 121, 167]), "{stem}.png: no pixel of the first series' colour");
        // The title row holds dark pixels: the embedded font drew text.
        let title_dark = pixels[..w as usize * 30 * channels].chunks(channels).filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100).count();
        assert!(title_dark > 200, "{stem}.png: no title text drawn ({title_dark} dark pixels)");

        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("viewBox=\"0 0 900 560\""), "{stem}.svg");
        for text in [title, x_desc, "tract-cpu", "ort-cpu"].into_iter().chain(words) {
            assert!(svg_has_text(&svg, text), "{stem}.svg lacks the text `{text}`");
        }
    }
    // Fig. 1 is always on a log axis; fig. 2 spans little here and stays linear.
    assert!(svg_has_text(&std::fs::read_to_string(dir.join("fig1-operations.svg")).unwrap(), "mean latency (ms, log scale)"));
    assert!(svg_has_text(&std::fs::read_to_string(dir.join("fig2-models.svg")).unwrap(), "mean latency (ms)"));
    assert!(svg_has_text(&std::fs::read_to_string(dir.join("fig3-length.svg")).unwrap(), "mean latency (ms, log scale)"));
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    for stem in ["fig1-operations", "fig2-models", "fig3-length", "fig4-batch"] {
        assert!(md.contains(&format!("]({stem}.png)")), "report.md does not link {stem}.png");
    }
}

#[test]
fn index_html_is_one_self_contained_page() {
    let tmp = scratch("html");
    let dir = tmp.path();
    let files = report::write_all(&[load("machine-a.json")], &ReportOptions::default(), &dir).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 3, "figs. 2–4 inline");
    assert!(html.contains("<table>") && html.contains("<style>"));
    for external in ["src=", "href=", "<link", "<script", "url(", "@import"] {
        assert!(!html.contains(external), "index.html refers to something outside it: `{external}`");
    }
    assert!(html.contains("Fig. 1 (operation benchmark) is not drawn"));
}

#[test]
fn two_machines_become_two_sets_of_series() {
    let tmp = scratch("two-machines");
    let dir = tmp.path();
    let results = [load("machine-a.json"), load("machine-b.json")];
    let files = report::write_all(&results, &ReportOptions::default(), &dir).unwrap();
    let fig2 = std::fs::read_to_string(dir.join("fig2-models.svg")).unwrap();
    for series in ["vm · tract-cpu", "vm · ort-cpu", "mac-mini · tract-cpu", "mac-mini · ort-cpu"] {
        assert!(svg_has_text(&fig2, series), "fig2-models.svg lacks {series}");
    }
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("| model | vm · tract-cpu (ms, end-to-end) | vm · ort-cpu (ms, end-to-end) | mac-mini · tract-cpu (ms, end-to-end) | mac-mini · ort-cpu (ms, end-to-end) |"));
    // Versions per machine: xbench and each runtime.
    assert!(md.contains("| 0.1.0 (a434d86e9e55), results format 1 | tract-cpu 0.23.9, ort-cpu 1.31.1 |"));
    assert!(md.contains("| 0.0.9 (0123456789ab), results format 1 | tract-cpu 0.23.9, ort-cpu 1.30.0 |"));
    // The failed cell on mac-mini leaves its averages undrawn, and the report says so.
    assert!(md.contains("× marks an average not drawn because one of its cells failed, was skipped or is missing: mac-mini · ort-cpu — tiny-bert."));
    assert!(md.contains("mac-mini · ort-cpu — tiny-bert, 500 characters"));
    assert!(md.contains("mac-mini · ort-cpu — tiny-bert, batch 32"));
}

#[test]
fn paper_mode_adds_labelled_published_series_where_cells_match() {
    let tmp = scratch("paper");
    let dir = tmp.path();
    let results = [as_bert_base(load("machine-a.json"))];
    let files = report::write_all(&results, &ReportOptions { names: vec![], paper: true }, &dir).unwrap();
    for stem in ["fig2-models", "fig3-length", "fig4-batch"] {
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        for series in ["paper: nvidia-a10 torch-cuda (published)", "paper: apple-m2-max mlx-gpu (published)", "tract-cpu"] {
            assert!(svg_has_text(&svg, series), "{stem}.svg lacks {series}");
        }
    }
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("- paper: apple-m1 mlx-gpu (published): 12 cell(s) match ours"));
    // bert-base-uncased, 50 chars, batch 1 as published for the M2 Max: 4.92 ms.
    let row = md.lines().find(|l| l.starts_with("| bert-base-uncased / 50 / 1 |")).unwrap();
    assert!(row.ends_with("| 41.82 | 35.37 | 14.48 | 41.67 | 4.92 | +41% |"), "{row}");

    // A runtime named as the paper names a backend is set beside that backend's published figures,
    // per model over the same cells.
    let mut r = as_bert_base(load("machine-a.json"));
    let torch = xbench::runtimes::RuntimeId::new("torch-cpu");
    let ort = xbench::runtimes::RuntimeId::new("ort-cpu");
    r.runtimes.iter_mut().filter(|a| a.runtime == ort).for_each(|a| a.runtime = torch);
    r.groups.iter_mut().filter(|g| g.runtime == ort).for_each(|g| g.runtime = torch);
    r.cells.iter_mut().filter(|c| c.runtime == ort).for_each(|c| c.runtime = torch);
    let ours: Vec<f64> = r.cells.iter().filter(|c| c.runtime == torch).map(|c| c.summary.as_ref().unwrap().mean_ms).collect();
    let tsv = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/paper/model-latency.tsv")).unwrap();
    let published = |device: &str| -> Vec<f64> {
        tsv.lines().map(|l| l.split('\t').collect::<Vec<_>>()).filter(|f| f[0] == device && f[1] == "torch-cpu" && f[2] == "bert-base-uncased").map(|f| f[5].parse().unwrap()).collect()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let a10 = published("nvidia-a10");
    assert_eq!((ours.len(), a10.len()), (12, 12), "the paper's whole grid on both sides");
    let tmp = scratch("paper-backends");
    let md = std::fs::read_to_string(report::write_all(&[r], &ReportOptions { names: vec![], paper: true }, tmp.path()).unwrap().markdown).unwrap();
    let row = md.lines().find(|l| l.starts_with("| torch-cpu | bert-base-uncased |")).unwrap_or_else(|| panic!("no backend row:\n{md}"));
    assert!(row.starts_with(&format!("| torch-cpu | bert-base-uncased | torch-cpu (12 cells) | {:.2} | {:.2} |", mean(&ours), mean(&a10))), "{row}");
    assert!(!md.lines().any(|l| l.starts_with("| tract-cpu | bert-base-uncased |")), "a runtime the paper does not have gets no row");

    // Without matching cells: a note, and no published series anywhere.
    let tmp = scratch("paper-none");
    let dir = tmp.path();
    let files = report::write_all(&[load("machine-a.json")], &ReportOptions { names: vec![], paper: true }, &dir).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("No measured cell matches the paper's grid"));
    assert!(!std::fs::read_to_string(dir.join("fig2-models.svg")).unwrap().contains("paper:"));
}

#[test]
fn machine_names_must_be_distinct_and_name_as_not_too_many() {
    let a = load("machine-a.json");
    let e = report::machine_labels(&[a.clone(), a.clone()], &[]).unwrap_err().to_string();
    assert!(e.contains("results files 1 and 2 would both be shown as `vm`") && e.contains("--name-as"), "{e}");
    assert_eq!(report::machine_labels(&[a.clone(), a.clone()], &["before".into(), "after".into()]).unwrap(), ["before", "after"]);
    let e = report::machine_labels(&[a.clone()], &["x".into(), "y".into()]).unwrap_err().to_string();
    assert!(e.contains("--name-as was given 2 times for 1 results file(s)"), "{e}");
}

#[test]
fn an_unwritable_folder_is_a_clear_error() {
    let tmp = scratch("unwritable");
    let dir = tmp.path();
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let e = format!("{:#}", report::write_all(&[load("machine-a.json")], &ReportOptions::default(), &file.join("out")).unwrap_err());
    assert!(e.contains("cannot create the report folder") && e.contains("a-file/out") && e.contains("--out"), "{e}");
}

#[test]
fn figures_of_an_earlier_report_that_are_not_redrawn_are_removed() {
    let tmp = scratch("stale");
    let dir = tmp.path();
    report::write_all(&[with_operations(load("machine-a.json"))], &ReportOptions::default(), &dir).unwrap();
    assert!(dir.join("fig1-operations.png").exists());
    report::write_all(&[load("machine-a.json")], &ReportOptions::default(), &dir).unwrap();
    assert!(!dir.join("fig1-operations.png").exists() && !dir.join("fig1-operations.svg").exists());
    assert!(dir.join("fig2-models.png").exists());
}

#[test]
fn a_fully_failed_runtime_draws_no_bar_but_is_named() {
    let mut r = load("machine-a.json");
    for c in r.cells.iter_mut().filter(|c| c.runtime.as_str() == "ort-cpu") {
        c.status = Status::Failed;
        c.summary = None;
    }
    let m = report::merge(std::slice::from_ref(&r), &ReportOptions::default()).unwrap();
    let bars = figures::model_bars(&m);
    assert_eq!(bars.len(), 2);
    assert!(bars[0].mean_ms.is_some() && bars[1].mean_ms.is_none() && bars[1].series == "ort-cpu");
}

#[test]
fn report_command_merges_files_and_explains_its_errors() {
    let tmp = scratch("cli");
    let dir = tmp.path();
    let (a, b) = (data("machine-a.json"), data("machine-b.json"));
    let out = xbench().arg("report").args([&a, &b]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out DIR"));

    let out = xbench()
        .arg("report")
        .args([&a, &b])
        .arg("--out")
        .arg(&dir)
        .args(["--name-as", "linux", "--name-as", "mac"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("linux · tract-cpu (ms, end-to-end)") && md.contains("mac · ort-cpu (ms, end-to-end)"));
    assert!(dir.join("index.html").exists() && dir.join("fig3-length.png").exists());

    let newer = dir.join("newer.json");
    let text = std::fs::read_to_string(&a).unwrap().replacen("\"format_version\": 1", "\"format_version\": 99", 1);
    std::fs::write(&newer, text).unwrap();
    let out = xbench().arg("report").arg(&newer).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("newer.json") && err.contains("format version 99"), "{err}");
}

/// Debian's Chromium, installed with apt-get on first use where it is missing and the tests run as
/// root (as on CI and the project's machines), as the Python packages the tests drive are.
fn chromium() -> &'static str {
    static FOUND: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| {
        let runs = || std::process::Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
        if !runs() {
            let sh = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium";
            let ok = std::process::Command::new("sh").args(["-c", sh]).status().is_ok_and(|s| s.success());
            assert!(ok && runs(), "Debian's chromium is needed to render the report page: `{sh}` (as root) installs it");
        }
    });
    "chromium"
}

/// The page as a reader sees it: headless Chromium (Debian's `chromium`) renders `index.html` with
/// a checking script added, and the DOM it leaves says what was drawn; a screenshot is kept under
/// the test build's temporary folder.
fn render_in_chromium(html: &Path, name: &str) -> serde_json::Value {
    let page = std::fs::read_to_string(html).unwrap();
    let probe = r#"<script>
window.__errors = [];
window.addEventListener('error', e => __errors.push(String(e.message || (e.target && e.target.outerHTML) || e)), true);
window.addEventListener('load', () => {
  const problems = [];
  const figures = [...document.querySelectorAll('figure svg')];
  figures.forEach((s, i) => { const r = s.getBoundingClientRect(); if (!(r.width > 0 && r.height > 0)) problems.push(`figure ${i} is drawn ${r.width}x${r.height}`); });
  const page = document.documentElement.clientWidth;
  const tables = [...document.querySelectorAll('table')];
  tables.forEach((t, i) => {
    const box = t.parentElement, scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
    if (t.getBoundingClientRect().width > page + 1 && !scrolls) problems.push(`table ${i} is wider than the page and does not scroll`);
  });
  if (document.documentElement.scrollWidth > page + 1) problems.push(`the page is ${document.documentElement.scrollWidth}px wide in a ${page}px window`);
  const out = document.createElement('pre');
  out.id = 'xbench-check';
  out.textContent = JSON.stringify({figures: figures.length, tables: tables.length, problems, errors: __errors});
  document.body.appendChild(out);
});
</script>"#;
    let checked = html.with_file_name("checked.html");
    std::fs::write(&checked, page.replacen("<head>", &format!("<head>\n{probe}"), 1)).unwrap();
    let chromium = |extra: &[&str]| {
        let out = std::process::Command::new(chromium())
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2400", "--virtual-time-budget=5000"])
            .args(extra)
            .arg(&checked)
            .output()
            .expect("chromium runs");
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a screenshot of the page at {}", shot.display());
    eprintln!("screenshot: {}", shot.display());
    let dom = String::from_utf8_lossy(&chromium(&["--dump-dom"]).stdout).into_owned();
    let at = dom.find("<pre id=\"xbench-check\">").unwrap_or_else(|| panic!("the checking script ran:\n{}", &dom[dom.len().saturating_sub(2000)..]));
    let json = &dom[at + "<pre id=\"xbench-check\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    serde_json::from_str(&json.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")).unwrap()
}

#[test]
fn the_page_renders_in_a_browser_with_every_figure_drawn_and_every_table_fitting_or_scrolling() {
    for (name, results) in [("quick", vec![load("machine-a.json")]), ("merged", vec![load("machine-a.json"), load("machine-b.json")])] {
        let tmp = scratch(&format!("browser-{name}"));
        let files = report::write_all(&results, &ReportOptions { names: vec![], paper: name == "merged" }, tmp.path()).unwrap();
        let seen = render_in_chromium(&files.html, name);
        assert_eq!(seen["figures"], 3, "{name}: figs. 2-4 drawn: {seen}");
        assert!(seen["tables"].as_u64().unwrap() >= 5, "{name}: {seen}");
        assert_eq!(seen["problems"], serde_json::json!([]), "{name}: {seen}");
        assert_eq!(seen["errors"], serde_json::json!([]), "{name}: no error on the page: {seen}");
    }
}
