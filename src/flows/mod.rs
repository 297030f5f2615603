//! Flows: the NSGF minibatch Sinkhorn gradient flow and trajectory pool (Algorithm 1), ODE
//! samplers (Algorithm 2), and the flow-matching baselines.
//!
//! Time convention: every learned flow is a vector field `u(x, τ)` on `τ ∈ [0, 1]`,
//! `dx/dτ = u(x, τ)`. For NSGF trained with `T` steps of size `η`, the teacher's Euler steps
//! `x ← x + η v_k` are steps of `Δτ = 1/T` of the field `u = ηT·v` at `τ_k = k/T`, so sampling
//! with `K` uniform steps uses `Δτ = 1/K` (step size `ηT/K` in the paper's units) and `K = T`
//! reproduces Algorithm 2 exactly.

pub mod matching;
pub mod nsgf;
pub mod pool;
pub mod reflow;
pub mod samplers;

use burn::tensor::{backend::Backend, Tensor};

/// A time-dependent vector field `u(x, τ)`: `x: (n, d)` → `(n, d)`.
pub trait VectorField<B: Backend> {
    /// Evaluates the field at all points for one time `τ ∈ [0, 1]`.
    fn eval(&self, x: Tensor<B, 2>, tau: f64) -> Tensor<B, 2>;
}
