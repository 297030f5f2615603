//! Fréchet distance between two Gaussians `N(mu1, S1)`, `N(mu2, S2)` (the FID of their
//! feature statistics):
//!
//! ```text
//! d^2 = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)
//! ```
//!
//! `tr sqrt(S1 S2)` is computed in f64 through symmetric eigendecompositions (faer): with
//! `S1 = U diag(l) U^T` and `R = sqrt(S1) = U diag(sqrt(l)) U^T`, the matrix `S1 S2` is similar to
//! the symmetric PSD matrix `R S2 R`, which is unitarily similar to
//! `C = diag(sqrt(l)) (U^T S2 U) diag(sqrt(l))`; hence `tr sqrt(S1 S2) = sum_i sqrt(mu_i(C))`.
//! Eigenvalues of `S1` and `C` below the numerical-rank tolerance `d * eps_mach * max|eigenvalue|`
//! (round-off of exact zeros, possibly negative) are set to 0, so singular covariances (fewer
//! samples than dimensions) need no special case and their null space adds no `sqrt(noise)`. As in
//! pytorch-fid, if the result is not finite (or the eigensolver fails) the computation is
//! repeated with `eps I` (`eps = 1e-6`) added to both covariances, and `offset_used` says so.

use super::stats::FeatureStats;
use crate::error::{ensure_finite, NsgfError, Result};
use faer::{Accum, Mat, Par, Side};

/// pytorch-fid's diagonal offset for near-singular products.
pub const SQRTM_OFFSET: f64 = 1e-6;

/// The Fréchet distance and its terms.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FrechetDistance {
    /// `|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)`.
    pub fid: f64,
    /// `|mu1 - mu2|^2`.
    pub mean_term: f64,
    /// `tr S1`.
    pub trace_sigma1: f64,
    /// `tr S2`.
    pub trace_sigma2: f64,
    /// `tr sqrt(S1 S2)`.
    pub trace_sqrt: f64,
    /// True when `eps I` had to be added to the covariances.
    pub offset_used: bool,
}

/// Fréchet distance between two sets of statistics of the same dimension.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<FrechetDistance> {
    frechet_distance_raw(&a.mu, &a.sigma, &b.mu, &b.sigma)
}

/// Fréchet distance from raw `mu` (d) and row-major `sigma` (d*d) arrays.
pub fn frechet_distance_raw(
    mu1: &[f64],
    sigma1: &[f64],
    mu2: &[f64],
    sigma2: &[f64],
) -> Result<FrechetDistance> {
    let d = mu1.len();
    if d == 0 || mu2.len() != d || sigma1.len() != d * d || sigma2.len() != d * d {
        return Err(NsgfError::Shape(format!(
            "statistics do not match: mu1 {}, sigma1 {}, mu2 {}, sigma2 {} values (need d, d*d, \
             d, d*d with the same d; were both computed with the same feature extractor?)",
            mu1.len(),
            sigma1.len(),
            mu2.len(),
            sigma2.len()
        )));
    }
    ensure_finite(mu1, "mu1")?;
    ensure_finite(mu2, "mu2")?;
    ensure_finite(sigma1, "sigma1")?;
    ensure_finite(sigma2, "sigma2")?;
    let mean_term: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b) * (a - b)).sum();
    let trace_sigma1: f64 = (0..d).map(|i| sigma1[i * d + i]).sum();
    let trace_sigma2: f64 = (0..d).map(|i| sigma2[i * d + i]).sum();
    let (trace_sqrt, offset_used) = match trace_sqrt_product(sigma1, sigma2, d, 0.0) {
        Ok(t) if t.is_finite() => (t, false),
        _ => {
            tracing::warn!(
                "FID: singular product of covariances; adding {SQRTM_OFFSET} to the diagonal \
                 of both covariance estimates (as pytorch-fid)"
            );
            (trace_sqrt_product(sigma1, sigma2, d, SQRTM_OFFSET)?, true)
        }
    };
    if !trace_sqrt.is_finite() {
        return Err(NsgfError::NonFinite(
            "tr sqrt(S1 S2) is not finite even with the diagonal offset".into(),
        ));
    }
    Ok(FrechetDistance {
        fid: mean_term + trace_sigma1 + trace_sigma2 - 2.0 * trace_sqrt,
        mean_term,
        trace_sigma1,
        trace_sigma2,
        trace_sqrt,
        offset_used,
    })
}

