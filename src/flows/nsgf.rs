//! Neural Sinkhorn Gradient Flow: the minibatch Sinkhorn gradient flow that produces NSGF's
//! training targets (paper Sec. 4.3, eq. 13–14, Algorithm 1).

use super::pool::TrajectoryPool;
use crate::convert::to_f32_vec;
use crate::error::{NsgfError, Result};
use crate::ot::sinkhorn::{OtProblem, SinkhornConfig};
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of the minibatch Sinkhorn gradient flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NsgfConfig {
    /// Number of flow steps `T`.
    pub steps: usize,
    /// Step size `η` of the explicit Euler discretisation of eq. 14.
    pub eta: f64,
    /// Minibatch size `n` (source particles and target samples per flow).
    pub batch: usize,
    /// Sinkhorn solver settings for the W_ε-potentials.
    pub sinkhorn: SinkhornConfig,
}

impl Default for NsgfConfig {
    fn default() -> Self {
        Self {
            steps: 10,
            eta: 0.5,
            batch: 256,
            sinkhorn: SinkhornConfig {
                blur: 0.05,
                scaling: 0.8,
                ..SinkhornConfig::default()
            },
        }
    }
}

impl NsgfConfig {
    /// Checks `η > 0`, `T ≥ 1`, `n ≥ 1` and the Sinkhorn settings.
    pub fn validate(&self) -> Result<()> {
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return Err(NsgfError::Param(format!(
                "eta must be > 0, got {}",
                self.eta
            )));
        }
        if self.steps == 0 {
            return Err(NsgfError::Param(
                "the number of flow steps T must be at least 1".into(),
            ));
        }
        if self.batch == 0 {
            return Err(NsgfError::Param("the batch size must be at least 1".into()));
        }
        self.sinkhorn.validate()
    }

    /// Total flow time `ηT` (the scale between the paper's velocity `v` and the field
    /// `u = ηT·v` on `τ ∈ [0, 1]`, see [`crate::flows`]).
    pub fn horizon(&self) -> f64 {
        self.eta * self.steps as f64
    }
}

/// One step of a minibatch flow: the particles `x_k: (n, d)` and their velocity `v_k: (n, d)`.
#[derive(Clone, Debug)]
pub struct FlowStep<B: Backend> {
    pub x: Tensor<B, 2>,
    pub v: Tensor<B, 2>,
}

/// The minibatch Sinkhorn gradient flow (inner loop of Algorithm 1): for `k = 0..T`,
/// `v_k = ∇f_{μ_k,μ_k}(x_k) − ∇f_{μ_k,μ*}(x_k)` (eq. 13, closed form) and
/// `x_{k+1} = x_k + η v_k` (eq. 14). Returns the `T` steps and the final particles `x_T`.
pub fn minibatch_flow<B: Backend>(
    x0: Tensor<B, 2>,
    y: Tensor<B, 2>,
    cfg: &NsgfConfig,
) -> Result<(Vec<FlowStep<B>>, Tensor<B, 2>)> {
    let mut x = x0;
    let mut steps = Vec::with_capacity(cfg.steps);
    for k in 0..cfg.steps {
        let v = OtProblem::uniform(x.clone(), y.clone())
            .map_err(|e| NsgfError::Other(format!("flow step {k}: {e}")))?
            .solve(&cfg.sinkhorn)?
            .velocity();
        let next = x.clone() + v.clone().mul_scalar(cfg.eta);
        steps.push(FlowStep { x, v });
        x = next;
    }
    Ok((steps, x))
}

/// Pushes one minibatch flow into a trajectory pool (first half of Algorithm 1): the flow from
/// `(x0, y)` (each `(n, d)`), each step stored as `(x_k, τ_k = k/T, u_k = ηT·v_k)`. `flow` names
/// the flow in errors. The caller validates `cfg` once.
pub fn push_flow<B: Backend>(
    pool: &mut TrajectoryPool,
    cfg: &NsgfConfig,
    x0: Tensor<B, 2>,
    y: Tensor<B, 2>,
    flow: usize,
) -> Result<()> {
    let scale = cfg.horizon();
    let (steps, _) = minibatch_flow(x0, y, cfg)?;
    for (k, step) in steps.into_iter().enumerate() {
        let tau = k as f32 / cfg.steps as f32;
        let x = to_f32_vec(step.x)?;
        let u = to_f32_vec(step.v.mul_scalar(scale))?;
        if let Some(bad) = u.iter().position(|v| !v.is_finite()) {
            return Err(NsgfError::NonFinite(format!(
                "Sinkhorn velocity at flow step {k} of pool flow {flow} (element {bad})"
            )));
        }
        pool.push(&x, tau, &u)?;
    }
    Ok(())
}
