//! NSGF++ (paper Sec. 4.4, appendix D, Algorithms 3–4): a few Sinkhorn-flow steps bring the
//! samples near the data manifold fast; a phase-transition time predictor `t_φ` says where on a
//! straight source-to-data path each sample then stands; a neural straight flow (NSF) `u_δ`
//! refines it from there to `τ = 1`.
//!
//! Training (Algorithm 3) needs nothing beyond the pieces that exist for NSGF and the baselines:
//! the NSGF velocity field is NSGF's (Algorithm 1, with `T ≤ 5`), and `t_φ` and the NSF both
//! regress on straight-path samples `X_t = t Y + (1 − t) X₀`, `t ~ U(0, 1)`, with independent
//! pairs — [`RectifiedFlow`](super::matching::RectifiedFlow)'s samples `(X_t, t, Y − X₀)`: the NSF
//! regresses `u_δ(X_t, t)` on `Y − X₀`, `t_φ(X_t)` on `t`.
//!
//! Inference (Algorithm 4) is [`nsgfpp_sample`].

use super::samplers::{integrate, integrate_adaptive_rows, integrate_rows, Solver, Tolerance};
use super::{TimePredictor, VectorField};
use crate::error::{NsgfError, Result};
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

/// How the NSF refines from the predicted times `t̂_i` to 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NsfSchedule {
    /// `K` steps for every sample, of size `(1 − t̂_i)/K` each.
    Steps(usize),
    /// Algorithm 4's step size `ω`: `K = ⌈(1 − min_i t̂_i)/ω⌉` steps, each sample's of size
    /// `(1 − t̂_i)/K ≤ ω`.
    Omega(f64),
    /// Adaptive Dormand–Prince 5(4) with `atol = rtol =` this tolerance
    /// ([`integrate_adaptive_rows`]); the solver setting is not used.
    Adaptive(f64),
}

impl NsfSchedule {
    /// The number of NSF steps for the smallest predicted time `t_min`.
    pub fn steps(self, t_min: f64) -> Result<usize> {
        match self {
            NsfSchedule::Steps(0) => {
                Err(NsgfError::Param("the NSF needs at least one step".into()))
            }
            NsfSchedule::Steps(k) => Ok(k),
            NsfSchedule::Omega(w) if !(w.is_finite() && w > 0.0) => Err(NsgfError::Param(format!(
                "the NSF step size omega must be > 0, got {w}"
            ))),
            NsfSchedule::Omega(w) => Ok((((1.0 - t_min) / w).ceil() as usize).max(1)),
            NsfSchedule::Adaptive(_) => Err(NsgfError::Param(
                "an adaptive NSF has no fixed number of steps".into(),
            )),
        }
    }

    /// Checks the schedule's parameter.
    pub fn validate(self) -> Result<()> {
        match self {
            NsfSchedule::Adaptive(tol) if !(tol.is_finite() && tol > 0.0) => Err(NsgfError::Param(
                format!("the adaptive NSF's tolerance must be > 0, got {tol}"),
            )),
            NsfSchedule::Adaptive(_) => Ok(()),
            other => other.steps(0.0).map(|_| ()),
        }
    }
}

/// Attempted steps after which the adaptive NSF gives up.
pub const MAX_ADAPTIVE_STEPS: usize = 10_000;

/// What [`nsgfpp_sample`] returns.
#[derive(Clone, Debug)]
pub struct NsgfppSamples<B: Backend> {
    /// Final samples `(n, d)`.
    pub x: Tensor<B, 2>,
    /// The samples after the NSGF phase `(n, d)` (the first row of the paper's Fig. 5 grids).
    pub after_nsgf: Tensor<B, 2>,
    /// Predicted phase-transition times `t̂ (n, 1)`, clamped to [0, 1].
    pub t_hat: Tensor<B, 2>,
    /// NSF steps taken.
    pub nsf_steps: usize,
    /// Network evaluations on the batch: `T` (NSGF) + 1 (`t_φ`) + NSF steps × evaluations per
    /// step. `t_φ` is a network call and is counted as one, though it is much cheaper than a
    /// UNet call.
    pub nfe: usize,
}

