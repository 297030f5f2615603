//! Reflow couplings for k-rectified flow (Liu et al. 2023, the paper's k-RF rows): the
//! `(k−1)`-th model's ODE maps fresh source points `x₀` to `x₁ = Φ(x₀)`, and the `k`-th model
//! trains on the pairs `(x₀, x₁)` with straight-line targets `x₁ − x₀`.

use super::samplers::{integrate, Solver};
use super::VectorField;
use crate::convert::{rows_to_tensor, to_f32_vec};
use crate::error::{NsgfError, Result};
use burn::tensor::backend::Backend;
use rand::rngs::StdRng;
use rand::RngExt;

/// A fixed set of `(x₀, x₁)` pairs, row-major `(n, d)` each, sampled with replacement.
#[derive(Clone, Debug)]
pub struct Coupling {
    pub dim: usize,
    pub x0: Vec<f32>,
    pub x1: Vec<f32>,
}

impl Coupling {
    /// Pushes the `(n, d)` source points `x0` through `field` from τ = 0 to 1 with `steps`
    /// uniform steps of `solver` (in chunks of 4096 rows) and keeps the pairs.
    pub fn from_flow<B: Backend>(
        field: &dyn VectorField<B>,
        x0: Vec<f32>,
        dim: usize,
        steps: usize,
        solver: Solver,
        device: &B::Device,
    ) -> Result<Self> {
        if dim == 0 || x0.is_empty() || !x0.len().is_multiple_of(dim) {
            return Err(NsgfError::Shape(format!(
                "reflow coupling needs (n, d) source points with n, d ≥ 1: {} values, d = {dim}",
                x0.len()
            )));
        }
        let mut x1 = Vec::with_capacity(x0.len());
        for chunk in x0.chunks(4096 * dim) {
            let start = rows_to_tensor::<B>(chunk.to_vec(), chunk.len() / dim, dim, device);
            let (end, _) = integrate(field, start, 0.0, 1.0, steps, solver, |_, _| {})?;
            x1.extend(to_f32_vec(end)?);
        }
        if let Some(i) = x1.iter().position(|v| !v.is_finite()) {
            return Err(NsgfError::NonFinite(format!(
                "the previous flow sent source row {} to a NaN or infinity",
                i / dim
            )));
        }
        Ok(Self { dim, x0, x1 })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.x0.len() / self.dim
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.x0.is_empty()
    }

    /// `batch` pairs drawn uniformly with replacement: `(x0, x1)`, `(batch, d)` each.
    pub fn sample(&self, batch: usize, rng: &mut StdRng) -> (Vec<f32>, Vec<f32>) {
        let d = self.dim;
        let mut a = Vec::with_capacity(batch * d);
        let mut b = Vec::with_capacity(batch * d);
        for _ in 0..batch {
            let i = rng.random_range(0..self.len());
            a.extend_from_slice(&self.x0[i * d..(i + 1) * d]);
            b.extend_from_slice(&self.x1[i * d..(i + 1) * d]);
        }
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use burn::tensor::Tensor;
    use rand::SeedableRng;

    /// u(x, τ) = c (a constant field): Φ(x₀) = x₀ + c.
    struct Shift(f32);
    impl VectorField<Cpu> for Shift {
        fn eval_rows(&self, x: Tensor<Cpu, 2>, _tau: Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
            x.zeros_like().add_scalar(self.0)
        }
    }

    #[test]
    fn coupling_pairs_are_the_previous_flow_map() {
        let dev = Default::default();
        let x0: Vec<f32> = (0..5000 * 2).map(|i| (i % 17) as f32 * 0.1).collect();
        let c = Coupling::from_flow::<Cpu>(&Shift(0.5), x0.clone(), 2, 10, Solver::Euler, &dev)
            .unwrap();
        assert_eq!(c.len(), 5000);
        assert!(c
            .x0
            .iter()
            .zip(&c.x1)
            .all(|(a, b)| (b - a - 0.5).abs() < 1e-5));
        let mut rng = StdRng::seed_from_u64(2);
        let (a, b) = c.sample(64, &mut rng);
        assert_eq!((a.len(), b.len()), (128, 128));
        assert!(a.iter().zip(&b).all(|(a, b)| (b - a - 0.5).abs() < 1e-5));
        assert!(
            Coupling::from_flow::<Cpu>(&Shift(0.5), vec![1.0; 3], 2, 10, Solver::Euler, &dev)
                .is_err()
        );
    }
}
