//! S-JKO runs (`method = "sjko"`) on a 2-D problem or an image set: K JKO phases of one generator
//! `T_θ(x₀, z)` and one potential `v`, each phase a semi-dual unbalanced-OT problem whose cost
//! is measured from the frozen generator of the previous phase (objectives in
//! [`crate::flows::sjko`], networks in [`crate::models::sjko`]; what the official code does:
//! `../shared/docs/sjko-spec.md`).
//!
//! Phase `k` (0-based) runs `init_iterations` (`k = 0`, step `init_h`) or `iterations` (step `h`)
//! iterations of one potential step and one generator step (Adam `(β₁, β₂)` = (0.5, 0.9) for
//! both). Its reference map `T_k` is the identity for `k = 0` and, for `k ≥ 1`, the generator's
//! raw weights at the end of phase `k − 1`, frozen. Nothing is re-initialised between phases
//! (networks, Adam states and the EMA carry on), as in the official code.
//!
//! Files in the run directory: `generator/` and `potential/` (weights, Adam state, `state.json`
//! = iterations done, `ema.safetensors` when an EMA is kept), `phases/<k>.safetensors` (the
//! generator at the end of phase `k`, which is `T_{k+1}`'s reference and the state after `k + 1`
//! phases in the path figures), `metrics.jsonl` and `timing.json` (seconds per phase). A run
//! resumes at any checkpoint (every `checkpoint_every` iterations, every phase end, and on
//! Ctrl-C) with the frozen reference, both networks, both optimisers and the EMA restored; every
//! draw is keyed by `(seed, iteration)`, so a resumed run ends with the same weights as an
//! uninterrupted one. Sampling is one generator call (NFE = 1).
//!
//! The networks are the official toy ones in 2-D and ours on images (the UNet generator with its
//! latent in place of the time features, a small convolutional potential with a Hutchinson R1;
//! [`crate::models::sjko`]); one generic loop ([`train_nets`]) trains both.

use super::checkpoint::{self, TrainState, CONFIG_FILE, EMA_FILE, TIMING_FILE};
use super::config::{at_least_one, parse_config, positive, read_config, LrSchedule, ModelConfig};
use super::fit::bar;
use super::metrics_log::{MetricsLog, METRICS_FILE};
use super::nsgfpp::unet_config;
use super::optim::{clip_grad_norm, Ema};
use crate::convert::{rows_to_tensor, to_f32_vec, to_f64_vec};
use crate::data::loader::keyed_rng;
use crate::data::pairs::{self, ImageDataConfig, PairData};
use crate::data::toy2d::Problem;
use crate::error::{NsgfError, Result};
use crate::flows::sjko::{generator_loss, potential_loss, real_noise_std, Psi};
use crate::io::npy::write_atomic;
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use crate::models::sjko::{
    Generator, ImageGenerator, ImageNetConfig, Potential, ToyGenerator, ToyNetConfig,
};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::store::ModuleSnapshot;
use burn::tensor::Tensor;
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `method` key of an S-JKO config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SjkoMethod {
    Sjko,
}

