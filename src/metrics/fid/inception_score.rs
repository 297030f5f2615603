//! Inception Score (Salimans et al. 2016) from class probabilities `p(y|x_i)`:
//!
//! ```text
//! IS = exp( E_x KL(p(y|x) || p(y)) ),   p(y) = mean_i p(y|x_i)
//! ```
//!
//! computed, as the reference code does, on `splits` (10) consecutive parts
//! `[i n / splits, (i + 1) n / splits)` of the samples, each with its own marginal `p(y)`;
//! the result is the mean and the (population, `ddof = 0`) standard deviation of the per-split
//! scores. Terms with `p(y|x) = 0` contribute 0.
//!
//! The probabilities come from the softmax of the Inception classifier logits. **The standard FID
//! weights (`shared/data/fid`) carry no classifier head**, so with them the IS cannot be computed
//! (the CLI says so); weights with `fc.weight` / `fc.bias` (1008 or 1000 classes) enable it.

use crate::error::{NsgfError, Result};

/// Number of splits used by the reference Inception Score code.
pub const IS_SPLITS: usize = 10;

/// Error message when the weights have no classifier head.
pub const NO_CLASSIFIER: &str = "the Inception Score needs the classifier logits of the \
    Inception network, but these weights carry no classifier head (no `fc.weight` / `fc.bias` \
    tensors; the standard FID Inception weights stop at the 2048-d pool3 features). Use weights \
    that include the 1008-class (or 1000-class) `fc` layer via --weights";

/// Inception Score over splits.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct InceptionScore {
    /// Mean of the per-split scores.
    pub mean: f64,
    /// Population standard deviation of the per-split scores.
    pub std: f64,
    /// Number of splits.
    pub splits: usize,
    /// Number of samples.
    pub n: usize,
}

/// Row-wise softmax of `(n, k)` logits, in f64 (max-shifted).
pub fn softmax_rows(logits: &[f32], k: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(k) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
        let z: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| v / z));
    }
    out
}

/// Inception Score of `(n, k)` row-stochastic probabilities (row-major), over `splits` parts.
pub fn inception_score(probs: &[f64], k: usize, splits: usize) -> Result<InceptionScore> {
    if k == 0 || !probs.len().is_multiple_of(k) {
        return Err(NsgfError::Shape(format!(
            "{} probabilities do not form rows of {k} classes",
            probs.len()
        )));
    }
    let n = probs.len() / k;
    if splits == 0 || n < splits {
        return Err(NsgfError::Param(format!(
            "the Inception Score over {splits} splits needs at least {splits} samples, got {n}"
        )));
    }
    for (i, row) in probs.chunks_exact(k).enumerate() {
        let s: f64 = row.iter().sum();
        if row.iter().any(|p| !(p.is_finite() && *p >= 0.0)) || (s - 1.0).abs() > 1e-6 {
            return Err(NsgfError::Param(format!(
                "row {i} is not a probability vector (sum {s})"
            )));
        }
    }
    let scores: Vec<f64> = (0..splits)
        .map(|s| {
            let part = &probs[(s * n / splits) * k..((s + 1) * n / splits) * k];
            let m = part.len() / k;
            let mut py = vec![0.0; k];
            for row in part.chunks_exact(k) {
                py.iter_mut().zip(row).for_each(|(a, p)| *a += p);
            }
            py.iter_mut().for_each(|a| *a /= m as f64);
            let kl: f64 = part
                .chunks_exact(k)
                .map(|row| {
                    row.iter()
                        .zip(&py)
                        .filter(|(p, _)| **p > 0.0)
                        .map(|(p, q)| p * (p.ln() - q.ln()))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / m as f64;
            kl.exp()
        })
        .collect();
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let var = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / splits as f64;
    Ok(InceptionScore {
        mean,
        std: var.sqrt(),
        splits,
        n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_balanced_gives_number_of_classes() {
        // 40 samples, 4 classes, each split holds every class once: KL = ln 4, IS = 4.
        let k = 4;
        let probs: Vec<f64> = (0..40)
            .flat_map(|i| (0..k).map(move |c| if c == i % k { 1.0 } else { 0.0 }))
            .collect();
        let s = inception_score(&probs, k, 10).unwrap();
        assert!((s.mean - 4.0).abs() < 1e-12 && s.std < 1e-12, "{s:?}");
    }

    #[test]
    fn uniform_predictions_give_one() {
        let probs = vec![0.2; 5 * 20];
        let s = inception_score(&probs, 5, 10).unwrap();
        assert!((s.mean - 1.0).abs() < 1e-12);
    }

    #[test]
    fn matches_hand_computed_value() {
        // One split, two samples p1 = (0.9, 0.1), p2 = (0.3, 0.7); p(y) = (0.6, 0.4).
        let probs = [0.9, 0.1, 0.3, 0.7];
        let kl1 = 0.9 * (0.9f64 / 0.6).ln() + 0.1 * (0.1f64 / 0.4).ln();
        let kl2 = 0.3 * (0.3f64 / 0.6).ln() + 0.7 * (0.7f64 / 0.4).ln();
        let s = inception_score(&probs, 2, 1).unwrap();
        assert!((s.mean - (0.5 * (kl1 + kl2)).exp()).abs() < 1e-12);
        // Splits: two parts of one sample each, both KL = 0 -> 1.
        let s = inception_score(&probs, 2, 2).unwrap();
        assert!((s.mean - 1.0).abs() < 1e-12);
    }

    #[test]
    fn softmax_and_errors() {
        let p = softmax_rows(&[0.0, 0.0, 1000.0, 0.0], 2);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[2] - 1.0).abs() < 1e-12);
        assert!(inception_score(&[0.5, 0.5], 2, 10).is_err());
        assert!(inception_score(&[0.5, 0.6], 2, 1).is_err());
        assert!(inception_score(&[0.5, 0.5, 1.0], 2, 1).is_err());
    }
}
