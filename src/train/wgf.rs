//! JKO-Flow and EPT runs on the 2-D problems (`method = "jko"` / `"ept"`): the two neural
//! Wasserstein-gradient-flow baselines of Table 1, following the official codes
//! (`../shared/docs/jko-ept-spec.md`; objectives in [`crate::flows::wgf`], networks in
//! [`crate::models::wgf`]).
//!
//! Both evolve a cached particle set `P_k` (so training costs O(K), not O(K²)) and keep one
//! snapshot network per step, written to `RUN/steps/<k>.safetensors`, so that fresh source
//! samples can be pushed through the `K` steps (NFE = K):
//!
//! * **JKO-Flow**: step `k` trains the residual map `T_k` against the critic `h` (both
//!   warm-started from step `k − 1`, Adam with weight decay), `iterations` times `critic_steps`
//!   critic updates then `map_steps` map updates on minibatches of `P_k` and of the data, then
//!   `P_{k+1} = T_k(P_k)`. Step size `a_k = a · 2^(−⌊k / a_halve_every⌋)`, learning rate
//!   `lr · 0.4^⌊k / 20⌋` (the official StepLR, one JKO step per epoch).
//! * **EPT** (without the outer loop): step `k` fits the density ratio `D_k ≈ p_k/q` with
//!   `updates` RMSprop steps (the network is never re-initialised), then moves every particle
//!   `x ← x − η ∇D_k(x)` (optionally with its displacement capped at `max_step`).
//!
//! A checkpoint after every step (`map/`, `critic/` or `ratio/` with their optimizer states,
//! `state.json` = steps done) lets a run resume at any step boundary; the particles are rebuilt
//! by pushing `P_0` through the saved snapshots. All draws are keyed by `(seed, step, update)`.

use super::checkpoint::{self, TrainState, CONFIG_FILE};
use super::config::{at_least_one, parse_config, positive, read_config};
use super::fit::bar;
use crate::convert::{rows_to_tensor, to_f32_vec};
use crate::data::loader::keyed_rng;
use crate::data::toy2d::Problem;
use crate::error::{NsgfError, Result};
use crate::flows::wgf::{critic_loss, ept_step, lsdr_loss, map_loss, Divergence};
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use crate::models::wgf::{PReluMlp, PReluMlpConfig, RatioMlp, RatioMlpConfig};
use burn::module::AutodiffModule;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer, RmsPropConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which baseline a config trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WgfMethod {
    /// JKO-Flow.
    Jko,
    /// EPT without the outer loop.
    Ept,
}

/// JKO-Flow settings (defaults: the official toy code, except the particle count and the
/// iterations per step, which the budget sets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JkoSettings {
    /// The f-divergence (`"js"` or `"kl"`).
    pub divergence: Divergence,
    /// JKO step size `a`.
    pub a: f64,
    /// Halve `a` every this many steps (0: never).
    pub a_halve_every: usize,
    /// Minibatch iterations per JKO step.
    pub iterations: usize,
    /// Critic updates per iteration.
    pub critic_steps: usize,
    /// Map updates per iteration.
    pub map_steps: usize,
    /// Adam learning rate of both networks.
    pub lr: f64,
    /// Multiply the learning rate by 0.4 every this many JKO steps (0: never).
    pub lr_decay_every: usize,
    /// Adam weight decay.
    pub weight_decay: f64,
    /// Hidden width and hidden layers of both networks.
    pub hidden: usize,
    pub layers: usize,
    /// Dropout after each hidden layer (training only).
    pub dropout: f64,
}

impl Default for JkoSettings {
    fn default() -> Self {
        Self {
            divergence: Divergence::Js,
            a: 0.1,
            a_halve_every: 20,
            iterations: 100,
            critic_steps: 3,
            map_steps: 2,
            lr: 1e-3,
            lr_decay_every: 20,
            weight_decay: 1e-7,
            hidden: 64,
            layers: 3,
            dropout: 0.04,
        }
    }
}

