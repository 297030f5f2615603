//! NSGF++ on the 2-D problems (paper Sec. 4.4, Algorithm 3 for training, Algorithm 4 for
//! sampling): three networks trained one after the other into three sub-folders of the run,
//! each with its own checkpoints and resume:
//!
//! * `nsgf/` — the NSGF velocity field: Algorithm 1 with a short flow (`T ≤ 5`), exactly
//!   [`super::nsgf::train`];
//! * `nsf/` — the neural straight flow `u_δ(X_t, t)` regressed on `Y − X₀` along
//!   `X_t = t Y + (1 − t) X₀`, independent pairs (= 1-RF);
//! * `time/` — the time predictor `t_φ(X_t)` regressed on `t` along the same paths.
//!
//! The straight-path batches are a pure function of `(seed, part, step)`, so a resumed part sees
//! exactly the batches an uninterrupted one would.

use super::checkpoint::{self, TrainState, CONFIG_FILE, MODEL_FILE};
use super::config::{parse_config, read_config, ModelConfig, OptimConfig, PoolConfig, ToyConfig};
use super::fit::{bar, fit_regression, FitOutcome};
use super::nsgf::{self as nsgf_train, sample_tensor, TrainReport};
use crate::data::toy2d::Problem;
use crate::error::{NsgfError, Result};
use crate::flows::matching::{Matcher, RectifiedFlow};
use crate::flows::nsgf::NsgfConfig;
use crate::flows::nsgfpp::{nsgfpp_sample, NsfSchedule, NsgfppSamples};
use crate::flows::samplers::Solver;
use crate::io::npy::write_atomic;
use crate::models::mlp::{MlpConfig, VelocityMlp};
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use crate::models::time_predictor::{TimeMlp, TimeMlpConfig};
use crate::models::Regressor;
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Maximum NSGF steps of NSGF++'s first phase (the paper: `T ≤ 5`).
pub const MAX_NSGF_STEPS: usize = 5;

/// One straight-flow network: its MLP size and optimisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartConfig {
    /// MLP size.
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
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            nsf_steps: Some(5),
            omega: 0.1,
            solver: Solver::Euler,
        }
    }
}

impl SamplingConfig {
    /// The NSF schedule.
    pub fn schedule(&self) -> NsfSchedule {
        match self.nsf_steps {
            Some(k) => NsfSchedule::Steps(k),
            None => NsfSchedule::Omega(self.omega),
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

/// True when a TOML config text declares `method = "nsgfpp"` (how the CLI tells NSGF++ configs
/// and runs from NSGF ones).
pub fn is_nsgfpp_config(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| {
            t.get("method")
                .and_then(|m| m.as_str().map(|m| m == "nsgfpp"))
        })
        .unwrap_or(false)
}

/// A whole 2-D NSGF++ run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsgfppToyConfig {
    /// Always `"nsgfpp"`.
    pub method: Method,
    /// The 2-D problem.
    pub problem: Problem,
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
    /// The NSGF velocity field's MLP.
    #[serde(default)]
    pub model: ModelConfig,
    /// The neural straight flow.
    #[serde(default)]
    pub nsf: PartConfig,
    /// The time predictor.
    #[serde(default)]
    pub time: PartConfig,
    /// Sampling (Algorithm 4).
    #[serde(default)]
    pub sampling: SamplingConfig,
}

impl NsgfppToyConfig {
    /// Parses and validates TOML text (`origin` names it in errors).
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        parse_config(text, origin, Self::validate)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        read_config(path, Self::validate)
    }

    /// The NSGF phase as a plain NSGF run config.
    pub fn nsgf_run(&self) -> ToyConfig {
        ToyConfig {
            problem: self.problem,
            seed: self.seed,
            nsgf: self.nsgf.clone(),
            pool: self.pool.clone(),
            train: self.train.clone(),
            model: self.model.clone(),
        }
    }

    /// Range checks, `T ≤ 5` included.
    pub fn validate(&self) -> Result<()> {
        self.nsgf_run().validate()?;
        if self.nsgf.steps > MAX_NSGF_STEPS {
            return Err(NsgfError::Param(format!(
                "NSGF++ runs at most {MAX_NSGF_STEPS} NSGF steps (nsgf.steps = {})",
                self.nsgf.steps
            )));
        }
        for (name, p) in [("nsf", &self.nsf), ("time", &self.time)] {
            if p.train.steps == 0 || p.train.batch == 0 || p.model.hidden == 0 {
                return Err(NsgfError::Param(format!(
                    "{name}: train.steps, train.batch and model.hidden must be at least 1"
                )));
            }
            if !(p.train.lr.is_finite() && p.train.lr > 0.0) {
                return Err(NsgfError::Param(format!("{name}.train.lr must be > 0")));
            }
        }
        self.sampling.schedule().steps(0.0).map(|_| ())
    }
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

/// Regression batches on straight paths for part `part` at gradient step `step` (a pure function
/// of the seed, the part and the step).
fn straight_batch(
    problem: Problem,
    seed: u64,
    part: u64,
    step: usize,
    batch: usize,
) -> Result<crate::flows::pool::PoolBatch> {
    let mut rng = StdRng::seed_from_u64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (part << 48) ^ step as u64,
    );
    let x0 = problem.source().sample(batch, &mut rng);
    let y = problem.target().sample(batch, &mut rng);
    RectifiedFlow { k: 1 }.sample(&x0, &y, 2, &mut rng)
}

