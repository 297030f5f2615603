//! The explicit regression loop shared by every network of the project: NSGF's velocity-field
//! matching (paper eq. 12), the flow-matching baselines, and the NSGF++ time predictor and
//! straight flow (Algorithm 3); MLPs on 2-D rows and UNets on flattened images alike. Each step
//! draws a batch `(x, τ, u)` and takes one optimizer step on the model's
//! [`Regressor::regression_loss`] (`mean ‖u_θ(x, τ) − u‖²` for a velocity field).

use super::config::OptimConfig;
use crate::convert::rows_to_tensor;
use crate::error::{NsgfError, Result};
use crate::flows::pool::PoolBatch;
use crate::models::Regressor;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::time::Instant;

/// What a call of [`fit_regression`] did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FitOutcome {
    /// Completed gradient steps (in total, including those before `start`).
    pub steps: usize,
    /// Mean training loss of the last 100 steps.
    pub final_loss: f64,
    /// Wall seconds of this call.
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

/// Runs gradient steps `start..opt.steps`: `next_batch(step)` supplies the regression samples
/// (`u` may be empty for a model that needs no targets beyond `τ`),
/// `after_step(step, model, optim)` runs after each step (checkpoints). A non-finite loss stops
/// at once with an error naming the step.
// The explicit loop's inputs stay explicit (as in burn's examples) rather than bundled.
#[allow(clippy::too_many_arguments)]
pub fn fit_regression<B, M, O>(
    mut model: M,
    optim: &mut O,
    device: &B::Device,
    start: usize,
    opt: &OptimConfig,
    mut next_batch: impl FnMut(usize) -> Result<PoolBatch> + Send,
    mut after_step: impl FnMut(usize, &M, &O) -> Result<()> + Send,
    pb: &ProgressBar,
) -> Result<(M, FitOutcome)>
where
    B: AutodiffBackend,
    M: Regressor<B> + burn::module::AutodiffModule<B>,
    O: Optimizer<M, B> + Send,
{
    let threads = opt.threads;
    let run = move || -> Result<(M, usize, VecDeque<f64>, f64)> {
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
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opt.lr_at(step), model, grads);
            step += 1;
            if recent.len() == 100 {
                recent.pop_front();
            }
            recent.push_back(loss_value);
            if step.is_multiple_of(50) {
                pb.set_message(format!("{loss_value:.4}"));
            }
            pb.set_position(step as u64);
            after_step(step, &model, optim)?;
        }
        Ok((model, step, recent, t0.elapsed().as_secs_f64()))
    };
    // On a dedicated pool of `threads` threads every op inside the loop (burn-flex's matrix
    // products included) runs on those threads only.
    let (model, step, recent, seconds) = if threads > 0 {
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
    Ok((model, outcome))
}
