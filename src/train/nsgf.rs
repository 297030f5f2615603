//! NSGF end to end: Algorithm 1 (trajectory pool + velocity-field matching, eq. 12) for any data
//! and velocity network ([`train_field`]; NSGF++'s first phase on 2-D and images), the 2-D NSGF
//! run ([`train`]) and Algorithm 2 (sampling with an ODE solver).

use super::checkpoint::{self, CONFIG_FILE, MODEL_FILE};
use super::config::{OptimConfig, PoolConfig, ToyConfig};
use super::fit::{bar, train_network, Fitted};
use crate::convert::rows_to_tensor;
use crate::data::loader::keyed_rng;
use crate::data::pairs::PairData;
use crate::data::toy2d::Distribution;
use crate::error::{NsgfError, Result};
use crate::flows::nsgf::{push_flow, NsgfConfig};
use crate::flows::pool::TrajectoryPool;
use crate::flows::samplers::{integrate, Solver};
use crate::models::mlp::{MlpConfig, VelocityMlp};
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use crate::models::Regressor;
use burn::module::AutodiffModule;
use burn::store::ModuleSnapshot;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand::SeedableRng;
use std::path::Path;
use std::time::Instant;

/// Summary of a training run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainReport {
    /// Gradient steps completed (in total, including resumed ones).
    pub steps: usize,
    /// Final training loss (mean squared error per coordinate, last 100 steps; see
    /// [`super::fit::FitOutcome::final_loss`] for a resumed finished run).
    pub final_loss: f64,
    /// Samples in the trajectory pool and its memory.
    pub pool_samples: usize,
    pub pool_bytes: usize,
    /// Seconds spent building the pool (the first fill, or the replay of a resumed run).
    pub pool_seconds: f64,
    /// Seconds spent refreshing the pool during training (inside `train_seconds`).
    pub refresh_seconds: f64,
    /// Seconds of the gradient steps.
    pub train_seconds: f64,
}

/// Draws an `(n, 2)` tensor from a 2-D distribution.
pub fn sample_tensor<B: NnBackend>(
    dist: Distribution,
    n: usize,
    rng: &mut rand::rngs::StdRng,
    dev: &B::Device,
) -> Tensor<B, 2> {
    rows_to_tensor(dist.sample(n, rng), n, 2, dev)
}

/// Keyed-draw stream of the pool's minibatch flows (flow `j` is draw `j`).
pub const STREAM_POOL: u64 = 10;
/// Keyed-draw stream of the regression batches (step `s` is draw `s`).
pub const STREAM_BATCHES: u64 = 11;

/// The flow-matching part of an NSGF run: Sinkhorn flow, pool and optimisation.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec<'a> {
    pub nsgf: &'a NsgfConfig,
    pub pool: &'a PoolConfig,
    pub train: &'a OptimConfig,
    pub seed: u64,
}

/// Minibatch flows pushed into the pool before gradient step `step` runs (the initial fill plus
/// the refreshes at steps `R, 2R, … < step`).
fn flows_before(pool: &PoolConfig, step: usize) -> usize {
    let refreshes = if pool.refresh_every > 0 && step > 0 {
        (step - 1) / pool.refresh_every
    } else {
        0
    };
    pool.batches + refreshes * pool.refresh_batches
}

