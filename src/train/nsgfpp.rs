//! NSGF++ (paper Sec. 4.4, Algorithm 3 for training, Algorithm 4 for sampling) on the 2-D
//! problems (MLPs) and on images (UNets, the paper's time-predictor CNN; appendix E.2): three
//! networks trained one after the other into three sub-folders of the run, each with its own
//! checkpoints and resume:
//!
//! * `nsgf/` — the NSGF velocity field: Algorithm 1 with a short flow (`T ≤ 5`),
//!   [`super::nsgf::train_field`] (a streaming trajectory pool: see [`PoolConfig`]);
//! * `nsf/` — the neural straight flow `u_δ(X_t, t)` regressed on `Y − X₀` along
//!   `X_t = t Y + (1 − t) X₀`, independent pairs (= 1-RF);
//! * `time/` — the time predictor `t_φ(X_t)` regressed on `t` along the same paths.
//!
//! Every batch is a pure function of `(seed, part, step)` (keyed draws, see
//! [`crate::data::pairs`]), so a resumed part sees exactly the batches an uninterrupted one
//! would.

use super::checkpoint::{self, CONFIG_FILE};
use super::config::{parse_config, read_config, ModelConfig, OptimConfig, PoolConfig};
use super::fit::{bar, train_network, FitOutcome};
use super::nsgf::{train_field, FieldSpec, TrainReport};
use crate::data::loader::keyed_rng;
use crate::data::pairs::{self, ImageDataConfig, PairData};
use crate::data::toy2d::Problem;
use crate::error::{NsgfError, Result};
use crate::flows::matching::{Matcher, RectifiedFlow};
use crate::flows::nsgf::NsgfConfig;
use crate::flows::nsgfpp::{nsgfpp_sample, NsfSchedule, NsgfppSamples};
use crate::flows::samplers::Solver;
use crate::flows::{TimePredictor, VectorField};
use crate::models::mlp::{MlpConfig, VelocityMlp};
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use crate::models::time_predictor::{TimeCnn, TimeCnnConfig, TimeMlp, TimeMlpConfig};
use crate::models::unet::UNetConfig;
use crate::models::Regressor;
use burn::module::AutodiffModule;
use burn::store::ModuleSnapshot;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Maximum NSGF steps of NSGF++'s first phase (the paper: `T ≤ 5`).
pub const MAX_NSGF_STEPS: usize = 5;

/// The time predictor's size and optimisation (it trains on Algorithm 3's `t ~ U(0, 1)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartConfig {
    /// Network size (MLP in 2-D; images use the paper's CNN and ignore it).
    pub model: ModelConfig,
    /// Adam settings (steps, batch, lr, schedule, checkpoints).
    pub train: OptimConfig,
}

impl Default for PartConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            train: OptimConfig {
                steps: 10_000,
                ..OptimConfig::default()
            },
        }
    }
}

/// The neural straight flow's size, optimisation and training times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NsfConfig {
    /// Network size (MLP, or `unet` for images).
    pub model: ModelConfig,
    /// Adam settings (steps, batch, lr, schedule, checkpoints).
    pub train: OptimConfig,
    /// Lower end of the training times: `t ~ U(t_min, 1)` along `X_t = t Y + (1 − t) X₀`.
    /// The paper (Algorithm 3) draws `t ~ U(0, 1)`: `t_min = 0`, the default. Algorithm 4
    /// starts the NSF at `t̂ = t_φ(X̃_T)`, so an NSF only ever evaluated on `[t̂, 1]` can spend
    /// its whole budget there (a deviation from the paper; `nsgf sample` warns when some `t̂`
    /// fall below it, see [`below_nsf_range`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub t_min: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Default for NsfConfig {
    fn default() -> Self {
        let PartConfig { model, train } = PartConfig::default();
        Self {
            model,
            train,
            t_min: 0.0,
        }
    }
}

