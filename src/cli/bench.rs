//! `nsgf bench ...`: experiment harnesses that regenerate the paper's tables.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use nsgf::backend::DeviceKind;
use nsgf::train::config::LrSchedule;
use nsgf::train::table1::{run_table1, Table1Settings};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Table 1: NSGF and the flow-matching baselines on the 2-D suite (W2 at 10 and 100 Euler
    /// steps, mean ± std over seeds), with path figures and W2-vs-step curves. Resumable: finished
    /// cells are read back from --work.
    Table1(Table1Args),
    /// Speed of one UNet training step (forward at random t, MSE, backward, Adam step) and,
    /// with --ops, of its ops (forward + backward). The PyTorch reference is
    /// tools/bench_unet_torch.py with the same arguments.
    Unet(UnetArgs),
}

#[derive(Args, Debug)]
pub struct UnetArgs {
    /// Network: mnist, cifar10 or tiny.
    #[arg(long, default_value = "mnist")]
    config: String,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Timed steps (after one warm-up step); the median is reported.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Also time the ops alone (convolutions, GroupNorm + SiLU, ResBlock, attention).
    #[arg(long)]
    ops: bool,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
    /// Print JSON (keys params, step_ms, images_per_s, peak_rss_mb, ops) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct Table1Args {
    /// Training seeds per cell.
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Test draws every model is scored on (the same for every method and seed).
    #[arg(long, default_value_t = 20)]
    draws: usize,
    /// Gradient steps per model (the paper: 20,000).
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
    /// Methods (comma-separated): nsgf, nsgfpp, jko, ept, sjko, otcfm, 1rf, 2rf, 3rf, si, fm,
    /// icfm (k-RF for k = 1..9).
    #[arg(long, value_delimiter = ',', default_values_t = Table1Settings::default().methods)]
    methods: Vec<String>,
    /// Problems (comma-separated): 8gaussians, 8gaussians-moons, moons, scurve, checkerboard.
    #[arg(long, value_delimiter = ',', default_values_t = Table1Settings::default().problems)]
    problems: Vec<String>,
    /// Output folder for table1.md, table1.json and the figures.
    #[arg(long)]
    out: PathBuf,
    /// Work folder for models and cached cells (default: runs/table1).
    #[arg(long, default_value = "runs/table1")]
    work: PathBuf,
    /// Folder of the NSGF configs (<problem>.toml).
    #[arg(long, default_value = "configs")]
    configs: PathBuf,
    /// Adam learning rate of every method.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Learning-rate schedule of every method: constant or cosine (decay to 0).
    #[arg(long, default_value = "cosine")]
    lr_schedule: LrSchedule,
    /// σ of FM / I-CFM / OT-CFM / SI.
    #[arg(long, default_value_t = 0.1)]
    sigma: f64,
    /// Samples per evaluation.
    #[arg(long, default_value_t = 1024)]
    n: usize,
    /// Pairs per k-RF reflow coupling.
    #[arg(long, default_value_t = 10_000)]
    reflow_pairs: usize,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Unet(a) => {
            if a.batch == 0 || a.steps == 0 {
                anyhow::bail!("--batch and --steps must be at least 1");
            }
            let r = nsgf::with_autodiff_backend!(a.device, |B, dev| {
                nsgf::train::unet_bench::bench_unet::<B>(&a.config, a.batch, a.steps, a.ops, &dev)
            })
            .context("bench unet")?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "UNet {} (params {}), batch {}, {} threads: {:.1} ms/step, {:.2} images/s, peak RSS {}",
                    r.config,
                    r.params,
                    r.batch,
                    r.threads,
                    r.step_ms,
                    r.images_per_s,
                    r.peak_rss_mb.map_or("n/a".into(), |m| format!("{m:.0} MB"))
                );
                for op in r.ops.iter().flatten() {
                    println!("  {:<18} {:>9.1} ms", op.name, op.ms);
                }
            }
            Ok(())
        }
        BenchCommand::Table1(a) => {
            let settings = Table1Settings {
                problems: a.problems,
                methods: a.methods,
                seeds: a.seeds,
                eval_draws: a.draws,
                steps: a.steps,
                lr: a.lr,
                lr_schedule: a.lr_schedule,
                sigma: a.sigma,
                n_eval: a.n,
                reflow_pairs: a.reflow_pairs,
                configs: a.configs,
                ..Table1Settings::default()
            };
            settings.parse()?;
            let show = std::io::stderr().is_terminal();
            let table = nsgf::with_autodiff_backend!(a.device, |B, dev| run_table1::<B>(
                &settings, &a.work, &a.out, &dev, show
            ))
            .context("table1")?;
            println!("{}", nsgf::train::table1::markdown(&table));
            eprintln!(
                "wrote table1.md, table1.json and figures to {} ({:.1} min)",
                a.out.display(),
                table.seconds / 60.0
            );
            Ok(())
        }
    }
}
