//! The flow-matching baselines of the paper's Table 1, one small type per matcher (as in
//! torchcfm). A matcher turns a minibatch of source points `x₀` and target points `x₁` (paired
//! row by row) into regression samples `(x_τ, τ, u_τ)` for the velocity network:
//!
//! ```text
//! τ ~ U[0, 1],   x_τ = μ_τ(x₀, x₁) + σ_τ ε,   ε ~ N(0, I),   loss = ‖u_θ(x_τ, τ) − u_τ‖²
//! ```
//!
//! | type | paper row | μ_τ | σ_τ | target u_τ |
//! |---|---|---|---|---|
//! | [`TargetFm`] | FM (Lipman et al. 2023) | τ x₁ (x₀ unused: the source must be N(0, I)) | 1 − (1 − σ)τ | x₁ − (1 − σ) ε |
//! | [`IndependentCfm`] | I-CFM (Tong et al. 2023) | τ x₁ + (1 − τ) x₀ | σ | x₁ − x₀ |
//! | [`ExactOtCfm`] | OT-CFM | as I-CFM after re-pairing x₁ by the exact minibatch OT assignment | σ | x₁ − x₀ |
//! | [`VpInterpolant`] | SI (Albergo & Vanden-Eijnden 2023, trigonometric) | cos(πτ/2) x₀ + sin(πτ/2) x₁ | σ | (π/2)(cos(πτ/2) x₁ − sin(πτ/2) x₀) |
//! | [`RectifiedFlow`] | k-RF (Liu et al. 2023) | τ x₁ + (1 − τ) x₀ | 0 | x₁ − x₀ |
//!
//! For FM, `x_τ = τ x₁ + σ_τ ε` and torchcfm's target `(x₁ − (1 − σ) x_τ)/σ_τ` simplify to
//! `x₁ − (1 − σ) ε`. k-RF differs from 1-RF only in where its pairs come from: `(k−1)`-RF's
//! ODE maps `x₀ ↦ x₁` (see [`crate::flows::reflow`]), which the caller supplies as the pairs.
//!
//! Shapes: `x0`, `x1` are row-major `(n, d)` `f32`; the result is a [`PoolBatch`] with
//! `x: (n, d)`, `tau: (n, 1)`, `u: (n, d)`.

use super::pool::PoolBatch;
use crate::error::{NsgfError, Result};
use crate::ot::emd::linear_sum_assignment;
use rand::rngs::StdRng;
use rand::RngExt;
use rand_distr::StandardNormal;
use std::f64::consts::FRAC_PI_2;

/// A conditional-flow-matching objective: how `(τ, x_τ, u_τ)` are drawn from paired samples.
pub trait Matcher: Send + Sync {
    /// The name used in tables and figures ("I-CFM", "OT-CFM", ...).
    fn name(&self) -> String;
    /// Regression samples for the pairs `(x0[i], x1[i])`, see the module docs.
    fn sample(&self, x0: &[f32], x1: &[f32], d: usize, rng: &mut StdRng) -> Result<PoolBatch>;
    /// True when the objective assumes an N(0, I) source (FM): training on another source is
    /// still possible (the paper did so for 8gaussians→moons) but deserves a warning.
    fn needs_gaussian_source(&self) -> bool {
        false
    }
}

/// A matcher named in a config (`matcher = "otcfm"`), with its `sigma`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatcherKind {
    /// [`TargetFm`].
    Fm,
    /// [`IndependentCfm`].
    Icfm,
    /// [`ExactOtCfm`].
    Otcfm,
    /// [`VpInterpolant`].
    Si,
    /// [`RectifiedFlow`] with `k = 1` (= I-CFM with `σ = 0`).
    Rf,
}