/// EPT settings (defaults: the official 2-D script, except η and the update budget, which `K`
/// sets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EptSettings {
    /// Euler step size η.
    pub eta: f64,
    /// Density-ratio updates per Euler step.
    pub updates: usize,
    /// RMSprop learning rate.
    pub lr: f64,
    /// Hidden width and hidden layers of `D`.
    pub hidden: usize,
    pub layers: usize,
    /// Cap on each particle's displacement per step (unset: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_step: Option<f64>,
}

impl Default for EptSettings {
    fn default() -> Self {
        Self {
            eta: 0.005,
            updates: 5,
            lr: 5e-4,
            hidden: 64,
            layers: 3,
            max_step: None,
        }
    }
}

/// A JKO-Flow or EPT run on a 2-D problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WgfConfig {
    /// `"jko"` or `"ept"`.
    pub method: WgfMethod,
    /// The 2-D problem.
    pub problem: Problem,
    /// Seed of every draw.
    #[serde(default)]
    pub seed: u64,
    /// Flow steps `K` (= NFE of sampling).
    pub steps: usize,
    /// Cached particles.
    #[serde(default = "default_particles")]
    pub particles: usize,
    /// Minibatch of particles and of data per update.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// JKO-Flow settings (with `method = "jko"`).
    #[serde(default)]
    pub jko: JkoSettings,
    /// EPT settings (with `method = "ept"`).
    #[serde(default)]
    pub ept: EptSettings,
}

fn default_particles() -> usize {
    8192
}

fn default_batch() -> usize {
    512
}

impl WgfConfig {
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
        let (pos, posf) = (at_least_one, positive);
        pos(self.steps, "steps")?;
        pos(self.particles, "particles")?;
        pos(self.batch, "batch")?;
        match self.method {
            WgfMethod::Jko => {
                let j = &self.jko;
                pos(j.iterations, "jko.iterations")?;
                pos(j.critic_steps, "jko.critic_steps")?;
                pos(j.map_steps, "jko.map_steps")?;
                pos(j.hidden, "jko.hidden")?;
                posf(j.a, "jko.a")?;
                posf(j.lr, "jko.lr")?;
                if !(0.0..1.0).contains(&j.dropout)
                    || !(0.0..f64::INFINITY).contains(&j.weight_decay)
                {
                    return Err(NsgfError::Param(
                        "jko.dropout must be in [0, 1) and jko.weight_decay >= 0".into(),
                    ));
                }
            }
            WgfMethod::Ept => {
                let e = &self.ept;
                pos(e.updates, "ept.updates")?;
                pos(e.hidden, "ept.hidden")?;
                posf(e.eta, "ept.eta")?;
                posf(e.lr, "ept.lr")?;
                if let Some(m) = e.max_step {
                    posf(m, "ept.max_step")?;
                }
            }
        }
        Ok(())
    }

    fn map_config(&self) -> PReluMlpConfig {
        PReluMlpConfig::new(2, 2)
            .with_hidden(self.jko.hidden)
            .with_layers(self.jko.layers)
            .with_dropout(self.jko.dropout)
    }
    fn critic_config(&self) -> PReluMlpConfig {
        PReluMlpConfig::new(2, 1)
            .with_hidden(self.jko.hidden)
            .with_layers(self.jko.layers)
            .with_dropout(self.jko.dropout)
    }
    fn ratio_config(&self) -> RatioMlpConfig {
        RatioMlpConfig::new(2)
            .with_hidden(self.ept.hidden)
            .with_layers(self.ept.layers)
    }
}

/// What a training run did.
#[derive(Clone, Debug, Serialize)]
pub struct WgfReport {
    /// Flow steps done (in total).
    pub steps: usize,
    /// Network updates of this call.
    pub updates: usize,
    /// Wall seconds of this call.
    pub seconds: f64,
}

