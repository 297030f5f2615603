//! The objectives of the two neural Wasserstein-gradient-flow baselines of Table 1
//! (`../shared/docs/jko-ept-spec.md`), as functions of network outputs.
//!
//! **JKO-Flow** (Fan et al. 2022). One JKO step of size `a` from the particles `P_k` towards the
//! data `Q` solves
//!
//! ```text
//! T_k = argmin_T (1/(2a)) E_{x~P_k} |x − T(x)|² + sup_h [ E_{P_k} A(h(T x)) − E_{z~Q} B(h(z)) ],
//! ```
//!
//! the variational form of an f-divergence `D_f(T#P_k ‖ Q)`. [`Divergence::Kl`]: `h > 0`
//! (`h = 20 σ(3u/20)` of the critic's output `u`), `A = log h`, `B = h`; the supremum is
//! `KL − 1`, reached at `h* = dP/dQ`. [`Divergence::Js`]: `A(u) = log(2σ(u))`,
//! `B(u) = −log(2σ(−u))`, a logistic discriminator with particles labelled 1 and data 0. The
//! critic minimises [`critic_loss`] `= −E_P A + E_Q B`, the map minimises [`map_loss`]
//! `= W2 term + E_P A`.
//!
//! **EPT** (Gao et al. 2022). Least-squares density-ratio fitting (Pearson χ²): `D ≈ p/q` of the
//! particles `p` against the data `q` minimises [`lsdr_loss`]
//! `= E_q[D²] − 2 E_p[D] + ½ E_q |∇_x D|²` (the gradient penalty at data points), and the particles
//! take Euler steps `x ← x − η ∇D(x)` ([`ept_step`]).

use burn::tensor::activation::{sigmoid, softplus};
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

/// The f-divergence of a JKO-Flow run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Divergence {
    /// Kullback–Leibler, `h = 20 σ(3u/20)`.
    Kl,
    /// Jensen–Shannon (a logistic discriminator; the JKO-Flow paper's generative choice).
    #[default]
    Js,
}

/// The KL critic's positive output `h = 20 σ(3u/20)` (the official cap).
pub fn kl_h<B: Backend>(u: Tensor<B, 2>) -> Tensor<B, 2> {
    sigmoid(u.mul_scalar(3.0 / 20.0)).mul_scalar(20.0)
}

/// `(E_P A(u_P), E_Q B(u_Q))` from the critic's raw outputs on the pushed particles `u_p: (n, 1)`
/// and on the data `u_q: (m, 1)`.
pub fn dual_terms<B: Backend>(
    div: Divergence,
    u_p: Tensor<B, 2>,
    u_q: Tensor<B, 2>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let ln2 = std::f64::consts::LN_2;
    match div {
        Divergence::Kl => (kl_h(u_p).log().mean(), kl_h(u_q).mean()),
        // log(2σ(u)) = ln 2 − softplus(−u);  −log(2σ(−u)) = softplus(u) − ln 2.
        Divergence::Js => (
            softplus(u_p.neg(), 1.0).neg().add_scalar(ln2).mean(),
            softplus(u_q, 1.0).add_scalar(-ln2).mean(),
        ),
    }
}

/// The critic's loss `−E_P A + E_Q B` (it maximises the dual).
pub fn critic_loss<B: Backend>(
    div: Divergence,
    u_p: Tensor<B, 2>,
    u_q: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let (a, b) = dual_terms(div, u_p, u_q);
    b - a
}

/// The map's loss `(1/(2a)) mean_n Σ_d (x − T x)² + E_P A(u(T x))` for particles `x`, their
/// images `tx` and the critic's outputs `u_tx` on them.
pub fn map_loss<B: Backend>(
    div: Divergence,
    x: Tensor<B, 2>,
    tx: Tensor<B, 2>,
    u_tx: Tensor<B, 2>,
    a: f64,
) -> Tensor<B, 1> {
    let w2 = (x - tx)
        .powi_scalar(2)
        .sum_dim(1)
        .mean()
        .div_scalar(2.0 * a);
    let a_term = match div {
        Divergence::Kl => kl_h(u_tx).log().mean(),
        Divergence::Js => softplus(u_tx.neg(), 1.0)
            .neg()
            .add_scalar(std::f64::consts::LN_2)
            .mean(),
    };
    w2 + a_term
}

/// EPT's least-squares density-ratio loss from `D` and `∇_x D` at data points (`d_q: (m, 1)`,
/// `grad_q: (m, d)`) and `D` at particles (`d_p: (n, 1)`).
pub fn lsdr_loss<B: Backend>(
    d_q: Tensor<B, 2>,
    grad_q: Tensor<B, 2>,
    d_p: Tensor<B, 2>,
) -> Tensor<B, 1> {
    d_q.powi_scalar(2).mean() - d_p.mean().mul_scalar(2.0)
        + grad_q.powi_scalar(2).sum_dim(1).mean().mul_scalar(0.5)
}