/// An S-JKO run on a 2-D problem or an image set (defaults: the official toy settings,
/// `sjko-spec.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SjkoConfig {
    /// `"sjko"`.
    pub method: SjkoMethod,
    /// The 2-D problem (the prior is its source), or `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// The image training set (or `problem`); the prior is `N(0, I)` of the images' shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ImageDataConfig>,
    /// `[C, H, W]`, written by `nsgf train` for image runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_shape: Option<[usize; 3]>,
    /// The generator's UNet of an image run (`mnist`, `cifar10`, `tiny`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet: Option<String>,
    /// Channels of the image potential's convolutions (the first at full resolution, each next
    /// one at half the side).
    #[serde(
        default = "default_potential_channels",
        skip_serializing_if = "is_default_potential_channels"
    )]
    pub potential_channels: Vec<usize>,
    /// Seed of the initialisation and of every draw.
    #[serde(default)]
    pub seed: u64,
    /// JKO phases `K`.
    #[serde(default = "default_phases")]
    pub phases: usize,
    /// Step size `h` of the phases `k ≥ 1`.
    #[serde(default = "one")]
    pub h: f64,
    /// Step size of phase 0 (default: `h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_h: Option<f64>,
    /// Iterations (one potential and one generator step each) of the phases `k ≥ 1`.
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    /// Iterations of phase 0 (default: `iterations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_iterations: Option<usize>,
    /// Prior and data samples per step.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// The conjugate `Ψ*` of the marginal relaxation (or the JSD variant).
    #[serde(default)]
    pub psi: Psi,
    /// `α` of `α Ψ*(s/α)`.
    #[serde(default = "one")]
    pub alpha: f64,
    /// R1 weight `λ` (`(λ/2) E|∇v|²` at the data; 0: none, as the official 2-D runs).
    #[serde(default)]
    pub r1: f64,
    /// Add `N(0, σ_k²)` noise to the data fed to the potential, `σ_k = 1/(32 (k + 1))`.
    #[serde(default = "yes")]
    pub real_noise: bool,
    /// Adam learning rates of the generator and the potential, and the betas of both.
    #[serde(default = "default_lr_g")]
    pub lr_g: f64,
    #[serde(default = "default_lr_d")]
    pub lr_d: f64,
    #[serde(default = "default_betas")]
    pub betas: (f64, f64),
    /// Learning-rate schedule of both networks over all iterations (the official option:
    /// cosine from `lr_g` / `lr_d` down to `lr_min`).
    #[serde(default, skip_serializing_if = "is_constant")]
    pub lr_schedule: LrSchedule,
    /// The floor of the cosine schedule (the official `eta_min`, 5e-5).
    #[serde(default = "default_lr_min")]
    pub lr_min: f64,
    /// `α` of the last phase: `α_k` goes linearly from `alpha` (phase 0) to `alpha_end` (phase
    /// `K − 1`), the official optional per-phase schedule (1 → 5); `None`: `α` in every phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha_end: Option<f64>,
    /// Clip the potential's gradients to this global norm (the official option, off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip_d: Option<f64>,
    /// EMA decay of the generator (0: none, as the official 2-D runs); sampling uses the EMA.
    #[serde(default)]
    pub ema: f64,
    /// Hidden width and residual blocks of the 2-D networks, latent dimension of the generator.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    #[serde(default = "default_blocks")]
    pub blocks: usize,
    #[serde(default = "default_nz")]
    pub nz: usize,
    /// Checkpoint every this many iterations (and at every phase end).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
}