/// Trains one straight-path network in `dir` (resuming from a checkpoint there when asked).
#[allow(clippy::too_many_arguments)]
fn train_part<B, M>(
    model: M,
    cfg: &NsgfppToyConfig,
    part: &PartConfig,
    id: u64,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<(M, FitOutcome)>
where
    B: NnAutodiffBackend,
    M: Regressor<B> + AutodiffModule<B> + burn::store::ModuleSnapshot<B>,
{
    std::fs::create_dir_all(dir).map_err(|e| NsgfError::io(dir, e))?;
    let mut optim = AdamConfig::new().init::<B, M>();
    let mut model = checkpoint::sequential_ids(model, (id + 1) << 40);
    let mut start = 0;
    if resume && dir.join(checkpoint::STATE_FILE).exists() {
        let (m, o, state) = checkpoint::load_checkpoint(dir, model, optim, device)?;
        (model, optim, start) = (m, o, state.step);
    }
    let pb = bar(
        part.train.steps as u64,
        show,
        "train {bar:30} {pos}/{len} loss {msg} {per_sec} eta {eta}",
    );
    let (model, fit) = fit_regression(
        model,
        &mut optim,
        device,
        start,
        &part.train,
        |step| straight_batch(cfg.problem, cfg.seed, id, step, part.train.batch),
        |step, model, optim| {
            if part.train.checkpoint_every > 0 && step.is_multiple_of(part.train.checkpoint_every) {
                checkpoint::save_checkpoint(dir, model, optim, &TrainState { step })?;
            }
            Ok(())
        },
        &pb,
    )?;
    pb.finish_and_clear();
    checkpoint::save_checkpoint(dir, &model, &optim, &TrainState { step: fit.steps })?;
    Ok((model, fit))
}

/// Algorithm 3: the NSGF velocity field (`run_dir/nsgf`), the NSF (`run_dir/nsf`) and the time
/// predictor (`run_dir/time`), with `config.toml` at the top.
pub fn train<B: NnAutodiffBackend>(
    cfg: &NsgfppToyConfig,
    run_dir: &Path,
    device: &B::Device,
    resume: bool,
    show: bool,
) -> Result<NsgfppReport> {
    cfg.validate()?;
    std::fs::create_dir_all(run_dir).map_err(|e| NsgfError::io(run_dir, e))?;
    let text = toml::to_string_pretty(cfg)
        .map_err(|e| NsgfError::Other(format!("config serialisation: {e}")))?;
    write_atomic(&run_dir.join(CONFIG_FILE), text.as_bytes())?;
    let nsgf =
        nsgf_train::train::<B>(&cfg.nsgf_run(), &run_dir.join("nsgf"), device, resume, show)?;
    B::seed(device, cfg.seed.wrapping_add(1));
    let nsf: VelocityMlp<B> = MlpConfig::new(2)
        .with_hidden(cfg.nsf.model.hidden)
        .with_layers(cfg.nsf.model.layers)
        .init(device);
    let (_, nsf) = train_part(
        nsf,
        cfg,
        &cfg.nsf,
        1,
        &run_dir.join("nsf"),
        device,
        resume,
        show,
    )?;
    B::seed(device, cfg.seed.wrapping_add(2));
    let time: TimeMlp<B> = TimeMlpConfig::new(2)
        .with_hidden(cfg.time.model.hidden)
        .with_layers(cfg.time.model.layers)
        .init(device);
    let (_, time) = train_part(
        time,
        cfg,
        &cfg.time,
        2,
        &run_dir.join("time"),
        device,
        resume,
        show,
    )?;
    Ok(NsgfppReport { nsgf, nsf, time })
}

/// The three trained networks of a run.
pub struct NsgfppRun<B: NnBackend> {
    pub config: NsgfppToyConfig,
    pub nsgf: VelocityMlp<B>,
    pub nsf: VelocityMlp<B>,
    pub time: TimeMlp<B>,
}

/// Loads a run written by [`train`].
pub fn load_run<B: NnBackend>(run_dir: &Path, device: &B::Device) -> Result<NsgfppRun<B>> {
    let config = NsgfppToyConfig::load(&run_dir.join(CONFIG_FILE))?;
    let mlp = |m: &ModelConfig| {
        MlpConfig::new(2)
            .with_hidden(m.hidden)
            .with_layers(m.layers)
            .init::<B>(device)
    };
    let nsgf = checkpoint::load_model(mlp(&config.model), &run_dir.join("nsgf").join(MODEL_FILE))?;
    let nsf = checkpoint::load_model(
        mlp(&config.nsf.model),
        &run_dir.join("nsf").join(MODEL_FILE),
    )?;
    let time = TimeMlpConfig::new(2)
        .with_hidden(config.time.model.hidden)
        .with_layers(config.time.model.layers)
        .init::<B>(device);
    let time = checkpoint::load_model(time, &run_dir.join("time").join(MODEL_FILE))?;
    Ok(NsgfppRun {
        config,
        nsgf,
        nsf,
        time,
    })
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
    let mut rng = StdRng::seed_from_u64(seed);
    let x0 = sample_tensor(run.config.problem.source(), n, &mut rng, device);
    sample_from(run, x0, schedule, |_| {})
}

/// Algorithm 4 from given source samples `x0 (n, 2)`; `on_state` sees the state after every
/// network evaluation (see [`nsgfpp_sample`]).
pub fn sample_from<B: NnBackend>(
    run: &NsgfppRun<B>,
    x0: burn::tensor::Tensor<B, 2>,
    schedule: Option<NsfSchedule>,
    on_state: impl FnMut(&burn::tensor::Tensor<B, 2>),
) -> Result<NsgfppSamples<B>> {
    nsgfpp_sample(
        &run.nsgf,
        run.config.nsgf.steps,
        &run.time,
        &run.nsf,
        schedule.unwrap_or_else(|| run.config.sampling.schedule()),
        run.config.sampling.solver,
        x0,
        on_state,
    )
}
