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

/// Dormand–Prince 5(4) tableau: nodes `c`, stage weights `a` (row `i` for stage `i + 2`), the
/// 5th-order weights `b` (= the last row of `a`: first same as last) and `b − b*` (the
/// difference to the embedded 4th-order solution, the error estimate).
const DP_C: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const DP_A: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
const DP_E: [f64; 7] = [
    35.0 / 384.0 - 5179.0 / 57600.0,
    0.0,
    500.0 / 1113.0 - 7571.0 / 16695.0,
    125.0 / 192.0 - 393.0 / 640.0,
    -2187.0 / 6784.0 + 92097.0 / 339200.0,
    11.0 / 84.0 - 187.0 / 2100.0,
    -1.0 / 40.0,
];

/// Tolerances of [`integrate_adaptive_rows`] (torchdiffeq's `atol`, `rtol`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

impl Tolerance {
    /// `atol = rtol = tol` (torchcfm's CIFAR-10 evaluation: 1e-4... 1e-5).
    pub fn both(tol: f64) -> Self {
        Self {
            atol: tol,
            rtol: tol,
        }
    }
}

/// What [`integrate_adaptive_rows`] returns.
#[derive(Clone, Debug)]
pub struct AdaptiveOutcome<B: Backend> {
    /// The state at `t1`.
    pub x: Tensor<B, 2>,
    /// Network evaluations on the batch (every stage of every attempted step, the initial step
    /// selection included).
    pub nfe: usize,
    /// Accepted steps.
    pub steps: usize,
    /// Rejected steps.
    pub rejected: usize,
}