fn default_phases() -> usize {
    10
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn default_iterations() -> usize {
    5000
}
fn default_batch() -> usize {
    400
}
fn default_lr_g() -> f64 {
    1e-4
}
fn default_lr_d() -> f64 {
    2e-5
}
fn default_betas() -> (f64, f64) {
    (0.5, 0.9)
}
fn default_hidden() -> usize {
    128
}
fn default_blocks() -> usize {
    3
}
fn default_nz() -> usize {
    2
}
fn default_potential_channels() -> Vec<usize> {
    vec![32, 64, 128, 256]
}
fn default_lr_min() -> f64 {
    5e-5
}
fn is_constant(s: &LrSchedule) -> bool {
    *s == LrSchedule::Constant
}
fn is_default_potential_channels(v: &[usize]) -> bool {
    v == default_potential_channels()
}
fn default_checkpoint_every() -> usize {
    1000
}

impl SjkoConfig {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        parse_config(text, origin, Self::validate)
    }
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        read_config(path, Self::validate)
    }

    /// Range checks.
    pub fn validate(&self) -> Result<()> {
        let pos = |v: usize, name: &str| at_least_one(v, &format!("sjko: {name}"));
        let posf = |v: f64, name: &str| positive(v, &format!("sjko: {name}"));
        pos(self.phases, "phases")?;
        pos(self.iterations, "iterations")?;
        pos(self.init_iterations.unwrap_or(1), "init_iterations")?;
        pos(self.batch, "batch")?;
        pos(self.hidden, "hidden")?;
        pos(self.nz, "nz")?;
        pos(self.checkpoint_every, "checkpoint_every")?;
        posf(self.h, "h")?;
        posf(self.init_h.unwrap_or(1.0), "init_h")?;
        posf(self.alpha, "alpha")?;
        posf(self.lr_g, "lr_g")?;
        posf(self.lr_d, "lr_d")?;
        if let Some(a) = self.alpha_end {
            posf(a, "alpha_end")?;
        }
        if let Some(c) = self.grad_clip_d {
            posf(c, "grad_clip_d")?;
        }
        if self.lr_schedule == LrSchedule::Cosine
            && !(self.lr_min >= 0.0 && self.lr_min <= self.lr_g.min(self.lr_d))
        {
            return Err(NsgfError::Param(format!(
                "sjko: lr_min must lie in [0, min(lr_g, lr_d)] for the cosine schedule, got {}",
                self.lr_min
            )));
        }
        if !(self.r1.is_finite() && self.r1 >= 0.0) {
            return Err(NsgfError::Param(format!(
                "sjko: r1 must be ≥ 0, got {}",
                self.r1
            )));
        }
        let (b1, b2) = self.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2) && (0.0..1.0).contains(&self.ema))
        {
            return Err(NsgfError::Param(format!(
                "sjko: betas and ema must lie in [0, 1), got betas ({b1}, {b2}), ema {}",
                self.ema
            )));
        }
        (self.phases - 1)
            .checked_mul(self.iterations)
            .and_then(|r| r.checked_add(self.first_iterations()))
            .ok_or_else(|| {
                NsgfError::Param(format!(
                    "sjko: {} phases of {} iterations overflow the iteration counter",
                    self.phases, self.iterations
                ))
            })?;
        match (&self.problem, &self.data) {
            (Some(_), None) => {}
            (None, Some(_)) => {
                if self.unet.is_none() {
                    return Err(NsgfError::Param(
                        "sjko: an image run needs `unet = \"mnist\"` (or cifar10, tiny)".into(),
                    ));
                }
                if self.potential_channels.is_empty() || self.potential_channels.contains(&0) {
                    return Err(NsgfError::Param(format!(
                        "sjko: potential_channels must be a non-empty list of positive counts, \
                         got {:?}",
                        self.potential_channels
                    )));
                }
            }
            _ => {
                return Err(NsgfError::Param(
                    "sjko: a config names either a 2-D `problem` or an image `[data]` set".into(),
                ))
            }
        }
        Ok(())
    }

    /// The 2-D problem (an error for an image run).
    pub fn toy_problem(&self) -> Result<Problem> {
        self.problem.ok_or_else(|| {
            NsgfError::Param("this S-JKO run is on images, not on a 2-D problem".into())
        })
    }

    /// The image networks' architecture for images of `shape`.
    pub fn image_net(&self, shape: [usize; 3]) -> Result<ImageNetConfig> {
        let model = ModelConfig {
            unet: self.unet.clone(),
            ..ModelConfig::default()
        };
        Ok(ImageNetConfig {
            unet: unet_config(&model, shape)?,
            nz: self.nz,
            potential_channels: self.potential_channels.clone(),
        })
    }

    /// The 2-D networks' architecture.
    pub fn net(&self) -> ToyNetConfig {
        ToyNetConfig::new(2)
            .with_hidden(self.hidden)
            .with_blocks(self.blocks)
            .with_nz(self.nz)
    }

    /// Iterations of phase 0.
    pub fn first_iterations(&self) -> usize {
        self.init_iterations.unwrap_or(self.iterations)
    }

    /// Iterations of all phases.
    pub fn total_iterations(&self) -> usize {
        self.first_iterations() + (self.phases - 1) * self.iterations
    }

    /// The phase of (0-based) iteration `i`.
    pub fn phase_of(&self, i: usize) -> usize {
        let first = self.first_iterations();
        if i < first {
            0
        } else {
            1 + (i - first) / self.iterations
        }
    }

    /// The first iteration of phase `k`.
    pub fn phase_start(&self, k: usize) -> usize {
        if k == 0 {
            0
        } else {
            self.first_iterations() + (k - 1) * self.iterations
        }
    }

    /// `α` of phase `k` (see `alpha_end`).
    pub fn alpha_at(&self, k: usize) -> f64 {
        match self.alpha_end {
            Some(end) if self.phases > 1 => {
                self.alpha + (end - self.alpha) * k as f64 / (self.phases - 1) as f64
            }
            _ => self.alpha,
        }
    }

    /// The learning rate `lr` (`lr_g` or `lr_d`) at (0-based) iteration `i`: constant, or
    /// `lr_min + (lr − lr_min)·½(1 + cos(π i / N))` over the `N` iterations of all phases.
    pub fn lr_at(&self, lr: f64, i: usize) -> f64 {
        match self.lr_schedule {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let frac = (i as f64 / self.total_iterations() as f64).min(1.0);
                self.lr_min + (lr - self.lr_min) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
            }
        }
    }

    /// The step size of phase `k`.
    pub fn step_size(&self, k: usize) -> f64 {
        if k == 0 {
            self.init_h.unwrap_or(self.h)
        } else {
            self.h
        }
    }
}

const GEN_DIR: &str = "generator";
const POT_DIR: &str = "potential";
const PHASES_DIR: &str = "phases";
const STREAM_ITER: u64 = 70;
const STREAM_SAMPLING: u64 = 71;

fn phase_path(dir: &Path, k: usize) -> PathBuf {
    dir.join(PHASES_DIR).join(format!("{k:03}.safetensors"))
}

/// What a training call did.
#[derive(Clone, Debug, Serialize)]
pub struct SjkoReport {
    /// Iterations done (in total) and in this call.
    pub iterations: usize,
    pub new_iterations: usize,
    /// Wall seconds of this call.
    pub seconds: f64,
    /// Wall seconds of each phase finished in this call (`(phase, seconds)`; a phase resumed
    /// in the middle is marked by `resumed` in `timing.json`).
    pub phase_seconds: Vec<(usize, f64)>,
    /// Mean potential and generator losses over the last 100 iterations.
    pub loss_d: f64,
    pub loss_g: f64,
}

