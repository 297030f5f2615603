//! The explicit velocity-regression loop shared by NSGF (velocity-field matching, paper eq. 12)
//! and the flow-matching baselines: draw a batch `(x_τ, τ, u_τ)`, minimise
//! `mean ‖u_θ(x_τ, τ) − u_τ‖²` (over the batch and the coordinates) with one optimizer step.

use super::config::OptimConfig;
use crate::convert::rows_to_tensor;
use crate::error::{NsgfError, Result};
use crate::flows::pool::PoolBatch;
use crate::models::mlp::VelocityMlp;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::time::Instant;

/// What a call of [`fit_velocity`] did.
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

/// Runs gradient steps `start..opt.steps`: `next_batch(step)` supplies the regression samples,
/// `after_step(step, model, optim)` runs after each step (checkpoints). A non-finite loss stops
/// at once with an error naming the step.
// The explicit loop's inputs stay explicit (as in burn's examples) rather than bundled.
#[allow(clippy::too_many_arguments)]
pub fn fit_velocity<B, O>(
    mut model: VelocityMlp<B>,
    optim: &mut O,
    device: &B::Device,
    start: usize,
    opt: &OptimConfig,
    mut next_batch: impl FnMut(usize) -> Result<PoolBatch>,
    mut after_step: impl FnMut(usize, &VelocityMlp<B>, &O) -> Result<()>,
    pb: &ProgressBar,
) -> Result<(VelocityMlp<B>, FitOutcome)>
where
    B: AutodiffBackend,
    O: Optimizer<VelocityMlp<B>, B>,
{
    let t0 = Instant::now();
    let mut step = start;
    pb.set_position(step as u64);
    let mut recent = VecDeque::with_capacity(100);
    while step < opt.steps {
        let batch = next_batch(step)?;
        let b = batch.tau.len();
        if b == 0 || batch.x.len() != batch.u.len() || !batch.x.len().is_multiple_of(b) {
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
        let u = rows_to_tensor::<B>(batch.u, b, d, device);
        let loss = (model.forward(x, tau) - u).powi_scalar(2).mean();
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
    let outcome = FitOutcome {
        steps: step,
        final_loss: recent.iter().sum::<f64>() / recent.len().max(1) as f64,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok((model, outcome))
}
