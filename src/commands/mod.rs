//! One function per subcommand; each prints its own output.

mod scenario;
mod summary;
mod tools;

use std::path::Path;

use anyhow::Result;
use xbench::models::{self, read_io};
use xbench::runtimes::{self, RuntimeOptions};

use crate::cli::{Cmd, SetupCmd, TimingArg};

/// A run stopped by Ctrl-C (exit code 130, as shells expect).
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// A run that finished with failed cells or outputs that disagree (exit code 2).
#[derive(Debug)]
pub struct CellsFailed(pub String);

impl std::fmt::Display for CellsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CellsFailed {}

/// Refuses `--ep-lib NAME=PATH` with a NAME xbench does not know (it would be ignored).
fn check_ep_libs(ep_lib: &[(String, std::path::PathBuf)]) -> Result<()> {
    let known: Vec<&str> = runtimes::ort::plugins::PLUGINS.iter().map(|p| p.name).collect();
    if let Some((name, path)) = ep_lib.iter().find(|(n, _)| !known.contains(&n.as_str())) {
        anyhow::bail!("`--ep-lib {name}={}`: `{name}` is not a plugin execution provider xbench knows; it knows {}\n  fix: spell it as one of those, or name any other provider's library in the scenario (`ep: NAME, ep_library: PATH`)", path.display(), known.join(", "));
    }
    Ok(())
}

/// Runs `cmd`; `stop` is the token a run (`xbench scenario`) stops through.
pub fn dispatch(cmd: Cmd, stop: &xbench::run::Stop) -> Result<()> {
    // Plugin libraries are probed in a child process before this one loads them (a worker is such
    // a process already).
    if !matches!(cmd, Cmd::Worker | Cmd::ProbeEp { .. }) {
        if let Ok(exe) = std::env::current_exe() {
            runtimes::ort::probe_with(exe);
        }
    }
    match cmd {
        Cmd::Scenario { file, runtimes, out, models_dir, ort_lib, ep_lib, in_process, no_setup, quiet, resume, timing, device, pinned_io, cuda_graph, parallel_loads, no_tf32, ignore_failures, retry_failed, shard } => {
            check_ep_libs(&ep_lib)?;
            let timing = timing.map(|t| match t {
                TimingArg::EndToEnd => xbench::runtimes::Timing::EndToEnd,
                TimingArg::DeviceResident => xbench::runtimes::Timing::DeviceResident,
            });
            let given = xbench::runner::Given { scenario: file, runtimes, models_dir, ort_lib, ep_libs: ep_lib, timing, device, pinned_io, cuda_graph, no_tf32, in_process, parallel_loads, no_setup, out, resume, retry_failed, shard };
            scenario::run(given, quiet, ignore_failures, stop)
        }
        Cmd::Runtimes { ort_lib, ep_lib } => {
            check_ep_libs(&ep_lib)?;
            let opts = RuntimeOptions { threads: None, ort_lib, ep_libs: ep_lib.into_iter().collect(), ..Default::default() };
            let all = runtimes::all();
            let w = all.iter().map(|s| s.id.as_str().len()).max().unwrap_or(7).max(7);
            println!("{:<w$} {:<7} {:<8} detail", "runtime", "usable", "version");
            let indent = format!("\n{}", " ".repeat(w + 18));
            for spec in all {
                let a = spec.check(&opts);
                println!("{:<w$} {:<7} {:<8} {}", spec.id.as_str(), if a.usable { "yes" } else { "no" }, a.version.as_deref().unwrap_or("-"), a.detail.replace('\n', &indent));
            }
            // The frameworks that external runtime programs run on (scripts/runtimes/).
            println!("\n{:<w$} {:<7} detail", "framework", "set up");
            let indent = format!("\n{}", " ".repeat(w + 9));
            for (name, ready, detail) in runtimes::frameworks::status_lines() {
                println!("{:<w$} {:<7} {}", name, if ready { "yes" } else { "no" }, detail.replace('\n', &indent));
            }
            Ok(())
        }
        Cmd::Models { models_dir } => list_models(&models_dir),
        Cmd::Setup { what: SetupCmd::Ort { gpu } } => {
            let lib = runtimes::setup_ort(gpu)?;
            println!("{}", lib.display());
            Ok(())
        }
        Cmd::Setup { what: SetupCmd::Ep { name } } => {
            use xbench::runtimes::ort::plugins;
            let p = plugins::plugin(&name).ok_or_else(|| anyhow::anyhow!("`{name}` is not a plugin execution provider xbench knows\n  fix: use one of: {}", plugins::names()))?;
            let lib = plugins::setup(p)?;
            println!("{}", lib.display());
            Ok(())
        }
        Cmd::Setup { what: SetupCmd::Runtime { name, gpu } } => {
            use xbench::runtimes::frameworks::{self, Framework};
            let fw = Framework::by_name(&name).ok_or_else(|| {
                let known: Vec<&str> = frameworks::FRAMEWORKS.iter().map(|f| f.name).collect();
                anyhow::anyhow!("`{name}` is not a framework xbench sets up\n  fix: use one of: {}", known.join(", "))
            })?;
            let python = frameworks::setup(fw, gpu)?;
            for v in frameworks::versions(&python, fw.shown) {
                println!("  {v}");
            }
            println!("{}", python.display());
            Ok(())
        }
        Cmd::Report { results, out, name_as, paper } => tools::report(&results, out, name_as, paper),
        Cmd::MakeTinyBert { out, fp16, seed } => {
            use xbench::onnx::tiny_bert;
            let cfg = tiny_bert::TinyBertConfig { seed, ..Default::default() };
            // Only over a model xbench wrote (its producer is xbench), never over someone's own.
            let model = out.join("model.onnx");
            let what = "the tiny test model";
            xbench::files::check_write(&model, what, xbench::onnx::builder::made_by_xbench, &[])?;
            xbench::files::check_write(&out.join("config.json"), what, |_| xbench::onnx::builder::made_by_xbench(&model), &[])?;
            let path = if fp16 { tiny_bert::write_fp16(&cfg, &out)? } else { tiny_bert::write(&cfg, &out)? };
            println!("{}", path.display());
            Ok(())
        }
        Cmd::MakeTinyDecoder { out, fp16, seed } => {
            use xbench::onnx::tiny_decoder;
            let cfg = tiny_decoder::TinyDecoderConfig { seed, ..Default::default() };
            // Only over a model xbench wrote (its producer is xbench), never over someone's own.
            let model = out.join("model.onnx");
            let what = "the tiny test decoder";
            xbench::files::check_write(&model, what, xbench::onnx::builder::made_by_xbench, &[])?;
            for file in ["config.json", "tokenizer.json"] {
                xbench::files::check_write(&out.join(file), what, |_| xbench::onnx::builder::made_by_xbench(&model), &[])?;
            }
            println!("{}", tiny_decoder::write(&cfg, fp16, &out)?.display());
            Ok(())
        }
        Cmd::Compare { a, b, level, fail_above } => tools::compare(&a, &b, level, fail_above),
        Cmd::Feeds { file, out, models_dir } => tools::write_feeds(&file, &out, &models_dir),
        Cmd::Fetch { repo, revision, file, name, models_dir, quiet: _ } => tools::fetch(&repo, revision, file, name, models_dir),
        // `main` runs the worker itself: its exit code is its own.
        Cmd::Worker => anyhow::bail!("`xbench worker` is run by main"),
        Cmd::ProbeEp { name, library, ort_lib } => runtimes::ort::probe_main(&name, &library, &ort_lib),
    }
}

