//! ODE samplers for `dx/dτ = u(x, τ)`: tiny one-step functions with one signature, and a
//! driver over a uniform grid (paper Algorithm 2 with the explicit Euler scheme; Heun and RK4
//! for comparison); [`integrate_rows`] runs every row from its own start time (NSGF++).

use super::VectorField;
use crate::error::{NsgfError, Result};
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

/// One step from `τ` to `τ + h`; returns the new state.
pub type StepFn<B> = fn(&dyn VectorField<B>, Tensor<B, 2>, f64, f64) -> Tensor<B, 2>;

/// Explicit Euler: `x + h u(x, τ)` (1 evaluation).
pub fn euler_step<B: Backend>(
    u: &dyn VectorField<B>,
    x: Tensor<B, 2>,
    tau: f64,
    h: f64,
) -> Tensor<B, 2> {
    x.clone() + u.eval(x, tau).mul_scalar(h)
}

/// Heun (explicit trapezoid): 2 evaluations.
pub fn heun_step<B: Backend>(
    u: &dyn VectorField<B>,
    x: Tensor<B, 2>,
    tau: f64,
    h: f64,
) -> Tensor<B, 2> {
    let k1 = u.eval(x.clone(), tau);
    let k2 = u.eval(x.clone() + k1.clone().mul_scalar(h), tau + h);
    x + (k1 + k2).mul_scalar(h / 2.0)
}

/// Classical fourth-order Runge–Kutta: 4 evaluations.
pub fn rk4_step<B: Backend>(
    u: &dyn VectorField<B>,
    x: Tensor<B, 2>,
    tau: f64,
    h: f64,
) -> Tensor<B, 2> {
    let k1 = u.eval(x.clone(), tau);
    let k2 = u.eval(x.clone() + k1.clone().mul_scalar(h / 2.0), tau + h / 2.0);
    let k3 = u.eval(x.clone() + k2.clone().mul_scalar(h / 2.0), tau + h / 2.0);
    let k4 = u.eval(x.clone() + k3.clone().mul_scalar(h), tau + h);
    x + (k1 + k2.mul_scalar(2.0) + k3.mul_scalar(2.0) + k4).mul_scalar(h / 6.0)
}

/// The available solvers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    #[default]
    Euler,
    Heun,
    Rk4,
}

impl Solver {
    /// Function evaluations per step.
    pub fn nfe_per_step(self) -> usize {
        match self {
            Solver::Euler => 1,
            Solver::Heun => 2,
            Solver::Rk4 => 4,
        }
    }
    fn step_fn<B: Backend>(self) -> StepFn<B> {
        match self {
            Solver::Euler => euler_step::<B>,
            Solver::Heun => heun_step::<B>,
            Solver::Rk4 => rk4_step::<B>,
        }
    }
}

/// Integrates from `τ = t0` to `t1` in `steps` uniform steps; `on_step(k, x_k)` sees every state
/// (k = 0 is the start). Returns the final state and the number of function evaluations (NFE).
pub fn integrate<B: Backend>(
    u: &dyn VectorField<B>,
    x0: Tensor<B, 2>,
    t0: f64,
    t1: f64,
    steps: usize,
    solver: Solver,
    mut on_step: impl FnMut(usize, &Tensor<B, 2>),
) -> Result<(Tensor<B, 2>, usize)> {
    if steps == 0 {
        return Err(NsgfError::Param(
            "the number of sampling steps must be at least 1".into(),
        ));
    }
    let h = (t1 - t0) / steps as f64;
    let step = solver.step_fn::<B>();
    let mut x = x0;
    on_step(0, &x);
    for k in 0..steps {
        x = step(u, x, t0 + k as f64 * h, h);
        on_step(k + 1, &x);
    }
    Ok((x, steps * solver.nfe_per_step()))
}

