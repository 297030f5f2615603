//! The trajectory pool of Algorithm 1 (an experience-replay buffer, paper Sec. 4.3): samples
//! `(x, τ, u)` of minibatch Sinkhorn flows, stored on the host in f32 (or f16, for images) with a
//! fixed capacity. When full, new samples overwrite the oldest (the paper's suggestion for
//! limited storage).

use crate::error::{NsgfError, Result};
use half::f16;
use rand::{Rng, RngExt};

/// Storage of the pool's `x` and `u` values.
#[derive(Clone, Debug)]
enum Store {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

impl Store {
    fn zeros(n: usize, half: bool) -> Self {
        if half {
            Store::F16(vec![f16::ZERO; n])
        } else {
            Store::F32(vec![0.0; n])
        }
    }
    fn bytes(&self) -> usize {
        match self {
            Store::F32(v) => 4 * v.len(),
            Store::F16(v) => 2 * v.len(),
        }
    }
    fn write(&mut self, at: usize, values: &[f32]) {
        match self {
            Store::F32(v) => v[at..at + values.len()].copy_from_slice(values),
            Store::F16(v) => {
                for (o, &x) in v[at..at + values.len()].iter_mut().zip(values) {
                    *o = f16::from_f32(x);
                }
            }
        }
    }
    fn read_into(&self, at: usize, len: usize, out: &mut Vec<f32>) {
        match self {
            Store::F32(v) => out.extend_from_slice(&v[at..at + len]),
            Store::F16(v) => out.extend(v[at..at + len].iter().map(|x| x.to_f32())),
        }
    }
}

/// Ring buffer of `(x: d, τ: 1, u: d)` samples; memory `4·(2d + 1)` bytes per sample in f32,
/// `2·2d + 4` in f16.
#[derive(Clone, Debug)]
pub struct TrajectoryPool {
    dim: usize,
    capacity: usize,
    x: Store,
    tau: Vec<f32>,
    u: Store,
    next: usize,
    len: usize,
    /// Slot of the oldest sample while the pool is not full (the filled slots are
    /// `start, start + 1, … (mod capacity)`).
    start: usize,
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
        Self::with_precision(dim, capacity, false)
    }

    /// An empty pool storing `x` and `u` in f16 when `half` (half the memory; a relative
    /// rounding error of at most 2⁻¹¹ on each stored value), else in f32.
    pub fn with_precision(dim: usize, capacity: usize, half: bool) -> Result<Self> {
        if dim == 0 || capacity == 0 {
            return Err(NsgfError::Param(format!(
                "trajectory pool needs dim ≥ 1 and capacity ≥ 1 (got {dim}, {capacity})"
            )));
        }
        Ok(Self {
            dim,
            capacity,
            x: Store::zeros(capacity * dim, half),
            tau: vec![0.0; capacity],
            u: Store::zeros(capacity * dim, half),
            next: 0,
            len: 0,
            start: 0,
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
        self.x.bytes() + 4 * self.tau.len() + self.u.bytes()
    }

    /// True when `x` and `u` are stored in f16.
    pub fn is_half(&self) -> bool {
        matches!(self.x, Store::F16(_))
    }

    /// Makes the pushes into an empty pool start at slot `slot mod capacity` (a resumed run
    /// replays the flows still in the pool so that each lands in the slots it had: see
    /// `train::nsgf`).
    pub fn seek(&mut self, slot: usize) -> Result<()> {
        if self.len > 0 {
            return Err(NsgfError::Other(
                "only an empty trajectory pool can be positioned".into(),
            ));
        }
        self.next = slot % self.capacity;
        self.start = self.next;
        Ok(())
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
            self.x.write(i * d, xr);
            self.u.write(i * d, ur);
            self.tau[i] = tau;
            self.next = (self.next + 1) % self.capacity;
            self.len = (self.len + 1).min(self.capacity);
            if self.len == self.capacity {
                // Full: every slot is filled and sample `i` is slot `i`, however it was filled.
                self.start = 0;
            }
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
            let i = (self.start + rng.random_range(0..self.len)) % self.capacity;
            let start = out.x.len();
            self.x.read_into(i * d, d, &mut out.x);
            self.u.read_into(i * d, d, &mut out.u);
            if dtau > 0.0 {
                let s = dtau * rng.random::<f32>();
                for (x, u) in out.x[start..].iter_mut().zip(&out.u[start..]) {
                    *x += s * u;
                }
                out.tau.push(self.tau[i] + s);
            } else {
                out.tau.push(self.tau[i]);
            }
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
    fn half_precision_halves_memory_and_rounds_to_f16() {
        let mut p = TrajectoryPool::with_precision(3, 2, true).unwrap();
        assert!(p.is_half());
        assert_eq!(p.memory_bytes(), 2 * 6 + 4 * 2 + 2 * 6);
        let x = [1.0f32, -0.333_333, 1e-3];
        let u = [2.5f32, 1234.567, -7e-5];
        p.push(&x, 0.2, &u).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let b = p.sample(1, &mut rng).unwrap();
        for (got, want) in b.x.iter().chain(&b.u).zip(x.iter().chain(&u)) {
            assert_eq!(*got, f16::from_f32(*want).to_f32());
            assert!(
                (got - want).abs() <= want.abs() * 2f32.powi(-11),
                "{got} {want}"
            );
        }
        assert_eq!(b.tau, vec![0.2]);
    }

    #[test]
    fn seek_places_the_next_push() {
        let mut p = TrajectoryPool::new(1, 4).unwrap();
        p.seek(6).unwrap();
        p.push(&[5.0], 0.0, &[0.0]).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        assert!(p.sample(10, &mut rng).unwrap().x.iter().all(|&v| v == 5.0));
        assert!(p.seek(0).is_err());
        // Slot 2 holds it: three more pushes fill slots 3, 0, 1 and the fourth overwrites it.
        p.push(&[1.0, 1.0], 0.0, &[0.0; 2]).unwrap();
        let b = p.sample(200, &mut rng).unwrap();
        assert!(b.x.iter().all(|&v| v == 5.0 || v == 1.0) && b.x.contains(&5.0));
        p.push(&[1.0, 2.0], 0.0, &[0.0; 2]).unwrap();
        assert!(p.sample(200, &mut rng).unwrap().x.iter().all(|&v| v != 5.0));
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
