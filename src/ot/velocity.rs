//! The Sinkhorn Wasserstein-gradient-flow velocity (paper eq. 13) in closed form.
//!
//! For the current particles `x = (x_i)` with weights `a` and the target `y` with weights `b`,
//! NSGF moves every particle along
//!
//! ```text
//! v(x_i) = ∇f_xx(x_i) − ∇f_xy(x_i)                                       (paper eq. 13)
//!        = T_xy(x_i) − T_xx(x_i),
//! T_xy(x_i) = Σ_j P^xy_ij y_j,   P^xy_ij = softmax_j( log b_j + (g_xy,j − C(x_i, y_j)) / ε ),
//! T_xx(x_i) = Σ_j P^xx_ij x_j,   P^xx_ij = softmax_j( log a_j + (f_xx,j − C(x_i, x_j)) / ε ),
//! ```
//!
//! because `∇f(x) = x − T(x)` for an entropic potential with cost `|x − y|²/2` (the entropic
//! barycentric projection `T`). No autograd is involved. Without debiasing,
//! `v(x_i) = T_xy(x_i) − x_i`.
//!
//! Relation to the divergence: with the duals taken before GeomLoss' final extrapolation step
//! (those are the values its autograd sees), `v(x_i) = −(1/a_i) ∂S_ε/∂x_i`, i.e. `v = −n ∇_x S_ε`
//! for uniform weights; this is tested by finite differences.

use super::sinkhorn::{OtProblem, SinkhornConfig, SinkhornSolution};
use crate::error::Result;
use burn::tensor::{activation::softmax, backend::Backend, Tensor};

/// Entropic barycentric projection `T(x_i) = Σ_j P_ij z_j` with
/// `P_ij = softmax_j(log w_j + (h_j − C_ij)/ε)`; `cost: (n, m)`, `z: (m, d)` → `(n, d)`.
pub fn barycentric_projection<B: Backend>(
    eps: f64,
    cost: &Tensor<B, 2>,
    log_w: &Tensor<B, 1>,
    dual: &Tensor<B, 1>,
    z: &Tensor<B, 2>,
) -> Tensor<B, 2> {
    let h = log_w.clone() + dual.clone().div_scalar(eps);
    // h − C/ε as C/(−ε) + h: same values, in-place row broadcast (see `Tensorized::softmin`).
    let logits = cost.clone().div_scalar(-eps) + h.unsqueeze_dim::<2>(0);
    softmax(logits, 1).matmul(z.clone())
}

impl<B: Backend> SinkhornSolution<B> {
    /// The NSGF velocity `v: (n, d)` at the source particles (see the module docs).
    pub fn velocity(&self) -> Tensor<B, 2> {
        let p = &self.problem;
        let d = &self.loop_duals;
        let t_xy = barycentric_projection(self.eps, &self.c_xy, &p.b_log, &d.g_xy, &p.y);
        match (&self.c_xx, &d.f_xx) {
            (Some(c_xx), Some(f_xx)) => {
                t_xy - barycentric_projection(self.eps, c_xx, &p.a_log, f_xx, &p.x)
            }
            _ => t_xy - p.x.clone(),
        }
    }
}

/// Convenience: the NSGF velocity of the minibatch flow from `x: (n, d)` towards `y: (m, d)`
/// (uniform weights).
pub fn sinkhorn_velocity<B: Backend>(
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    cfg: &SinkhornConfig,
) -> Result<Tensor<B, 2>> {
    Ok(OtProblem::uniform(x, y)?.solve(cfg)?.velocity())
}
