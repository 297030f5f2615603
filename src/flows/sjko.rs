//! The objectives of S-JKO (Choi et al. 2024, "Scalable Wasserstein Gradient Flow for Generative
//! Modeling through Unbalanced Optimal Transport", arXiv 2402.05443; what the official code does:
//! `../shared/docs/sjko-spec.md`), as functions of network outputs.
//!
//! One JKO step of size `h` for the f-divergence `F(μ) = D_Ψ(μ ‖ ν)` to the data `ν`,
//!
//! ```text
//! μ_{k+1} = argmin_μ  D_Ψ(μ ‖ ν) + W2²(μ, μ_k) / (2h),
//! ```
//!
//! is an unbalanced OT problem whose target marginal is relaxed by `Ψ`; its semi-dual is
//!
//! ```text
//! sup_v  E_{y~ν}[ −Ψ*(−v(y)) ] + E_{x~μ_k}[ inf_y ( c(x, y) − v(y) ) ],   c(x, y) = |x − y|²/(2h),
//! ```
//!
//! and the inner infimum is attained by a transport map `T(x)`. S-JKO's reparametrisation: the
//! generator `T_θ(x₀, z)` maps the prior `x₀ ~ N(0, I)` (plus a latent `z`) straight to
//! `μ_{k+1}`, and the cost is measured from the frozen previous generator `T_k(x₀, z′)` (the
//! identity in phase 0), so every phase costs the same and sampling is one call (NFE = 1).
//!
//! * The potential `v` minimises [`potential_loss`]
//!   `= E Ψ*_α(−v(y + σ_k ε)) + E v(T_θ(x₀, z)) + (λ/2) E |∇_y v|²` (R1 at the noised data;
//!   `σ_k` = [`real_noise_std`]).
//! * The generator minimises [`generator_loss`]
//!   `= E[ mean_dims (T_θ(x₀, z₂) − T_k(x₀, z₁))² / (2h) − v(T_θ(x₀, z₂)) ]`: the cost is the
//!   **mean** over the data dimensions, as the official code (a cost coefficient `1/(2dh)`).
//! * [`Psi::Jsd`] is the official `train_JSD.py` variant: the potential minimises
//!   `E softplus(−v(y + σε)) + E softplus(v(T))`, the generator `E[c/h-term + softplus(−v(T))]`.

use burn::tensor::activation::{relu, softplus};
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

/// The convex conjugate `Ψ*` of the marginal relaxation (the official `select_phi`), or the JSD
/// objective.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Psi {
    /// `Ψ*(s) = eˢ − 1`, the conjugate of `Ψ(u) = u log u − u + 1` (KL; the official default).
    #[default]
    Kl,
    /// `Ψ*(s) = u²/4 + u`, `u = max(s, −2)`: the conjugate of `Ψ(u) = (u − 1)²` on `u ≥ 0`
    /// (Pearson χ²).
    Chi,
    /// `Ψ*(s) = 2 softplus(s) − 2 log 2`, the conjugate of
    /// `Ψ(u) = u log u + (2 − u) log(2 − u)` on `[0, 2]`.
    Softplus,
    /// `Ψ*(s) = s`: the balanced (exact-marginal) limit.
    Linear,
    /// The JSD variant (`train_JSD.py`): logistic losses for both networks.
    Jsd,
}

impl Psi {
    /// `α Ψ*(s/α)` elementwise (for [`Psi::Jsd`]: `softplus(s)`, the real-sample term of its
    /// potential loss as a function of `s = −v`).
    pub fn conj<B: Backend, const D: usize>(self, s: Tensor<B, D>, alpha: f64) -> Tensor<B, D> {
        if self == Psi::Jsd {
            return softplus(s, 1.0);
        }
        let u = s.div_scalar(alpha);
        let v = match self {
            Psi::Kl => u.exp().sub_scalar(1.0),
            Psi::Chi => {
                let y = relu(u.add_scalar(2.0)).sub_scalar(2.0);
                y.clone().powi_scalar(2).mul_scalar(0.25) + y
            }
            Psi::Softplus => softplus(u, 1.0)
                .mul_scalar(2.0)
                .sub_scalar(2.0 * std::f64::consts::LN_2),
            Psi::Linear | Psi::Jsd => u,
        };
        v.mul_scalar(alpha)
    }

    /// [`Psi::conj`] in `f64` with `α = 1` (tests, docs).
    pub fn conj_f64(self, s: f64) -> f64 {
        match self {
            Psi::Kl => s.exp() - 1.0,
            Psi::Chi => {
                let y = s.max(-2.0);
                0.25 * y * y + y
            }
            Psi::Softplus => 2.0 * softplus_f64(s) - 2.0 * std::f64::consts::LN_2,
            Psi::Linear => s,
            Psi::Jsd => softplus_f64(s),
        }
    }