/// Algorithm 4's sampling settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// NSF steps after the NSGF phase (`None`: use `omega`).
    pub nsf_steps: Option<usize>,
    /// NSF step size ω (used when `nsf_steps` is unset).
    pub omega: f64,
    /// ODE scheme of the NSF phase.
    pub solver: Solver,
    /// An adaptive NSF (Dormand–Prince 5(4), `atol = rtol = tolerance`) instead of the fixed
    /// steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            nsf_steps: Some(5),
            omega: 0.1,
            solver: Solver::Euler,
            tolerance: None,
        }
    }
}

impl SamplingConfig {
    /// The NSF schedule.
    pub fn schedule(&self) -> NsfSchedule {
        match (self.tolerance, self.nsf_steps) {
            (Some(tol), _) => NsfSchedule::Adaptive(tol),
            (None, Some(k)) => NsfSchedule::Steps(k),
            (None, None) => NsfSchedule::Omega(self.omega),
        }
    }
}

/// The `method` key that marks an NSGF++ config (`method = "nsgfpp"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// NSGF++.
    #[default]
    #[serde(rename = "nsgfpp")]
    Nsgfpp,
}

/// The `method` a TOML config text declares (`"nsgfpp"`, `"cfm"`, `"jko"`, `"ept"`; none for a
/// 2-D NSGF config): how the CLI tells the kinds of configs and runs apart.
pub fn config_method(text: &str) -> Option<String> {
    toml::from_str::<toml::Table>(text)
        .ok()?
        .get("method")?
        .as_str()
        .map(str::to_string)
}

/// A whole NSGF++ run: a 2-D `problem` (MLPs) or an image `[data]` set (UNets and the paper's
/// time-predictor CNN).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsgfppConfig {
    /// Always `"nsgfpp"`.
    pub method: Method,
    /// The 2-D problem (or `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// The image training set (or `problem`); the source is `N(0, I)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ImageDataConfig>,
    /// `[C, H, W]` of the images, written by `nsgf train` into the run's `config.toml` (so that
    /// sampling needs no data); checked against the data when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_shape: Option<[usize; 3]>,
    /// Seed of every random draw.
    #[serde(default)]
    pub seed: u64,
    /// The NSGF phase's minibatch Sinkhorn flow (`steps` = T ≤ 5).
    pub nsgf: NsgfConfig,
    /// The NSGF phase's trajectory pool.
    #[serde(default)]
    pub pool: PoolConfig,
    /// The NSGF velocity field's training.
    #[serde(default)]
    pub train: OptimConfig,
    /// The NSGF velocity field (an MLP, or `unet = "…"` for images).
    #[serde(default)]
    pub model: ModelConfig,
    /// The neural straight flow (an MLP, or `unet = "…"` for images).
    #[serde(default)]
    pub nsf: NsfConfig,
    /// The time predictor (an MLP in 2-D; for images the paper's 4-layer CNN, and `time.model`
    /// is not used).
    #[serde(default)]
    pub time: PartConfig,
    /// Sampling (Algorithm 4).
    #[serde(default)]
    pub sampling: SamplingConfig,
}