/// One step of every row `i` from `τ_i` to `τ_i + h_i` (`tau`, `h`: `(n, 1)`), with the
/// solver's scheme.
fn step_rows<B: Backend>(
    u: &dyn VectorField<B>,
    x: Tensor<B, 2>,
    tau: Tensor<B, 2>,
    h: Tensor<B, 2>,
    solver: Solver,
) -> Tensor<B, 2> {
    let f = |x: Tensor<B, 2>, t: Tensor<B, 2>| u.eval_rows(x, t);
    match solver {
        Solver::Euler => x.clone() + f(x, tau) * h,
        Solver::Heun => {
            let k1 = f(x.clone(), tau.clone());
            let k2 = f(x.clone() + k1.clone() * h.clone(), tau + h.clone());
            x + (k1 + k2) * h.mul_scalar(0.5)
        }
        Solver::Rk4 => {
            let half = h.clone().mul_scalar(0.5);
            let tm = tau.clone() + half.clone();
            let k1 = f(x.clone(), tau.clone());
            let k2 = f(x.clone() + k1.clone() * half.clone(), tm.clone());
            let k3 = f(x.clone() + k2.clone() * half, tm);
            let k4 = f(x.clone() + k3.clone() * h.clone(), tau + h.clone());
            x + (k1 + k2.mul_scalar(2.0) + k3.mul_scalar(2.0) + k4) * h.div_scalar(6.0)
        }
    }
}

/// Integrates every row `i` from its own start time `t0_i` (`t0`: `(n, 1)`) to `t1` in `steps`
/// uniform steps of `(t1 − t0_i)/steps` (NSGF++'s straight flow, Algorithm 4); `on_step(k, x_k)`
/// sees every state (k = 0 is the start). Returns the final state and the NFE (evaluations on
/// the batch).
pub fn integrate_rows<B: Backend>(
    u: &dyn VectorField<B>,
    x0: Tensor<B, 2>,
    t0: Tensor<B, 2>,
    t1: f64,
    steps: usize,
    solver: Solver,
    mut on_step: impl FnMut(usize, &Tensor<B, 2>),
) -> Result<(Tensor<B, 2>, usize)> {
    if steps == 0 {
        return Err(NsgfError::Param(
            "the number of sampling steps must be at least 1".into(),
        ));
    }
    if t0.dims() != [x0.dims()[0], 1] {
        return Err(NsgfError::Shape(format!(
            "start times {:?} for {} rows",
            t0.dims(),
            x0.dims()[0]
        )));
    }
    let h = t0.clone().neg().add_scalar(t1).div_scalar(steps as f64);
    let mut x = x0;
    let mut tau = t0;
    on_step(0, &x);
    for k in 0..steps {
        x = step_rows(u, x, tau.clone(), h.clone(), solver);
        tau = tau + h.clone();
        on_step(k + 1, &x);
    }
    Ok((x, steps * solver.nfe_per_step()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use burn::tensor::{DType, TensorData};

    /// u(x, τ) = x: exact solution x0·e^{τ}.
    struct Linear;
    impl VectorField<Cpu> for Linear {
        fn eval_rows(&self, x: Tensor<Cpu, 2>, _tau: Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
            x
        }
    }

    fn run(solver: Solver, steps: usize) -> (f64, usize) {
        let x0 = Tensor::<Cpu, 2>::from_data(
            TensorData::new(vec![1.0f64], [1, 1]),
            (&Default::default(), DType::F64),
        );
        let (x, nfe) = integrate(&Linear, x0, 0.0, 1.0, steps, solver, |_, _| {}).unwrap();
        (crate::convert::to_f64_vec(x).unwrap()[0], nfe)
    }

    #[test]
    fn euler_step_is_x_plus_h_u() {
        let (x, nfe) = run(Solver::Euler, 1);
        assert_eq!(x, 2.0);
        assert_eq!(nfe, 1);
        let (x, _) = run(Solver::Euler, 4);
        assert!((x - 1.25f64.powi(4)).abs() < 1e-12);
    }

    #[test]
    fn orders_of_accuracy() {
        let e = std::f64::consts::E;
        let err = |s, n| (run(s, n).0 - e).abs();
        // Halving the step divides the error by ~2^order.
        for (solver, order) in [
            (Solver::Euler, 1.0),
            (Solver::Heun, 2.0),
            (Solver::Rk4, 4.0),
        ] {
            let ratio = err(solver, 8) / err(solver, 16);
            assert!(
                (ratio.log2() - order).abs() < 0.3,
                "{solver:?}: ratio {ratio}"
            );
        }
        assert_eq!(run(Solver::Rk4, 10).1, 40);
        assert_eq!(run(Solver::Heun, 10).1, 20);
    }

    #[test]
    fn zero_steps_is_an_error() {
        let x0 = Tensor::<Cpu, 2>::zeros([1, 1], &Default::default());
        assert!(integrate(&Linear, x0, 0.0, 1.0, 0, Solver::Euler, |_, _| {}).is_err());
    }
}
