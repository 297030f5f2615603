//! Flow-matching runs from a config (`method = "cfm"`): the baselines of the image experiments
//! (FM, I-CFM, OT-CFM, SI, 1-RF; torchcfm's objectives, [`crate::flows::matching`]) trained by
//! the same loop, on the same data draws and with the same checkpoints, moving average and
//! resume as NSGF++ ([`super::fit::train_network`]), on a 2-D problem (MLP) or images (UNet).
//! Sampling integrates the learned field from `τ = 0` to 1 with a fixed-step solver (NFE =
//! steps × evaluations per step).
//!
//! The run directory holds `config.toml` and the network's checkpoint files directly.

use super::checkpoint::{self, CONFIG_FILE};
use super::config::{parse_config, read_config, ModelConfig, OptimConfig};
use super::fit::{bar, train_network, FitOutcome};
use super::nsgfpp::unet_config;
use crate::data::loader::keyed_rng;
use crate::data::pairs::{self, ImageDataConfig, PairData};
use crate::data::toy2d::Problem;
use crate::error::{NsgfError, Result};
use crate::flows::matching::MatcherKind;
use crate::flows::samplers::{integrate, integrate_adaptive_rows, Solver, Tolerance};
use crate::flows::VectorField;
use crate::models::mlp::{MlpConfig, VelocityMlp};
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use crate::models::Regressor;
use burn::module::AutodiffModule;
use burn::store::ModuleSnapshot;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `method` key of a flow-matching config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CfmMethod {
    #[default]
    #[serde(rename = "cfm")]
    Cfm,
}

/// Sampling settings of a flow-matching run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CfmSampling {
    /// Uniform solver steps on `τ ∈ [0, 1]`.
    pub steps: usize,
    /// ODE scheme.
    pub solver: Solver,
}

impl Default for CfmSampling {
    fn default() -> Self {
        Self {
            steps: 20,
            solver: Solver::Euler,
        }
    }
}

/// A flow-matching run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CfmConfig {
    /// Always `"cfm"`.
    pub method: CfmMethod,
    /// The objective.
    pub matcher: MatcherKind,
    /// Its `σ` (torchcfm's image examples: 0).
    #[serde(default)]
    pub sigma: f64,
    /// The 2-D problem (or `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// The image training set (or `problem`); the source is `N(0, I)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ImageDataConfig>,
    /// `[C, H, W]`, written by `nsgf train` for image runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_shape: Option<[usize; 3]>,
    /// Seed of every random draw.
    #[serde(default)]
    pub seed: u64,
    /// The velocity network (an MLP, or `unet = "…"` for images).
    #[serde(default)]
    pub model: ModelConfig,
    /// Optimisation.
    #[serde(default)]
    pub train: OptimConfig,
    /// Sampling.
    #[serde(default)]
    pub sampling: CfmSampling,
}

impl CfmConfig {
    /// Parses and validates TOML text (`origin` names it in errors).
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        parse_config(text, origin, Self::validate)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        read_config(path, Self::validate)
    }

    /// True for an image run.
    pub fn is_image(&self) -> bool {
        self.data.is_some()
    }

    /// Range checks.
    pub fn validate(&self) -> Result<()> {
        if self.problem.is_some() == self.data.is_some() {
            return Err(NsgfError::Param(
                "a flow-matching config names either a 2-D `problem` or an image `[data]` set"
                    .into(),
            ));
        }
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return Err(NsgfError::Param(format!(
                "sigma must be finite and >= 0, got {}",
                self.sigma
            )));
        }
        self.train.validate("train")?;
        match (&self.model.unet, self.is_image()) {
            (None, true) => {
                return Err(NsgfError::Param(
                    "model.unet must name the UNet of an image run (mnist, cifar10, tiny)".into(),
                ))
            }
            (Some(u), false) => {
                return Err(NsgfError::Param(format!(
                    "model.unet = {u:?} is for image runs only"
                )))
            }
            _ => {}
        }
        if self.sampling.steps == 0 {
            return Err(NsgfError::Param("sampling.steps must be at least 1".into()));
        }
        Ok(())
    }
}