impl NsgfppConfig {
    /// Parses and validates TOML text (`origin` names it in errors).
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        parse_config(text, origin, Self::validate)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        read_config(path, Self::validate)
    }

    /// TOML text of this config.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| NsgfError::Other(format!("config serialisation: {e}")))
    }

    /// True for an image run.
    pub fn is_image(&self) -> bool {
        self.data.is_some()
    }

    /// The 2-D problem, or an error naming the image run.
    pub fn toy_problem(&self) -> Result<Problem> {
        self.problem.ok_or_else(|| {
            NsgfError::Param("this NSGF++ run is an image run, not a 2-D problem".into())
        })
    }

    /// The run's data, loaded (image sets are read into memory).
    pub fn pair_data(&self) -> Result<PairData> {
        pairs::resolve(self.problem, self.data.as_ref())
    }

    /// Range checks, `T ≤ 5` and the network kinds included.
    pub fn validate(&self) -> Result<()> {
        self.nsgf.validate()?;
        if self.nsgf.steps > MAX_NSGF_STEPS {
            return Err(NsgfError::Param(format!(
                "NSGF++ runs at most {MAX_NSGF_STEPS} NSGF steps (nsgf.steps = {})",
                self.nsgf.steps
            )));
        }
        match (&self.problem, &self.data) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(NsgfError::Param(
                    "an NSGF++ config names either a 2-D `problem` or an image `[data]` set".into(),
                ))
            }
            _ => {}
        }
        if self.pool.batches == 0 {
            return Err(NsgfError::Param("pool.batches must be at least 1".into()));
        }
        if self.pool.refresh_every > 0 && self.pool.refresh_batches == 0 {
            return Err(NsgfError::Param(
                "pool.refresh_batches must be at least 1".into(),
            ));
        }
        if !(self.nsf.t_min.is_finite() && (0.0..1.0).contains(&self.nsf.t_min)) {
            return Err(NsgfError::Param(format!(
                "nsf.t_min must lie in [0, 1), got {}",
                self.nsf.t_min
            )));
        }
        for (name, model, train) in [
            ("", &self.model, &self.train),
            ("nsf.", &self.nsf.model, &self.nsf.train),
            ("time.", &self.time.model, &self.time.train),
        ] {
            train.validate(&format!("{name}train"))?;
            let needs_unet = self.is_image() && name != "time.";
            match (&model.unet, needs_unet) {
                (None, true) => {
                    return Err(NsgfError::Param(format!(
                        "{name}model.unet must name the UNet of an image run (mnist, cifar10, tiny)"
                    )))
                }
                (Some(u), false) => {
                    return Err(NsgfError::Param(format!(
                        "{name}model.unet = {u:?} is for image runs' velocity fields only"
                    )))
                }
                (Some(u), true) => {
                    UNetConfig::named(u)?;
                }
                (None, false) if model.hidden == 0 || model.layers == 0 => {
                    return Err(NsgfError::Param(format!(
                        "{name}model.hidden and {name}model.layers must be at least 1"
                    )))
                }
                _ => {}
            }
        }
        self.sampling.schedule().validate()
    }

    /// The NSGF phase's settings.
    pub fn field_spec(&self) -> FieldSpec<'_> {
        FieldSpec {
            nsgf: &self.nsgf,
            pool: &self.pool,
            train: &self.train,
            seed: self.seed,
        }
    }
}

/// The UNet a model config names, for images of shape `[C, H, W]` (the named architecture with
/// the data's channels and side).
pub fn unet_config(model: &ModelConfig, shape: [usize; 3]) -> Result<UNetConfig> {
    let name = model
        .unet
        .as_deref()
        .ok_or_else(|| NsgfError::Param("an image run needs model.unet".into()))?;
    if shape[1] != shape[2] {
        return Err(NsgfError::Param(format!(
            "the UNet needs square images, got {}x{}",
            shape[1], shape[2]
        )));
    }
    let mut cfg = UNetConfig::named(name)?;
    cfg.in_channels = shape[0];
    cfg.image_size = shape[1];
    cfg.validate()?;
    Ok(cfg)
}

/// What [`train`] did, per network.
#[derive(Clone, Debug, Serialize)]
pub struct NsgfppReport {
    /// The NSGF phase (pool + velocity field).
    pub nsgf: TrainReport,
    /// The neural straight flow.
    pub nsf: FitOutcome,
    /// The time predictor.
    pub time: FitOutcome,
}

/// Keyed-draw streams of the straight-path parts (`+ part id`): the pairs, and the times `t`.
const STREAM_STRAIGHT_PAIRS: u64 = 20;
const STREAM_STRAIGHT_TIMES: u64 = 30;