const STEPS_DIR: &str = "steps";
const STREAM_PARTICLES: u64 = 60;
const STREAM_UPDATES: u64 = 61;
const STREAM_SAMPLING: u64 = 62;

fn snapshot_path(dir: &Path, k: usize) -> PathBuf {
    dir.join(STEPS_DIR).join(format!("{k:04}.safetensors"))
}

/// `n` rows of `P_0` (the problem's source), keyed by the seed.
fn initial_particles(cfg: &WgfConfig) -> Vec<f32> {
    let mut rng = keyed_rng(cfg.seed, STREAM_PARTICLES, 0, 0);
    cfg.problem.source().sample(cfg.particles, &mut rng)
}

/// A minibatch of `batch` particle rows (with replacement) and `batch` fresh data rows.
fn minibatch(cfg: &WgfConfig, particles: &[f32], k: usize, u: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = keyed_rng(cfg.seed, STREAM_UPDATES, k as u64, u as u64);
    let n = particles.len() / 2;
    let x = (0..cfg.batch)
        .flat_map(|_| {
            let i = rng.random_range(0..n);
            [particles[2 * i], particles[2 * i + 1]]
        })
        .collect();
    let z = cfg.problem.target().sample(cfg.batch, &mut rng);
    (x, z)
}

/// One flow step of a trained run applied to `x: (n, 2)`.
enum Snapshot<B: Backend> {
    Map(PReluMlp<B>),
    Ratio(RatioMlp<B>, f64, Option<f64>),
}

impl<B: Backend> Snapshot<B> {
    fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Snapshot::Map(t) => t.push(x),
            Snapshot::Ratio(d, eta, cap) => {
                let (_, g) = d.forward_with_grad(x.clone());
                ept_step(x, g, *eta, *cap)
            }
        }
    }
}

/// Pushes the particles through the snapshots `0..k` of a run directory (inner backend).
fn rebuild_particles<B: Backend>(
    cfg: &WgfConfig,
    dir: &Path,
    k: usize,
    dev: &B::Device,
) -> Result<Vec<f32>> {
    let mut x = rows_to_tensor::<B>(initial_particles(cfg), cfg.particles, 2, dev);
    for j in 0..k {
        x = load_snapshot::<B>(cfg, dir, j, dev)?.apply(x);
    }
    to_f32_vec(x)
}

fn load_snapshot<B: Backend>(
    cfg: &WgfConfig,
    dir: &Path,
    k: usize,
    dev: &B::Device,
) -> Result<Snapshot<B>> {
    let path = snapshot_path(dir, k);
    Ok(match cfg.method {
        WgfMethod::Jko => Snapshot::Map(checkpoint::load_model(cfg.map_config().init(dev), &path)?),
        WgfMethod::Ept => Snapshot::Ratio(
            checkpoint::load_model(cfg.ratio_config().init(dev), &path)?,
            cfg.ept.eta,
            cfg.ept.max_step,
        ),
    })
}

/// The backend seed of flow step `k`.
fn step_seed(seed: u64, k: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

fn check_finite(loss: f64, k: usize, u: usize) -> Result<()> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(NsgfError::NonFinite(format!(
            "training loss became {loss} at flow step {k}, update {u}; lower the learning rate or the step size"
        )))
    }
}