/// Algorithm 4: `T` Euler steps of the NSGF field (`Δτ = 1/T` of `u = ηT·v`, i.e. exactly
/// `x ← x + η v_θ(x, k)`), `t̂ = t_φ(x_T)`, then the NSF from each sample's own `t̂_i` to 1.
/// `on_state` sees the state after every network evaluation, the start included (with Euler in
/// the NSF phase: `NFE + 1` states; the `t_φ` call leaves the state unchanged).
#[allow(clippy::too_many_arguments)]
pub fn nsgfpp_sample<B: Backend>(
    nsgf: &dyn VectorField<B>,
    nsgf_steps: usize,
    t_phi: &dyn TimePredictor<B>,
    nsf: &dyn VectorField<B>,
    schedule: NsfSchedule,
    solver: Solver,
    x0: Tensor<B, 2>,
    mut on_state: impl FnMut(&Tensor<B, 2>),
) -> Result<NsgfppSamples<B>> {
    let (after_nsgf, nfe_nsgf) =
        integrate(nsgf, x0, 0.0, 1.0, nsgf_steps, Solver::Euler, |_, x| {
            on_state(x)
        })?;
    on_state(&after_nsgf);
    let t_hat = t_phi.predict(after_nsgf.clone()).clamp(0.0, 1.0);
    let t_min = crate::convert::to_f64_vec(t_hat.clone().min())?[0];
    if !t_min.is_finite() {
        return Err(NsgfError::NonFinite(
            "the time predictor returned NaN".into(),
        ));
    }
    let (x, k, nfe_nsf) = match schedule {
        NsfSchedule::Adaptive(tol) => {
            let out = integrate_adaptive_rows(
                nsf,
                after_nsgf.clone(),
                t_hat.clone(),
                1.0,
                Tolerance::both(tol),
                MAX_ADAPTIVE_STEPS,
            )?;
            on_state(&out.x);
            (out.x, out.steps, out.nfe)
        }
        _ => {
            let k = schedule.steps(t_min)?;
            let (x, nfe) = integrate_rows(
                nsf,
                after_nsgf.clone(),
                t_hat.clone(),
                1.0,
                k,
                solver,
                |j, x| {
                    if j > 0 {
                        on_state(x)
                    }
                },
            )?;
            (x, k, nfe)
        }
    };
    Ok(NsgfppSamples {
        x,
        after_nsgf,
        t_hat,
        nsf_steps: k,
        nfe: nfe_nsgf + 1 + nfe_nsf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::convert::to_f64_vec;
    use burn::tensor::{DType, TensorData};
    use rand::{RngExt, SeedableRng};
    use rand_distr::StandardNormal;

    /// Source N(0, 1), target N(M, S²) in 1-D, independent pairs: the straight-path marginal at
    /// `t` is N(t M, (1 − t)² + t² S²) and the exact straight-flow field is
    /// `E[Y − X₀ | X_t = x] = M + (t S² − (1 − t)) / ((1 − t)² + t² S²) · (x − t M)`.
    const M: f64 = 3.0;
    const S: f64 = 0.5;

    struct ExactNsf;
    impl VectorField<Cpu> for ExactNsf {
        fn eval_rows(&self, x: Tensor<Cpu, 2>, tau: Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
            let one_m = tau.clone().neg().add_scalar(1.0);
            let var = one_m.clone().powi_scalar(2) + tau.clone().powi_scalar(2).mul_scalar(S * S);
            let cov = tau.clone().mul_scalar(S * S) - one_m;
            (x - tau.mul_scalar(M)) * cov / var + M
        }
    }

    /// The NSGF phase of the test: no motion.
    struct Still;
    impl VectorField<Cpu> for Still {
        fn eval_rows(&self, x: Tensor<Cpu, 2>, _tau: Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
            x.zeros_like()
        }
    }

    /// An oracle `t_φ`: the known times of the rows.
    struct Known(Tensor<Cpu, 2>);
    impl TimePredictor<Cpu> for Known {
        fn predict(&self, _x: Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
            self.0.clone()
        }
    }

    fn col(v: Vec<f64>) -> Tensor<Cpu, 2> {
        let n = v.len();
        Tensor::from_data(
            TensorData::new(v, [n, 1]),
            (&Default::default(), DType::F64),
        )
    }

    fn mean_var(v: &[f64]) -> (f64, f64) {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (
            m,
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64,
        )
    }

    /// Samples placed on the straight path at known times t0 ∈ {0, 0.3, 0.7} reach N(M, S²) from
    /// each starting time (per-row times through the NSF), with the exact NFE.
    #[test]
    fn straight_flow_from_per_sample_times_reaches_the_target() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let starts = [0.0, 0.3, 0.7];
        let per = 6000;
        let (mut x, mut t) = (Vec::new(), Vec::new());
        for &t0 in &starts {
            for _ in 0..per {
                let a: f64 = rng.sample(StandardNormal);
                let b: f64 = rng.sample(StandardNormal);
                x.push((1.0 - t0) * a + t0 * (M + S * b));
                t.push(t0);
            }
        }
        let run = |schedule| {
            nsgfpp_sample(
                &Still,
                3,
                &Known(col(t.clone())),
                &ExactNsf,
                schedule,
                Solver::Rk4,
                col(x.clone()),
                |_| {},
            )
            .unwrap()
        };
        let out = run(NsfSchedule::Steps(40));
        assert_eq!(out.nfe, 3 + 1 + 40 * 4);
        assert_eq!(out.nsf_steps, 40);
        let y = to_f64_vec(out.x).unwrap();
        for (i, &t0) in starts.iter().enumerate() {
            let (m, v) = mean_var(&y[i * per..(i + 1) * per]);
            assert!((m - M).abs() < 0.03, "from t0 = {t0}: mean {m}");
            assert!(
                (v.sqrt() - S).abs() < 0.02,
                "from t0 = {t0}: std {}",
                v.sqrt()
            );
        }
        // The adaptive NSF lands on the same points as 40 RK4 steps, with the NFE it spent.
        let adaptive = run(NsfSchedule::Adaptive(1e-6));
        let z = to_f64_vec(adaptive.x).unwrap();
        let worst = y
            .iter()
            .zip(&z)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-4, "adaptive vs RK4: {worst}");
        // T + t_φ + 2 (first evaluation, step selection) + 6 per attempted step (≥ accepted).
        let attempts = (adaptive.nfe - 3 - 1 - 2) / 6;
        assert_eq!(adaptive.nfe, 3 + 1 + 2 + 6 * attempts);
        assert!(attempts >= adaptive.nsf_steps && adaptive.nsf_steps > 1);
        assert!(NsfSchedule::Adaptive(0.0).validate().is_err());
    }

    #[test]
    fn omega_schedule_counts_steps_from_the_smallest_time() {
        assert_eq!(NsfSchedule::Omega(0.1).steps(0.35).unwrap(), 7);
        assert_eq!(NsfSchedule::Omega(0.1).steps(1.0).unwrap(), 1);
        assert!(NsfSchedule::Omega(0.0).steps(0.5).is_err());
        assert!(NsfSchedule::Steps(0).steps(0.5).is_err());
        let x = col(vec![0.0, 1.0]);
        let mut states = 0;
        let out = nsgfpp_sample(
            &Still,
            5,
            &Known(col(vec![0.5, 0.75])),
            &ExactNsf,
            NsfSchedule::Omega(0.1),
            Solver::Euler,
            x,
            |_| states += 1,
        )
        .unwrap();
        assert_eq!((out.nsf_steps, out.nfe), (5, 5 + 1 + 5));
        assert_eq!(states, out.nfe + 1);
    }
}