/// Regression batch of part `part` at gradient step `step` on straight paths
/// `X_t = t Y + (1 − t) X₀`, `t ~ U(t_min, 1)`, with independent pairs (a pure function of the
/// seed, part and step): `(X_t, t, Y − X₀)`.
fn straight_batch(
    data: &PairData,
    seed: u64,
    part: u64,
    step: usize,
    batch: usize,
    t_min: f64,
) -> Result<crate::flows::pool::PoolBatch> {
    let (x0, y) = data.pairs(batch, seed, STREAM_STRAIGHT_PAIRS + part, step as u64)?;
    let mut rng = keyed_rng(seed, STREAM_STRAIGHT_TIMES + part, step as u64, 0);
    RectifiedFlow { k: 1, t_min }.sample(&x0, &y, data.dim(), &mut rng)
}

/// Trains one straight-path network in `dir` (resuming from a checkpoint there when asked).
#[allow(clippy::too_many_arguments)]
fn train_part<B, M>(
    model: M,
    cfg: &NsgfppConfig,
    data: &PairData,
    (train, t_min): (&OptimConfig, f64),
    id: u64,
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
    let pb = bar(
        train.steps as u64,
        show,
        "train {bar:30} {pos}/{len} loss {msg} {per_sec} eta {eta}",
    );
    let (_, _, fit) = train_network(model, train, id, dir, device, resume, &pb, |step| {
        straight_batch(data, cfg.seed, id, step, train.batch, t_min)
    })?;
    pb.finish_and_clear();
    Ok(fit)
}

/// Algorithm 3 with the given networks: the NSGF velocity field (`run_dir/nsgf`, Algorithm 1
/// with `T ≤ 5`), the NSF (`run_dir/nsf`) and the time predictor (`run_dir/time`).
#[allow(clippy::too_many_arguments)]
fn train_networks<B, F, P>(
    cfg: &NsgfppConfig,
    data: &PairData,
    run_dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
    field: impl Fn(&ModelConfig, &B::Device) -> Result<F>,
    time: impl FnOnce(&B::Device) -> Result<P>,
) -> Result<NsgfppReport>
where
    B: NnAutodiffBackend,
    F: Regressor<B> + AutodiffModule<B> + ModuleSnapshot<B>,
    F::InnerModule: ModuleSnapshot<B::InnerBackend>,
    P: Regressor<B> + AutodiffModule<B> + ModuleSnapshot<B>,
    P::InnerModule: ModuleSnapshot<B::InnerBackend>,
{
    B::seed(device, cfg.seed);
    let model = field(&cfg.model, device)?;
    let dir = run_dir.join("nsgf");
    let (_, _, nsgf) = train_field(model, data, cfg.field_spec(), &dir, device, resume, show)?;
    B::seed(device, cfg.seed.wrapping_add(1));
    let model = field(&cfg.nsf.model, device)?;
    let dir = run_dir.join("nsf");
    let times = (&cfg.nsf.train, cfg.nsf.t_min);
    let nsf = train_part(model, cfg, data, times, 1, &dir, device, resume, show)?;
    B::seed(device, cfg.seed.wrapping_add(2));
    let model = time(device)?;
    let dir = run_dir.join("time");
    let times = (&cfg.time.train, 0.0);
    let time = train_part(model, cfg, data, times, 2, &dir, device, resume, show)?;
    Ok(NsgfppReport { nsgf, nsf, time })
}

