//! `nsgf bench ...`: experiment harnesses that regenerate the paper's tables.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use nsgf::backend::DeviceKind;
use nsgf::train::config::LrSchedule;
use nsgf::train::interrupt;
use nsgf::train::table1::{run_table1_since, Table1Settings};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    #[arg(long, default_value_t = 128, value_parser = super::count)]
    batch: usize,
    /// Timed steps (after one warm-up step); the median is reported.
    #[arg(long, default_value_t = 3, value_parser = super::count)]
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
    /// Problems trained at once, each by a child process of this program (a 2-D model trains
    /// on one core: 2 on a 2-core machine). The cells equal those of one process (each cell
    /// seeds itself); the children's logs go to WORK/jobs/<problem>.log.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Train and cache the cells in WORK, then stop (no table, no figures; `--out` unused):
    /// what each child of `--jobs N` runs.
    #[arg(long, hide = true, conflicts_with = "jobs")]
    cells_only: bool,
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
                problems: a.problems.clone(),
                methods: a.methods.clone(),
                seeds: a.seeds,
                eval_draws: a.draws,
                steps: a.steps,
                lr: a.lr,
                lr_schedule: a.lr_schedule,
                sigma: a.sigma,
                n_eval: a.n,
                reflow_pairs: a.reflow_pairs,
                configs: a.configs.clone(),
                ..Table1Settings::default()
            };
            settings.parse()?;
            if a.jobs == 0 {
                anyhow::bail!("--jobs must be at least 1");
            }
            let t0 = Instant::now();
            let show = std::io::stderr().is_terminal();
            if a.cells_only {
                return nsgf::with_autodiff_backend!(a.device, |B, dev| {
                    nsgf::train::table1::train_cells::<B>(&settings, &a.work, &dev, show)
                })
                .context("table1 cells");
            }
            if a.jobs > 1 && settings.problems.len() > 1 {
                train_problems_in_parallel(&a)?;
            }
            let table = nsgf::with_autodiff_backend!(a.device, |B, dev| run_table1_since::<B>(
                &settings, &a.work, &a.out, &dev, show, t0
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

/// The arguments of the child that trains `problem`'s cells into the shared work folder and
/// stops there (`--cells-only`; the parent writes the table and figures afterwards).
fn child_args(a: &Table1Args, problem: &str) -> Result<Vec<OsString>> {
    let name = |v: serde_json::Value| v.as_str().map(str::to_owned).context("a setting's name");
    let mut args: Vec<OsString> = ["bench", "table1", "--cells-only"]
        .map(OsString::from)
        .to_vec();
    let mut set = |flag: &str, value: OsString| args.extend([OsString::from(flag), value]);
    set("--seeds", a.seeds.to_string().into());
    set("--draws", a.draws.to_string().into());
    set("--steps", a.steps.to_string().into());
    set("--methods", a.methods.join(",").into());
    set("--problems", problem.into());
    // Paths as they are (not through `display`, which would mangle a non-UTF-8 name).
    set("--out", a.out.clone().into_os_string());
    set("--work", a.work.clone().into_os_string());
    set("--configs", a.configs.clone().into_os_string());
    set("--lr", a.lr.to_string().into());
    set(
        "--lr-schedule",
        name(serde_json::to_value(a.lr_schedule)?)?.into(),
    );
    set("--sigma", a.sigma.to_string().into());
    set("--n", a.n.to_string().into());
    set("--reflow-pairs", a.reflow_pairs.to_string().into());
    set("--device", name(serde_json::to_value(a.device)?)?.into());
    Ok(args)
}

/// Asks a child to stop after its current step's checkpoint (SIGTERM, as `nsgf` handles it;
/// elsewhere than Unix the child is killed, and resumes from its last checkpoint).
fn stop_child(child: &mut Child) {
    #[cfg(unix)]
    {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = child.kill();
    }
}

/// Starts the child that trains `problem`, its stderr appended to `log`. On Linux the child is
/// this very program image (`/proc/self/exe`: a rebuild of the binary during a long table does
/// not change the code that trains it); on Unix it gets its own process group, so a Ctrl-C at
/// the terminal reaches the parent only, which passes it on as one SIGTERM (a second signal
/// would make a child exit without its checkpoint). On Linux a child also gets that SIGTERM
/// when the parent dies without passing it on (killed by SIGKILL, say).
fn spawn_child(a: &Table1Args, problem: &str, log: &std::path::Path) -> Result<Child> {
    let proc_exe = std::path::Path::new("/proc/self/exe");
    let exe = if cfg!(target_os = "linux") && proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().context("finding this program to run its children")?
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(child_args(a, problem)?)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        // `ps` shows the program's name, not /proc/self/exe.
        if let Some(name) = std::env::args_os().next() {
            cmd.arg0(name);
        }
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs between fork and exec; it calls only async-signal-safe
        // functions (prctl, getppid) and allocates nothing on its success path.
        unsafe {
            cmd.pre_exec(move || {
                // If the parent dies without passing a stop on (SIGKILL, OOM), the child gets
                // the SIGTERM itself: it checkpoints and exits instead of training on, orphaned.
                // (The signal follows the spawning *thread*: children are spawned from the
                // thread that runs the command and outlives them.)
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died before the prctl: do not start at all.
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
        .with_context(|| format!("starting the child for {problem}"))
}

/// Trains every problem's cells by `--jobs` child processes at once (one problem each, in the
/// order given; a finished child's slot takes the next problem). A stop request (Ctrl-C /
/// SIGTERM) is passed on to the children, which checkpoint and exit; the command then fails
/// and resumes when run again. On an error of its own the parent stops and reaps the children
/// before returning it (no orphan keeps training into the work folder).
fn train_problems_in_parallel(a: &Table1Args) -> Result<()> {
    interrupt::install()?;
    let logs = a.work.join("jobs");
    nsgf::io::create_dir_all(&logs)?;
    let mut running: Vec<(String, Child, Instant)> = Vec::new();
    let result = schedule(a, &logs, &mut running);
    if result.is_err() {
        for (_, child, _) in &mut running {
            stop_child(child);
        }
    }
    for (_, child, _) in &mut running {
        let _ = child.wait();
    }
    result
}

/// The scheduling loop of [`train_problems_in_parallel`]; `running` holds the live children.
fn schedule(
    a: &Table1Args,
    logs: &std::path::Path,
    running: &mut Vec<(String, Child, Instant)>,
) -> Result<()> {
    let mut queue: std::collections::VecDeque<&String> = a.problems.iter().collect();
    let mut failed: Vec<String> = Vec::new();
    let mut stopping = false;
    loop {
        while running.len() < a.jobs && !stopping {
            let Some(problem) = queue.pop_front() else {
                break;
            };
            let log = logs.join(format!("{problem}.log"));
            let child = spawn_child(a, problem, &log)?;
            eprintln!("table1: {problem}: training (log {})", log.display());
            running.push((problem.clone(), child, Instant::now()));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if interrupt::requested() && !stopping {
            stopping = true;
            for (_, child, _) in running.iter_mut() {
                stop_child(child);
            }
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].1.try_wait()? {
                None => i += 1,
                Some(status) => {
                    let (problem, _, t) = running.remove(i);
                    let minutes = t.elapsed().as_secs_f64() / 60.0;
                    if status.success() {
                        eprintln!("table1: {problem}: done ({minutes:.1} min)");
                    } else if stopping && status.code() == Some(130) {
                        eprintln!("table1: {problem}: stopped after a checkpoint");
                    } else {
                        eprintln!(
                            "table1: {problem}: failed ({status}); see {}",
                            logs.join(format!("{problem}.log")).display()
                        );
                        failed.push(problem);
                    }
                }
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "table1: the cells of {} failed (logs in {})",
            failed.join(", "),
            logs.display()
        );
    }
    if stopping {
        return Err(nsgf::NsgfError::Stopped(
            "table1: the children stopped after checkpointing their cells".into(),
        )
        .into());
    }
    Ok(())
}
