//! Ground cost of the paper (p = 2): C(x, y) = |x − y|² / 2.

use burn::tensor::{backend::Backend, Tensor};

/// Cost matrix `C_ij = |x_i − y_j|² / 2` for `x: (n, d)`, `y: (m, d)` → `(n, m)`.
///
/// Computed as GeomLoss' tensorized backend does, from one matrix product:
/// `C_ij = (|x_i|² + |y_j|²)/2 − ⟨x_i, y_j⟩`, then clamped at 0 (the matmul form can round a
/// true zero to a tiny negative number).
pub fn half_sq_cost<B: Backend>(x: &Tensor<B, 2>, y: &Tensor<B, 2>) -> Tensor<B, 2> {
    let x2 = x.clone().powi_scalar(2).sum_dim(1).mul_scalar(0.5); // (n, 1)
    let y2 = y.clone().powi_scalar(2).sum_dim(1).mul_scalar(0.5); // (m, 1)
    let xy = x.clone().matmul(y.clone().transpose()); // (n, m)
                                                      // (|y_j|²/2 rows, materialised) + |x_i|²/2 = the same sums as x2 + y2ᵀ, but with the (n, m)
                                                      // operand on the left every later op runs in place (on the CPU backend a broadcast on
                                                      // the left operand takes a slow strided path).
    let n = x2.dims()[0];
    (y2.transpose().repeat_dim(0, n) + x2 - xy).clamp_min(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use burn::tensor::{DType, TensorData};

    #[test]
    fn matches_explicit_differences() {
        let dev = Default::default();
        let xs = vec![0.0, 0.0, 1.0, 2.0, -3.0, 0.5];
        let ys = vec![1.0, 1.0, 0.0, -2.0];
        let x =
            Tensor::<Cpu, 2>::from_data(TensorData::new(xs.clone(), [3, 2]), (&dev, DType::F64));
        let y =
            Tensor::<Cpu, 2>::from_data(TensorData::new(ys.clone(), [2, 2]), (&dev, DType::F64));
        let c = crate::convert::to_f64_vec(half_sq_cost(&x, &y)).unwrap();
        for i in 0..3 {
            for j in 0..2 {
                let dx = xs[2 * i] - ys[2 * j];
                let dy = xs[2 * i + 1] - ys[2 * j + 1];
                assert!((c[i * 2 + j] - 0.5 * (dx * dx + dy * dy)).abs() < 1e-12);
            }
        }
        // Self cost: zero diagonal, never negative.
        let cxx = crate::convert::to_f64_vec(half_sq_cost(&x, &x)).unwrap();
        assert!(cxx.iter().all(|&v| v >= 0.0));
        assert!((0..3).all(|i| cxx[i * 3 + i].abs() < 1e-12));
    }
}