/// Pushes minibatch flows `flows` (keyed draws of [`STREAM_POOL`]) into the pool.
fn push_flows<B: Backend>(
    pool: &mut TrajectoryPool,
    data: &PairData,
    spec: &FieldSpec,
    flows: std::ops::Range<usize>,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<()> {
    let (n, d) = (spec.nsgf.batch, data.dim());
    for j in flows {
        let (x0, y) = data.pairs(n, spec.seed, STREAM_POOL, j as u64)?;
        let (x0, y) = (
            rows_to_tensor::<B>(x0, n, d, device),
            rows_to_tensor::<B>(y, n, d, device),
        );
        push_flow::<B>(pool, spec.nsgf, x0, y, j)?;
        progress(j);
    }
    Ok(())
}

/// Algorithm 1 for any data and any velocity network: the trajectory pool of minibatch Sinkhorn
/// flows (eq. 13–14; `pool.batches` flows of `nsgf.batch` particles, each step stored as
/// `(x_k, k/T, ηT·v_k)`), refreshed with `pool.refresh_batches` new flows every
/// `pool.refresh_every` steps, and the regression of `model` on it (eq. 12), checkpointed in
/// `dir`. Flow `j` and the batch of step `s` are keyed draws, and flow `j` always occupies the
/// pool slots `(j mod batches)·T·n …`: a resumed run replays the flows still in the pool and
/// then continues exactly as an uninterrupted one.
#[allow(clippy::too_many_arguments)]
pub fn train_field<B, M>(
    model: M,
    data: &PairData,
    spec: FieldSpec,
    dir: &Path,
    device: &B::Device,
    resume: bool,
    show_progress: bool,
) -> Result<Fitted<B, M, TrainReport>>
where
    B: NnAutodiffBackend,
    M: Regressor<B> + AutodiffModule<B> + ModuleSnapshot<B>,
    M::InnerModule: ModuleSnapshot<B::InnerBackend>,
{
    let (nsgf, pool_cfg) = (spec.nsgf, spec.pool);
    nsgf.validate()?;
    let per_flow = nsgf.steps * nsgf.batch;
    let capacity = pool_cfg.batches * per_flow;
    let mut pool = TrajectoryPool::with_precision(data.dim(), capacity, pool_cfg.f16)?;
    let start = if resume {
        checkpoint::saved_step(dir)?.unwrap_or(0)
    } else {
        0
    };

    // The pool as it stood before step `start`; none for a finished run resumed (it trains no
    // further, and rebuilding an image run's pool took minutes).
    let t0 = Instant::now();
    let total = if start < spec.train.steps {
        flows_before(pool_cfg, start)
    } else {
        0
    };
    let first = total.saturating_sub(pool_cfg.batches);
    pool.seek(first * per_flow)?;
    let pb = bar(
        (total - first) as u64,
        show_progress,
        "pool  {bar:30} {pos}/{len} flows {elapsed_precise} eta {eta}",
    );
    // The inner (non-autodiff) backend builds the pool; same physical device (the default one).
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    push_flows::<B::InnerBackend>(&mut pool, data, &spec, first..total, &inner, |j| {
        pb.set_position((j + 1 - first) as u64)
    })?;
    pb.finish_and_clear();
    let pool_seconds = t0.elapsed().as_secs_f64();
    tracing::info!(
        samples = pool.len(),
        bytes = pool.memory_bytes(),
        seconds = pool_seconds,
        "trajectory pool built"
    );

    let pb = bar(
        spec.train.steps as u64,
        show_progress,
        "train {bar:30} {pos}/{len} loss {msg} {per_sec} eta {eta}",
    );
    // Segment sampling (see `TrajectoryPool::sample_along_segments`): Δτ = 1/T.
    let dtau = if pool_cfg.segments {
        1.0 / nsgf.steps as f32
    } else {
        0.0
    };
    let mut refresh_seconds = 0.0;
    let (model, ema, fit) =
        train_network(model, spec.train, 0, dir, device, resume, &pb, |step| {
            if pool_cfg.refresh_every > 0 && step > 0 && step.is_multiple_of(pool_cfg.refresh_every)
            {
                let t = Instant::now();
                let done = flows_before(pool_cfg, step);
                push_flows::<B::InnerBackend>(
                    &mut pool,
                    data,
                    &spec,
                    done..done + pool_cfg.refresh_batches,
                    &inner,
                    |_| {},
                )?;
                refresh_seconds += t.elapsed().as_secs_f64();
            }
            let mut rng = keyed_rng(spec.seed, STREAM_BATCHES, step as u64, 0);
            pool.sample_along_segments(spec.train.batch, dtau, &mut rng)
        })?;
    pb.finish_and_clear();
    let report = TrainReport {
        steps: fit.steps,
        final_loss: fit.final_loss,
        pool_samples: pool.len(),
        pool_bytes: pool.memory_bytes(),
        pool_seconds,
        refresh_seconds,
        train_seconds: fit.seconds,
    };
    Ok((model, ema, report))
}

/// Algorithm 1 on a 2-D problem with the config's MLP: see [`train_field`]. Writes
/// `config.toml` and the checkpoints into `run_dir`, resuming from one there when `resume` is
/// set.
pub fn train<B: NnAutodiffBackend>(
    cfg: &ToyConfig,
    run_dir: &Path,
    device: &B::Device,
    resume: bool,
    show_progress: bool,
) -> Result<TrainReport> {
    cfg.validate()?;
    if resume {
        checkpoint::refuse_shortening(run_dir, cfg.train.steps)?;
    }
    checkpoint::write_run_config(run_dir, cfg, resume)?;
    B::seed(device, cfg.seed);
    let model: VelocityMlp<B> = MlpConfig::new(2)
        .with_hidden(cfg.model.hidden)
        .with_layers(cfg.model.layers)
        .init(device);
    let spec = FieldSpec {
        nsgf: &cfg.nsgf,
        pool: &cfg.pool,
        train: &cfg.train,
        seed: cfg.seed,
    };
    let data = PairData::Toy(cfg.problem);
    let (_, _, report) = train_field(model, &data, spec, run_dir, device, resume, show_progress)?;
    Ok(report)
}

/// A trained run loaded for sampling.
pub struct TrainedRun<B: NnBackend> {
    pub config: ToyConfig,
    pub model: VelocityMlp<B>,
}

/// Loads `config.toml` and `model.safetensors` from a run directory.
pub fn load_run<B: NnBackend>(run_dir: &Path, device: &B::Device) -> Result<TrainedRun<B>> {
    let config = ToyConfig::load(&run_dir.join(CONFIG_FILE))?;
    let model = MlpConfig::new(2)
        .with_hidden(config.model.hidden)
        .with_layers(config.model.layers)
        .init::<B>(device);
    let model = checkpoint::load_model(model, &run_dir.join(MODEL_FILE))?;
    Ok(TrainedRun { config, model })
}

/// Algorithm 2: pushes `n` fresh source samples through the learned field with `steps`
/// uniform steps of `solver` on `τ ∈ [0, 1]`. Returns the final samples `(n, 2)`, every
/// intermediate state (for figures) and the NFE.
pub fn sample<B: NnBackend>(
    run: &TrainedRun<B>,
    n: usize,
    steps: usize,
    solver: Solver,
    seed: u64,
    device: &B::Device,
) -> Result<(Tensor<B, 2>, Vec<Tensor<B, 2>>, usize)> {
    if n == 0 {
        return Err(NsgfError::Param(
            "the number of samples must be at least 1".into(),
        ));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x0 = sample_tensor(run.config.problem.source(), n, &mut rng, device);
    // Grown as it goes: a reservation of `steps + 1` up front aborted on a huge `--steps`.
    let mut path = Vec::new();
    let (x, nfe) = integrate(&run.model, x0, 0.0, 1.0, steps, solver, |_, x| {
        path.push(x.clone())
    })?;
    Ok((x, path, nfe))
}

/// The network with autodiff stripped (for sampling right after training).
pub fn inference_model<B: NnAutodiffBackend>(
    model: &VelocityMlp<B>,
) -> VelocityMlp<B::InnerBackend> {
    model.valid()
}