/// `timing.json`: the iterations checkpointed and the training seconds that they cost (summed
/// over calls; the keys of every run's `timing.json`), and the seconds of every phase (of the
/// call that finished it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Timing {
    #[serde(default)]
    step: usize,
    #[serde(default)]
    seconds: f64,
    phase_seconds: Vec<Option<f64>>,
    /// Phases finished by a call that started in their middle (their time is partial).
    resumed: Vec<usize>,
}

/// The draws of iteration `i`: data, noise, prior and latents of both steps (rows of `d` /
/// `nz`), and the R1 probe of an image potential.
struct Draws {
    y: Vec<f32>,
    eps: Vec<f32>,
    x_d: Vec<f32>,
    z_d: Vec<f32>,
    x_g: Vec<f32>,
    z_ref: Vec<f32>,
    z_g: Vec<f32>,
    probe: Option<Vec<f32>>,
}

fn normals<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// Draw streams of image runs (the data loader's and the generator step's prior).
const STREAM_IMAGE_D: u64 = 72;
const STREAM_IMAGE_G: u64 = 73;

fn draws(cfg: &SjkoConfig, data: &PairData, i: usize, probe: bool) -> Result<Draws> {
    let (b, nz) = (cfg.batch, cfg.nz);
    match data {
        PairData::Toy(problem) => {
            let mut rng = keyed_rng(cfg.seed, STREAM_ITER, i as u64, 0);
            let y = problem.target().sample(b, &mut rng);
            let eps = normals(&mut rng, 2 * b);
            let x_d = problem.source().sample(b, &mut rng);
            let z_d = normals(&mut rng, nz * b);
            let x_g = problem.source().sample(b, &mut rng);
            let z_ref = normals(&mut rng, nz * b);
            let z_g = normals(&mut rng, nz * b);
            let probe = probe.then(|| normals(&mut rng, 2 * b));
            Ok(Draws {
                y,
                eps,
                x_d,
                z_d,
                x_g,
                z_ref,
                z_g,
                probe,
            })
        }
        PairData::Images { .. } => {
            let d = data.dim();
            let (x_d, y) = data.pairs(b, cfg.seed, STREAM_IMAGE_D, i as u64)?;
            let x_g = data.source(b, cfg.seed, STREAM_IMAGE_G, i as u64);
            let mut rng = keyed_rng(cfg.seed, STREAM_ITER, i as u64, 1);
            Ok(Draws {
                y,
                eps: normals(&mut rng, d * b),
                x_d,
                z_d: normals(&mut rng, nz * b),
                x_g,
                z_ref: normals(&mut rng, nz * b),
                z_g: normals(&mut rng, nz * b),
                probe: probe.then(|| normals(&mut rng, d * b)),
            })
        }
    }
}

fn non_finite(what: &str, v: f64, i: usize, k: usize) -> NsgfError {
    NsgfError::NonFinite(format!(
        "the {what} loss became {v} at iteration {} (phase {k}); lower lr_g / lr_d or raise h",
        i + 1
    ))
}