/// Trains a JKO-Flow or EPT run into `dir` (resuming at the last completed step when asked).
pub fn train<B: NnAutodiffBackend>(
    cfg: &WgfConfig,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<WgfReport> {
    cfg.validate()?;
    if resume {
        // The networks' checkpoints count the flow steps done.
        let net = match cfg.method {
            WgfMethod::Jko => "map",
            WgfMethod::Ept => "ratio",
        };
        checkpoint::refuse_shortening(&dir.join(net), cfg.steps)?;
    }
    checkpoint::write_run_config(dir, cfg, resume)?;
    crate::io::create_dir_all(&dir.join(STEPS_DIR))?;
    B::seed(device, cfg.seed);
    match cfg.method {
        WgfMethod::Jko => train_jko::<B>(cfg, dir, device, resume, show),
        WgfMethod::Ept => train_ept::<B>(cfg, dir, device, resume, show),
    }
}

fn train_jko<B: NnAutodiffBackend>(
    cfg: &WgfConfig,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<WgfReport> {
    let j = &cfg.jko;
    let t0 = Instant::now();
    let adam =
        || AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(j.weight_decay as f32)));
    let mut map: PReluMlp<B> = checkpoint::sequential_ids(cfg.map_config().init(device), 1 << 40);
    let mut critic: PReluMlp<B> =
        checkpoint::sequential_ids(cfg.critic_config().init(device), 2 << 40);
    let mut opt_t = adam().init::<B, PReluMlp<B>>();
    let mut opt_h = adam().init::<B, PReluMlp<B>>();
    let (map_dir, critic_dir) = (dir.join("map"), dir.join("critic"));
    let mut start = 0;
    if resume {
        if let Some(k) = checkpoint::saved_step(&map_dir)? {
            let (m, o, _) = checkpoint::load_checkpoint(&map_dir, map, opt_t, device)?;
            let (c, p, _) = checkpoint::load_checkpoint(&critic_dir, critic, opt_h, device)?;
            (map, opt_t, critic, opt_h, start) = (m, o, c, p, k);
        }
    }
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    let mut particles = rebuild_particles::<B::InnerBackend>(cfg, dir, start, &inner)?;
    let pb = bar(
        cfg.steps as u64,
        show,
        "jko   {bar:30} {pos}/{len} steps {elapsed_precise} eta {eta}",
    );
    pb.set_position(start as u64);
    let mut updates = 0;
    for k in start..cfg.steps {
        // Dropout draws from the backend's RNG: reseeded per step, a resumed run draws the same.
        B::seed(device, step_seed(cfg.seed, k));
        let every = |n: usize| k.checked_div(n).unwrap_or(0) as i32;
        let a = j.a * 0.5f64.powi(every(j.a_halve_every));
        let lr = j.lr * 0.4f64.powi(every(j.lr_decay_every));
        for it in 0..j.iterations {
            let (x, z) = minibatch(cfg, &particles, k, it);
            let x = rows_to_tensor::<B>(x, cfg.batch, 2, device);
            let z = rows_to_tensor::<B>(z, cfg.batch, 2, device);
            for s in 0..j.critic_steps {
                let tx = map.push(x.clone()).detach();
                let loss = critic_loss(j.divergence, critic.forward(tx), critic.forward(z.clone()));
                check_finite(crate::convert::to_f64_vec(loss.clone())?[0], k, it * 10 + s)?;
                let grads = GradientsParams::from_grads(loss.backward(), &critic);
                critic = opt_h.step(lr, critic, grads);
                updates += 1;
            }
            for s in 0..j.map_steps {
                let tx = map.push(x.clone());
                let u = critic.forward(tx.clone());
                let loss = map_loss(j.divergence, x.clone(), tx, u, a);
                check_finite(crate::convert::to_f64_vec(loss.clone())?[0], k, it * 10 + s)?;
                let grads = GradientsParams::from_grads(loss.backward(), &map);
                map = opt_t.step(lr, map, grads);
                updates += 1;
            }
        }
        let snapshot = Snapshot::Map(map.valid());
        advance(cfg, dir, k, &snapshot, &mut particles, &inner)?;
        checkpoint::save_checkpoint(&critic_dir, &critic, &opt_h, &TrainState { step: k + 1 })?;
        checkpoint::save_checkpoint(&map_dir, &map, &opt_t, &TrainState { step: k + 1 })?;
        step_done(cfg, dir, k, &pb)?;
    }
    pb.finish_and_clear();
    Ok(WgfReport {
        steps: cfg.steps,
        updates,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The end of flow step `k`, before its checkpoint: saves the step's snapshot (first, so that a
/// checkpoint never names a step without one) and moves the cached particles with it.
fn advance<B: Backend>(
    cfg: &WgfConfig,
    dir: &Path,
    k: usize,
    snapshot: &Snapshot<B>,
    particles: &mut Vec<f32>,
    device: &B::Device,
) -> Result<()> {
    match snapshot {
        Snapshot::Map(m) => checkpoint::save_model(m, &snapshot_path(dir, k))?,
        Snapshot::Ratio(d, _, _) => checkpoint::save_model(d, &snapshot_path(dir, k))?,
    }
    let x = rows_to_tensor::<B>(std::mem::take(particles), cfg.particles, 2, device);
    *particles = to_f32_vec(snapshot.apply(x))?;
    if let Some(bad) = particles.iter().position(|v| !v.is_finite()) {
        return Err(NsgfError::NonFinite(format!(
            "particle {} became non-finite at flow step {k}; lower the step size (jko.a, ept.eta) \
             or set ept.max_step",
            bad / 2
        )));
    }
    Ok(())
}

/// After flow step `k`'s checkpoint: progress, and a clean stop when one was requested.
fn step_done(cfg: &WgfConfig, dir: &Path, k: usize, pb: &indicatif::ProgressBar) -> Result<()> {
    pb.set_position(k as u64 + 1);
    if super::interrupt::requested() && k + 1 < cfg.steps {
        return Err(NsgfError::Interrupted {
            step: k + 1,
            dir: dir.display().to_string(),
        });
    }
    Ok(())
}

fn train_ept<B: NnAutodiffBackend>(
    cfg: &WgfConfig,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<WgfReport> {
    let e = &cfg.ept;
    let t0 = Instant::now();
    let mut ratio: RatioMlp<B> =
        checkpoint::sequential_ids(cfg.ratio_config().init(device), 1 << 40);
    // PyTorch's RMSprop defaults: no momentum, ε = 1e-8.
    let mut opt = RmsPropConfig::new()
        .with_momentum(0.0)
        .with_epsilon(1e-8)
        .init::<B, RatioMlp<B>>();
    let ratio_dir = dir.join("ratio");
    let mut start = 0;
    if resume {
        if let Some(k) = checkpoint::saved_step(&ratio_dir)? {
            let (m, o, _) = checkpoint::load_checkpoint(&ratio_dir, ratio, opt, device)?;
            (ratio, opt, start) = (m, o, k);
        }
    }
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    let mut particles = rebuild_particles::<B::InnerBackend>(cfg, dir, start, &inner)?;
    let pb = bar(
        cfg.steps as u64,
        show,
        "ept   {bar:30} {pos}/{len} steps {elapsed_precise} eta {eta}",
    );
    pb.set_position(start as u64);
    let mut updates = 0;
    for k in start..cfg.steps {
        B::seed(device, step_seed(cfg.seed, k));
        for u in 0..e.updates {
            let (x, z) = minibatch(cfg, &particles, k, u);
            let x = rows_to_tensor::<B>(x, cfg.batch, 2, device);
            let z = rows_to_tensor::<B>(z, cfg.batch, 2, device);
            let (d_q, g_q) = ratio.forward_with_grad(z);
            let loss = lsdr_loss(d_q, g_q, ratio.forward(x));
            check_finite(crate::convert::to_f64_vec(loss.clone())?[0], k, u)?;
            let grads = GradientsParams::from_grads(loss.backward(), &ratio);
            ratio = opt.step(e.lr, ratio, grads);
            updates += 1;
        }
        let snapshot = Snapshot::Ratio(ratio.valid(), e.eta, e.max_step);
        advance(cfg, dir, k, &snapshot, &mut particles, &inner)?;
        checkpoint::save_checkpoint(&ratio_dir, &ratio, &opt, &TrainState { step: k + 1 })?;
        step_done(cfg, dir, k, &pb)?;
    }
    pb.finish_and_clear();
    Ok(WgfReport {
        steps: cfg.steps,
        updates,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// A trained run: its config and the `K` step snapshots.
pub struct WgfRun<B: NnBackend> {
    pub config: WgfConfig,
    steps: Vec<Snapshot<B>>,
}

/// Loads a run written by [`train`].
pub fn load_run<B: NnBackend>(dir: &Path, device: &B::Device) -> Result<WgfRun<B>> {
    let config = WgfConfig::load(&dir.join(CONFIG_FILE))?;
    let steps = (0..config.steps)
        .map(|k| load_snapshot::<B>(&config, dir, k, device))
        .collect::<Result<Vec<_>>>()?;
    Ok(WgfRun { config, steps })
}

impl<B: NnBackend> WgfRun<B> {
    /// Pushes `x0: (n, 2)` through the `K` steps; `on_state` sees the start and every state
    /// after a step (NFE = K).
    pub fn push(&self, x0: Tensor<B, 2>, mut on_state: impl FnMut(&Tensor<B, 2>)) -> Tensor<B, 2> {
        let mut x = x0;
        on_state(&x);
        for s in &self.steps {
            x = s.apply(x);
            on_state(&x);
        }
        x
    }

    /// `n` fresh source samples (draw `seed` of the sampling stream) pushed through the run.
    pub fn sample(&self, n: usize, seed: u64, device: &B::Device) -> Result<Tensor<B, 2>> {
        if n == 0 {
            return Err(NsgfError::Param(
                "the number of samples must be at least 1".into(),
            ));
        }
        let mut rng = keyed_rng(seed, STREAM_SAMPLING, 0, 0);
        let x0 = self.config.problem.source().sample(n, &mut rng);
        Ok(self.push(rows_to_tensor::<B>(x0, n, 2, device), |_| {}))
    }

    /// Flow steps (= NFE).
    pub fn steps(&self) -> usize {
        self.steps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, CpuAutodiff};

    /// After one EPT step's density-ratio fit, `D ≈ p/q` is largest where the particles are and
    /// the data are not (the centre: the source is N(0, I), the data lie around it), so `−∇D`
    /// points outwards at the particles.
    #[test]
    fn the_first_ept_ratio_pushes_particles_towards_the_data() {
        let text = "method = \"ept\"\nproblem = \"8gaussians\"\nsteps = 1\nparticles = 2048\nbatch = 512\n[ept]\neta = 0.05\nupdates = 300\n";
        let cfg = WgfConfig::from_toml(text, Path::new("t.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dev = Default::default();
        train::<CpuAutodiff>(&cfg, dir.path(), &dev, false, false).unwrap();
        let run = load_run::<Cpu>(dir.path(), &dev).unwrap();
        let Snapshot::Ratio(d, _, _) = &run.steps[0] else {
            panic!()
        };
        let x0 = initial_particles(&cfg);
        let x = rows_to_tensor::<Cpu>(x0.clone(), cfg.particles, 2, &dev);
        let (dx, g) = d.forward_with_grad(x);
        let (dx, g) = (to_f32_vec(dx).unwrap(), to_f32_vec(g).unwrap());
        let radial: f64 = (0..cfg.particles)
            .map(|i| {
                let (px, py) = (x0[2 * i] as f64, x0[2 * i + 1] as f64);
                -(g[2 * i] as f64 * px + g[2 * i + 1] as f64 * py) / (px.hypot(py) + 1e-9)
            })
            .sum::<f64>()
            / cfg.particles as f64;
        let centre = dx.iter().map(|&v| v as f64).sum::<f64>() / dx.len() as f64;
        assert!(
            radial > 0.5,
            "mean outward component of -grad D: {radial} (mean D {centre})"
        );
    }
}