/// Algorithm 3: trains the NSGF velocity field (`run_dir/nsgf`), the NSF (`run_dir/nsf`) and the
/// time predictor (`run_dir/time`), with `config.toml` at the top; MLPs in 2-D, UNets and the
/// time CNN for images. Each network resumes from its own checkpoint when `resume` is set.
pub fn train<B: NnAutodiffBackend>(
    cfg: &NsgfppConfig,
    run_dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<NsgfppReport> {
    cfg.validate()?;
    let data = cfg.pair_data()?;
    let mut cfg = cfg.clone();
    cfg.image_shape = pairs::checked_image_shape(&data, cfg.image_shape)?;
    if resume {
        for (part, steps) in [
            ("nsgf", cfg.train.steps),
            ("nsf", cfg.nsf.train.steps),
            ("time", cfg.time.train.steps),
        ] {
            checkpoint::refuse_shortening(&run_dir.join(part), steps)?;
        }
    }
    checkpoint::write_run_config(run_dir, &cfg, resume)?;
    match cfg.image_shape {
        None => train_networks::<B, _, _>(
            &cfg,
            &data,
            run_dir,
            device,
            resume,
            show,
            |m, dev| Ok(mlp::<B>(m, dev)),
            |dev| Ok(time_mlp::<B>(&cfg.time.model, dev)),
        ),
        Some(shape) => {
            tracing::info!(?shape, "NSGF++ on images");
            train_networks::<B, _, _>(
                &cfg,
                &data,
                run_dir,
                device,
                resume,
                show,
                |m, dev| unet_config(m, shape)?.init::<B>(dev),
                |dev| time_cnn::<B>(shape, dev),
            )
        }
    }
}

fn mlp<B: NnBackend>(m: &ModelConfig, dev: &B::Device) -> VelocityMlp<B> {
    MlpConfig::new(2)
        .with_hidden(m.hidden)
        .with_layers(m.layers)
        .init(dev)
}

fn time_mlp<B: NnBackend>(m: &ModelConfig, dev: &B::Device) -> TimeMlp<B> {
    TimeMlpConfig::new(2)
        .with_hidden(m.hidden)
        .with_layers(m.layers)
        .init(dev)
}

fn time_cnn<B: NnBackend>(shape: [usize; 3], dev: &B::Device) -> Result<TimeCnn<B>> {
    if shape[1] != shape[2] {
        return Err(NsgfError::Param(format!(
            "the time predictor needs square images, got {}x{}",
            shape[1], shape[2]
        )));
    }
    TimeCnnConfig::new(shape[0], shape[1]).init(dev)
}

/// The three trained networks of a run (the weights' moving averages where the run kept them).
pub struct NsgfppRun<B: NnBackend> {
    pub config: NsgfppConfig,
    pub nsgf: Box<dyn VectorField<B>>,
    pub nsf: Box<dyn VectorField<B>>,
    pub time: Box<dyn TimePredictor<B>>,
}

/// Loads a run written by [`train`].
pub fn load_run<B: NnBackend>(run_dir: &Path, device: &B::Device) -> Result<NsgfppRun<B>> {
    let config = NsgfppConfig::load(&run_dir.join(CONFIG_FILE))?;
    let (nsgf_dir, nsf_dir, time_dir) = (
        run_dir.join("nsgf"),
        run_dir.join("nsf"),
        run_dir.join("time"),
    );
    let run = match (config.is_image(), config.image_shape) {
        (false, _) => NsgfppRun {
            nsgf: Box::new(checkpoint::load_for_sampling(
                mlp::<B>(&config.model, device),
                &nsgf_dir,
            )?),
            nsf: Box::new(checkpoint::load_for_sampling(
                mlp::<B>(&config.nsf.model, device),
                &nsf_dir,
            )?),
            time: Box::new(checkpoint::load_for_sampling(
                time_mlp::<B>(&config.time.model, device),
                &time_dir,
            )?),
            config,
        },
        (true, Some(shape)) => NsgfppRun {
            nsgf: Box::new(checkpoint::load_for_sampling(
                unet_config(&config.model, shape)?.init::<B>(device)?,
                &nsgf_dir,
            )?),
            nsf: Box::new(checkpoint::load_for_sampling(
                unet_config(&config.nsf.model, shape)?.init::<B>(device)?,
                &nsf_dir,
            )?),
            time: Box::new(checkpoint::load_for_sampling(
                time_cnn::<B>(shape, device)?,
                &time_dir,
            )?),
            config,
        },
        (true, None) => {
            return Err(NsgfError::format(
                run_dir.join(CONFIG_FILE),
                "an image run's config.toml must state image_shape (written by `nsgf train`)",
            ))
        }
    };
    Ok(run)
}

/// Keyed-draw stream of the source samples drawn for sampling.
const STREAM_SAMPLING: u64 = 40;

/// `n` source rows of a run, draw `index` of the sampling stream of `seed`: the problem's source
/// in 2-D, `N(0, I)` for images.
pub fn source_rows(config: &NsgfppConfig, n: usize, seed: u64, index: u64) -> Result<Vec<f32>> {
    pairs::source_rows(
        config.problem,
        config.image_shape,
        n,
        seed,
        STREAM_SAMPLING,
        index,
    )
}

/// Row dimension of a run's samples.
pub fn dim(config: &NsgfppConfig) -> usize {
    config.image_shape.map(|s| s.iter().product()).unwrap_or(2)
}

/// Algorithm 4 on `n` fresh source samples (seeded), with the run's sampling settings unless
/// `schedule` overrides the NSF schedule.
pub fn sample<B: NnBackend>(
    run: &NsgfppRun<B>,
    n: usize,
    schedule: Option<NsfSchedule>,
    seed: u64,
    device: &B::Device,
) -> Result<NsgfppSamples<B>> {
    if n == 0 {
        return Err(NsgfError::Param(
            "the number of samples must be at least 1".into(),
        ));
    }
    let x0 = source_rows(&run.config, n, seed, 0)?;
    let x0 = crate::convert::rows_to_tensor(x0, n, dim(&run.config), device);
    sample_from(run, x0, schedule, |_| {})
}

/// Algorithm 4 from given source samples `x0 (n, d)`; `on_state` sees the state after every
/// network evaluation (see [`nsgfpp_sample`]).
pub fn sample_from<B: NnBackend>(
    run: &NsgfppRun<B>,
    x0: burn::tensor::Tensor<B, 2>,
    schedule: Option<NsfSchedule>,
    on_state: impl FnMut(&burn::tensor::Tensor<B, 2>),
) -> Result<NsgfppSamples<B>> {
    nsgfpp_sample(
        run.nsgf.as_ref(),
        run.config.nsgf.steps,
        run.time.as_ref(),
        run.nsf.as_ref(),
        schedule.unwrap_or_else(|| run.config.sampling.schedule()),
        run.config.sampling.solver,
        x0,
        on_state,
    )
}

/// Host copies of Algorithm 4's outputs for many samples.
#[derive(Clone, Debug)]
pub struct SampledRows {
    /// Final samples `(n, d)`.
    pub x: Vec<f32>,
    /// The states after the NSGF phase `(n, d)`.
    pub after_nsgf: Vec<f32>,
    /// `t̂` of every sample.
    pub t_hat: Vec<f32>,
    /// Network evaluations per sample: the most of any batch (the same for every batch unless
    /// the NSF is adaptive).
    pub nfe: usize,
    /// Network evaluations per sample, the mean over samples.
    pub mean_nfe: f64,
}

/// Algorithm 4 on `n` samples in batches of at most `batch` (batch `i` draws its sources as
/// draw `i` of the sampling stream of `seed`, so the samples do not depend on how many are
/// asked for, only on `batch`). `progress(done)` after each batch.
pub fn sample_many<B: NnBackend>(
    run: &NsgfppRun<B>,
    n: usize,
    batch: usize,
    schedule: Option<NsfSchedule>,
    seed: u64,
    device: &B::Device,
    progress: impl FnMut(usize),
) -> Result<SampledRows> {
    sample_rows(run, 0..n, batch, schedule, seed, device, progress)
}

/// Rows `rows` of [`sample_many`]'s output (`rows.start` a multiple of `batch`, and `rows.end`
/// a multiple of `batch` or `n`: the same batches): the draw of `n` samples in parts, each part computed on its own (an interrupted
/// draw resumes from its finished parts). `progress(done)` counts the part's rows; `mean_nfe`
/// is the part's.
pub fn sample_rows<B: NnBackend>(
    run: &NsgfppRun<B>,
    rows: std::ops::Range<usize>,
    batch: usize,
    schedule: Option<NsfSchedule>,
    seed: u64,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<SampledRows> {
    let n = rows.len();
    if batch > 0 && !rows.start.is_multiple_of(batch) {
        return Err(NsgfError::Param(format!(
            "rows from {} in batches of {batch}: a part must start at a batch boundary",
            rows.start
        )));
    }
    if n == 0 || batch == 0 {
        return Err(NsgfError::Param(
            "the number of samples and the batch must be at least 1".into(),
        ));
    }
    let d = dim(&run.config);
    let mut out = SampledRows {
        x: Vec::with_capacity(n * d),
        after_nsgf: Vec::with_capacity(n * d),
        t_hat: Vec::with_capacity(n),
        nfe: 0,
        mean_nfe: 0.0,
    };
    for (i, start) in (0..n).step_by(batch).enumerate() {
        let m = batch.min(n - start);
        let x0 = source_rows(&run.config, m, seed, (rows.start / batch + i) as u64)?;
        let x0 = crate::convert::rows_to_tensor(x0, m, d, device);
        let s = sample_from(run, x0, schedule, |_| {})?;
        out.x.extend(crate::convert::to_f32_vec(s.x)?);
        out.after_nsgf
            .extend(crate::convert::to_f32_vec(s.after_nsgf)?);
        out.t_hat.extend(crate::convert::to_f32_vec(s.t_hat)?);
        out.nfe = out.nfe.max(s.nfe);
        // Evaluations summed over the samples (exact in f64), averaged at the end.
        out.mean_nfe += (s.nfe * m) as f64;
        progress(start + m);
    }
    out.mean_nfe /= n as f64;
    Ok(out)
}

/// How many predicted times `t̂` fall below the straight flow's training range
/// `[nsf.t_min, 1]` (where Algorithm 4 asks the NSF to extrapolate); 0 for the paper's range.
pub fn below_nsf_range(config: &NsgfppConfig, t_hat: &[f32]) -> usize {
    let t_min = config.nsf.t_min;
    t_hat.iter().filter(|&&t| f64::from(t) < t_min).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NSF's batches: `t ~ U(t_min, 1)` on the pairs the paper's range draws (same `Y − X₀`),
    /// the time predictor's on `U(0, 1)`; both keyed by (seed, part, step).
    #[test]
    fn straight_batches_draw_the_nsf_window() {
        let data = pairs::resolve(Some(Problem::Moons), None).unwrap();
        let (seed, step, n) = (7, 12, 300);
        let paper = straight_batch(&data, seed, 1, step, n, 0.0).unwrap();
        let late = straight_batch(&data, seed, 1, step, n, 0.6).unwrap();
        assert_eq!(late.u, paper.u);
        assert!(late.tau.iter().all(|t| (0.6..=1.0).contains(t)));
        assert!(paper.tau.iter().any(|&t| t < 0.3));
        let again = straight_batch(&data, seed, 1, step, n, 0.6).unwrap();
        assert_eq!((again.x, again.tau), (late.x, late.tau));
        let time = straight_batch(&data, seed, 2, step, n, 0.0).unwrap();
        assert_ne!(time.u, paper.u);
    }

    #[test]
    fn predicted_times_below_the_nsf_range_are_counted() {
        let text = "method = \"nsgfpp\"\nproblem = \"moons\"\n[nsgf]\nsteps = 3\n\
                    [nsf]\nt_min = 0.5\n";
        let mut cfg = NsgfppConfig::from_toml(text, Path::new("x.toml")).unwrap();
        let t_hat = [0.2, 0.49, 0.5, 0.75, 1.0];
        assert_eq!(below_nsf_range(&cfg, &t_hat), 2);
        cfg.nsf.t_min = 0.0;
        assert_eq!(below_nsf_range(&cfg, &t_hat), 0);
    }
}