impl MatcherKind {
    /// The matcher with the given `sigma` (unused by 1-RF).
    pub fn build(self, sigma: f64) -> Box<dyn Matcher> {
        match self {
            Self::Fm => Box::new(TargetFm { sigma }),
            Self::Icfm => Box::new(IndependentCfm { sigma }),
            Self::Otcfm => Box::new(ExactOtCfm { sigma }),
            Self::Si => Box::new(VpInterpolant { sigma }),
            Self::Rf => Box::new(RectifiedFlow::new(1)),
        }
    }
}

/// Shared driver: checks shapes and finiteness, draws `τ = τ_min + (1 − τ_min) s`, `s ~ U[0,1]`
/// per row (`τ ~ U[τ_min, 1]`; every matcher but a windowed [`RectifiedFlow`] has `τ_min = 0`)
/// and `ε ~ N(0, I)` per coordinate, and applies `path(τ, x₀, x₁, ε) → (x_τ, u_τ)`
/// coordinate-wise.
fn sample_rows(
    x0: &[f32],
    x1: &[f32],
    d: usize,
    rng: &mut StdRng,
    noise: bool,
    t_min: f64,
    path: &dyn Fn(f64, f64, f64, f64) -> (f64, f64),
) -> Result<PoolBatch> {
    if d == 0 || x0.len() != x1.len() || !x0.len().is_multiple_of(d) || x0.is_empty() {
        return Err(NsgfError::Shape(format!(
            "flow matching needs paired (n, d) batches with n, d ≥ 1: got {} and {} values, d = {d}",
            x0.len(),
            x1.len()
        )));
    }
    if let Some(i) = x0.iter().chain(x1).position(|v| !v.is_finite()) {
        return Err(NsgfError::NonFinite(format!(
            "flow-matching batch holds a NaN or infinity (value {i})"
        )));
    }
    if !(t_min.is_finite() && (0.0..1.0).contains(&t_min)) {
        return Err(NsgfError::Param(format!(
            "flow matching: the times' lower end must lie in [0, 1), got {t_min}"
        )));
    }
    let n = x0.len() / d;
    let mut out = PoolBatch {
        x: Vec::with_capacity(n * d),
        tau: Vec::with_capacity(n),
        u: Vec::with_capacity(n * d),
    };
    for (a, b) in x0.chunks_exact(d).zip(x1.chunks_exact(d)) {
        let s: f64 = rng.random();
        let t = if t_min > 0.0 {
            t_min + (1.0 - t_min) * s
        } else {
            s
        };
        for (&a, &b) in a.iter().zip(b) {
            let eps: f64 = if noise {
                rng.sample(StandardNormal)
            } else {
                0.0
            };
            let (xt, ut) = path(t, a as f64, b as f64, eps);
            out.x.push(xt as f32);
            out.u.push(ut as f32);
        }
        out.tau.push(t as f32);
    }
    Ok(out)
}

fn check_sigma(sigma: f64, what: &str) -> Result<()> {
    if sigma.is_finite() && sigma >= 0.0 {
        Ok(())
    } else {
        Err(NsgfError::Param(format!(
            "{what}: sigma must be finite and ≥ 0, got {sigma}"
        )))
    }
}

/// FM of Lipman et al. (torchcfm `TargetConditionalFlowMatcher`): Gaussian paths from N(0, I)
/// to a narrow Gaussian of std `sigma` around each target point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetFm {
    /// `σ_min`, the std of the conditional path at τ = 1.
    pub sigma: f64,
}

impl TargetFm {
    /// `(x_τ, u_τ)` for one coordinate (x₀ is ignored: the noise ε plays the source's role).
    pub fn path(&self, t: f64, _x0: f64, x1: f64, eps: f64) -> (f64, f64) {
        let s = 1.0 - (1.0 - self.sigma) * t;
        (t * x1 + s * eps, x1 - (1.0 - self.sigma) * eps)
    }
}