fn list_models(root: &Path) -> Result<()> {
    let found = models::discover(root);
    if found.is_empty() {
        println!("no models under {} (a model is a folder with an .onnx file and its tokenizer.json)", root.display());
        return Ok(());
    }
    for m in found {
        match m {
            Err(e) => println!("{e:#}\n"),
            Ok(m) => {
                println!("{}  ({})", m.name, m.onnx.display());
                match &m.tokenizer {
                    Some(t) => println!("  tokenizer: {}", t.display()),
                    None => println!("  tokenizer: none"),
                }
                if let Some(h) = &m.meta.hub_id {
                    println!("  hub id:    {h}");
                }
                if let Some(r) = &m.meta.revision {
                    println!("  revision:  {r}");
                }
                if let Some(w) = &m.meta.weights {
                    println!("  weights:   {w}");
                }
                if let Some(s) = m.sibling() {
                    println!("  compared with: {s} (compare_with)");
                }
                match read_io(&m.onnx) {
                    Err(e) => println!("  unreadable: {e:#}"),
                    Ok(io) => {
                        // How each input would be fed on a scenario's grid (model.yaml's `inputs:` taken).
                        let specs = m.inputs.iter().map(|(k, v)| (k.clone(), xbench::inputs::Located::new(v.clone(), "model.yaml", xbench::scenario::SetBy::ModelYaml))).collect();
                        let plan = xbench::inputs::InputPlan::new(&m.name, &io.inputs, m.tokenizer.is_some(), &specs);
                        for (k, i) in io.inputs.iter().enumerate() {
                            let fed = match &plan {
                                Ok(p) => match &p.fills[k].fill {
                                    xbench::inputs::Fill::Token(role) => format!("fed: {}", role.name()),
                                    xbench::inputs::Fill::Given { .. } => "fed: values from model.yaml".into(),
                                    xbench::inputs::Fill::Generated => "fed: generated".into(),
                                },
                                Err(_) => i.structural_use.as_ref().map(|u| format!("{u}: set its values under `inputs:`")).unwrap_or_default(),
                            };
                            println!("  input  {:<16} {:<8} {:<24} {fed}", i.name, i.elem_type, i.shape_string());
                        }
                        for o in &io.outputs {
                            println!("  output {:<16} {:<8} {}", o.name, o.elem_type, o.shape_string());
                        }
                        let opsets: Vec<String> = io.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
                        println!("  opsets:    {}", opsets.join(", "));
                        if let Err(why) = &plan {
                            println!("  inputs:    {}", why.replace('\n', "\n             "));
                        }
                        println!("  precision: {}", io.precision());
                        if !m.test_data.is_empty() {
                            println!("  test data: {} data sets (test_data_set_N), run instead of the scenario's grid", m.test_data.len());
                        }
                    }
                }
                println!();
            }
        }
    }
    Ok(())
}