/// Trains an S-JKO run into `dir` (resuming from its checkpoint when asked): the official toy
/// networks on a 2-D problem, the image networks on an image set.
pub fn train<B: NnAutodiffBackend>(
    cfg: &SjkoConfig,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<SjkoReport> {
    cfg.validate()?;
    let data = pairs::resolve(cfg.problem, cfg.data.as_ref())?;
    let mut cfg = cfg.clone();
    cfg.image_shape = pairs::checked_image_shape(&data, cfg.image_shape)?;
    B::seed(device, cfg.seed);
    match cfg.image_shape {
        None => {
            let net = cfg.net();
            let (g, p) = (net.generator(device), net.potential(device));
            train_nets::<B, _, _>(&cfg, &data, g, p, dir, device, resume, show)
        }
        Some(shape) => {
            let net = cfg.image_net(shape)?;
            let (g, p) = (net.generator(device)?, net.potential(device));
            train_nets::<B, _, _>(&cfg, &data, g, p, dir, device, resume, show)
        }
    }
}

/// The S-JKO loop (see the module docs) for any generator / potential pair, from freshly
/// initialised networks (or the checkpoint in `dir`).
#[allow(clippy::too_many_arguments)]
pub fn train_nets<B, G, P>(
    cfg: &SjkoConfig,
    data: &PairData,
    generator: G,
    potential: P,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<SjkoReport>
where
    B: NnAutodiffBackend,
    G: Generator<B> + AutodiffModule<B> + ModuleSnapshot<B>,
    G::InnerModule: Generator<B::InnerBackend> + ModuleSnapshot<B::InnerBackend>,
    P: Potential<B> + AutodiffModule<B> + ModuleSnapshot<B>,
{
    let t0 = Instant::now();
    checkpoint::write_run_config(dir, cfg, resume)?;
    crate::io::create_dir_all(&dir.join(PHASES_DIR))?;
    let d = data.dim();
    let mut generator: G = checkpoint::sequential_ids(generator, 1 << 40);
    let mut potential: P = checkpoint::sequential_ids(potential, 2 << 40);
    let adam = || {
        AdamConfig::new()
            .with_beta_1(cfg.betas.0 as f32)
            .with_beta_2(cfg.betas.1 as f32)
    };
    let mut opt_g = adam().init::<B, G>();
    let mut opt_d = adam().init::<B, P>();
    let (gen_dir, pot_dir) = (dir.join(GEN_DIR), dir.join(POT_DIR));
    let mut start = 0;
    let mut ema = (cfg.ema > 0.0).then(|| Ema::new(generator.valid(), cfg.ema));
    if resume {
        if let Some(s) = checkpoint::saved_step(&gen_dir)? {
            let sp = checkpoint::saved_step(&pot_dir)?;
            if sp != Some(s) {
                return Err(NsgfError::format(
                    &pot_dir,
                    format!(
                        "the potential's checkpoint ({sp:?} iterations) does not match the \
                         generator's ({s}); the run cannot resume exactly"
                    ),
                ));
            }
            let (g, o, _) = checkpoint::load_checkpoint(&gen_dir, generator, opt_g, device)?;
            let (p, q, _) = checkpoint::load_checkpoint(&pot_dir, potential, opt_d, device)?;
            (generator, opt_g, potential, opt_d, start) = (g, o, p, q, s);
            if let Some(e) = ema.as_mut() {
                e.model = checkpoint::load_model(e.model.clone(), &gen_dir.join(EMA_FILE))?;
            }
            tracing::info!(iteration = s, dir = %dir.display(), "resumed");
        }
    }
    let total = cfg.total_iterations();
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    // The frozen reference of the phase being trained (None: the identity of phase 0), loaded
    // into a copy of the online generator's structure.
    let load_reference = |k: usize, template: &G| -> Result<Option<G::InnerModule>> {
        if k == 0 {
            return Ok(None);
        }
        checkpoint::load_model(template.valid(), &phase_path(dir, k - 1)).map(Some)
    };
    let mut phase = cfg.phase_of(start.min(total.saturating_sub(1)));
    let mut reference = load_reference(phase, &generator)?;
    let mut timing: Timing = std::fs::read(dir.join(TIMING_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|_| start > 0)
        .unwrap_or_default();
    timing.phase_seconds.resize(cfg.phases, None);
    let seconds_before = timing.seconds;
    let metrics = MetricsLog::open(&dir.join(METRICS_FILE), "iteration", start)?;
    let pb = bar(
        total as u64,
        show,
        "sjko  {bar:30} {pos}/{len} iterations {elapsed_precise} eta {eta}",
    );
    pb.set_position(start as u64);
    let mut phase_t0 = Instant::now();
    let mut phase_resumed = start > cfg.phase_start(phase);
    let mut phase_seconds = Vec::new();
    let (mut sum_d, mut sum_g, mut count) = (0.0, 0.0, 0usize);
    // The losses logged last (a resumed run that trains no more reports them).
    let nan = f64::NAN;
    let (mut last_d, mut last_g) = (
        metrics.last_f64("loss_d").unwrap_or(nan),
        metrics.last_f64("loss_g").unwrap_or(nan),
    );
    let b = cfg.batch;
    for i in start..total {
        let k = cfg.phase_of(i);
        if k != phase {
            phase = k;
            reference = load_reference(k, &generator)?;
            phase_t0 = Instant::now();
            phase_resumed = false;
        }
        let h = cfg.step_size(k);
        let dr = draws(cfg, data, i, cfg.r1 > 0.0 && P::NEEDS_PROBE)?;
        let rows = |v: Vec<f32>, d: usize| rows_to_tensor::<B>(v, b, d, device);

        // Potential step: Ψ*(−v(y + σ_k ε)) + v(T_θ(x, z)) (+ R1 at the noised data).
        let sigma = if cfg.real_noise {
            real_noise_std(k)
        } else {
            0.0
        };
        let y = rows(dr.y, d) + rows(dr.eps, d).mul_scalar(sigma);
        let fake = generator.valid().generate(
            rows_to_tensor::<B::InnerBackend>(dr.x_d, b, d, &inner),
            rows_to_tensor::<B::InnerBackend>(dr.z_d, b, cfg.nz, &inner),
        );
        let fake = Tensor::<B, 2>::from_inner(fake);
        let (v_real, grad) = if cfg.r1 > 0.0 {
            let probe = match dr.probe {
                Some(u) => rows(u, d),
                None => Tensor::zeros([b, d], device),
            };
            let (v, g) = potential.value_and_slope(y, probe);
            (v, Some((g, cfg.r1)))
        } else {
            (potential.value(y), None)
        };
        let loss_d = potential_loss(
            cfg.psi,
            cfg.alpha_at(k),
            v_real,
            potential.value(fake),
            grad,
        );
        let ld = to_f64_vec(loss_d.clone())?[0];
        if !ld.is_finite() {
            return Err(non_finite("potential", ld, i, k));
        }
        let grads = GradientsParams::from_grads(loss_d.backward(), &potential);
        let grads = match cfg.grad_clip_d {
            Some(max_norm) => clip_grad_norm(&potential, grads, max_norm)?.0,
            None => grads,
        };
        potential = opt_d.step(cfg.lr_at(cfg.lr_d, i), potential, grads);

        // Generator step: c(T_θ(x, z₂), T_k(x, z₁)) / (2h) − v(T_θ(x, z₂)), v frozen.
        let x_ref = rows_to_tensor::<B::InnerBackend>(dr.x_g.clone(), b, d, &inner);
        let target = match &reference {
            None => x_ref,
            Some(t) => t.generate(
                x_ref,
                rows_to_tensor::<B::InnerBackend>(dr.z_ref, b, cfg.nz, &inner),
            ),
        };
        let fake = generator.generate(rows(dr.x_g, d), rows(dr.z_g, cfg.nz));
        let v_fake = potential.clone().no_grad().value(fake.clone());
        let loss_g = generator_loss(cfg.psi, fake, Tensor::from_inner(target), v_fake, h);
        let lg = to_f64_vec(loss_g.clone())?[0];
        if !lg.is_finite() {
            return Err(non_finite("generator", lg, i, k));
        }
        let grads = GradientsParams::from_grads(loss_g.backward(), &generator);
        generator = opt_g.step(cfg.lr_at(cfg.lr_g, i), generator, grads);
        if let Some(e) = ema.as_mut() {
            e.update(&generator, i + 1);
        }

        (sum_d, sum_g, count) = (sum_d + ld, sum_g + lg, count + 1);
        if count == 100 {
            (last_d, last_g) = (sum_d / 100.0, sum_g / 100.0);
            metrics.append(&serde_json::json!({
                "iteration": i + 1, "phase": k, "loss_d": last_d, "loss_g": last_g,
            }))?;
            tracing::info!(
                "{} iteration {}/{total} phase {k} loss_d {last_d:.5} loss_g {last_g:.5}",
                dir.display(),
                i + 1
            );
            (sum_d, sum_g, count) = (0.0, 0.0, 0);
        }
        let phase_end = i + 1 == cfg.phase_start(k + 1) || i + 1 == total;
        let stop = super::interrupt::requested() && i + 1 < total;
        if phase_end {
            // The phase's generator first: a checkpoint never names a phase without it.
            checkpoint::save_model(&generator.valid(), &phase_path(dir, k))?;
            let s = phase_t0.elapsed().as_secs_f64();
            timing.phase_seconds[k] = Some(s);
            if phase_resumed {
                timing.resumed.push(k);
            }
            phase_seconds.push((k, s));
        }
        if phase_end || stop || (i + 1) % cfg.checkpoint_every == 0 {
            let state = TrainState { step: i + 1 };
            checkpoint::save_checkpoint(&pot_dir, &potential, &opt_d, &state)?;
            let extra = match &ema {
                Some(e) => vec![(EMA_FILE, checkpoint::module_to_bytes(&e.model)?)],
                None => Vec::new(),
            };
            checkpoint::save_checkpoint_with(&gen_dir, &generator, &opt_g, &state, &extra)?;
            (timing.step, timing.seconds) = (i + 1, seconds_before + t0.elapsed().as_secs_f64());
            let json =
                serde_json::to_vec_pretty(&timing).map_err(|e| NsgfError::Other(e.to_string()))?;
            write_atomic(&dir.join(TIMING_FILE), &json)?;
        }
        pb.set_position(i as u64 + 1);
        if stop {
            return Err(NsgfError::Interrupted {
                step: i + 1,
                dir: dir.display().to_string(),
            });
        }
    }
    pb.finish_and_clear();
    if count > 0 && last_d.is_nan() {
        (last_d, last_g) = (sum_d / count as f64, sum_g / count as f64);
    }
    Ok(SjkoReport {
        iterations: total,
        new_iterations: total - start.min(total),
        seconds: t0.elapsed().as_secs_f64(),
        phase_seconds,
        loss_d: last_d,
        loss_g: last_g,
    })
}

/// The generators of a trained run: the final one (its EMA when kept) and the one at the end
/// of every phase.
enum Generators<B: NnBackend> {
    Toy(ToyGenerator<B>, Vec<ToyGenerator<B>>),
    Image(ImageGenerator<B>, Vec<ImageGenerator<B>>),
}

impl<B: NnBackend> Generators<B> {
    fn load<G: Generator<B> + ModuleSnapshot<B>>(
        dir: &Path,
        phases: usize,
        fresh: impl Fn() -> Result<G>,
    ) -> Result<(G, Vec<G>)> {
        let generator = checkpoint::load_for_sampling(fresh()?, &dir.join(GEN_DIR))?;
        let done = (0..phases)
            .take_while(|&k| phase_path(dir, k).exists())
            .count();
        if done < phases {
            tracing::warn!(
                "{}: {done} of {phases} phases finished; sampling from the latest checkpoint",
                dir.display()
            );
        }
        let phases = (0..done)
            .map(|k| checkpoint::load_model(fresh()?, &phase_path(dir, k)))
            .collect::<Result<Vec<_>>>()?;
        Ok((generator, phases))
    }

    /// The phases whose generators are loaded.
    fn phases(&self) -> usize {
        match self {
            Self::Toy(_, p) => p.len(),
            Self::Image(_, p) => p.len(),
        }
    }

    /// `T(x, z)` of the final generator (`phase = None`) or of the one at the end of a phase.
    fn apply(&self, phase: Option<usize>, x: Tensor<B, 2>, z: Tensor<B, 2>) -> Tensor<B, 2> {
        match (self, phase) {
            (Self::Toy(g, _), None) => g.generate(x, z),
            (Self::Toy(_, p), Some(k)) => p[k].generate(x, z),
            (Self::Image(g, _), None) => g.generate(x, z),
            (Self::Image(_, p), Some(k)) => p[k].generate(x, z),
        }
    }
}

/// A trained run: its config, the final generator (its EMA when kept) and the generator at the
/// end of every phase.
pub struct SjkoRun<B: NnBackend> {
    pub config: SjkoConfig,
    generators: Generators<B>,
}

/// Loads a run written by [`train`]: its latest generator (the EMA when kept) and the
/// generators of the phases finished (all of them once the run is done; an unfinished run
/// samples from its latest checkpoint, with a warning).
pub fn load_run<B: NnBackend>(dir: &Path, device: &B::Device) -> Result<SjkoRun<B>> {
    let config = SjkoConfig::load(&dir.join(CONFIG_FILE))?;
    let generators = match (config.problem, config.image_shape) {
        (Some(_), _) => {
            let net = config.net();
            let (g, p) = Generators::load(dir, config.phases, || Ok(net.generator(device)))?;
            Generators::Toy(g, p)
        }
        (None, Some(shape)) => {
            let net = config.image_net(shape)?;
            let (g, p) = Generators::load(dir, config.phases, || net.generator(device))?;
            Generators::Image(g, p)
        }
        (None, None) => {
            return Err(NsgfError::format(
                dir.join(CONFIG_FILE),
                "an image run's config must record its image_shape (written by nsgf train)",
            ))
        }
    };
    Ok(SjkoRun { config, generators })
}

impl<B: NnBackend> SjkoRun<B> {
    /// Row dimension of the samples (2, or `C·H·W`).
    pub fn dim(&self) -> usize {
        self.config
            .image_shape
            .map_or(2, |s| s.iter().product::<usize>())
    }

    /// The latents of draw `seed` for `n` samples: `(n, n_z)`.
    fn latents(&self, n: usize, seed: u64, device: &B::Device) -> Tensor<B, 2> {
        let mut rng = keyed_rng(seed, STREAM_SAMPLING, 1, 0);
        rows_to_tensor::<B>(
            normals(&mut rng, n * self.config.nz),
            n,
            self.config.nz,
            device,
        )
    }

    /// The final generator applied to the prior points `x0: (n, d)` with the latents of draw
    /// `seed` (NFE = 1).
    pub fn generate(&self, x0: Tensor<B, 2>, seed: u64) -> Tensor<B, 2> {
        let z = self.latents(x0.dims()[0], seed, &x0.device());
        self.generators.apply(None, x0, z)
    }

    /// The states after each phase: `on_state` sees `x0`, then `T_1(x0, z)`, …, `T_K(x0, z)`
    /// (the generators at the phase ends, the same latents); returns [`SjkoRun::generate`].
    pub fn phases(
        &self,
        x0: Tensor<B, 2>,
        seed: u64,
        mut on_state: impl FnMut(&Tensor<B, 2>),
    ) -> Tensor<B, 2> {
        let z = self.latents(x0.dims()[0], seed, &x0.device());
        on_state(&x0);
        for k in 0..self.generators.phases() {
            on_state(&self.generators.apply(Some(k), x0.clone(), z.clone()));
        }
        self.generators.apply(None, x0, z)
    }

    /// `n` fresh samples: prior draw `seed` of the sampling stream through the final generator.
    pub fn sample(&self, n: usize, seed: u64, device: &B::Device) -> Result<Tensor<B, 2>> {
        let x = self.sample_many(n, n.max(1), seed, device, |_| {})?;
        Ok(rows_to_tensor::<B>(x, n, self.dim(), device))
    }

    /// [`SjkoRun::sample`] in batches of `batch` rows (the same samples for every batch size),
    /// row-major `(n, d)`; `progress` sees the rows done.
    pub fn sample_many(
        &self,
        n: usize,
        batch: usize,
        seed: u64,
        device: &B::Device,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<f32>> {
        if n == 0 || batch == 0 {
            return Err(NsgfError::Param(
                "the number of samples and the batch must be at least 1".into(),
            ));
        }
        let (d, nz) = (self.dim(), self.config.nz);
        let x0 = pairs::source_rows(
            self.config.problem,
            self.config.image_shape,
            n,
            seed,
            STREAM_SAMPLING,
            0,
        )?;
        let z = normals(&mut keyed_rng(seed, STREAM_SAMPLING, 1, 0), n * nz);
        let mut out = Vec::with_capacity(n * d);
        for start in (0..n).step_by(batch) {
            let m = batch.min(n - start);
            let x = rows_to_tensor::<B>(x0[start * d..(start + m) * d].to_vec(), m, d, device);
            let zz = rows_to_tensor::<B>(z[start * nz..(start + m) * nz].to_vec(), m, nz, device);
            out.extend(to_f32_vec(self.generators.apply(None, x, zz))?);
            progress(start + m);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> SjkoConfig {
        SjkoConfig::from_toml(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn phases_and_steps_follow_the_schedule() {
        let c = cfg("method = \"sjko\"\nproblem = \"moons\"\nphases = 3\niterations = 10\ninit_iterations = 25\nh = 0.5\ninit_h = 2.0\n");
        assert_eq!(c.total_iterations(), 45);
        assert_eq!(
            [0, 24, 25, 34, 35, 44].map(|i| c.phase_of(i)),
            [0, 0, 1, 1, 2, 2]
        );
        assert_eq!([0, 1, 2, 3].map(|k| c.phase_start(k)), [0, 25, 35, 45]);
        assert_eq!((c.step_size(0), c.step_size(2)), (2.0, 0.5));
        // Defaults: the official toy settings.
        let d = cfg("method = \"sjko\"\nproblem = \"moons\"\n");
        assert_eq!(
            (
                d.phases,
                d.iterations,
                d.batch,
                d.h,
                d.lr_g,
                d.lr_d,
                d.betas
            ),
            (10, 5000, 400, 1.0, 1e-4, 2e-5, (0.5, 0.9))
        );
        assert_eq!(
            (d.psi, d.r1, d.ema, d.hidden, d.nz),
            (Psi::Kl, 0.0, 0.0, 128, 2)
        );
    }

    #[test]
    fn optional_schedules_follow_the_official_options() {
        let c = cfg("method = \"sjko\"\nproblem = \"moons\"\nphases = 5\niterations = 10\nalpha = 1.0\nalpha_end = 5.0\nlr_schedule = \"cosine\"\nlr_g = 2e-4\nlr_d = 1e-4\n");
        assert_eq!(
            (0..5).map(|k| c.alpha_at(k)).collect::<Vec<_>>(),
            [1.0, 2.0, 3.0, 4.0, 5.0]
        );
        // Cosine over the 50 iterations, from lr down to lr_min = 5e-5.
        assert!((c.lr_at(2e-4, 0) - 2e-4).abs() < 1e-18);
        assert!((c.lr_at(2e-4, 25) - 1.25e-4).abs() < 1e-15);
        assert!((c.lr_at(1e-4, 50) - 5e-5).abs() < 1e-18);
        // Off by default: α and lr constant.
        let d = cfg("method = \"sjko\"\nproblem = \"moons\"\nalpha = 2.0\n");
        assert_eq!((d.alpha_at(9), d.lr_at(d.lr_g, 40_000)), (2.0, 1e-4));
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        for (bad, what) in [
            ("phases = 0", "phases"),
            ("h = 0.0", "h"),
            ("r1 = -1.0", "r1"),
            ("ema = 1.0", "ema"),
            ("psi = \"tv\"", "psi"),
            ("alpha_end = 0.0", "alpha_end"),
            ("grad_clip_d = -1.0", "grad_clip_d"),
            ("lr_schedule = \"cosine\"\nlr_min = 1e-3", "lr_min"),
        ] {
            let text = format!("method = \"sjko\"\nproblem = \"moons\"\n{bad}\n");
            let e = SjkoConfig::from_toml(&text, Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{bad}: {e}");
        }
    }
}
