//! The trajectory pool of Algorithm 1 (an experience-replay buffer, paper Sec. 4.3): samples
//! `(x, τ, u)` of minibatch Sinkhorn flows, stored on the host in f32 with a fixed capacity.
//! When full, new samples overwrite the oldest (the paper's suggestion for limited storage).

use crate::error::{NsgfError, Result};
use rand::{Rng, RngExt};

/// Ring buffer of `(x: d, τ: 1, u: d)` samples; memory `4·(2d + 1)` bytes per sample.
#[derive(Clone, Debug)]
pub struct TrajectoryPool {
    dim: usize,
    capacity: usize,
    x: Vec<f32>,
    tau: Vec<f32>,
    u: Vec<f32>,
    next: usize,
    len: usize,
}

/// A training minibatch drawn from the pool (row-major).
#[derive(Clone, Debug)]
pub struct PoolBatch {
    /// `(b, d)`.
    pub x: Vec<f32>,
    /// `(b, 1)`.
    pub tau: Vec<f32>,
    /// `(b, d)`.
    pub u: Vec<f32>,
}

impl TrajectoryPool {
    /// An empty pool for `dim`-dimensional samples holding at most `capacity` samples.
    pub fn new(dim: usize, capacity: usize) -> Result<Self> {
        if dim == 0 || capacity == 0 {
            return Err(NsgfError::Param(format!(
                "trajectory pool needs dim ≥ 1 and capacity ≥ 1 (got {dim}, {capacity})"
            )));
        }
        Ok(Self {
            dim,
            capacity,
            x: vec![0.0; capacity * dim],
            tau: vec![0.0; capacity],
            u: vec![0.0; capacity * dim],
            next: 0,
            len: 0,
        })
    }

    /// Number of stored samples.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Maximum number of samples.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Sample dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Bytes held by the buffers (allocated up front, so bounded by the capacity).
    pub fn memory_bytes(&self) -> usize {
        4 * (self.x.len() + self.tau.len() + self.u.len())
    }

    /// Appends the rows of `x: (b, d)` with time `tau` and targets `u: (b, d)`, overwriting the
    /// oldest samples when full.
    pub fn push(&mut self, x: &[f32], tau: f32, u: &[f32]) -> Result<()> {
        if x.len() != u.len() || !x.len().is_multiple_of(self.dim) {
            return Err(NsgfError::Shape(format!(
                "pool push: x has {} values and u has {}, dimension {}",
                x.len(),
                u.len(),
                self.dim
            )));
        }
        let d = self.dim;
        for (xr, ur) in x.chunks_exact(d).zip(u.chunks_exact(d)) {
            let i = self.next;
            self.x[i * d..(i + 1) * d].copy_from_slice(xr);
            self.u[i * d..(i + 1) * d].copy_from_slice(ur);
            self.tau[i] = tau;
            self.next = (self.next + 1) % self.capacity;
            self.len = (self.len + 1).min(self.capacity);
        }
        Ok(())
    }

    /// Draws `batch` samples uniformly with replacement.
    pub fn sample(&self, batch: usize, rng: &mut impl Rng) -> Result<PoolBatch> {
        self.sample_along_segments(batch, 0.0, rng)
    }

    /// Draws `batch` samples uniformly with replacement and moves each one a uniform fraction
    /// `s ∈ [0, 1)` along its Euler segment: `(x + s·Δτ·u, τ + s·Δτ, u)`.
    ///
    /// A stored sample `(x_k, τ_k, u_k)` of a flow with `T` Euler steps is the start of the
    /// segment `x(τ) = x_k + (τ − τ_k) u_k`, `τ ∈ [τ_k, τ_k + 1/T)`, on which the teacher's
    /// velocity is exactly `u_k`. Training on points of the whole segment (`Δτ = 1/T`) teaches the
    /// network the piecewise-linear teacher path at every `τ`, not only at the `T` grid times, so
    /// that sampling with more steps than `T` still follows it. `Δτ = 0` gives the grid samples.
    pub fn sample_along_segments(
        &self,
        batch: usize,
        dtau: f32,
        rng: &mut impl Rng,
    ) -> Result<PoolBatch> {
        if self.len == 0 {
            return Err(NsgfError::Other(
                "cannot sample from an empty trajectory pool".into(),
            ));
        }
        let d = self.dim;
        let mut out = PoolBatch {
            x: Vec::with_capacity(batch * d),
            tau: Vec::with_capacity(batch),
            u: Vec::with_capacity(batch * d),
        };
        for _ in 0..batch {
            let i = rng.random_range(0..self.len);
            let u = &self.u[i * d..(i + 1) * d];
            if dtau > 0.0 {
                let s = dtau * rng.random::<f32>();
                out.x.extend(
                    self.x[i * d..(i + 1) * d]
                        .iter()
                        .zip(u)
                        .map(|(x, u)| x + s * u),
                );
                out.tau.push(self.tau[i] + s);
            } else {
                out.x.extend_from_slice(&self.x[i * d..(i + 1) * d]);
                out.tau.push(self.tau[i]);
            }
            out.u.extend_from_slice(u);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ring_buffer_overwrites_oldest_and_bounds_memory() {
        let mut p = TrajectoryPool::new(2, 3).unwrap();
        assert_eq!(p.memory_bytes(), 4 * (6 + 3 + 6));
        p.push(&[1.0, 1.0, 2.0, 2.0], 0.0, &[0.1, 0.1, 0.2, 0.2])
            .unwrap();
        assert_eq!(p.len(), 2);
        p.push(&[3.0, 3.0, 4.0, 4.0], 0.5, &[0.3, 0.3, 0.4, 0.4])
            .unwrap();
        assert_eq!(p.len(), 3);
        // Sample 4 (oldest, value 1) was overwritten by 4.
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let b = p.sample(300, &mut rng).unwrap();
        assert!(b.x.chunks(2).all(|r| r[0] != 1.0 && r[0] == r[1]));
        assert!(b
            .x
            .chunks(2)
            .zip(b.u.chunks(2))
            .all(|(x, u)| (u[0] - x[0] / 10.0).abs() < 1e-6));
        assert!(b.x.chunks(2).any(|r| r[0] == 4.0));
        assert_eq!(b.tau.len(), 300);
    }

    #[test]
    fn segment_samples_lie_on_the_euler_segment() {
        let mut p = TrajectoryPool::new(2, 4).unwrap();
        p.push(&[1.0, 2.0], 0.25, &[4.0, -8.0]).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let b = p.sample_along_segments(500, 0.25, &mut rng).unwrap();
        let mut spread = (f32::INFINITY, f32::NEG_INFINITY);
        for i in 0..500 {
            let s = b.tau[i] - 0.25;
            assert!((0.0..0.25).contains(&s));
            assert!((b.x[2 * i] - (1.0 + s * 4.0)).abs() < 1e-6);
            assert!((b.x[2 * i + 1] - (2.0 - s * 8.0)).abs() < 1e-6);
            assert_eq!((b.u[2 * i], b.u[2 * i + 1]), (4.0, -8.0));
            spread = (spread.0.min(s), spread.1.max(s));
        }
        assert!(spread.0 < 0.01 && spread.1 > 0.24, "{spread:?}");
    }

    #[test]
    fn bad_shapes_and_empty_pool() {
        assert!(TrajectoryPool::new(0, 3).is_err());
        let mut p = TrajectoryPool::new(2, 3).unwrap();
        assert!(p.push(&[1.0, 2.0, 3.0], 0.0, &[1.0, 2.0, 3.0]).is_err());
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!(p.sample(1, &mut rng).is_err());
    }
}