/// Adaptive Dormand–Prince 5(4) (torchdiffeq's `dopri5`) for every row `i` from its own start
/// time `t0_i` (`(n, 1)`) to `t1`, on the batch at once: with `s ∈ [0, 1]` and
/// `τ_i(s) = t0_i + s (t1 − t0_i)`, it integrates `dx_i/ds = (t1 − t0_i) u(x_i, τ_i(s))`, which
/// is the ODE `dx/dτ = u` of every row. Steps are accepted when the RMS over all elements of
/// `err / (atol + rtol · max(|x|, |x_new|))` is ≤ 1, and resized by
/// `0.9 · err^(−1/5)` within `[0.2, 10]`; the first step follows Hairer–Wanner's selection
/// (one extra evaluation). At most `max_steps` attempts.
pub fn integrate_adaptive_rows<B: Backend>(
    u: &dyn VectorField<B>,
    x0: Tensor<B, 2>,
    t0: Tensor<B, 2>,
    t1: f64,
    tol: Tolerance,
    max_steps: usize,
) -> Result<AdaptiveOutcome<B>> {
    if !(tol.atol > 0.0 && tol.rtol >= 0.0 && tol.atol.is_finite() && tol.rtol.is_finite()) {
        return Err(NsgfError::Param(format!(
            "adaptive solver tolerances must be atol > 0, rtol >= 0 (got {}, {})",
            tol.atol, tol.rtol
        )));
    }
    // A tolerance below the unit roundoff of the states' dtype cannot be met (and an atol
    // that underflows in it made the error estimate 0/0 = NaN).
    let unit = crate::convert::unit_roundoff(x0.dtype());
    if tol.atol < unit {
        return Err(NsgfError::Param(format!(
            "adaptive solver: tolerance {:e} is below what {:?} states can resolve (unit \
             roundoff {unit:.2e}): use a tolerance of at least {unit:.0e}",
            tol.atol,
            x0.dtype()
        )));
    }
    if t0.dims() != [x0.dims()[0], 1] {
        return Err(NsgfError::Shape(format!(
            "start times {:?} for {} rows",
            t0.dims(),
            x0.dims()[0]
        )));
    }
    let span = t0.clone().neg().add_scalar(t1);
    let mut nfe = 0;
    let mut f = |x: Tensor<B, 2>, s: f64| {
        nfe += 1;
        u.eval_rows(x, t0.clone() + span.clone().mul_scalar(s)) * span.clone()
    };
    let scalar = |t: Tensor<B, 1>| -> Result<f64> { Ok(crate::convert::to_f64_vec(t)?[0]) };
    let rms = |t: Tensor<B, 2>| -> Result<f64> { scalar(t.powi_scalar(2).mean()).map(f64::sqrt) };
    let scale = |a: &Tensor<B, 2>, b: &Tensor<B, 2>| {
        a.clone()
            .abs()
            .max_pair(b.clone().abs())
            .mul_scalar(tol.rtol)
            .add_scalar(tol.atol)
    };

    // Initial step (Hairer, Nørsett & Wanner, II.4).
    let mut x = x0;
    let mut k1 = f(x.clone(), 0.0);
    let sc = scale(&x, &x);
    let d0 = rms(x.clone() / sc.clone())?;
    let d1 = rms(k1.clone() / sc.clone())?;
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let k = f(x.clone() + k1.clone().mul_scalar(h0), h0);
    let d2 = rms((k - k1.clone()) / sc)? / h0;
    let h1 = if d1.max(d2) <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / 5.0)
    };
    let mut h = (100.0 * h0).min(h1).min(1.0);

    let (mut s, mut steps, mut rejected) = (0.0f64, 0, 0);
    while s < 1.0 {
        if steps + rejected >= max_steps {
            return Err(NsgfError::Other(format!(
                "adaptive solver: no convergence in {max_steps} steps (at s = {s:.4}, h = {h:.2e})"
            )));
        }
        h = h.min(1.0 - s);
        let mut ks = vec![k1.clone()];
        for (i, (c, a)) in DP_C.iter().zip(DP_A).enumerate() {
            let mut y = x.clone();
            for (kj, &aj) in ks.iter().zip(a.iter()) {
                if aj != 0.0 {
                    y = y + kj.clone().mul_scalar(h * aj);
                }
            }
            if i == 5 {
                // The 5th-order solution; k7 = f(x_new) is the next step's k1 (FSAL).
                let k7 = f(y.clone(), s + h);
                ks.push(k7);
                let mut err = ks[0].clone().mul_scalar(h * DP_E[0]);
                for (kj, &e) in ks.iter().zip(DP_E.iter()).skip(1) {
                    if e != 0.0 {
                        err = err + kj.clone().mul_scalar(h * e);
                    }
                }
                let norm = rms(err / scale(&x, &y))?;
                if !norm.is_finite() {
                    return Err(NsgfError::NonFinite(format!(
                        "adaptive solver: the error estimate is {norm} at s = {s:.4}"
                    )));
                }
                let factor = if norm == 0.0 {
                    10.0
                } else {
                    (0.9 * norm.powf(-0.2)).clamp(0.2, 10.0)
                };
                if norm <= 1.0 {
                    s = if 1.0 - (s + h) < 1e-12 { 1.0 } else { s + h };
                    x = y;
                    k1 = ks.pop().expect("k7");
                    steps += 1;
                } else {
                    rejected += 1;
                }
                h *= factor;
                break;
            }
            ks.push(f(y, s + c * h));
        }
    }
    Ok(AdaptiveOutcome {
        x,
        nfe,
        steps,
        rejected,
    })
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

    /// Counts its evaluations.
    struct Counted(std::cell::Cell<usize>);
    impl VectorField<Cpu> for Counted {
        fn eval_rows(&self, x: Tensor<Cpu, 2>, _tau: Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
            self.0.set(self.0.get() + 1);
            x
        }
    }

    /// u(x, τ) = cos(2πτ): exact x(1) − x(t0) = −sin(2π t0)/(2π).
    struct Wave;
    impl VectorField<Cpu> for Wave {
        fn eval_rows(&self, x: Tensor<Cpu, 2>, tau: Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
            let n = x.dims()[1];
            tau.mul_scalar(2.0 * std::f64::consts::PI)
                .cos()
                .repeat_dim(1, n)
        }
    }

    #[test]
    fn adaptive_dopri5_meets_its_tolerance_with_per_row_start_times() {
        let dev = Default::default();
        let f64s = |v: Vec<f64>, n: usize| {
            Tensor::<Cpu, 2>::from_data(TensorData::new(v, [n, 1]), (&dev, DType::F64))
        };
        let u = Counted(std::cell::Cell::new(0));
        let t0 = vec![0.0, 0.5, 0.9];
        for tol in [1e-4, 1e-8] {
            u.0.set(0);
            let out = integrate_adaptive_rows(
                &u,
                f64s(vec![1.0, 1.0, 2.0], 3),
                f64s(t0.clone(), 3),
                1.0,
                Tolerance::both(tol),
                1000,
            )
            .unwrap();
            let x = crate::convert::to_f64_vec(out.x.clone()).unwrap();
            for (i, (&xi, &ti)) in x.iter().zip(&t0).enumerate() {
                let want = [1.0, 1.0, 2.0][i] * (1.0 - ti).exp();
                assert!(
                    (xi - want).abs() < 50.0 * tol * want,
                    "tol {tol} row {i}: {xi} vs {want}"
                );
            }
            // NFE: the first evaluation, one for the step selection, six per attempt.
            assert_eq!(out.nfe, u.0.get());
            assert_eq!(out.nfe, 2 + 6 * (out.steps + out.rejected));
            if tol == 1e-8 {
                assert!(out.steps > 5, "{out:?}");
            }
        }
        // A time-dependent field.
        let out = integrate_adaptive_rows(
            &Wave,
            f64s(vec![0.0, 0.0], 2),
            f64s(vec![0.0, 0.3], 2),
            1.0,
            Tolerance::both(1e-7),
            1000,
        )
        .unwrap();
        let x = crate::convert::to_f64_vec(out.x).unwrap();
        let tp = 2.0 * std::f64::consts::PI;
        assert!(x[0].abs() < 1e-6, "{x:?}");
        assert!((x[1] + (tp * 0.3).sin() / tp).abs() < 1e-6, "{x:?}");
        // Bad tolerances and a step budget too small are errors.
        let z = || f64s(vec![1.0], 1);
        assert!(integrate_adaptive_rows(&Wave, z(), z(), 1.0, Tolerance::both(0.0), 10).is_err());
        assert!(integrate_adaptive_rows(
            &u,
            z(),
            f64s(vec![0.0], 1),
            1.0,
            Tolerance::both(1e-12),
            2
        )
        .is_err());
        // A tolerance under the states' unit roundoff (f32: 1e-300 underflowed to an atol of
        // 0 and a NaN error estimate) is refused up front; f64 states take it down to 1e-16.
        let f32s = |v: Vec<f64>| {
            Tensor::<Cpu, 2>::from_data(TensorData::new(v, [1, 1]), (&dev, DType::F32))
        };
        for tol in [1e-300, 1e-9] {
            let e = integrate_adaptive_rows(
                &Wave,
                f32s(vec![0.0]),
                f32s(vec![0.0]),
                1.0,
                Tolerance::both(tol),
                1000,
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("below what F32") && e.contains("at least 6e-8"),
                "{e}"
            );
        }
        let e = integrate_adaptive_rows(&Wave, z(), z(), 1.0, Tolerance::both(1e-17), 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("below what F64"), "{e}");
    }
}
