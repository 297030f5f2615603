//! S-JKO runs on the 2-D problems (`method = "sjko"`): K JKO phases of one generator
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

use super::checkpoint::{self, TrainState, CONFIG_FILE, EMA_FILE, TIMING_FILE};
use super::config::{parse_config, read_config};
use super::fit::{bar, METRICS_FILE};
use super::optim::Ema;
use crate::convert::{rows_to_tensor, to_f64_vec};
use crate::data::loader::keyed_rng;
use crate::data::toy2d::Problem;
use crate::error::{NsgfError, Result};
use crate::flows::sjko::{generator_loss, potential_loss, real_noise_std, Psi};
use crate::io::npy::write_atomic;
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use crate::models::sjko::{ToyGenerator, ToyNetConfig, ToyPotential};
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::Tensor;
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `method` key of an S-JKO config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SjkoMethod {
    Sjko,
}

/// An S-JKO run on a 2-D problem (defaults: the official toy settings, `sjko-spec.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SjkoConfig {
    /// `"sjko"`.
    pub method: SjkoMethod,
    /// The 2-D problem (the prior is its source).
    pub problem: Problem,
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
    /// EMA decay of the generator (0: none, as the official 2-D runs); sampling uses the EMA.
    #[serde(default)]
    pub ema: f64,
    /// Hidden width, residual blocks and latent dimension of the networks.
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
        for (v, name) in [
            (self.phases, "phases"),
            (self.iterations, "iterations"),
            (self.init_iterations.unwrap_or(1), "init_iterations"),
            (self.batch, "batch"),
            (self.hidden, "hidden"),
            (self.nz, "nz"),
            (self.checkpoint_every, "checkpoint_every"),
        ] {
            if v == 0 {
                return Err(NsgfError::Param(format!("sjko: {name} must be at least 1")));
            }
        }
        for (v, name) in [
            (self.h, "h"),
            (self.init_h.unwrap_or(1.0), "init_h"),
            (self.alpha, "alpha"),
            (self.lr_g, "lr_g"),
            (self.lr_d, "lr_d"),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(NsgfError::Param(format!(
                    "sjko: {name} must be > 0, got {v}"
                )));
            }
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
        Ok(())
    }

    /// The networks' architecture.
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

/// `timing.json`: seconds of every phase (of the call that finished it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Timing {
    phase_seconds: Vec<Option<f64>>,
    /// Phases finished by a call that started in their middle (their time is partial).
    resumed: Vec<usize>,
}

/// The draws of iteration `i`: data, noise, prior and latents of both steps (rows of 2 / `nz`).
struct Draws {
    y: Vec<f32>,
    eps: Vec<f32>,
    x_d: Vec<f32>,
    z_d: Vec<f32>,
    x_g: Vec<f32>,
    z_ref: Vec<f32>,
    z_g: Vec<f32>,
}

fn normals<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

fn draws(cfg: &SjkoConfig, i: usize) -> Draws {
    let mut rng = keyed_rng(cfg.seed, STREAM_ITER, i as u64, 0);
    let (b, nz) = (cfg.batch, cfg.nz);
    let y = cfg.problem.target().sample(b, &mut rng);
    let eps = normals(&mut rng, 2 * b);
    let x_d = cfg.problem.source().sample(b, &mut rng);
    let z_d = normals(&mut rng, nz * b);
    let x_g = cfg.problem.source().sample(b, &mut rng);
    let z_ref = normals(&mut rng, nz * b);
    let z_g = normals(&mut rng, nz * b);
    Draws {
        y,
        eps,
        x_d,
        z_d,
        x_g,
        z_ref,
        z_g,
    }
}

fn non_finite(what: &str, v: f64, i: usize, k: usize) -> NsgfError {
    NsgfError::NonFinite(format!(
        "the {what} loss became {v} at iteration {} (phase {k}); lower lr_g / lr_d or raise h",
        i + 1
    ))
}

