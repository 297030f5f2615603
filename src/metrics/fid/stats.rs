//! Feature statistics in f64: mean `mu = (1/n) sum x_i` and unbiased covariance
//! `Sigma = (1/(n-1)) sum (x_i - mu)(x_i - mu)^T` (as `np.cov(x, rowvar=False)`), and their
//! `.npz` form (`mu` (d), `sigma` (d, d), pytorch-fid's format; ours adds the sample count `n`
//! as an int64 scalar, which pytorch-fid ignores).
//!
//! The accumulator streams batches: it shifts every feature vector by the mean `c` of the first
//! batch, keeps `s = sum (x_i - c)` and `M = sum (x_i - c)(x_i - c)^T` (faer matmul), and
//! finishes with `mu = c + s/n`, `Sigma = (M - n delta delta^T) / (n - 1)`, `delta = s/n`. With
//! `c` close to `mu` the subtraction loses no precision worth noting, and the features never
//! need to be held in memory.

use crate::error::{ensure_finite, NsgfError, Result};
use crate::io::npy::{read_npz, write_npz, NpyArray};
use faer::{Accum, Mat, Par};
use std::path::Path;

/// Mean and covariance of a set of feature vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureStats {
    /// Mean, length `d`.
    pub mu: Vec<f64>,
    /// Covariance `(d, d)`, row-major, symmetric.
    pub sigma: Vec<f64>,
    /// Number of samples (0 when unknown, e.g. read from a stats file without `n`).
    pub n: usize,
}

impl FeatureStats {
    /// Feature dimension `d`.
    pub fn dim(&self) -> usize {
        self.mu.len()
    }

    /// Statistics of `n` feature rows of dimension `d` (row-major `features`, length `n d`).
    /// Needs `n >= 2` (the unbiased covariance divides by `n - 1`).
    pub fn from_features(features: &[f32], n: usize, d: usize) -> Result<Self> {
        if features.len() != n * d {
            return Err(NsgfError::Shape(format!(
                "{} feature values do not form {n} rows of {d}",
                features.len()
            )));
        }
        let mut acc = StatsAccumulator::new(d);
        acc.push(features)?;
        acc.finish()
    }

    /// Builds statistics from given `mu` (d) and `sigma` (d*d), checking shapes and finiteness.
    pub fn new(mu: Vec<f64>, sigma: Vec<f64>, n: usize) -> Result<Self> {
        let d = mu.len();
        if d == 0 || sigma.len() != d * d {
            return Err(NsgfError::Shape(format!(
                "mu has {d} entries but sigma has {} (expected {d}x{d})",
                sigma.len()
            )));
        }
        ensure_finite(&mu, "mu")?;
        ensure_finite(&sigma, "sigma")?;
        // A covariance is symmetric with a non-negative diagonal (any other matrix can give a
        // negative "FID"); the tolerance covers the rounding of a computed covariance.
        if let Some(i) = (0..d).find(|&i| sigma[i * d + i] < 0.0) {
            return Err(NsgfError::Param(format!(
                "sigma is not a covariance: its diagonal entry {i} is {}",
                sigma[i * d + i]
            )));
        }
        let scale = (0..d).map(|i| sigma[i * d + i]).fold(0.0, f64::max);
        for i in 0..d {
            for j in i + 1..d {
                let (a, b) = (sigma[i * d + j], sigma[j * d + i]);
                if (a - b).abs() > 1e-6 * scale.max(f64::MIN_POSITIVE) {
                    return Err(NsgfError::Param(format!(
                        "sigma is not a covariance: not symmetric (entry ({i}, {j}) is {a}, \
                         ({j}, {i}) is {b})"
                    )));
                }
            }
        }
        Ok(Self { mu, sigma, n })
    }

