//! NSGF on the 2-D problems, end to end: Algorithm 1 (trajectory pool + velocity-field
//! matching, eq. 12) and Algorithm 2 (sampling with an ODE solver).

use super::checkpoint::{self, TrainState, CONFIG_FILE, MODEL_FILE};
use super::config::ToyConfig;
use super::fit::{bar, fit_regression};
use crate::convert::rows_to_tensor;
use crate::data::toy2d::Distribution;
use crate::error::{NsgfError, Result};
use crate::flows::nsgf::fill_pool;
use crate::flows::pool::TrajectoryPool;
use crate::flows::samplers::{integrate, Solver};
use crate::io::npy::write_atomic;
use crate::models::mlp::{MlpConfig, VelocityMlp};
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use burn::tensor::Tensor;
use rand::SeedableRng;
use std::path::Path;
use std::time::Instant;

/// Summary of a training run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainReport {
    /// Gradient steps completed (in total, including resumed ones).
    pub steps: usize,
    /// Final training loss (mean squared error per coordinate, last 100 steps).
    pub final_loss: f64,
    /// Samples in the trajectory pool and its memory.
    pub pool_samples: usize,
    pub pool_bytes: usize,
    /// Seconds spent building the pool and training.
    pub pool_seconds: f64,
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

/// Algorithm 1: builds the trajectory pool from minibatch Sinkhorn flows, then fits the MLP
/// velocity field by regression on the pool (eq. 12) with Adam. Writes checkpoints into
/// `run_dir` (atomically) and resumes from one there when `resume` is set.
pub fn train<B: NnAutodiffBackend>(
    cfg: &ToyConfig,
    run_dir: &Path,
    device: &B::Device,
    resume: bool,
    show_progress: bool,
) -> Result<TrainReport> {
    cfg.validate()?;
    std::fs::create_dir_all(run_dir).map_err(|e| NsgfError::io(run_dir, e))?;
    write_atomic(&run_dir.join(CONFIG_FILE), cfg.to_toml()?.as_bytes())?;
    B::seed(device, cfg.seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let (source, target) = (cfg.problem.source(), cfg.problem.target());

    // Pool (a pure function of the seed, so a resumed run rebuilds the same pool).
    let t0 = Instant::now();
    let capacity = cfg.pool.batches * cfg.nsgf.steps * cfg.nsgf.batch;
    let mut pool = TrajectoryPool::new(2, capacity)?;
    let pb = bar(
        cfg.pool.batches as u64,
        show_progress,
        "pool  {bar:30} {pos}/{len} flows {elapsed_precise} eta {eta}",
    );
    // The inner (non-autodiff) backend builds the pool; same physical device (the default one).
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    fill_pool::<B::InnerBackend>(
        &mut pool,
        &cfg.nsgf,
        cfg.pool.batches,
        |n| {
            (
                sample_tensor(source, n, &mut rng, &inner),
                sample_tensor(target, n, &mut rng, &inner),
            )
        },
        |b| pb.set_position(b as u64),
    )?;
    pb.finish_and_clear();
    let pool_seconds = t0.elapsed().as_secs_f64();
    tracing::info!(
        samples = pool.len(),
        bytes = pool.memory_bytes(),
        seconds = pool_seconds,
        "trajectory pool built"
    );

    // Model and optimizer (or the checkpoint's).
    let model: VelocityMlp<B> = MlpConfig::new(2)
        .with_hidden(cfg.model.hidden)
        .with_layers(cfg.model.layers)
        .init(device);
    let mut model = checkpoint::sequential_ids(model, 1 << 40);
    let mut optim = AdamConfig::new().init::<B, VelocityMlp<B>>();
    let mut step = 0;
    if resume && run_dir.join(checkpoint::STATE_FILE).exists() {
        let (m, o, state) = checkpoint::load_checkpoint(run_dir, model, optim, device)?;
        model = m;
        optim = o;
        step = state.step;
        tracing::info!(step, "resumed");
    }

    let pb = bar(
        cfg.train.steps as u64,
        show_progress,
        "train {bar:30} {pos}/{len} loss {msg} {per_sec} eta {eta}",
    );
    // Segment sampling (see `TrajectoryPool::sample_along_segments`): Δτ = 1/T.
    let dtau = if cfg.pool.segments {
        1.0 / cfg.nsgf.steps as f32
    } else {
        0.0
    };
    let (model, fit) = fit_regression(
        model,
        &mut optim,
        device,
        step,
        &cfg.train,
        |step| {
            if cfg.pool.refresh_every > 0 && step > 0 && step.is_multiple_of(cfg.pool.refresh_every)
            {
                fill_pool::<B::InnerBackend>(
                    &mut pool,
                    &cfg.nsgf,
                    cfg.pool.refresh_batches,
                    |n| {
                        (
                            sample_tensor(source, n, &mut rng, &inner),
                            sample_tensor(target, n, &mut rng, &inner),
                        )
                    },
                    |_| {},
                )?;
            }
            pool.sample_along_segments(cfg.train.batch, dtau, &mut rng)
        },
        |step, model, optim| {
            if cfg.train.checkpoint_every > 0 && step.is_multiple_of(cfg.train.checkpoint_every) {
                checkpoint::save_checkpoint(run_dir, model, optim, &TrainState { step })?;
            }
            Ok(())
        },
        &pb,
    )?;
    let step = fit.steps;
    pb.finish_and_clear();
    checkpoint::save_checkpoint(run_dir, &model, &optim, &TrainState { step })?;
    Ok(TrainReport {
        steps: step,
        final_loss: fit.final_loss,
        pool_samples: pool.len(),
        pool_bytes: pool.memory_bytes(),
        pool_seconds,
        train_seconds: fit.seconds,
    })
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
    let mut path = Vec::with_capacity(steps + 1);
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
