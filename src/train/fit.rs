//! The explicit regression loop shared by every network of the project: NSGF's velocity-field
//! matching (paper eq. 12), the flow-matching baselines, and the NSGF++ time predictor and
//! straight flow (Algorithm 3); MLPs on 2-D rows and UNets on flattened images alike. Each step
//! draws a batch `(x, τ, u)` and takes one optimizer step on the model's
//! [`Regressor::regression_loss`] (`mean ‖u_θ(x, τ) − u‖²` for a velocity field).

use super::checkpoint;
use super::config::OptimConfig;
use super::metrics_log::MetricsLog;
use super::optim::{clip_grad_norm, Ema};
use crate::convert::rows_to_tensor;
use crate::error::{NsgfError, Result};
use crate::flows::pool::PoolBatch;
use crate::models::Regressor;
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::store::ModuleSnapshot;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::time::Instant;

/// What a call of [`fit_regression`] did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FitOutcome {
    /// Completed gradient steps (in total, including those before `start`).
    pub steps: usize,
    /// Mean training loss of the last 100 steps of this call; a resumed run that trains no
    /// further ([`train_network`]) reports the mean loss of its last `metrics.jsonl` line
    /// instead, `NaN` when it has none.
    pub final_loss: f64,
    /// Wall seconds of this call ([`train_network`]: of the whole run, over every resumed
    /// part).
    pub seconds: f64,
}

/// A progress bar (hidden unless `show`).
pub fn bar(len: u64, show: bool, template: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb
}

/// The weights' moving average kept by [`fit_regression`] (on the inner backend).
pub type EmaOf<B, M> = Ema<<M as AutodiffModule<B>>::InnerModule>;

/// What one gradient step did (handed to the `after_step` callback of [`fit_regression`]).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct StepInfo {
    /// Completed steps (1-based: the step just taken).
    pub step: usize,
    /// Its training loss.
    pub loss: f64,
    /// Its learning rate.
    pub lr: f64,
    /// The global gradient norm before clipping (when clipping is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// Wall seconds since this call of [`fit_regression`] started.
    pub seconds: f64,
}

/// A trained network, its moving average (when kept) and a report `R`.
pub type Fitted<B, M, R> = (M, Option<EmaOf<B, M>>, R);