/// Trains an S-JKO run into `dir` (resuming from its checkpoint when asked).
pub fn train<B: NnAutodiffBackend>(
    cfg: &SjkoConfig,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<SjkoReport> {
    cfg.validate()?;
    let t0 = Instant::now();
    std::fs::create_dir_all(dir.join(PHASES_DIR)).map_err(|e| NsgfError::io(dir, e))?;
    let text = toml::to_string_pretty(cfg)
        .map_err(|e| NsgfError::Other(format!("config serialisation: {e}")))?;
    write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())?;
    B::seed(device, cfg.seed);
    let net = cfg.net();
    let mut generator: ToyGenerator<B> = checkpoint::sequential_ids(net.generator(device), 1 << 40);
    let mut potential: ToyPotential<B> = checkpoint::sequential_ids(net.potential(device), 2 << 40);
    let adam = || {
        AdamConfig::new()
            .with_beta_1(cfg.betas.0 as f32)
            .with_beta_2(cfg.betas.1 as f32)
    };
    let mut opt_g = adam().init::<B, ToyGenerator<B>>();
    let mut opt_d = adam().init::<B, ToyPotential<B>>();
    let (gen_dir, pot_dir) = (dir.join(GEN_DIR), dir.join(POT_DIR));
    let mut start = 0;
    let mut ema = (cfg.ema > 0.0).then(|| Ema::new(generator.valid(), cfg.ema));
    if resume {
        if let Some(s) = checkpoint::saved_step(&gen_dir)? {
            let d = checkpoint::saved_step(&pot_dir)?;
            if d != Some(s) {
                return Err(NsgfError::format(
                    &pot_dir,
                    format!(
                        "the potential's checkpoint ({d:?} iterations) does not match the \
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
    // The frozen reference of the phase being trained (None: the identity of phase 0).
    let load_reference = |k: usize| -> Result<Option<ToyGenerator<B::InnerBackend>>> {
        if k == 0 {
            return Ok(None);
        }
        checkpoint::load_model(
            net.generator::<B::InnerBackend>(&inner),
            &phase_path(dir, k - 1),
        )
        .map(Some)
    };
    let mut phase = cfg.phase_of(start.min(total.saturating_sub(1)));
    let mut reference = load_reference(phase)?;
    let mut timing: Timing = std::fs::read(dir.join(TIMING_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|_| start > 0)
        .unwrap_or_default();
    timing.phase_seconds.resize(cfg.phases, None);
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(METRICS_FILE))
        .map_err(|e| NsgfError::io(dir, e))?;
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
    let (mut last_d, mut last_g) = (f64::NAN, f64::NAN);
    let b = cfg.batch;
    for i in start..total {
        let k = cfg.phase_of(i);
        if k != phase {
            phase = k;
            reference = load_reference(k)?;
            phase_t0 = Instant::now();
            phase_resumed = false;
        }
        let h = cfg.step_size(k);
        let dr = draws(cfg, i);
        let rows = |v: Vec<f32>, d: usize| rows_to_tensor::<B>(v, b, d, device);

        // Potential step: Ψ*(−v(y + σ_k ε)) + v(T_θ(x, z)) (+ R1 at the noised data).
        let sigma = if cfg.real_noise {
            real_noise_std(k)
        } else {
            0.0
        };
        let y = rows(dr.y, 2) + rows(dr.eps, 2).mul_scalar(sigma);
        let fake = generator.valid().forward(
            rows_to_tensor::<B::InnerBackend>(dr.x_d, b, 2, &inner),
            rows_to_tensor::<B::InnerBackend>(dr.z_d, b, cfg.nz, &inner),
        );
        let fake = Tensor::<B, 2>::from_inner(fake);
        let (v_real, grad) = if cfg.r1 > 0.0 {
            let (v, g) = potential.forward_with_grad(y);
            (v, Some((g, cfg.r1)))
        } else {
            (potential.forward(y), None)
        };
        let loss_d = potential_loss(cfg.psi, cfg.alpha, v_real, potential.forward(fake), grad);
        let ld = to_f64_vec(loss_d.clone())?[0];
        if !ld.is_finite() {
            return Err(non_finite("potential", ld, i, k));
        }
        let grads = GradientsParams::from_grads(loss_d.backward(), &potential);
        potential = opt_d.step(cfg.lr_d, potential, grads);

        // Generator step: c(T_θ(x, z₂), T_k(x, z₁)) / (2h) − v(T_θ(x, z₂)), v frozen.
        let x_ref = rows_to_tensor::<B::InnerBackend>(dr.x_g.clone(), b, 2, &inner);
        let target = match &reference {
            None => x_ref,
            Some(t) => t.forward(
                x_ref,
                rows_to_tensor::<B::InnerBackend>(dr.z_ref, b, cfg.nz, &inner),
            ),
        };
        let fake = generator.forward(rows(dr.x_g, 2), rows(dr.z_g, cfg.nz));
        let v_fake = potential.clone().no_grad().forward(fake.clone());
        let loss_g = generator_loss(cfg.psi, fake, Tensor::from_inner(target), v_fake, h);
        let lg = to_f64_vec(loss_g.clone())?[0];
        if !lg.is_finite() {
            return Err(non_finite("generator", lg, i, k));
        }
        let grads = GradientsParams::from_grads(loss_g.backward(), &generator);
        generator = opt_g.step(cfg.lr_g, generator, grads);
        if let Some(e) = ema.as_mut() {
            e.update(&generator, i + 1);
        }

        (sum_d, sum_g, count) = (sum_d + ld, sum_g + lg, count + 1);
        if count == 100 {
            (last_d, last_g) = (sum_d / 100.0, sum_g / 100.0);
            writeln!(
                metrics,
                "{{\"iteration\":{},\"phase\":{k},\"loss_d\":{last_d},\"loss_g\":{last_g}}}",
                i + 1
            )
            .map_err(|e| NsgfError::io(dir, e))?;
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
            let json =
                serde_json::to_vec_pretty(&timing).map_err(|e| NsgfError::Other(e.to_string()))?;
            write_atomic(&dir.join(TIMING_FILE), &json)?;
        }
        if phase_end || stop || (i + 1) % cfg.checkpoint_every == 0 {
            let state = TrainState { step: i + 1 };
            checkpoint::save_checkpoint(&pot_dir, &potential, &opt_d, &state)?;
            let extra = match &ema {
                Some(e) => vec![(EMA_FILE, checkpoint::module_to_bytes(&e.model)?)],
                None => Vec::new(),
            };
            checkpoint::save_checkpoint_with(&gen_dir, &generator, &opt_g, &state, &extra)?;
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

/// A trained run: its config, the final generator (its EMA when kept) and the generator at the
/// end of every phase.
pub struct SjkoRun<B: NnBackend> {
    pub config: SjkoConfig,
    generator: ToyGenerator<B>,
    phases: Vec<ToyGenerator<B>>,
}

/// Loads a run written by [`train`] (finished: every phase's generator present).
pub fn load_run<B: NnBackend>(dir: &Path, device: &B::Device) -> Result<SjkoRun<B>> {
    let config = SjkoConfig::load(&dir.join(CONFIG_FILE))?;
    let net = config.net();
    let generator = checkpoint::load_for_sampling(net.generator(device), &dir.join(GEN_DIR))?;
    let phases = (0..config.phases)
        .map(|k| checkpoint::load_model(net.generator(device), &phase_path(dir, k)))
        .collect::<Result<Vec<_>>>()?;
    Ok(SjkoRun {
        config,
        generator,
        phases,
    })
}

impl<B: NnBackend> SjkoRun<B> {
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

    /// The final generator applied to the prior points `x0: (n, 2)` with the latents of draw
    /// `seed` (NFE = 1).
    pub fn generate(&self, x0: Tensor<B, 2>, seed: u64) -> Tensor<B, 2> {
        let z = self.latents(x0.dims()[0], seed, &x0.device());
        self.generator.forward(x0, z)
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
        for g in &self.phases {
            on_state(&g.forward(x0.clone(), z.clone()));
        }
        self.generator.forward(x0, z)
    }

    /// `n` fresh samples: prior draw `seed` of the sampling stream through the final generator.
    pub fn sample(&self, n: usize, seed: u64, device: &B::Device) -> Result<Tensor<B, 2>> {
        if n == 0 {
            return Err(NsgfError::Param(
                "the number of samples must be at least 1".into(),
            ));
        }
        let mut rng = keyed_rng(seed, STREAM_SAMPLING, 0, 0);
        let x0 = self.config.problem.source().sample(n, &mut rng);
        Ok(self.generate(rows_to_tensor::<B>(x0, n, 2, device), seed))
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
    fn bad_settings_are_clear_errors() {
        for (bad, what) in [
            ("phases = 0", "phases"),
            ("h = 0.0", "h"),
            ("r1 = -1.0", "r1"),
            ("ema = 1.0", "ema"),
            ("psi = \"tv\"", "psi"),
        ] {
            let text = format!("method = \"sjko\"\nproblem = \"moons\"\n{bad}\n");
            let e = SjkoConfig::from_toml(&text, Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{bad}: {e}");
        }
    }
}