    /// Writes `mu` (f64, (d)), `sigma` (f64, (d, d)) and, when known (`n > 0`), `n` (int64
    /// scalar) to an `.npz` archive.
    pub fn save_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        let d = self.dim();
        let mut members = vec![
            ("mu", NpyArray::f64(vec![d], self.mu.clone())),
            ("sigma", NpyArray::f64(vec![d, d], self.sigma.clone())),
        ];
        if self.n > 0 {
            members.push(("n", NpyArray::i64(vec![], vec![self.n as i64])));
        }
        write_npz(path, &members)
    }

    /// Reads an `.npz` holding `mu` (d) and `sigma` (d, d), float32 or float64 (pytorch-fid's
    /// format), and the sample count from an optional one-element `n` (0 when absent or not a
    /// whole non-negative number); other members are ignored.
    pub fn load_npz(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let members = read_npz(path)?;
        let get = |key: &str| {
            members
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, a)| a)
                .ok_or_else(|| {
                    NsgfError::format(
                        path,
                        format!("statistics file has no `{key}` array (needs `mu` and `sigma`)"),
                    )
                })
        };
        let (mu, sigma) = (get("mu")?, get("sigma")?);
        let d = mu.shape.first().copied().unwrap_or(0);
        if mu.shape.len() != 1 || d == 0 || sigma.shape != [d, d] {
            return Err(NsgfError::format(
                path,
                format!(
                    "`mu` must have shape (d,) and `sigma` (d, d); got {:?} and {:?}",
                    mu.shape, sigma.shape
                ),
            ));
        }
        let n = members
            .iter()
            .find(|(k, _)| k == "n")
            .map(|(_, a)| a.to_f64())
            .filter(|v| v.len() == 1 && v[0] >= 0.0 && v[0].fract() == 0.0)
            .map_or(0, |v| v[0] as usize);
        Self::new(mu.to_f64(), sigma.to_f64(), n)
            .map_err(|e| NsgfError::format(path, e.to_string()))
    }
}

/// Streaming mean/covariance accumulator (see the module docs).
#[derive(Clone, Debug)]
pub struct StatsAccumulator {
    d: usize,
    n: usize,
    shift: Vec<f64>,
    sum: Vec<f64>,
    cross: Mat<f64>,
}

impl StatsAccumulator {
    /// An empty accumulator for `d`-dimensional features.
    pub fn new(d: usize) -> Self {
        Self {
            d,
            n: 0,
            shift: Vec::new(),
            sum: vec![0.0; d],
            cross: Mat::zeros(d, d),
        }
    }

    /// Number of rows pushed so far.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Adds the rows of a row-major `(rows, d)` batch.
    pub fn push(&mut self, batch: &[f32]) -> Result<()> {
        let d = self.d;
        if d == 0 || !batch.len().is_multiple_of(d) {
            return Err(NsgfError::Shape(format!(
                "a batch of {} values is not a whole number of {d}-dimensional rows",
                batch.len()
            )));
        }
        if let Some(i) = batch.iter().position(|v| !v.is_finite()) {
            return Err(NsgfError::NonFinite(format!(
                "feature value {} at row {} of the batch",
                batch[i],
                i / d
            )));
        }
        let rows = batch.len() / d;
        if rows == 0 {
            return Ok(());
        }
        if self.shift.is_empty() {
            self.shift = vec![0.0; d];
            for r in 0..rows {
                for (s, &x) in self.shift.iter_mut().zip(&batch[r * d..(r + 1) * d]) {
                    *s += x as f64;
                }
            }
            self.shift.iter_mut().for_each(|s| *s /= rows as f64);
        }
        let y = Mat::<f64>::from_fn(rows, d, |r, j| batch[r * d + j] as f64 - self.shift[j]);
        for r in 0..rows {
            for j in 0..d {
                self.sum[j] += y[(r, j)];
            }
        }
        faer::linalg::matmul::matmul(
            self.cross.as_mut(),
            Accum::Add,
            y.transpose(),
            y.as_ref(),
            1.0,
            Par::Seq,
        );
        self.n += rows;
        Ok(())
    }

