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

use super::sinkhorn::{runs_ops_on_caller, OtProblem, SinkhornConfig, SinkhornSolution};
use super::softmin_cpu::{host_vec, HostCost, HostFloat, ONLINE_MAX_DIM};
use crate::error::Result;
use burn::tensor::{activation::softmax, backend::Backend, DType, Tensor, TensorData};

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
    ///
    /// On the CPU backend with f32 / f64 data of dimension `d ≤` [`ONLINE_MAX_DIM`] the two
    /// projections run fused on the host from the points (no `(n, m)` softmax matrix); otherwise
    /// with tensor ops on [`Self::c_xy`], [`Self::c_xx`].
    pub fn velocity(&self) -> Tensor<B, 2> {
        if runs_ops_on_caller::<B>() {
            let online = self.problem.x.dims()[1] <= ONLINE_MAX_DIM;
            match self.problem.x.dtype() {
                DType::F32 if online => return self.velocity_fused::<f32>(),
                DType::F64 if online => return self.velocity_fused::<f64>(),
                DType::F32 => return self.velocity_host_softmax::<f32>(),
                DType::F64 => return self.velocity_host_softmax::<f64>(),
                _ => {}
            }
        }
        let p = &self.problem;
        let d = &self.loop_duals;
        let t_xy = barycentric_projection(self.eps, &self.c_xy(), &p.b_log, &d.g_xy, &p.y);
        match (self.c_xx(), &d.f_xx) {
            (Some(c_xx), Some(f_xx)) => {
                t_xy - barycentric_projection(self.eps, &c_xx, &p.a_log, f_xx, &p.x)
            }
            _ => t_xy - p.x.clone(),
        }
    }
}

impl<B: Backend> SinkhornSolution<B> {
    /// [`Self::velocity`] with the softmax matrices built by the fused host kernel
    /// ([`HostCost::softmax`]: one pass instead of burn's five) and the products by burn.
    fn velocity_host_softmax<T: HostFloat>(&self) -> Tensor<B, 2> {
        let p = &self.problem;
        let d = &self.loop_duals;
        let plan = |c: Tensor<B, 2>, log_w: &Tensor<B, 1>, dual: &Tensor<B, 1>| {
            let [r, k] = c.dims();
            let dev = c.device();
            let h: Vec<T> = host_h(self.eps, log_w, dual);
            let cost = HostCost::matrix(host_vec(c.reshape([r * k])), r, k);
            let pm = cost
                .softmax(self.eps, &h)
                .expect("a matrix cost has a softmax");
            Tensor::<B, 2>::from_data(TensorData::new(pm, [r, k]), (&dev, T::dtype()))
        };
        let t_xy = plan(self.c_xy(), &p.b_log, &d.g_xy).matmul(p.y.clone());
        match (self.c_xx(), &d.f_xx) {
            (Some(c_xx), Some(f_xx)) => t_xy - plan(c_xx, &p.a_log, f_xx).matmul(p.x.clone()),
            _ => t_xy - p.x.clone(),
        }
    }

    /// [`Self::velocity`] with the fused host projection ([`HostCost::barycentric`]) in `T`.
    fn velocity_fused<T: HostFloat>(&self) -> Tensor<B, 2> {
        let p = &self.problem;
        let d = &self.loop_duals;
        let ([n, dim], [m, _]) = (p.x.dims(), p.y.dims());
        let x: Vec<T> = host_vec(p.x.clone().reshape([n * dim]));
        let y: Vec<T> = host_vec(p.y.clone().reshape([m * dim]));
        let h = |log_w: &Tensor<B, 1>, dual: &Tensor<B, 1>| host_h::<B, T>(self.eps, log_w, dual);
        let project = |rows: &[T], cols: &[T], h: Vec<T>| {
            HostCost::points(rows, cols, dim)
                .barycentric(self.eps, &h)
                .expect("a points cost projects")
        };
        let t_xy = project(&x, &y, h(&p.b_log, &d.g_xy));
        let other = match &d.f_xx {
            Some(f_xx) => project(&x, &x, h(&p.a_log, f_xx)),
            _ => x,
        };
        let v: Vec<T> = t_xy.iter().zip(&other).map(|(&a, &b)| a - b).collect();
        Tensor::from_data(TensorData::new(v, [n, dim]), (&p.x.device(), T::dtype()))
    }
}

/// `h = log w + dual/ε` on the host, as in [`barycentric_projection`].
fn host_h<B: Backend, T: HostFloat>(eps: f64, log_w: &Tensor<B, 1>, dual: &Tensor<B, 1>) -> Vec<T> {
    let (w, g): (Vec<T>, Vec<T>) = (host_vec(log_w.clone()), host_vec(dual.clone()));
    w.iter()
        .zip(&g)
        .map(|(&w, &g)| T::of(w.to_f64() + g.to_f64() / eps))
        .collect()
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