impl Matcher for TargetFm {
    fn name(&self) -> String {
        "FM".into()
    }
    fn sample(&self, x0: &[f32], x1: &[f32], d: usize, rng: &mut StdRng) -> Result<PoolBatch> {
        check_sigma(self.sigma, "FM")?;
        sample_rows(x0, x1, d, rng, true, 0.0, &|t, a, b, e| {
            self.path(t, a, b, e)
        })
    }
    fn needs_gaussian_source(&self) -> bool {
        true
    }
}

/// I-CFM (torchcfm `ConditionalFlowMatcher`): straight paths between independent pairs,
/// widened by a constant `sigma`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IndependentCfm {
    pub sigma: f64,
}

impl IndependentCfm {
    /// `(x_τ, u_τ)` for one coordinate.
    pub fn path(&self, t: f64, x0: f64, x1: f64, eps: f64) -> (f64, f64) {
        (t * x1 + (1.0 - t) * x0 + self.sigma * eps, x1 - x0)
    }
}

impl Matcher for IndependentCfm {
    fn name(&self) -> String {
        "I-CFM".into()
    }
    fn sample(&self, x0: &[f32], x1: &[f32], d: usize, rng: &mut StdRng) -> Result<PoolBatch> {
        check_sigma(self.sigma, "I-CFM")?;
        sample_rows(x0, x1, d, rng, self.sigma > 0.0, 0.0, &|t, a, b, e| {
            self.path(t, a, b, e)
        })
    }
}

/// OT-CFM (torchcfm `ExactOptimalTransportConditionalFlowMatcher`): I-CFM on pairs re-drawn from
/// the exact OT plan of the minibatch (squared Euclidean cost, uniform weights). With equal
/// minibatch sizes that plan is a permutation, so the pairs are taken from the assignment
/// itself (torchcfm samples the plan with replacement, which duplicates some points and drops
/// others).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExactOtCfm {
    pub sigma: f64,
}

/// The exact minibatch OT pairing: `perm[i]` is the row of `x1` matched to row `i` of `x0`
/// (minimising `Σ_i |x0_i − x1_perm[i]|²`).
pub fn ot_pairing(x0: &[f32], x1: &[f32], d: usize) -> Result<Vec<usize>> {
    if d == 0 || x0.len() != x1.len() || !x0.len().is_multiple_of(d) {
        return Err(NsgfError::Shape(format!(
            "OT pairing needs two (n, d) batches of equal size: got {} and {} values, d = {d}",
            x0.len(),
            x1.len()
        )));
    }
    let n = x0.len() / d;
    let mut cost = Vec::with_capacity(n * n);
    for a in x0.chunks_exact(d) {
        for b in x1.chunks_exact(d) {
            cost.push(
                a.iter()
                    .zip(b)
                    .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
                    .sum(),
            );
        }
    }
    Ok(linear_sum_assignment(&cost, n)?.0)
}

impl Matcher for ExactOtCfm {
    fn name(&self) -> String {
        "OT-CFM".into()
    }
    fn sample(&self, x0: &[f32], x1: &[f32], d: usize, rng: &mut StdRng) -> Result<PoolBatch> {
        check_sigma(self.sigma, "OT-CFM")?;
        let perm = ot_pairing(x0, x1, d)?;
        let paired: Vec<f32> = perm
            .iter()
            .flat_map(|&j| x1[j * d..(j + 1) * d].iter().copied())
            .collect();
        IndependentCfm { sigma: self.sigma }.sample(x0, &paired, d, rng)
    }
}

/// SI: the variance-preserving trigonometric stochastic interpolant (torchcfm
/// `VariancePreservingConditionalFlowMatcher`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VpInterpolant {
    pub sigma: f64,
}

impl VpInterpolant {
    /// `(x_τ, u_τ)` for one coordinate.
    pub fn path(&self, t: f64, x0: f64, x1: f64, eps: f64) -> (f64, f64) {
        let (s, c) = (FRAC_PI_2 * t).sin_cos();
        (
            c * x0 + s * x1 + self.sigma * eps,
            FRAC_PI_2 * (c * x1 - s * x0),
        )
    }
}