/// One EPT Euler step `x ← x − η ∇D(x)` (Pearson χ², `s = 1`); with `max_step`, each particle's
/// displacement is shortened to at most that length (LSDR's `D` can blow up off the data).
pub fn ept_step<B: Backend>(
    x: Tensor<B, 2>,
    grad: Tensor<B, 2>,
    eta: f64,
    max_step: Option<f64>,
) -> Tensor<B, 2> {
    let mut step = grad.mul_scalar(eta);
    if let Some(m) = max_step {
        let norm = step.clone().powi_scalar(2).sum_dim(1).sqrt();
        let factor = norm.clamp_min(m).recip().mul_scalar(m);
        step = step * factor;
    }
    x - step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::convert::to_f64_vec;
    use burn::tensor::{DType, TensorData};
    use rand::{RngExt, SeedableRng};
    use rand_distr::StandardNormal;

    fn col(v: Vec<f64>) -> Tensor<Cpu, 2> {
        let n = v.len();
        Tensor::from_data(
            TensorData::new(v, [n, 1]),
            (&Default::default(), DType::F64),
        )
    }
    fn scalar(t: Tensor<Cpu, 1>) -> f64 {
        to_f64_vec(t).unwrap()[0]
    }

    #[test]
    fn loss_terms_equal_hand_computed_values() {
        let (up, uq) = (vec![0.5, -1.0], vec![2.0]);
        let sig = |u: f64| 1.0 / (1.0 + (-u).exp());
        // JS.
        let a = ((2.0 * sig(0.5)).ln() + (2.0 * sig(-1.0)).ln()) / 2.0;
        let b = -(2.0 * sig(-2.0)).ln();
        let (ga, gb) = dual_terms(Divergence::Js, col(up.clone()), col(uq.clone()));
        assert!((scalar(ga) - a).abs() < 1e-12 && (scalar(gb) - b).abs() < 1e-12);
        let l = critic_loss(Divergence::Js, col(up.clone()), col(uq.clone()));
        assert!((scalar(l) - (b - a)).abs() < 1e-12);
        // KL with the cap h = 20σ(3u/20).
        let h = |u: f64| 20.0 * sig(0.15 * u);
        let a = (h(0.5).ln() + h(-1.0).ln()) / 2.0;
        let (ga, gb) = dual_terms(Divergence::Kl, col(up.clone()), col(uq));
        assert!((scalar(ga) - a).abs() < 1e-12 && (scalar(gb) - h(2.0)).abs() < 1e-12);
        // The map's loss: W2 term over rows (x, Tx) = ((0,0),(1,2)) and ((1,1),(1,1)), a = 0.5.
        let x = Tensor::<Cpu, 2>::from_data(
            TensorData::new(vec![0.0, 0.0, 1.0, 1.0], [2, 2]),
            (&Default::default(), DType::F64),
        );
        let tx = Tensor::<Cpu, 2>::from_data(
            TensorData::new(vec![1.0, 2.0, 1.0, 1.0], [2, 2]),
            (&Default::default(), DType::F64),
        );
        let l = map_loss(Divergence::Kl, x, tx, col(up), 0.5);
        assert!((scalar(l) - ((5.0 + 0.0) / 2.0 / 1.0 + a)).abs() < 1e-12);
        // LSDR: D_q = (1, 2), grads (1,0), (0,2); D_p = (3).
        let g = Tensor::<Cpu, 2>::from_data(
            TensorData::new(vec![1.0, 0.0, 0.0, 2.0], [2, 2]),
            (&Default::default(), DType::F64),
        );
        let l = lsdr_loss(col(vec![1.0, 2.0]), g, col(vec![3.0]));
        assert!((scalar(l) - (2.5 - 6.0 + 0.5 * 2.5)).abs() < 1e-12);
    }

    /// The KL dual `E_P log h − E_Q h` of two Gaussians P = N(μ, 1), Q = N(0, 1) is largest at
    /// `h* = dP/dQ = exp(μx − μ²/2)`, where it equals `KL(P‖Q) − 1 = μ²/2 − 1`; perturbing h
    /// lowers it.
    #[test]
    fn kl_dual_is_maximised_by_the_density_ratio() {
        let mu = 0.8;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let n = 200_000;
        let p: Vec<f64> = (0..n)
            .map(|_| mu + rng.sample::<f64, _>(StandardNormal))
            .collect();
        let q: Vec<f64> = (0..n)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        // u with 20σ(3u/20) = h, i.e. u = (20/3) logit(h/20).
        let u_of = |h: f64| (20.0 / 3.0) * (h / 20.0 / (1.0 - h / 20.0)).ln();
        let dual = |scale: f64, tilt: f64| {
            let h = |x: f64| scale * (mu * x - mu * mu / 2.0 + tilt * x).exp();
            let up = col(p.iter().map(|&x| u_of(h(x).min(19.999))).collect());
            let uq = col(q.iter().map(|&x| u_of(h(x).min(19.999))).collect());
            let (a, b) = dual_terms(Divergence::Kl, up, uq);
            scalar(a) - scalar(b)
        };
        let best = dual(1.0, 0.0);
        assert!((best - (mu * mu / 2.0 - 1.0)).abs() < 0.02, "{best}");
        for (s, t) in [(0.8, 0.0), (1.25, 0.0), (1.0, 0.2), (1.0, -0.2)] {
            assert!(dual(s, t) < best, "h* beaten by scale {s}, tilt {t}");
        }
    }

    #[test]
    fn ept_step_moves_against_the_gradient_with_a_cap() {
        let dev = Default::default();
        let x = Tensor::<Cpu, 2>::zeros([2, 2], (&dev, DType::F64));
        let g = Tensor::<Cpu, 2>::from_data(
            TensorData::new(vec![3.0, 4.0, 0.3, 0.4], [2, 2]),
            (&dev, DType::F64),
        );
        let y = to_f64_vec(ept_step(x.clone(), g.clone(), 0.1, None)).unwrap();
        assert_eq!(
            y,
            vec![-0.30000000000000004, -0.4, -0.03, -0.04000000000000001]
        );
        let y = to_f64_vec(ept_step(x, g, 0.1, Some(0.1))).unwrap();
        // |step| 0.5 → 0.1; |step| 0.05 unchanged.
        assert!((y[0] + 0.06).abs() < 1e-12 && (y[1] + 0.08).abs() < 1e-12);
        assert!((y[2] + 0.03).abs() < 1e-12 && (y[3] + 0.04).abs() < 1e-12);
    }
}