/// `tr sqrt((S1 + eps I)(S2 + eps I))` for symmetric PSD `S1`, `S2` (row-major d*d); see the
/// module docs. Both inputs are symmetrised (`(S + S^T)/2`) first.
pub fn trace_sqrt_product(s1: &[f64], s2: &[f64], d: usize, eps: f64) -> Result<f64> {
    let sym = |s: &[f64]| {
        Mat::<f64>::from_fn(d, d, |i, j| {
            0.5 * (s[i * d + j] + s[j * d + i]) + if i == j { eps } else { 0.0 }
        })
    };
    let (a, b) = (sym(s1), sym(s2));
    let evd = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| NsgfError::Other(format!("eigendecomposition of sigma1 failed: {e:?}")))?;
    let u = evd.U();
    let lambda = evd.S().column_vector();
    // Eigenvalues below the numerical-rank tolerance d * eps_mach * max|l| are round-off of
    // exact zeros (singular covariances): set them to 0 rather than let sqrt amplify them.
    let tol = |vals: &mut dyn Iterator<Item = f64>| {
        vals.fold(0.0f64, |m, v| m.max(v.abs())) * d as f64 * f64::EPSILON
    };
    let tol1 = tol(&mut (0..d).map(|i| lambda[i]));
    let root: Vec<f64> = (0..d)
        .map(|i| {
            if lambda[i] > tol1 {
                lambda[i].sqrt()
            } else {
                0.0
            }
        })
        .collect();
    // B = U^T S2 U.
    let mut s2u = Mat::<f64>::zeros(d, d);
    faer::linalg::matmul::matmul(s2u.as_mut(), Accum::Replace, b.as_ref(), u, 1.0, Par::Seq);
    let mut ub = Mat::<f64>::zeros(d, d);
    faer::linalg::matmul::matmul(
        ub.as_mut(),
        Accum::Replace,
        u.transpose(),
        s2u.as_ref(),
        1.0,
        Par::Seq,
    );
    // C = diag(root) B diag(root), symmetrised.
    let c = Mat::<f64>::from_fn(d, d, |i, j| {
        0.5 * (ub[(i, j)] + ub[(j, i)]) * root[i] * root[j]
    });
    let mu = c.self_adjoint_eigenvalues(Side::Lower).map_err(|e| {
        NsgfError::Other(format!("eigenvalues of sqrt(S1) S2 sqrt(S1) failed: {e:?}"))
    })?;
    let largest = mu.iter().fold(0.0f64, |m, &v| m.max(v.abs()));
    let most_negative = mu.iter().fold(0.0f64, |m, &v| m.min(v));
    if most_negative < -1e-6 * largest.max(f64::MIN_POSITIVE) {
        tracing::warn!(
            "FID: sqrt(S1) S2 sqrt(S1) has a negative eigenvalue {most_negative:e} (largest \
             {largest:e}); are the covariances positive semi-definite? clamping to 0"
        );
    }
    let tol2 = tol(&mut mu.iter().copied());
    Ok(mu.iter().filter(|&&v| v > tol2).map(|&v| v.sqrt()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(v: &[f64]) -> Vec<f64> {
        let d = v.len();
        let mut m = vec![0.0; d * d];
        for i in 0..d {
            m[i * d + i] = v[i];
        }
        m
    }

    #[test]
    fn closed_form_for_diagonal_gaussians() {
        let a = [1.0, 4.0, 0.25, 0.0, 2.0];
        let b = [9.0, 1.0, 0.25, 3.0, 0.5];
        let mu1 = [0.0, 1.0, -1.0, 2.0, 0.5];
        let mu2 = [1.0, 1.0, 0.0, -2.0, 0.5];
        let r = frechet_distance_raw(&mu1, &diag(&a), &mu2, &diag(&b)).unwrap();
        let expect: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>()
            + mu1
                .iter()
                .zip(&mu2)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>();
        assert!((r.fid - expect).abs() < 1e-12, "{} vs {expect}", r.fid);
        assert!(!r.offset_used);
    }

    #[test]
    fn rotated_gaussians_self_distance_and_symmetry() {
        // S = Q diag Q^T with a Givens rotation; FID(S, S) = 0 and FID(a, b) = FID(b, a).
        let (c, s) = (0.6f64, 0.8f64);
        let rot = |l1: f64, l2: f64| {
            vec![
                c * c * l1 + s * s * l2,
                c * s * (l1 - l2),
                c * s * (l1 - l2),
                s * s * l1 + c * c * l2,
            ]
        };
        let s1 = rot(3.0, 0.5);
        let s2 = vec![1.0, 0.2, 0.2, 2.0];
        let same = frechet_distance_raw(&[1.0, 2.0], &s1, &[1.0, 2.0], &s1).unwrap();
        assert!(same.fid.abs() < 1e-12, "{}", same.fid);
        let ab = frechet_distance_raw(&[0.0, 0.0], &s1, &[1.0, 0.0], &s2).unwrap();
        let ba = frechet_distance_raw(&[1.0, 0.0], &s2, &[0.0, 0.0], &s1).unwrap();
        assert!((ab.fid - ba.fid).abs() < 1e-12);
        // 2x2 closed form: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for M with real sqrt.
        let m = [
            s1[0] * s2[0] + s1[1] * s2[2],
            s1[0] * s2[1] + s1[1] * s2[3],
            s1[2] * s2[0] + s1[3] * s2[2],
            s1[2] * s2[1] + s1[3] * s2[3],
        ];
        let det = m[0] * m[3] - m[1] * m[2];
        let tr_sqrt = (m[0] + m[3] + 2.0 * det.sqrt()).sqrt();
        assert!((ab.trace_sqrt - tr_sqrt).abs() < 1e-12);
    }

    #[test]
    fn singular_covariances_are_fine_and_bad_shapes_are_errors() {
        // Rank-1 covariances.
        let s1 = vec![1.0, 1.0, 1.0, 1.0];
        let s2 = vec![4.0, 0.0, 0.0, 0.0];
        let r = frechet_distance_raw(&[0.0, 0.0], &s1, &[0.0, 0.0], &s2).unwrap();
        // tr sqrt(S1 S2): S1 S2 = [[4,0],[4,0]], eigenvalues 4 and 0 -> 2.
        assert!((r.trace_sqrt - 2.0).abs() < 1e-12, "{}", r.trace_sqrt);
        assert!(frechet_distance_raw(&[0.0], &[1.0], &[0.0, 0.0], &s1).is_err());
        assert!(frechet_distance_raw(&[f64::NAN], &[1.0], &[0.0], &[1.0]).is_err());
    }
}