    /// The relaxation `Ψ(u)` whose conjugate [`Psi::conj_f64`] is (`+∞` outside its domain;
    /// [`Psi::Linear`]: 0 at `u = 1`, `+∞` elsewhere; [`Psi::Jsd`] has none and returns NaN).
    pub fn primal_f64(self, u: f64) -> f64 {
        let xlogx = |x: f64| if x == 0.0 { 0.0 } else { x * x.ln() };
        match self {
            Psi::Kl if u >= 0.0 => xlogx(u) - u + 1.0,
            Psi::Chi if u >= 0.0 => (u - 1.0).powi(2),
            Psi::Softplus if (0.0..=2.0).contains(&u) => xlogx(u) + xlogx(2.0 - u),
            Psi::Linear if u == 1.0 => 0.0,
            Psi::Jsd => f64::NAN,
            _ => f64::INFINITY,
        }
    }
}

fn softplus_f64(s: f64) -> f64 {
    s.max(0.0) + (-s.abs()).exp().ln_1p()
}

/// The standard deviation `σ_k = 1 / (32 (k + 1))` of the Gaussian noise added to the real
/// samples fed to the potential in phase `k` (0-based), as in the official code.
pub fn real_noise_std(phase: usize) -> f64 {
    1.0 / (32.0 * (phase as f64 + 1.0))
}

/// The potential's loss from its outputs on the (noised) data `v_real: (m, 1)`, on the
/// generator's samples `v_fake: (n, 1)` and its input gradient at the data `grad_real: (m, d)`
/// (`None`: no R1). `E Ψ*_α(−v_real) + E v_fake + (λ/2) E |∇v|²`; JSD:
/// `E softplus(−v_real) + E softplus(v_fake) + R1`.
pub fn potential_loss<B: Backend>(
    psi: Psi,
    alpha: f64,
    v_real: Tensor<B, 2>,
    v_fake: Tensor<B, 2>,
    grad_real: Option<(Tensor<B, 2>, f64)>,
) -> Tensor<B, 1> {
    let real = psi.conj(v_real.neg(), alpha).mean();
    let fake = match psi {
        Psi::Jsd => softplus(v_fake, 1.0).mean(),
        _ => v_fake.mean(),
    };
    let loss = real + fake;
    match grad_real {
        Some((g, lambda)) if lambda > 0.0 => {
            loss + g.powi_scalar(2).sum_dim(1).mean().mul_scalar(lambda / 2.0)
        }
        _ => loss,
    }
}

/// The transport cost `c = mean_dims (a − b)²` per row: `(n, d), (n, d) → (n, 1)`.
pub fn mean_sq_cost<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    (a - b).powi_scalar(2).mean_dim(1)
}

