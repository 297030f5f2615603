//! Flows: the NSGF minibatch Sinkhorn gradient flow and trajectory pool (Algorithm 1), ODE
//! samplers (Algorithm 2), the flow-matching baselines, and the objectives of the neural
//! Wasserstein-gradient-flow baselines JKO-Flow and EPT ([`wgf`]) and of S-JKO ([`sjko`]).
//!
//! Time convention: every learned flow is a vector field `u(x, τ)` on `τ ∈ [0, 1]`,
//! `dx/dτ = u(x, τ)`. For NSGF trained with `T` steps of size `η`, the teacher's Euler steps
//! `x ← x + η v_k` are steps of `Δτ = 1/T` of the field `u = ηT·v` at `τ_k = k/T`, so sampling
//! with `K` uniform steps uses `Δτ = 1/K` (step size `ηT/K` in the paper's units) and `K = T`
//! reproduces Algorithm 2 exactly.

pub mod matching;
pub mod nsgf;
pub mod nsgfpp;
pub mod pool;
pub mod reflow;
pub mod samplers;
pub mod sjko;
pub mod wgf;

use burn::tensor::{backend::Backend, Tensor};

/// A time-dependent vector field `u(x, τ)`: `x: (n, d)` → `(n, d)`.
pub trait VectorField<B: Backend> {
    /// Evaluates the field with one time per row, `tau: (n, 1)` in [0, 1] (NSGF++'s straight
    /// flow starts every sample at its own predicted time).
    fn eval_rows(&self, x: Tensor<B, 2>, tau: Tensor<B, 2>) -> Tensor<B, 2>;

    /// Evaluates the field at all points for one time `τ ∈ [0, 1]`.
    fn eval(&self, x: Tensor<B, 2>, tau: f64) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let t = Tensor::full([n, 1], tau, (&x.device(), x.dtype()));
        self.eval_rows(x, t)
    }
}

/// The NSGF++ phase-transition time predictor `t_φ` (Algorithm 3): `x: (n, d)` → `(n, 1)` in
/// (0, 1), the time on the straight path from the source to the data at which `x` stands.
pub trait TimePredictor<B: Backend> {
    /// The predicted time of every row.
    fn predict(&self, x: Tensor<B, 2>) -> Tensor<B, 2>;
}