/// Keyed-draw streams of the training pairs and of the matcher's own draws (τ, ε).
const STREAM_PAIRS: u64 = 50;
const STREAM_MATCHER: u64 = 51;
/// Keyed-draw stream of the sources drawn for sampling.
const STREAM_SAMPLING: u64 = 52;

/// Trains a flow-matching run into `run_dir` (resuming from its checkpoint when asked).
pub fn train<B: NnAutodiffBackend>(
    cfg: &CfmConfig,
    run_dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<FitOutcome> {
    cfg.validate()?;
    let data = pairs::resolve(cfg.problem, cfg.data.as_ref())?;
    let mut cfg = cfg.clone();
    cfg.image_shape = pairs::checked_image_shape(&data, cfg.image_shape)?;
    if resume {
        checkpoint::refuse_shortening(run_dir, cfg.train.steps)?;
    }
    checkpoint::write_run_config(run_dir, &cfg, resume)?;
    B::seed(device, cfg.seed);
    match cfg.image_shape {
        None => {
            let model: VelocityMlp<B> = mlp(&cfg.model, device);
            fit(model, &cfg, &data, run_dir, device, resume, show)
        }
        Some(shape) => {
            let model = unet_config(&cfg.model, shape)?.init::<B>(device)?;
            fit(model, &cfg, &data, run_dir, device, resume, show)
        }
    }
}

fn mlp<B: NnBackend>(m: &ModelConfig, dev: &B::Device) -> VelocityMlp<B> {
    MlpConfig::new(2)
        .with_hidden(m.hidden)
        .with_layers(m.layers)
        .init(dev)
}

fn fit<B, M>(
    model: M,
    cfg: &CfmConfig,
    data: &PairData,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<FitOutcome>
where
    B: NnAutodiffBackend,
    M: Regressor<B> + AutodiffModule<B> + ModuleSnapshot<B>,
    M::InnerModule: ModuleSnapshot<B::InnerBackend>,
{
    let matcher = cfg.matcher.build(cfg.sigma);
    let pb = bar(
        cfg.train.steps as u64,
        show,
        "train {bar:30} {pos}/{len} loss {msg} {per_sec} eta {eta}",
    );
    let d = data.dim();
    let (_, _, outcome) = train_network(model, &cfg.train, 0, dir, device, resume, &pb, |step| {
        let (x0, y) = data.pairs(cfg.train.batch, cfg.seed, STREAM_PAIRS, step as u64)?;
        let mut rng = keyed_rng(cfg.seed, STREAM_MATCHER, step as u64, 0);
        matcher.sample(&x0, &y, d, &mut rng)
    })?;
    pb.finish_and_clear();
    Ok(outcome)
}

/// A trained flow-matching run (its moving average where it kept one).
pub struct CfmRun<B: NnBackend> {
    pub config: CfmConfig,
    pub model: Box<dyn VectorField<B>>,
}

/// Loads a run written by [`train`].
pub fn load_run<B: NnBackend>(run_dir: &Path, device: &B::Device) -> Result<CfmRun<B>> {
    let config = CfmConfig::load(&run_dir.join(CONFIG_FILE))?;
    let model: Box<dyn VectorField<B>> = match (config.is_image(), config.image_shape) {
        (false, _) => Box::new(checkpoint::load_for_sampling(
            mlp::<B>(&config.model, device),
            run_dir,
        )?),
        (true, Some(shape)) => Box::new(checkpoint::load_for_sampling(
            unet_config(&config.model, shape)?.init::<B>(device)?,
            run_dir,
        )?),
        (true, None) => {
            return Err(NsgfError::format(
                run_dir.join(CONFIG_FILE),
                "an image run's config.toml must state image_shape (written by `nsgf train`)",
            ))
        }
    };
    Ok(CfmRun { config, model })
}

/// `n` source rows of draw `index` of the sampling stream of `seed`.
fn source_rows(config: &CfmConfig, n: usize, seed: u64, index: u64) -> Result<Vec<f32>> {
    pairs::source_rows(
        config.problem,
        config.image_shape,
        n,
        seed,
        STREAM_SAMPLING,
        index,
    )
}

/// How a flow-matching run integrates its ODE on `τ ∈ [0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Integration {
    /// `steps` uniform steps of a fixed-step solver.
    Fixed { steps: usize, solver: Solver },
    /// Adaptive Dormand–Prince 5(4) with `atol = rtol = tol`.
    Adaptive { tol: f64 },
}

/// `n` samples `(n, d)`, in batches of at most `batch` (batch `i` draws its sources as draw `i`
/// of the sampling stream of `seed`). Returns the samples and the mean NFE per sample.
/// `progress(done)` after each batch.
#[allow(clippy::too_many_arguments)]
pub fn sample_many<B: NnBackend>(
    run: &CfmRun<B>,
    n: usize,
    batch: usize,
    how: Integration,
    seed: u64,
    device: &B::Device,
    progress: impl FnMut(usize),
) -> Result<(Vec<f32>, f64)> {
    sample_rows(run, 0..n, batch, how, seed, device, progress)
}

/// Rows `rows` of [`sample_many`]'s output (`rows.start` a multiple of `batch`, and `rows.end`
/// a multiple of `batch` or `n`: the same batches): the draw of `n` samples in parts, each part computed on its own (an interrupted
/// draw resumes from its finished parts). `progress(done)` counts the part's rows.
#[allow(clippy::too_many_arguments)]
pub fn sample_rows<B: NnBackend>(
    run: &CfmRun<B>,
    rows: std::ops::Range<usize>,
    batch: usize,
    how: Integration,
    seed: u64,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<(Vec<f32>, f64)> {
    let n = rows.len();
    if batch > 0 && !rows.start.is_multiple_of(batch) {
        return Err(NsgfError::Param(format!(
            "rows from {} in batches of {batch}: a part must start at a batch boundary",
            rows.start
        )));
    }
    if n == 0
        || batch == 0
        || how
            == (Integration::Fixed {
                steps: 0,
                solver: Solver::Euler,
            })
    {
        return Err(NsgfError::Param(
            "the number of samples, the batch and the steps must be at least 1".into(),
        ));
    }
    let d = run.config.image_shape.map_or(2, |s| s.iter().product());
    let mut out = Vec::with_capacity(n * d);
    let mut nfe = 0.0;
    for (i, start) in (0..n).step_by(batch).enumerate() {
        let m = batch.min(n - start);
        let x0 = source_rows(&run.config, m, seed, (rows.start / batch + i) as u64)?;
        let x0 = crate::convert::rows_to_tensor::<B>(x0, m, d, device);
        let (x, k) = match how {
            Integration::Fixed { steps, solver } => {
                integrate(run.model.as_ref(), x0, 0.0, 1.0, steps, solver, |_, _| {})?
            }
            Integration::Adaptive { tol } => {
                let t0 = burn::tensor::Tensor::zeros([m, 1], (&x0.device(), x0.dtype()));
                let out = integrate_adaptive_rows(
                    run.model.as_ref(),
                    x0,
                    t0,
                    1.0,
                    Tolerance::both(tol),
                    crate::flows::nsgfpp::MAX_ADAPTIVE_STEPS,
                )?;
                (out.x, out.nfe)
            }
        };
        out.extend(crate::convert::to_f32_vec(x)?);
        // Evaluations summed over the samples (exact in f64), averaged at the end.
        nfe += (k * m) as f64;
        progress(start + m);
    }
    Ok((out, nfe / n as f64))
}