/// The generator's loss `E[ c(T_θ, T_k) / (2h) − v(T_θ) ]` (JSD: `E[c/(2h) + softplus(−v(T_θ))]`)
/// from its samples `fake: (n, d)`, the reference map's samples `reference: (n, d)` of the same
/// prior points (independent latents) and the potential on the samples `v_fake: (n, 1)`.
pub fn generator_loss<B: Backend>(
    psi: Psi,
    fake: Tensor<B, 2>,
    reference: Tensor<B, 2>,
    v_fake: Tensor<B, 2>,
    h: f64,
) -> Tensor<B, 1> {
    let cost = mean_sq_cost(fake, reference).mul_scalar(0.5 / h);
    let pot = match psi {
        Psi::Jsd => softplus(v_fake.neg(), 1.0),
        _ => v_fake.neg(),
    };
    (cost + pot).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::convert::to_f64_vec;
    use burn::tensor::{DType, TensorData};

    const ALL: [Psi; 4] = [Psi::Kl, Psi::Chi, Psi::Softplus, Psi::Linear];

    fn t(v: &[f64], shape: [usize; 2]) -> Tensor<Cpu, 2> {
        Tensor::from_data(
            TensorData::new(v.to_vec(), shape),
            (&Default::default(), DType::F64),
        )
    }

    /// `Ψ*(s) = sup_u s·u − Ψ(u)` (Fenchel–Legendre), checked by a fine grid over `u`.
    #[test]
    fn conjugates_match_the_legendre_transform_of_their_relaxation() {
        for psi in [Psi::Kl, Psi::Chi, Psi::Softplus] {
            for s in [-3.0, -2.0, -1.0, -0.3, 0.0, 0.4, 1.0, 1.5] {
                let sup = (0..=400_000)
                    .map(|i| i as f64 * 1e-4 * if psi == Psi::Softplus { 0.05 } else { 1.0 })
                    .map(|u| s * u - psi.primal_f64(u))
                    .fold(f64::NEG_INFINITY, f64::max);
                let want = psi.conj_f64(s);
                assert!(
                    (sup - want).abs() < 1e-6,
                    "{psi:?} at {s}: sup {sup} vs {want}"
                );
            }
        }
    }

    /// Every relaxation has `Ψ(1) = 0` as its minimum, so `Ψ*(0) = 0` and `Ψ*′(0) = 1`: at
    /// `v = 0` the potential's loss is that of the balanced problem to first order.
    #[test]
    fn conjugates_vanish_at_zero_with_unit_slope() {
        for psi in ALL {
            assert_eq!(psi.conj_f64(0.0), 0.0, "{psi:?}");
            let e = 1e-6;
            let slope = (psi.conj_f64(e) - psi.conj_f64(-e)) / (2.0 * e);
            assert!((slope - 1.0).abs() < 1e-8, "{psi:?}: {slope}");
            assert_eq!(psi.primal_f64(1.0), 0.0, "{psi:?}");
        }
    }

    #[test]
    fn tensor_conjugates_equal_the_scalar_ones_with_alpha() {
        let s = [-4.0, -2.5, -1.0, 0.0, 0.7, 2.0];
        for psi in [Psi::Kl, Psi::Chi, Psi::Softplus, Psi::Linear, Psi::Jsd] {
            for alpha in [1.0, 2.5] {
                let got = to_f64_vec(psi.conj(t(&s, [3, 2]), alpha)).unwrap();
                for (g, &x) in got.iter().zip(&s) {
                    let want = if psi == Psi::Jsd {
                        softplus_f64(x)
                    } else {
                        alpha * psi.conj_f64(x / alpha)
                    };
                    assert!(
                        (g - want).abs() < 1e-12,
                        "{psi:?} α={alpha} s={x}: {g} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn losses_equal_hand_computed_values() {
        // v_real = [0.5, -1], v_fake = [2, 0, 1], ∇v at the data rows (1, 2) and (0, -1).
        let v_real = t(&[0.5, -1.0], [2, 1]);
        let v_fake = t(&[2.0, 0.0, 1.0], [3, 1]);
        let grad = t(&[1.0, 2.0, 0.0, -1.0], [2, 2]);
        let kl = (((-0.5f64).exp() - 1.0) + (1f64.exp() - 1.0)) / 2.0 + 1.0;
        let r1 = 0.2 / 2.0 * (5.0 + 1.0) / 2.0;
        let got = to_f64_vec(potential_loss(
            Psi::Kl,
            1.0,
            v_real.clone(),
            v_fake.clone(),
            Some((grad.clone(), 0.2)),
        ))
        .unwrap()[0];
        assert!((got - (kl + r1)).abs() < 1e-12, "{got} vs {}", kl + r1);
        let no_r1 = to_f64_vec(potential_loss(
            Psi::Kl,
            1.0,
            v_real.clone(),
            v_fake.clone(),
            None,
        ))
        .unwrap()[0];
        assert!((no_r1 - kl).abs() < 1e-12);
        let jsd = to_f64_vec(potential_loss(Psi::Jsd, 1.0, v_real, v_fake, None)).unwrap()[0];
        let want = (softplus_f64(-0.5) + softplus_f64(1.0)) / 2.0
            + (softplus_f64(2.0) + softplus_f64(0.0) + softplus_f64(1.0)) / 3.0;
        assert!((jsd - want).abs() < 1e-12, "{jsd} vs {want}");

        // Generator: rows fake (1, 1), (0, 2); reference (0, 1), (0, 0); v = [0.5, -0.5]; h = 2.
        let fake = t(&[1.0, 1.0, 0.0, 2.0], [2, 2]);
        let reference = t(&[0.0, 1.0, 0.0, 0.0], [2, 2]);
        let v = t(&[0.5, -0.5], [2, 1]);
        // mean-over-dims costs 0.5 and 2, over (2h) = 4: 0.125 and 0.5.
        let want = ((0.125 - 0.5) + (0.5 + 0.5)) / 2.0;
        let got = to_f64_vec(generator_loss(
            Psi::Kl,
            fake.clone(),
            reference.clone(),
            v.clone(),
            2.0,
        ))
        .unwrap()[0];
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let got = to_f64_vec(generator_loss(Psi::Jsd, fake, reference, v, 2.0)).unwrap()[0];
        let want = ((0.125 + softplus_f64(-0.5)) + (0.5 + softplus_f64(0.5))) / 2.0;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn real_noise_shrinks_with_the_phase() {
        assert_eq!(real_noise_std(0), 1.0 / 32.0);
        assert_eq!(real_noise_std(3), 1.0 / 128.0);
    }
}