/// Runs gradient steps `start..opt.steps`: `next_batch(step)` supplies the regression samples
/// (`u` may be empty for a model that needs no targets beyond `τ`),
/// `after_step(info, model, optim, ema)` runs after each step (checkpoints, metrics). Each step clips the
/// gradients to `opt.grad_clip` (global norm) when set, takes the Adam step at `opt.lr_at(step)`
/// (schedule and warm-up) and folds the new weights into `ema` when given. A non-finite loss
/// stops at once with an error naming the step.
// The explicit loop's inputs stay explicit (as in burn's examples) rather than bundled.
#[allow(clippy::too_many_arguments)]
pub fn fit_regression<B, M, O>(
    mut model: M,
    optim: &mut O,
    mut ema: Option<EmaOf<B, M>>,
    device: &B::Device,
    start: usize,
    opt: &OptimConfig,
    mut next_batch: impl FnMut(usize) -> Result<PoolBatch> + Send,
    mut after_step: impl FnMut(&StepInfo, &M, &O, Option<&EmaOf<B, M>>) -> Result<()> + Send,
    pb: &ProgressBar,
) -> Result<Fitted<B, M, FitOutcome>>
where
    B: AutodiffBackend,
    M: Regressor<B> + AutodiffModule<B>,
    O: Optimizer<M, B> + Send,
{
    let threads = opt.threads;
    type Ran<M, E> = (M, Option<E>, usize, VecDeque<f64>, f64);
    let run = move || -> Result<Ran<M, EmaOf<B, M>>> {
        let t0 = Instant::now();
        let mut step = start;
        pb.set_position(step as u64);
        let mut recent = VecDeque::with_capacity(100);
        while step < opt.steps {
            let batch = next_batch(step)?;
            let b = batch.tau.len();
            let has_u = !batch.u.is_empty();
            if b == 0
                || (has_u && batch.x.len() != batch.u.len())
                || !batch.x.len().is_multiple_of(b)
            {
                return Err(NsgfError::Shape(format!(
                    "training batch at step {step}: {} positions, {} times, {} targets",
                    batch.x.len(),
                    b,
                    batch.u.len()
                )));
            }
            let d = batch.x.len() / b;
            let x = rows_to_tensor::<B>(batch.x, b, d, device);
            let tau = rows_to_tensor::<B>(batch.tau, b, 1, device);
            let u = has_u.then(|| rows_to_tensor::<B>(batch.u, b, d, device));
            let loss = model.regression_loss(x, tau, u)?;
            let loss_value = crate::convert::to_f64_vec(loss.clone())?[0];
            if !loss_value.is_finite() {
                return Err(NsgfError::NonFinite(format!(
                    "training loss became {loss_value} at step {step}; lower train.lr or check the data"
                )));
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            let mut grad_norm = None;
            if let Some(max_norm) = opt.grad_clip {
                let (clipped, norm) = clip_grad_norm(&model, grads, max_norm)?;
                (grads, grad_norm) = (clipped, Some(norm));
            }
            let lr = opt.lr_at(step);
            model = optim.step(lr, model, grads);
            step += 1;
            if let Some(e) = ema.as_mut() {
                e.update(&model, step);
            }
            if recent.len() == 100 {
                recent.pop_front();
            }
            recent.push_back(loss_value);
            if step.is_multiple_of(50) {
                pb.set_message(format!("{loss_value:.4}"));
            }
            pb.set_position(step as u64);
            let info = StepInfo {
                step,
                loss: loss_value,
                lr,
                grad_norm,
                seconds: t0.elapsed().as_secs_f64(),
            };
            after_step(&info, &model, optim, ema.as_ref())?;
            if super::interrupt::requested() {
                break;
            }
        }
        Ok((model, ema, step, recent, t0.elapsed().as_secs_f64()))
    };
    // On a dedicated pool of `threads` threads every op inside the loop (burn-flex's matrix
    // products included) runs on those threads only.
    let (model, ema, step, recent, seconds) = if threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| NsgfError::Other(format!("training thread pool: {e}")))?
            .install(run)?
    } else {
        run()?
    };
    let outcome = FitOutcome {
        steps: step,
        final_loss: recent.iter().sum::<f64>() / recent.len().max(1) as f64,
        seconds,
    };
    Ok((model, ema, outcome))
}