impl Matcher for VpInterpolant {
    fn name(&self) -> String {
        "SI".into()
    }
    fn sample(&self, x0: &[f32], x1: &[f32], d: usize, rng: &mut StdRng) -> Result<PoolBatch> {
        check_sigma(self.sigma, "SI")?;
        sample_rows(x0, x1, d, rng, self.sigma > 0.0, 0.0, &|t, a, b, e| {
            self.path(t, a, b, e)
        })
    }
}

/// k-RF (rectified flow, Liu et al. 2023): deterministic straight paths `u = x₁ − x₀`. The
/// `k`-th rectification trains on pairs produced by the `(k−1)`-th model's ODE; `k = 1` uses
/// independent pairs (then it equals I-CFM with σ = 0).
///
/// `t_min > 0` draws `τ ~ U[t_min, 1]` instead of `U[0, 1]`: NSGF++'s straight flow trained only
/// on the part of the path Algorithm 4 evaluates (a deviation from the paper, see
/// `train::nsgfpp`); the paper's k-RF has `t_min = 0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RectifiedFlow {
    /// Which rectification (1, 2, 3, ...); only used for the name.
    pub k: usize,
    /// Lower end of the training times `τ ~ U[t_min, 1]`, in `[0, 1)` (0: the paper's).
    pub t_min: f64,
}

impl RectifiedFlow {
    /// The `k`-th rectification on the paper's times `τ ~ U[0, 1]`.
    pub fn new(k: usize) -> Self {
        Self { k, t_min: 0.0 }
    }
}