    /// Mean and unbiased covariance; needs at least 2 rows.
    pub fn finish(self) -> Result<FeatureStats> {
        let (d, n) = (self.d, self.n);
        if n < 2 {
            return Err(NsgfError::Param(format!(
                "statistics need at least 2 samples (the covariance divides by n - 1), got {n}"
            )));
        }
        let delta: Vec<f64> = self.sum.iter().map(|s| s / n as f64).collect();
        let mu: Vec<f64> = self.shift.iter().zip(&delta).map(|(c, e)| c + e).collect();
        let mut sigma = vec![0.0; d * d];
        let nf = n as f64;
        for i in 0..d {
            for j in 0..=i {
                // Symmetrise: average the two triangles of the accumulated cross products.
                let m = 0.5 * (self.cross[(i, j)] + self.cross[(j, i)]);
                let v = (m - nf * delta[i] * delta[j]) / (nf - 1.0);
                sigma[i * d + j] = v;
                sigma[j * d + i] = v;
            }
        }
        FeatureStats::new(mu, sigma, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_two_pass_formula_and_is_batch_invariant() {
        let (n, d) = (7, 3);
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 37 % 11) as f32) * 0.3 + 100.0)
            .collect();
        let s = FeatureStats::from_features(&x, n, d).unwrap();
        // Two-pass reference.
        let mu: Vec<f64> = (0..d)
            .map(|j| (0..n).map(|i| x[i * d + j] as f64).sum::<f64>() / n as f64)
            .collect();
        for a in 0..d {
            assert!((s.mu[a] - mu[a]).abs() < 1e-12);
            for b in 0..d {
                let c: f64 = (0..n)
                    .map(|i| (x[i * d + a] as f64 - mu[a]) * (x[i * d + b] as f64 - mu[b]))
                    .sum::<f64>()
                    / (n - 1) as f64;
                assert!((s.sigma[a * d + b] - c).abs() < 1e-10, "{a} {b}");
            }
        }
        let mut acc = StatsAccumulator::new(d);
        acc.push(&x[..2 * d]).unwrap();
        acc.push(&x[2 * d..5 * d]).unwrap();
        acc.push(&x[5 * d..]).unwrap();
        let t = acc.finish().unwrap();
        for (u, v) in s.sigma.iter().zip(&t.sigma) {
            assert!((u - v).abs() < 1e-10);
        }
        assert_eq!(t.n, n);
    }

    #[test]
    fn npz_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.npz");
        let s = FeatureStats::new(vec![1.0, 2.0], vec![2.0, 0.5, 0.5, 1.0], 3).unwrap();
        s.save_npz(&p).unwrap();
        let r = FeatureStats::load_npz(&p).unwrap();
        assert_eq!((r.mu, r.sigma, r.n), (s.mu.clone(), s.sigma.clone(), 3));
        // pytorch-fid's files have no `n`: unknown, 0.
        write_npz(
            &p,
            &[
                ("mu", NpyArray::f32(vec![2], vec![1.0, 2.0])),
                ("sigma", NpyArray::f32(vec![2, 2], vec![2.0, 0.5, 0.5, 1.0])),
            ],
        )
        .unwrap();
        let r = FeatureStats::load_npz(&p).unwrap();
        assert_eq!((r.mu, r.sigma, r.n), (s.mu, s.sigma, 0));
        write_npz(&p, &[("mu", NpyArray::f64(vec![2], vec![0.0, 0.0]))]).unwrap();
        let e = FeatureStats::load_npz(&p).unwrap_err().to_string();
        assert!(e.contains("sigma"), "{e}");
        write_npz(
            &p,
            &[
                ("mu", NpyArray::f64(vec![2], vec![0.0, 0.0])),
                ("sigma", NpyArray::f64(vec![3], vec![0.0; 3])),
            ],
        )
        .unwrap();
        assert!(FeatureStats::load_npz(&p).is_err());
    }

    #[test]
    fn needs_two_samples() {
        let e = FeatureStats::from_features(&[1.0, 2.0], 1, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 2"), "{e}");
        assert!(FeatureStats::from_features(&[f32::NAN, 0.0, 1.0, 1.0], 2, 2).is_err());
    }
}
