//! `nsgf train` and `nsgf sample`: NSGF on the 2-D problems.

use anyhow::{Context, Result};
use clap::Args;
use nsgf::backend::DeviceKind;
use nsgf::convert::to_f32_vec;
use nsgf::flows::samplers::Solver;
use nsgf::io::parts::{part_f32, part_f64, Parts};
use nsgf::io::{write_npy, NpyArray};
use nsgf::models::ops::NnAutodiffBackend;
use nsgf::progress::Progress;
use nsgf::train::cfm;
use nsgf::train::config::ToyConfig;
use nsgf::train::nsgf as toy;
use nsgf::train::nsgfpp;
use nsgf::train::sjko;
use nsgf::train::wgf;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Run config (TOML), e.g. configs/moons.toml.
    #[arg(long)]
    config: PathBuf,
    /// Run directory: receives config.toml, model.safetensors, optim.mpk, state.json.
    #[arg(long)]
    out: PathBuf,
    /// Override the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the number of gradient steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Train from scratch even when --out holds a checkpoint: its checkpoints are invalidated
    /// first (their `state.json` files removed), the other files replaced as the new run writes
    /// them. Without it (or --resume) such a folder is refused.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

/// Reads a config file's text (for telling NSGF++ configs from NSGF ones).
fn read_text(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn train(args: TrainArgs) -> Result<()> {
    match nsgfpp::config_method(&read_text(&args.config)?).as_deref() {
        Some("nsgfpp") => train_from_config::<nsgfpp::NsgfppConfig>(args),
        Some("cfm") => train_from_config::<cfm::CfmConfig>(args),
        Some("jko" | "ept") => train_from_config::<wgf::WgfConfig>(args),
        Some("sjko") => train_from_config::<sjko::SjkoConfig>(args),
        Some(other) => anyhow::bail!(
            "{}: unknown method {other:?} (nsgfpp, cfm, jko, ept, sjko; no method key: a 2-D NSGF config)",
            args.config.display()
        ),
        None => train_from_config::<ToyConfig>(args),
    }
}

/// What `nsgf train` needs of a method's config: load it, apply `--seed` / `--steps`, train it
/// on a backend and summarise the report.
trait RunConfig: Sized {
    type Report: serde::Serialize;
    fn load(path: &Path) -> nsgf::Result<Self>;
    fn set_seed(&mut self, seed: u64);
    /// What `--steps` overrides (see each impl).
    fn set_steps(&mut self, steps: usize);
    /// The method's trainer (which validates the config first).
    fn train<B: NnAutodiffBackend>(
        &self,
        out: &Path,
        dev: &B::Device,
        resume: bool,
        show: bool,
    ) -> nsgf::Result<Self::Report>;
    /// One line for stderr.
    fn summary(&self, report: &Self::Report) -> String;
}

/// `nsgf train`: load, override, train on the chosen device (validating first), report (a line on
/// stderr, the report as JSON on stdout).
fn train_from_config<C: RunConfig>(args: TrainArgs) -> Result<()> {
    let mut cfg = C::load(&args.config)?;
    if !args.resume {
        let found = checkpoints_in(&args.out);
        if !args.overwrite && !found.is_empty() {
            anyhow::bail!(
                "{} already holds a trained run (checkpoint {}): continue it with --resume, or \
                 pass --overwrite to train from scratch over it",
                args.out.display(),
                found[0].display()
            );
        }
        // A part left with its old checkpoint would be resumed after an interrupted new run.
        for state in found {
            std::fs::remove_file(&state)
                .with_context(|| format!("--overwrite: removing {}", state.display()))?;
            eprintln!(
                "--overwrite: removed the old checkpoint {}",
                state.display()
            );
        }
    }
    if let Some(seed) = args.seed {
        cfg.set_seed(seed);
    }
    if let Some(steps) = args.steps {
        cfg.set_steps(steps);
    }
    let show = std::io::stderr().is_terminal();
    let report = nsgf::with_autodiff_backend!(args.device, |B, dev| cfg.train::<B>(
        &args.out,
        &dev,
        args.resume,
        show
    ))
    .with_context(|| format!("training {}", args.config.display()))?;
    eprintln!("{}", cfg.summary(&report));
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The checkpoints (`state.json` files) in `dir` and its sub-folders (a run's parts: NSGF++'s
/// `nsgf/`, S-JKO's `generator/`, ...), at most three levels down, in name order.
fn checkpoints_in(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                if depth > 0 {
                    walk(&p, depth - 1, out);
                }
            } else if p.file_name() == Some(nsgf::train::checkpoint::STATE_FILE.as_ref()) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, 3, &mut out);
    out
}

/// The items of a [`RunConfig`] impl that only name the method's trainer: `load` (the config
/// type's own), `set_seed` (its `seed` field) and `train` (`module::train::<B>`).
macro_rules! load_seed_train {
    ($($train:ident)::+) => {
        fn load(path: &Path) -> nsgf::Result<Self> {
            Self::load(path)
        }
        fn set_seed(&mut self, seed: u64) {
            self.seed = seed;
        }
        fn train<B: NnAutodiffBackend>(
            &self,
            out: &Path,
            dev: &B::Device,
            resume: bool,
            show: bool,
        ) -> nsgf::Result<Self::Report> {
            $($train)::+::<B>(self, out, dev, resume, show)
        }
    };
}

/// A 2-D NSGF run (`--steps`: the velocity field's training steps).
impl RunConfig for ToyConfig {
    type Report = toy::TrainReport;
    fn set_steps(&mut self, steps: usize) {
        self.train.steps = steps;
    }
    load_seed_train!(toy::train);
    fn summary(&self, r: &Self::Report) -> String {
        if r.pool_samples == 0 {
            return format!(
                "the run has trained its {} steps (final loss {:.4}): nothing left to train",
                r.steps, r.final_loss
            );
        }
        format!(
            "trained {} steps (final loss {:.4}); pool {} samples / {:.1} MiB built in {:.1}s; training {:.1}s ({:.0} steps/s)",
            r.steps,
            r.final_loss,
            r.pool_samples,
            r.pool_bytes as f64 / (1 << 20) as f64,
            r.pool_seconds,
            r.train_seconds,
            r.steps as f64 / r.train_seconds.max(1e-9)
        )
    }
}

/// An NSGF++ run (Algorithm 3: NSGF phase, NSF, time predictor; `--steps`: each network's).
impl RunConfig for nsgfpp::NsgfppConfig {
    type Report = nsgfpp::NsgfppReport;
    fn set_steps(&mut self, steps: usize) {
        self.train.steps = steps;
        self.nsf.train.steps = steps;
        self.time.train.steps = steps;
    }
    load_seed_train!(nsgfpp::train);
    fn summary(&self, r: &Self::Report) -> String {
        format!(
            "NSGF++: NSGF field {} steps (loss {:.4}, pool {} samples / {:.1} MiB, refills {:.1}s), \
             NSF {} steps (loss {:.4}), time predictor {} steps (loss {:.4})",
            r.nsgf.steps,
            r.nsgf.final_loss,
            r.nsgf.pool_samples,
            r.nsgf.pool_bytes as f64 / (1 << 20) as f64,
            r.nsgf.refresh_seconds,
            r.nsf.steps,
            r.nsf.final_loss,
            r.time.steps,
            r.time.final_loss
        )
    }
}

/// A flow-matching run (`method = "cfm"`; `--steps`: training steps).
impl RunConfig for cfm::CfmConfig {
    type Report = nsgf::train::fit::FitOutcome;
    fn set_steps(&mut self, steps: usize) {
        self.train.steps = steps;
    }
    load_seed_train!(cfm::train);
    fn summary(&self, r: &Self::Report) -> String {
        format!(
            "{:?} flow matching: {} steps (loss {:.4}) in {:.1}s",
            self.matcher, r.steps, r.final_loss, r.seconds
        )
    }
}

/// A JKO-Flow / EPT run (`--steps`: the flow steps K).
impl RunConfig for wgf::WgfConfig {
    type Report = wgf::WgfReport;
    fn set_steps(&mut self, steps: usize) {
        self.steps = steps;
    }
    load_seed_train!(wgf::train);
    fn summary(&self, r: &Self::Report) -> String {
        format!(
            "{:?}: {} flow steps, {} network updates in {:.1}s",
            self.method, r.steps, r.updates, r.seconds
        )
    }
}

/// An S-JKO run (`--steps`: the iterations of every phase).
impl RunConfig for sjko::SjkoConfig {
    type Report = sjko::SjkoReport;
    fn set_steps(&mut self, steps: usize) {
        self.iterations = steps;
        self.init_iterations = None;
    }
    load_seed_train!(sjko::train);
    fn summary(&self, r: &Self::Report) -> String {
        format!(
            "S-JKO: {} phases, {} iterations ({} in this call) in {:.1}s; losses D {:.4}, G {:.4}",
            self.phases, r.iterations, r.new_iterations, r.seconds, r.loss_d, r.loss_g
        )
    }
}

/// Writes image samples (`[-1, 1]` rows of `shape`) as a uint8 `.npy` or a PNG folder, and the
/// grid of the first ones (after `before`'s block when given) into `grid`.
fn write_image_samples(
    out: &std::path::Path,
    grid: Option<&std::path::Path>,
    shape: [usize; 3],
    x: &[f32],
    before: Option<&[f32]>,
) -> Result<()> {
    use nsgf::data::dataset::unit_nchw_to_images;
    use nsgf::data::images::{image_grid, write_image_npy, write_png_folder};
    let [c, h, w] = shape;
    let d = c * h * w;
    let n = x.len() / d;
    let images = unit_nchw_to_images(x, [n, c, h, w])?;
    if out.extension().is_some_and(|e| e == "npy") {
        write_image_npy(out, &images)?;
    } else {
        write_png_folder(out, &images)?;
    }
    if let Some(png) = grid {
        let k = n.min(GRID_ROWS);
        let mut blocks = Vec::new();
        if let Some(b) = before {
            blocks.push(unit_nchw_to_images(&b[..k * d], [k, c, h, w])?);
        }
        blocks.push(images.slice(0, k));
        image_grid(&blocks, 10, 2)?
            .save(png)
            .with_context(|| format!("writing {}", png.display()))?;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Run directory written by `nsgf train`.
    #[arg(long)]
    run: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 1024, value_parser = super::count)]
    n: usize,
    /// Uniform solver steps on tau in [0, 1] (steps = T reproduces the training flow's Euler
    /// steps). NSGF++: the NSF steps after the NSGF phase. Default 10.
    #[arg(long, value_parser = super::count)]
    steps: Option<usize>,
    /// The network evaluations per sample, instead of --steps: NSGF and flow matching
    /// steps x the solver's evaluations per step; NSGF++ T NSGF steps + 1 time prediction + the
    /// NSF steps x the solver's evaluations per step; JKO-Flow / EPT and S-JKO only their own
    /// (K, 1).
    #[arg(long, value_parser = super::count, conflicts_with = "steps")]
    nfe: Option<usize>,
    /// Integrate adaptively (Dormand–Prince 5(4), atol = rtol = TOL) instead of fixed steps:
    /// NSGF++'s straight flow, or a flow-matching run's whole ODE. The NFE printed is the mean
    /// over batches.
    #[arg(long, conflicts_with_all = ["steps", "nfe", "solver"])]
    tol: Option<f64>,
    /// Images: samples per network call. Default 256.
    #[arg(long, value_parser = super::count)]
    batch: Option<usize>,
    /// Images: rows per part of the draw (a multiple of --batch; default about 1,000). Parts go
    /// to `<out>.parts/` as they are drawn, so that an interrupted draw resumes.
    #[arg(long, hide = true, value_parser = super::count)]
    part_rows: Option<usize>,
    /// Images: also write a grid of the first samples into this PNG (NSGF++: Fig. 5 style, a
    /// block after the NSGF phase above a block of final samples).
    #[arg(long)]
    grid: Option<PathBuf>,
    /// ODE solver (fixed steps). Default euler.
    #[arg(long, value_enum)]
    solver: Option<Solver>,
    /// Seed of the source draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output samples: `.npy` (n, 2) float32 in 2-D; for images a `.npy` uint8 array
    /// (n, H, W) or (n, H, W, 3), or a folder that receives one PNG per sample.
    #[arg(long)]
    out: PathBuf,
    /// 2-D runs: also draw the sample paths (Fig. 3 style) into this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

impl SampleArgs {
    /// `--steps`, default 10.
    fn steps(&self) -> usize {
        self.steps.unwrap_or(10)
    }
    /// `--batch`, default 256.
    fn batch(&self) -> usize {
        self.batch.unwrap_or(256)
    }
    /// `--solver`, default Euler.
    fn solver(&self) -> Solver {
        self.solver.unwrap_or(Solver::Euler)
    }
    /// Refuses the flags among `flags` that were given: they do not apply to `what` (a run of
    /// this method and kind), and were ignored before.
    fn refuse(&self, what: &str, flags: &[&str]) -> Result<()> {
        let flag = |f: &str| -> (bool, &'static str) {
            match f {
                "--steps" => (self.steps.is_some(), "the steps are set by training"),
                "--nfe" => (self.nfe.is_some(), "the NFE is set by training"),
                "--tol" => (
                    self.tol.is_some(),
                    "adaptive: flow matching and NSGF++ only",
                ),
                "--solver" => (self.solver.is_some(), "no ODE is solved"),
                "--batch" => (self.batch.is_some(), "image runs only"),
                "--part-rows" => (self.part_rows.is_some(), "image runs only"),
                "--grid" => (self.grid.is_some(), "image runs only"),
                "--plot" => (self.plot.is_some(), "2-D paths only; --grid draws images"),
                other => unreachable!("no flag {other}"),
            }
        };
        let bad: Vec<String> = flags
            .iter()
            .filter_map(|f| {
                let (given, why) = flag(f);
                given.then(|| format!("{f} ({why})"))
            })
            .collect();
        match bad.as_slice() {
            [] => Ok(()),
            [one] => anyhow::bail!("{one} does not apply to {what}; leave it out"),
            many => anyhow::bail!("{} do not apply to {what}; leave them out", many.join(", ")),
        }
    }
    /// The checks that depend on the kind of a `method` run (`image_shape`: `None` in 2-D):
    /// `--plot` refused on images, the image-only flags in 2-D; and the draw's memory probe.
    fn check_kind(&self, method: &str, image_shape: Option<[usize; 3]>) -> Result<()> {
        match image_shape {
            Some(_) => self.refuse(&format!("an image {method} run"), &["--plot"])?,
            None => self.refuse(
                &format!("a 2-D {method} run"),
                &["--batch", "--part-rows", "--grid"],
            )?,
        }
        probe_samples(self, image_shape)
    }
}

pub fn sample(args: SampleArgs) -> Result<()> {
    let config = args.run.join(nsgf::train::checkpoint::CONFIG_FILE);
    match nsgfpp::config_method(&read_text(&config)?).as_deref() {
        Some("nsgfpp") => return sample_nsgfpp(args),
        Some("cfm") => return sample_cfm(args),
        Some("jko" | "ept") => return sample_wgf(args),
        Some("sjko") => return sample_sjko(args),
        _ => {}
    }
    args.refuse(
        "a 2-D NSGF run",
        &["--tol", "--batch", "--part-rows", "--grid"],
    )?;
    let steps = fixed_steps(&args)?;
    probe_samples(&args, None)?;
    let (samples, path, nfe, problem) = nsgf::with_backend!(args.device, |B, dev| {
        let run = toy::load_run::<B>(&args.run, &dev)?;
        let (x, path, nfe) = toy::sample(&run, args.n, steps, args.solver(), args.seed, &dev)?;
        let path = path
            .into_iter()
            .map(to_f32_vec)
            .collect::<nsgf::Result<Vec<_>>>()?;
        anyhow::Ok((to_f32_vec(x)?, path, nfe, run.config.problem))
    })?;
    let title = format!("NSGF {problem}, {steps} steps");
    write_toy_samples(&args, samples, &path, problem, &title, nfe)
}

/// Refuses a draw of `n` samples of `d` values whose arrays would not fit in memory (a failed
/// allocation aborts the process): `copies` f32 arrays of `n x d` (2-D draws hold all their
/// samples, and their paths, at once; image draws one array of rows plus the uint8 output) are
/// reserved once and freed untouched.
fn probe_memory(n: usize, d: usize, copies: usize) -> Result<()> {
    let bytes = (n as u128) * (d as u128) * 4 * copies as u128;
    let fits = usize::try_from(bytes).is_ok_and(|b| Vec::<u8>::new().try_reserve_exact(b).is_ok());
    anyhow::ensure!(
        fits,
        "--n {n}: the samples need about {:.3e} bytes of memory ({copies} arrays of {n} x {d} \
         float32), more than this machine can give; draw fewer",
        bytes as f64
    );
    Ok(())
}

/// [`probe_memory`] for a run of this image shape (`None`: 2-D).
fn probe_samples(args: &SampleArgs, image_shape: Option<[usize; 3]>) -> Result<()> {
    match image_shape {
        Some(s) => probe_memory(args.n, s.iter().product(), 2),
        None => probe_memory(args.n, 2, TOY_COPIES),
    }
}

/// Arrays of a 2-D draw held at once (samples, source, velocity, temporaries; paths grow with
/// the steps): the probe of [`probe_memory`].
const TOY_COPIES: usize = 8;

/// The fixed solver steps of a flow's draw: `--steps`, or `--nfe` over the solver's evaluations
/// per step (NSGF, flow matching).
fn fixed_steps(args: &SampleArgs) -> Result<usize> {
    let per = args.solver().nfe_per_step();
    match args.nfe {
        None => Ok(args.steps()),
        Some(nfe) if nfe % per == 0 => Ok(nfe / per),
        Some(nfe) => anyhow::bail!(
            "--nfe {nfe}: the {:?} solver spends {per} evaluations per step",
            args.solver()
        ),
    }
}

/// Writes 2-D samples as `(n, 2)` f32 `.npy` and, with `--plot`, their paths (`path`: the
/// states from the source on) over fresh target samples; prints the NFE.
fn write_toy_samples(
    args: &SampleArgs,
    samples: Vec<f32>,
    path: &[Vec<f32>],
    problem: nsgf::data::toy2d::Problem,
    title: &str,
    nfe: usize,
) -> Result<()> {
    write_npy(&args.out, &NpyArray::f32(vec![args.n, 2], samples))?;
    if let Some(png) = &args.plot {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(args.seed ^ 0x5eed);
        let target = problem.target().sample(args.n, &mut rng);
        nsgf::metrics::plots::trajectory_plot(png, path, &target, title)?;
    }
    eprintln!(
        "wrote {} samples to {} (NFE = {nfe})",
        args.n,
        args.out.display()
    );
    Ok(())
}

/// Rows per part of a resumable image draw: `--part-rows`, or about 1,000; a whole number of
/// batches.
fn part_rows(args: &SampleArgs, batch: usize) -> Result<usize> {
    let batch = batch.max(1);
    match args.part_rows {
        None => Ok(batch * 1000usize.div_ceil(batch)),
        Some(r) if r > 0 && r.is_multiple_of(batch) => Ok(r),
        Some(r) => anyhow::bail!("--part-rows {r}: must be a positive multiple of --batch {batch}"),
    }
}

/// What identifies an image draw, for its parts (`<out>.parts/key.txt`): the command's
/// settings and the run's checkpoint (its `config.toml` and every `state.json`, which hash the
/// weights' files), so that parts of another draw, or of a run trained further, are not reused.
fn draw_key(args: &SampleArgs, method: &str) -> Result<String> {
    // The run's files that sampling reads: config.toml and each network's state.json by their
    // contents, its weights by name, size and modification time.
    let mut files = Vec::new();
    let mut dirs = vec![args.run.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .flatten()
        {
            let p = e.path();
            if p.is_dir() && dir == args.run {
                dirs.push(p);
            } else if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut hash = nsgf::io::Fnv1a::new();
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let rel = f.strip_prefix(&args.run).unwrap_or(f).display().to_string();
        if name == nsgf::train::checkpoint::CONFIG_FILE || name == "state.json" {
            hash.eat(rel.as_bytes());
            hash.eat(&std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
        } else if name.ends_with(".safetensors") {
            let (len, mtime) = nsgf::io::parts::file_stamp(f)?;
            hash.eat(format!("{rel} {len} {mtime}").as_bytes());
        }
    }
    let hash = hash.value();
    Ok(format!(
        "nsgf sample ({method}), nsgf {}\ncheckpoint = {hash:016x}\nn = {}\nbatch = {}\n\
         part_rows = {:?}\nseed = {}\nsteps = {}\nnfe = {:?}\ntol = {:?}\nsolver = {:?}\n\
         device = {:?}\n",
        env!("CARGO_PKG_VERSION"),
        args.n,
        args.batch(),
        args.part_rows,
        args.seed,
        args.steps(),
        args.nfe,
        args.tol,
        args.solver(),
        args.device
    ))
}

/// Rows of the Fig. 5 grid (`--grid`): the first samples.
const GRID_ROWS: usize = 40;

/// The parts folder of `nsgf sample --out X`: `X.parts`.
const SAMPLE_PARTS: &str = ".parts";

/// The progress bar of `nsgf sample` on images.
const SAMPLE_BAR: &str = "sample {bar:30} {pos}/{len} {per_sec} eta {eta}";

/// `nsgf sample` on an NSGF++ run (Algorithm 4): `--steps` is the number of NSF steps after the
/// run's NSGF phase (or `--nfe` the total); the NFE printed counts the NSGF steps, the time
/// predictor and the NSF steps.
fn sample_nsgfpp(args: SampleArgs) -> Result<()> {
    use nsgf::flows::nsgfpp::NsfSchedule;
    let config = nsgfpp::NsgfppConfig::load(&args.run.join(nsgf::train::checkpoint::CONFIG_FILE))?;
    args.check_kind("NSGF++", config.image_shape)?;
    let steps = match args.nfe {
        None => args.steps(),
        Some(nfe) => {
            let fixed = config.nsgf.steps + 1;
            let per = args.solver().nfe_per_step();
            if nfe < fixed + per || (nfe - fixed) % per != 0 {
                anyhow::bail!(
                    "--nfe {nfe}: this run spends {fixed} evaluations on its NSGF phase and time \
                     predictor, so the NFE must be {fixed} + k*{per} with k >= 1 ({:?} solver)",
                    args.solver()
                );
            }
            (nfe - fixed) / per
        }
    };
    let schedule = match args.tol {
        Some(tol) => NsfSchedule::Adaptive(tol),
        None => NsfSchedule::Steps(steps),
    };
    // Before the weights are read (a checkpoint written in between changes the key).
    let key = draw_key(&args, "nsgfpp")?;
    let (out, shape, parts) = nsgf::with_backend!(args.device, |B, dev| {
        let mut run = nsgfpp::load_run::<B>(&args.run, &dev)?;
        let d = run.config.image_shape.map_or(2, |s| s.iter().product());
        run.config.sampling.solver = args.solver();
        let batch = if run.config.is_image() {
            args.batch()
        } else {
            args.n
        };
        let pb = Progress::new(
            args.n as u64,
            run.config.is_image(),
            SAMPLE_BAR,
            format!("sample {}", args.run.display()),
        );
        if !run.config.is_image() {
            let out =
                nsgfpp::sample_many(&run, args.n, batch, Some(schedule), args.seed, &dev, |_| {})?;
            anyhow::Ok((out, None, None))
        } else {
            let size = part_rows(&args, batch)?;
            let dir = Parts::beside(&args.out, SAMPLE_PARTS);
            let parts = Parts::open(dir.clone(), &key)?;
            let mut out = nsgfpp::SampledRows {
                x: Vec::with_capacity(args.n * d),
                after_nsgf: Vec::new(),
                t_hat: Vec::with_capacity(args.n),
                nfe: 0,
                mean_nfe: 0.0,
            };
            parts.draw(
                args.n,
                size,
                &["after_nsgf", "t_hat", "nfe"],
                |rows| {
                    let (start, m) = (rows.start, rows.len());
                    let s = nsgfpp::sample_rows(
                        &run,
                        rows,
                        batch,
                        Some(schedule),
                        args.seed,
                        &dev,
                        |k| pb.set_position((start + k) as u64),
                    )?;
                    // The states after the NSGF phase serve the grid only: its first rows.
                    let keep = GRID_ROWS.saturating_sub(start).min(m);
                    Ok(vec![
                        ("x", NpyArray::f32(vec![m, d], s.x)),
                        (
                            "after_nsgf",
                            NpyArray::f32(vec![keep, d], s.after_nsgf[..keep * d].to_vec()),
                        ),
                        ("t_hat", NpyArray::f32(vec![m], s.t_hat)),
                        (
                            "nfe",
                            NpyArray::f64(vec![2], vec![s.nfe as f64, s.mean_nfe]),
                        ),
                    ])
                },
                |rows, part| {
                    out.x.extend(part_f32(&part, "x", &dir)?);
                    out.after_nsgf.extend(part_f32(&part, "after_nsgf", &dir)?);
                    out.t_hat.extend(part_f32(&part, "t_hat", &dir)?);
                    let nfe = part_f64(&part, "nfe", 2, &dir)?;
                    out.nfe = out.nfe.max(nfe[0] as usize);
                    // Summed over the samples; averaged after the last part.
                    out.mean_nfe += nfe[1] * rows.len() as f64;
                    pb.set_position(rows.end as u64);
                    Ok(())
                },
            )?;
            pb.finish_and_clear();
            out.mean_nfe /= args.n as f64;
            anyhow::Ok((out, run.config.image_shape, Some(parts)))
        }
    })?;
    let nfe = out.nfe;
    let below = nsgfpp::below_nsf_range(&config, &out.t_hat);
    if below > 0 {
        eprintln!(
            "warning: {below} of {} samples have t_hat below the straight flow's training range \
             [{}, 1] (nsf.t_min): it extrapolates for them",
            args.n, config.nsf.t_min
        );
    }
    if args.tol.is_some() {
        eprintln!(
            "adaptive NSF: {:.1} evaluations per sample on average (at most {nfe})",
            out.mean_nfe
        );
    }
    match shape {
        None => {
            let problem = config.toy_problem()?;
            write_npy(&args.out, &NpyArray::f32(vec![args.n, 2], out.x.clone()))?;
            if let Some(png) = &args.plot {
                let mut rng =
                    <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(args.seed ^ 0x5eed);
                let target = problem.target().sample(args.n, &mut rng);
                nsgf::metrics::plots::trajectory_plot(
                    png,
                    &[out.after_nsgf, out.x],
                    &target,
                    &format!("NSGF++ {problem}: after the NSGF phase, final ({nfe} NFE)"),
                )?;
            }
        }
        Some(shape) => {
            write_image_samples(
                &args.out,
                args.grid.as_deref(),
                shape,
                &out.x,
                Some(&out.after_nsgf),
            )?;
            if let Some(png) = &args.grid {
                eprintln!(
                    "wrote {} (top: after the {} NSGF steps; bottom: final samples)",
                    png.display(),
                    config.nsgf.steps
                );
            }
            let mean_t = out.t_hat.iter().map(|&t| t as f64).sum::<f64>() / args.n as f64;
            let min_t = out.t_hat.iter().fold(f32::INFINITY, |a, &t| a.min(t));
            eprintln!("time predictor: mean t_hat = {mean_t:.3} (smallest {min_t:.3})");
        }
    }
    if let Some(parts) = parts {
        parts.finish()?;
    }
    let (total, nsf) = match args.tol {
        // Adaptive: the NSF evaluations are what the solver took (`--steps` does not apply).
        Some(_) => (
            format!("at most {nfe}"),
            format!(
                "{:.1} NSF evaluations on average (adaptive)",
                out.mean_nfe - config.nsgf.steps as f64 - 1.0
            ),
        ),
        None => (
            format!("= {nfe}"),
            format!(
                "{steps} NSF steps x {} evaluations",
                args.solver().nfe_per_step()
            ),
        ),
    };
    eprintln!(
        "wrote {} samples to {} (NFE {total}: {} NSGF steps + 1 time prediction + {nsf})",
        args.n,
        args.out.display(),
        config.nsgf.steps,
    );
    Ok(())
}

/// `nsgf sample` on a JKO-Flow / EPT run: the fresh samples pushed through its K steps
/// (NFE = K; `--steps` and `--solver` do not apply).
fn sample_wgf(args: SampleArgs) -> Result<()> {
    args.refuse(
        "a JKO-Flow / EPT run",
        &[
            "--steps",
            "--tol",
            "--solver",
            "--batch",
            "--part-rows",
            "--grid",
        ],
    )?;
    probe_samples(&args, None)?;
    let (x, path, problem, k) = nsgf::with_backend!(args.device, |B, dev| {
        let run = wgf::load_run::<B>(&args.run, &dev)?;
        if let Some(nfe) = args.nfe.filter(|&nfe| nfe != run.steps()) {
            anyhow::bail!(
                "--nfe {nfe}: this run pushes every sample through its {} trained flow steps \
                 (NFE {0}); leave --nfe out",
                run.steps()
            );
        }
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(args.seed);
        let x0 = run.config.problem.source().sample(args.n, &mut rng);
        let x0 = nsgf::convert::rows_to_tensor::<B>(x0, args.n, 2, &dev);
        let mut path = Vec::new();
        let x = run.push(x0, |x| path.push(x.clone()));
        let path = path
            .into_iter()
            .map(to_f32_vec)
            .collect::<nsgf::Result<Vec<_>>>()?;
        anyhow::Ok((to_f32_vec(x)?, path, run.config.problem, run.steps()))
    })?;
    let title = format!("{problem}, {k} steps");
    write_toy_samples(&args, x, &path, problem, &title, k)
}

/// `nsgf sample` on an S-JKO run: one generator call (NFE = 1). In 2-D, `--plot` shows the
/// state after every phase (the generators at the phase ends, the same prior points and
/// latents); on images, `--grid` shows the first samples.
fn sample_sjko(args: SampleArgs) -> Result<()> {
    let image_shape =
        sjko::SjkoConfig::load(&args.run.join(nsgf::train::checkpoint::CONFIG_FILE))?.image_shape;
    let what = "an S-JKO run (one generator call per sample)";
    args.refuse(what, &["--steps", "--tol", "--solver", "--part-rows"])?;
    args.check_kind("S-JKO", image_shape)?;
    if let Some(nfe) = args.nfe.filter(|&nfe| nfe != 1) {
        anyhow::bail!("--nfe {nfe}: {what} has NFE 1; leave --nfe out or pass 1");
    }
    if let Some(shape) = image_shape {
        let x = nsgf::with_backend!(args.device, |B, dev| {
            let run = sjko::load_run::<B>(&args.run, &dev)?;
            let pb = Progress::new(
                args.n as u64,
                true,
                SAMPLE_BAR,
                format!("sample {}", args.run.display()),
            );
            let x = run.sample_many(args.n, args.batch(), args.seed, &dev, |d| {
                pb.set_position(d as u64)
            })?;
            pb.finish_and_clear();
            anyhow::Ok(x)
        })?;
        write_image_samples(&args.out, args.grid.as_deref(), shape, &x, None)?;
        eprintln!(
            "wrote {} samples to {} (NFE = 1)",
            args.n,
            args.out.display()
        );
        return Ok(());
    }
    let (x, path, problem, k) = nsgf::with_backend!(args.device, |B, dev| {
        let run = sjko::load_run::<B>(&args.run, &dev)?;
        let problem = run.config.toy_problem()?;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(args.seed);
        let x0 = problem.source().sample(args.n, &mut rng);
        let x0 = nsgf::convert::rows_to_tensor::<B>(x0, args.n, 2, &dev);
        let mut path = Vec::new();
        let x = run.phases(x0, args.seed, |x| path.push(x.clone()));
        let path = path
            .into_iter()
            .map(to_f32_vec)
            .collect::<nsgf::Result<Vec<_>>>()?;
        anyhow::Ok((to_f32_vec(x)?, path, problem, run.config.phases))
    })?;
    let title = format!("S-JKO {problem}, after each of {k} phases");
    write_toy_samples(&args, x, &path, problem, &title, 1)
}

/// `nsgf sample` on a flow-matching run: `--steps` uniform solver steps (or `--nfe` in all).
fn sample_cfm(args: SampleArgs) -> Result<()> {
    let config = cfm::CfmConfig::load(&args.run.join(nsgf::train::checkpoint::CONFIG_FILE))?;
    args.check_kind("flow-matching", config.image_shape)?;
    let per = args.solver().nfe_per_step();
    let steps = fixed_steps(&args)?;
    let key = draw_key(&args, "cfm")?;
    let (x, nfe, shape, parts) = nsgf::with_backend!(args.device, |B, dev| {
        let run = cfm::load_run::<B>(&args.run, &dev)?;
        let d = run.config.image_shape.map_or(2, |s| s.iter().product());
        let batch = if run.config.is_image() {
            args.batch()
        } else {
            args.n
        };
        let pb = Progress::new(
            args.n as u64,
            run.config.is_image(),
            SAMPLE_BAR,
            format!("sample {}", args.run.display()),
        );
        let how = match args.tol {
            Some(tol) => cfm::Integration::Adaptive { tol },
            None => cfm::Integration::Fixed {
                steps,
                solver: args.solver(),
            },
        };
        if !run.config.is_image() {
            let (x, nfe) = cfm::sample_many(&run, args.n, batch, how, args.seed, &dev, |_| {})?;
            anyhow::Ok((x, nfe, None, None))
        } else {
            let size = part_rows(&args, batch)?;
            let dir = Parts::beside(&args.out, SAMPLE_PARTS);
            let parts = Parts::open(dir.clone(), &key)?;
            let (mut x, mut nfe) = (Vec::with_capacity(args.n * d), 0.0);
            parts.draw(
                args.n,
                size,
                &["nfe"],
                |rows| {
                    let (start, m) = (rows.start, rows.len());
                    let (x, nfe) =
                        cfm::sample_rows(&run, rows, batch, how, args.seed, &dev, |k| {
                            pb.set_position((start + k) as u64)
                        })?;
                    Ok(vec![
                        ("x", NpyArray::f32(vec![m, d], x)),
                        ("nfe", NpyArray::f64(vec![1], vec![nfe])),
                    ])
                },
                |rows, part| {
                    x.extend(part_f32(&part, "x", &dir)?);
                    // Summed over the samples; averaged after the last part.
                    nfe += part_f64(&part, "nfe", 1, &dir)?[0] * rows.len() as f64;
                    pb.set_position(rows.end as u64);
                    Ok(())
                },
            )?;
            pb.finish_and_clear();
            anyhow::Ok((x, nfe / args.n as f64, run.config.image_shape, Some(parts)))
        }
    })?;
    match shape {
        None => write_npy(&args.out, &NpyArray::f32(vec![args.n, 2], x))?,
        Some(shape) => write_image_samples(&args.out, args.grid.as_deref(), shape, &x, None)?,
    }
    if let Some(parts) = parts {
        parts.finish()?;
    }
    eprintln!(
        "wrote {} samples to {} (NFE = {})",
        args.n,
        args.out.display(),
        if args.tol.is_some() {
            format!("{nfe:.1} on average, adaptive")
        } else {
            // Exact (the mean over batches carries rounding: 20.000000000000014).
            format!("{}", steps * per)
        }
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct EvalToyArgs {
    /// Run directory written by `nsgf train`.
    #[arg(long)]
    run: PathBuf,
    /// Sampling steps to evaluate (uniform Euler), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![10, 100])]
    steps: Vec<usize>,
    /// Number of seeds (fresh source, test and floor draws per seed).
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Samples per evaluation (the paper: 1024).
    #[arg(long, default_value_t = 1024)]
    n: usize,
    /// Print JSON instead of the markdown table.
    #[arg(long)]
    json: bool,
    /// Write results.md, results.json and the figures (paths.png, w2_curve.png) into the run directory.
    #[arg(long)]
    write: bool,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

pub fn eval_toy(args: EvalToyArgs) -> Result<()> {
    use nsgf::train::toy_eval;
    let (eval, path, target) = nsgf::with_backend!(args.device, |B, dev| {
        let run = toy::load_run::<B>(&args.run, &dev)?;
        let eval = toy_eval::evaluate(&run, &args.steps, args.seeds, args.n, &dev)?;
        let first = args.steps.first().copied().unwrap_or(10);
        let (_, path, _) = toy::sample(&run, args.n, first, Solver::Euler, 0, &dev)?;
        let path = path
            .into_iter()
            .map(to_f32_vec)
            .collect::<nsgf::Result<Vec<_>>>()?;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let target = run.config.problem.target().sample(args.n, &mut rng);
        anyhow::Ok((eval, path, target))
    })?;
    let md = toy_eval::markdown(&eval);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&eval)?);
    } else {
        println!("{md}");
    }
    if args.write {
        let dir = &args.run;
        nsgf::io::npy::write_atomic(&dir.join("results.md"), md.as_bytes())?;
        nsgf::io::npy::write_atomic(
            &dir.join("results.json"),
            serde_json::to_string_pretty(&eval)?.as_bytes(),
        )?;
        let steps = args.steps.first().copied().unwrap_or(10);
        nsgf::metrics::plots::trajectory_plot(
            &dir.join("paths.png"),
            &path,
            &target,
            &format!("NSGF {}, {steps} Euler steps", eval.problem),
        )?;
        nsgf::metrics::plots::w2_curve(
            &dir.join("w2_curve.png"),
            &[("NSGF".to_string(), eval.w2_curve.clone())],
            Some(eval.floor.mean),
            &format!("{}: W2 along the flow ({steps} steps)", eval.problem),
        )?;
        eprintln!(
            "wrote results.md, results.json, paths.png, w2_curve.png in {}",
            dir.display()
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// Seeds for the evaluation.
    #[arg(long, default_value_t = 3)]
    eval_seeds: usize,
}

/// Train, evaluate (10 and 100 steps, 3 seeds) and write the figures: the main job.
pub fn run(args: RunArgs) -> Result<()> {
    let out = args.train.out.clone();
    let device = args.train.device;
    // Its evaluation (W2 of the 2-D protocol) reads 2-D NSGF runs only: refuse any other config
    // before training, not after.
    if let Some(method) = nsgfpp::config_method(&read_text(&args.train.config)?) {
        anyhow::bail!(
            "{}: `nsgf run` trains and evaluates 2-D NSGF configs (no method key), not method \
             {method:?}; use `nsgf train` and `nsgf sample` (or `nsgf bench table1` for the 2-D \
             comparison)",
            args.train.config.display()
        );
    }
    train(args.train)?;
    eval_toy(EvalToyArgs {
        run: out,
        steps: vec![10, 100],
        seeds: args.eval_seeds,
        n: 1024,
        json: false,
        write: true,
        device,
    })
}