impl Matcher for RectifiedFlow {
    fn name(&self) -> String {
        format!("{}-RF", self.k)
    }
    fn sample(&self, x0: &[f32], x1: &[f32], d: usize, rng: &mut StdRng) -> Result<PoolBatch> {
        sample_rows(x0, x1, d, rng, false, self.t_min, &|t, a, b, _| {
            (t * b + (1.0 - t) * a, b - a)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Known point: τ = 0.25, x₀ = 2, x₁ = −1, ε = 0.5, σ = 0.1.
    const T: f64 = 0.25;
    const X0: f64 = 2.0;
    const X1: f64 = -1.0;
    const E: f64 = 0.5;

    #[test]
    fn closed_forms_at_a_known_point() {
        // FM: σ_τ = 1 − 0.9·0.25 = 0.775; x = −0.25 + 0.3875; torchcfm's u = (x₁ − 0.9 x)/σ_τ.
        let (x, u) = TargetFm { sigma: 0.1 }.path(T, X0, X1, E);
        assert!((x - 0.1375).abs() < 1e-12);
        assert!((u - (X1 - 0.9 * x) / 0.775).abs() < 1e-12);
        assert!((u - (-1.45)).abs() < 1e-12);
        // I-CFM: x = −0.25 + 1.5 + 0.05.
        let (x, u) = IndependentCfm { sigma: 0.1 }.path(T, X0, X1, E);
        assert!((x - 1.3).abs() < 1e-12 && (u - (-3.0)).abs() < 1e-12);
        // SI: cos(π/8) = 0.9238795…, sin(π/8) = 0.3826834….
        let (c, s) = (0.923_879_532_511_286_7, 0.382_683_432_365_089_8);
        let (x, u) = VpInterpolant { sigma: 0.1 }.path(T, X0, X1, E);
        assert!((x - (2.0 * c - s + 0.05)).abs() < 1e-12);
        assert!((u - FRAC_PI_2 * (-c - 2.0 * s)).abs() < 1e-12);
    }

    #[test]
    fn targets_are_the_time_derivative_of_the_noise_free_path() {
        // d/dτ μ_τ (+ d/dτ σ_τ ε for FM) equals u_τ, by central differences.
        let h = 1e-6;
        let fd = |p: &dyn Fn(f64) -> f64| (p(T + h) - p(T - h)) / (2.0 * h);
        let fm = TargetFm { sigma: 0.1 };
        assert!((fd(&|t| fm.path(t, X0, X1, E).0) - fm.path(T, X0, X1, E).1).abs() < 1e-6);
        let si = VpInterpolant { sigma: 0.0 };
        assert!((fd(&|t| si.path(t, X0, X1, 0.0).0) - si.path(T, X0, X1, 0.0).1).abs() < 1e-6);
        let cfm = IndependentCfm { sigma: 0.0 };
        assert!((fd(&|t| cfm.path(t, X0, X1, 0.0).0) - cfm.path(T, X0, X1, 0.0).1).abs() < 1e-6);
    }

    #[test]
    fn sampled_batches_follow_the_closed_forms() {
        let mut rng = StdRng::seed_from_u64(3);
        let x0 = [0.0f32, 1.0, 2.0, 3.0, -1.0, 0.5];
        let x1 = [4.0f32, 4.0, -2.0, 1.0, 0.0, 0.0];
        for m in [
            &RectifiedFlow::new(1) as &dyn Matcher,
            &IndependentCfm { sigma: 0.0 },
        ] {
            let b = m.sample(&x0, &x1, 2, &mut rng).unwrap();
            assert_eq!((b.x.len(), b.tau.len(), b.u.len()), (6, 3, 6));
            for i in 0..3 {
                let t = b.tau[i];
                assert!((0.0..1.0).contains(&t));
                for k in 0..2 {
                    let (a, c) = (x0[2 * i + k], x1[2 * i + k]);
                    assert!((b.x[2 * i + k] - (t * c + (1.0 - t) * a)).abs() < 1e-5);
                    assert!((b.u[2 * i + k] - (c - a)).abs() < 1e-6);
                }
            }
        }
        // With noise, x_τ − μ_τ has std σ (I-CFM) over many draws.
        let n = 20_000;
        let zeros = vec![0.0f32; n];
        let b = IndependentCfm { sigma: 0.3 }
            .sample(&zeros, &zeros, 1, &mut rng)
            .unwrap();
        let var = b.x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n as f64;
        assert!((var.sqrt() - 0.3).abs() < 0.01, "std {}", var.sqrt());
        let mean_t = b.tau.iter().map(|t| *t as f64).sum::<f64>() / n as f64;
        assert!((mean_t - 0.5).abs() < 0.01);
    }

    /// `t_min` maps the paper's draw `s ~ U[0, 1]` affinely onto `[t_min, 1]` (the same random
    /// numbers) and builds `x_τ = τ x₁ + (1 − τ) x₀` there; the target `x₁ − x₀` is unchanged.
    #[test]
    fn a_time_window_maps_the_draw_onto_it() {
        let mut rng = StdRng::seed_from_u64(11);
        let n = 400;
        let x0: Vec<f32> = (0..2 * n).map(|_| rng.sample(StandardNormal)).collect();
        let x1: Vec<f32> = (0..2 * n).map(|_| rng.sample(StandardNormal)).collect();
        let paper = RectifiedFlow::new(1)
            .sample(&x0, &x1, 2, &mut StdRng::seed_from_u64(5))
            .unwrap();
        let late = RectifiedFlow { k: 1, t_min: 0.6 }
            .sample(&x0, &x1, 2, &mut StdRng::seed_from_u64(5))
            .unwrap();
        assert_eq!(late.u, paper.u);
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for (i, (&t, &s)) in late.tau.iter().zip(&paper.tau).enumerate() {
            assert!((0.6..=1.0).contains(&t), "row {i}: τ = {t}");
            assert!(
                (t - (0.6 + 0.4 * s)).abs() < 1e-6,
                "row {i}: {t} vs s = {s}"
            );
            for k in 0..2 {
                let (a, c) = (x0[2 * i + k], x1[2 * i + k]);
                let got = late.x[2 * i + k];
                assert!(
                    (got - (t * c + (1.0 - t) * a)).abs() < 1e-5,
                    "row {i}: {got}"
                );
            }
            lo = lo.min(t);
            hi = hi.max(t);
        }
        // The window is covered, not a corner of it.
        assert!(lo < 0.62 && hi > 0.98, "[{lo}, {hi}]");
        // 1-RF is I-CFM with σ = 0, draw for draw.
        let icfm = IndependentCfm { sigma: 0.0 }
            .sample(&x0, &x1, 2, &mut StdRng::seed_from_u64(5))
            .unwrap();
        assert_eq!((icfm.x, icfm.tau), (paper.x, paper.tau));
        for bad in [1.0, -0.1, f64::NAN] {
            let m = RectifiedFlow { k: 1, t_min: bad };
            let err = m.sample(&x0, &x1, 2, &mut rng).unwrap_err().to_string();
            assert!(err.contains("[0, 1)"), "{err}");
        }
    }

    #[test]
    fn ot_pairing_is_the_optimal_permutation() {
        // Brute force over all 5! permutations, fresh random points and a fixed seed.
        let seeds = [7u64, rand::random::<u64>()];
        for seed in seeds {
            let mut rng = StdRng::seed_from_u64(seed);
            let x0: Vec<f32> = (0..10).map(|_| rng.sample(StandardNormal)).collect();
            let x1: Vec<f32> = (0..10).map(|_| rng.sample(StandardNormal)).collect();
            let perm = ot_pairing(&x0, &x1, 2).unwrap();
            let mut seen = perm.clone();
            seen.sort_unstable();
            assert_eq!(seen, vec![0, 1, 2, 3, 4], "seed {seed}");
            let cost = |p: &[usize]| -> f64 {
                (0..5)
                    .map(|i| {
                        (0..2)
                            .map(|k| (x0[2 * i + k] as f64 - x1[2 * p[i] + k] as f64).powi(2))
                            .sum::<f64>()
                    })
                    .sum()
            };
            let mut best = f64::INFINITY;
            let mut p = [0usize, 1, 2, 3, 4];
            permutations(&mut p, 0, &mut |q| best = best.min(cost(q)));
            assert!((cost(&perm) - best).abs() < 1e-9, "seed {seed}");
        }
    }

    fn permutations(p: &mut [usize; 5], k: usize, f: &mut impl FnMut(&[usize])) {
        if k == p.len() {
            f(p);
            return;
        }
        for i in k..p.len() {
            p.swap(k, i);
            permutations(p, k + 1, f);
            p.swap(k, i);
        }
    }

    #[test]
    fn ot_cfm_pairs_are_a_permutation_of_the_targets() {
        let mut rng = StdRng::seed_from_u64(5);
        let x0 = [0.0f32, 0.0, 10.0, 10.0];
        let x1 = [10.0f32, 10.0, 0.0, 0.0];
        let b = ExactOtCfm { sigma: 0.0 }
            .sample(&x0, &x1, 2, &mut rng)
            .unwrap();
        // Re-paired: each source point moves to the nearby target, u = 0.
        assert!(b.u.iter().all(|u| u.abs() < 1e-6), "{:?}", b.u);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let mut rng = StdRng::seed_from_u64(1);
        let m = IndependentCfm { sigma: 0.1 };
        assert!(m.sample(&[1.0, 2.0], &[1.0], 1, &mut rng).is_err());
        assert!(m.sample(&[], &[], 2, &mut rng).is_err());
        let e = m
            .sample(&[f32::NAN, 0.0], &[0.0, 0.0], 2, &mut rng)
            .unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
        let e = IndependentCfm { sigma: -1.0 }
            .sample(&[0.0], &[0.0], 1, &mut rng)
            .unwrap_err();
        assert!(e.to_string().contains("sigma"), "{e}");
    }
}