/// One network trained by [`fit_regression`] in its own directory `dir`, with checkpoints
/// (`model.safetensors`, `optim.mpk`, `ema.safetensors` when `opt.ema > 0`, then `state.json`)
/// every `opt.checkpoint_every` steps and at the end, and resume from the checkpoint in `dir`
/// when `resume` is set (a resumed run already at `opt.steps` writes nothing). Every
/// `opt.log_every` steps the mean loss of those steps and the [`StepInfo`] go to
/// `dir/metrics.jsonl` (one JSON object per line; a resumed run first drops the lines after its
/// checkpoint) and, when the progress bar is hidden, to the log. `id` gives the parameters
/// run-independent ids (one per network of a run; see [`checkpoint::sequential_ids`]).
/// `next_batch(step)` must be a pure function of the step for a resumed run to equal an
/// uninterrupted one.
#[allow(clippy::too_many_arguments)]
pub fn train_network<B, M>(
    model: M,
    opt: &OptimConfig,
    id: u64,
    dir: &std::path::Path,
    device: &B::Device,
    resume: bool,
    pb: &ProgressBar,
    next_batch: impl FnMut(usize) -> Result<PoolBatch> + Send,
) -> Result<Fitted<B, M, FitOutcome>>
where
    B: AutodiffBackend,
    M: Regressor<B> + AutodiffModule<B> + ModuleSnapshot<B>,
    M::InnerModule: ModuleSnapshot<B::InnerBackend>,
{
    crate::io::create_dir_all(dir)?;
    let mut optim = AdamConfig::new().init::<B, M>();
    let mut model = checkpoint::sequential_ids(model, (id + 1) << 40);
    let (mut start, mut before) = (0, 0.0);
    let mut ema = (opt.ema > 0.0).then(|| Ema::new(model.valid(), opt.ema));
    let resumed = resume && dir.join(checkpoint::STATE_FILE).exists();
    if resumed {
        checkpoint::refuse_shortening(dir, opt.steps)?;
        let (m, o, state) = checkpoint::load_checkpoint(dir, model, optim, device)?;
        (model, optim, start) = (m, o, state.step);
        before = read_timing(dir, start);
        if let Some(e) = ema.as_mut() {
            let path = dir.join(checkpoint::EMA_FILE);
            e.model = if path.exists() {
                checkpoint::load_model(e.model.clone(), &path)?
            } else {
                tracing::warn!(
                    "{} has no moving average: it restarts from the weights",
                    dir.display()
                );
                model.valid()
            };
        }
        tracing::info!(step = start, dir = %dir.display(), "resumed");
    }
    let metrics = MetricsLog::open(&dir.join(METRICS_FILE), "step", start)?;
    let mut window = (0.0, 0usize);
    let every = opt.log_every.max(1);
    let total = opt.steps;
    let save = |step: usize,
                seconds: f64,
                model: &M,
                optim: &_,
                ema: Option<&EmaOf<B, M>>|
     -> Result<()> {
        let timing = serde_json::json!({ "step": step, "seconds": before + seconds });
        let mut extra = vec![(checkpoint::TIMING_FILE, timing.to_string().into_bytes())];
        if let Some(e) = ema {
            extra.push((checkpoint::EMA_FILE, checkpoint::module_to_bytes(&e.model)?));
        }
        checkpoint::save_checkpoint_with(
            dir,
            model,
            optim,
            &checkpoint::TrainState { step },
            &extra,
        )
    };
    let (model, ema, fit) = fit_regression(
        model,
        &mut optim,
        ema,
        device,
        start,
        opt,
        next_batch,
        |info, model, optim, ema| {
            let step = info.step;
            window = (window.0 + info.loss, window.1 + 1);
            if step.is_multiple_of(every) || step == total {
                let mean = window.0 / window.1 as f64;
                window = (0.0, 0);
                let mut line =
                    serde_json::to_value(info).map_err(|e| NsgfError::Other(e.to_string()))?;
                line["mean_loss"] = serde_json::json!(mean);
                metrics.append(&line)?;
                if pb.is_hidden() {
                    tracing::info!(
                        "{} step {step}/{total} loss {mean:.5} lr {:.2e} ({:.2} s/step)",
                        dir.display(),
                        info.lr,
                        info.seconds / (step - start).max(1) as f64
                    );
                }
            }
            if opt.checkpoint_every > 0 && step.is_multiple_of(opt.checkpoint_every) {
                save(step, info.seconds, model, optim, ema)?;
            }
            Ok(())
        },
        pb,
    )?;
    // A resumed run that took no step leaves its checkpoint untouched (same bytes and
    // modification times), so that what is keyed by its files (a draw's parts) stays valid.
    if !(resumed && fit.steps == start) {
        save(fit.steps, fit.seconds, &model, &optim, ema.as_ref())?;
    }
    if fit.steps < opt.steps && super::interrupt::requested() {
        return Err(NsgfError::Interrupted {
            step: fit.steps,
            dir: dir.display().to_string(),
        });
    }
    // A resumed run that trains no further reports the mean loss it logged last.
    let final_loss = if fit.steps == start && start > 0 {
        metrics.last_f64("mean_loss").unwrap_or(f64::NAN)
    } else {
        fit.final_loss
    };
    let fit = FitOutcome {
        seconds: before + fit.seconds,
        final_loss,
        ..fit
    };
    Ok((model, ema, fit))
}

/// The training seconds recorded with the checkpoint of step `step` in `dir` (0 when there are
/// none, or when they belong to another step).
fn read_timing(dir: &std::path::Path, step: usize) -> f64 {
    std::fs::read(dir.join(checkpoint::TIMING_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|v| v["step"].as_u64() == Some(step as u64))
        .and_then(|v| v["seconds"].as_f64())
        .unwrap_or(0.0)
}

pub use super::metrics_log::METRICS_FILE;
