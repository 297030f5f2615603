//! The 2-D networks of S-JKO (the official `models/toy/TOY.py`; `../shared/docs/sjko-spec.md`),
//! width `H` = 128 and SiLU throughout:
//!
//! * [`ResNetFc`] — `h = Linear(d, H)(x)`, then `B` residual blocks
//!   `h ← (h + block(h)) / √2` with `block` = 3 × [Linear(H, H), SiLU].
//! * [`ToyGenerator`] — `T(x, z) = out(ResNetFc(x) + zmod(z))` with
//!   `zmod = Linear(n_z, H)–SiLU–Linear(H, H)` and `out = Linear(H, H)–SiLU–Linear(H, d)`.
//! * [`ToyPotential`] — `v(y) = Linear(H, H)–SiLU–Linear(H, 1)` of `ResNetFc(y)`, with its input
//!   gradient by forward-mode tangents ([`ToyPotential::forward_with_grad`]) so that the R1
//!   penalty `|∇_y v|²` is an ordinary differentiable expression (burn has no double backward).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{backend::Backend, Tensor};

/// Architecture of the S-JKO toy networks.
#[derive(Config, Debug, PartialEq)]
pub struct ToyNetConfig {
    /// Data dimension `d`.
    pub dim: usize,
    /// Hidden width `H`.
    #[config(default = 128)]
    pub hidden: usize,
    /// Residual blocks `B` of the trunk.
    #[config(default = 3)]
    pub blocks: usize,
    /// Latent dimension `n_z` of the generator.
    #[config(default = 2)]
    pub nz: usize,
}

/// The residual trunk (see the module docs).
#[derive(Module, Debug)]
pub struct ResNetFc<B: Backend> {
    map: Linear<B>,
    blocks: Vec<Vec<Linear<B>>>,
}

/// The S-JKO toy generator `T(x, z)`.
#[derive(Module, Debug)]
pub struct ToyGenerator<B: Backend> {
    trunk: ResNetFc<B>,
    z_in: Linear<B>,
    z_out: Linear<B>,
    out_hidden: Linear<B>,
    out: Linear<B>,
}

/// The S-JKO toy potential `v(y)`.
#[derive(Module, Debug)]
pub struct ToyPotential<B: Backend> {
    trunk: ResNetFc<B>,
    out_hidden: Linear<B>,
    out: Linear<B>,
}

impl ToyNetConfig {
    fn linear<B: Backend>(&self, i: usize, o: usize, device: &B::Device) -> Linear<B> {
        // burn's default: PyTorch's nn.Linear initialisation.
        LinearConfig::new(i, o).init(device)
    }

    fn trunk<B: Backend>(&self, device: &B::Device) -> ResNetFc<B> {
        let h = self.hidden;
        ResNetFc {
            map: self.linear(self.dim, h, device),
            blocks: (0..self.blocks)
                .map(|_| (0..3).map(|_| self.linear(h, h, device)).collect())
                .collect(),
        }
    }

    /// A generator with fresh weights.
    pub fn generator<B: Backend>(&self, device: &B::Device) -> ToyGenerator<B> {
        let h = self.hidden;
        ToyGenerator {
            trunk: self.trunk(device),
            z_in: self.linear(self.nz, h, device),
            z_out: self.linear(h, h, device),
            out_hidden: self.linear(h, h, device),
            out: self.linear(h, self.dim, device),
        }
    }

    /// A potential with fresh weights.
    pub fn potential<B: Backend>(&self, device: &B::Device) -> ToyPotential<B> {
        let h = self.hidden;
        ToyPotential {
            trunk: self.trunk(device),
            out_hidden: self.linear(h, h, device),
            out: self.linear(h, 1, device),
        }
    }
}

/// `silu′(z) = σ(z) (1 + z (1 − σ(z)))`.
fn silu_grad<B: Backend>(z: Tensor<B, 2>) -> Tensor<B, 2> {
    let s = sigmoid(z.clone());
    s.clone() * (z * (s.neg().add_scalar(1.0))).add_scalar(1.0)
}

/// Forward-mode step through `Linear` then SiLU: value `h`, tangents `t: (k·n, in)` stacked
/// in `k` blocks of the `n` rows.
fn linear_silu_tangent<B: Backend>(
    lin: &Linear<B>,
    h: Tensor<B, 2>,
    t: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let z = lin.forward(h);
    let k = t.dims()[0] / z.dims()[0];
    let t = t.matmul(lin.weight.val()) * silu_grad(z.clone()).repeat_dim(0, k);
    (silu(z), t)
}

impl<B: Backend> ResNetFc<B> {
    /// `x: (n, d)` → `(n, H)`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = self.map.forward(x);
        for block in &self.blocks {
            let mut r = h.clone();
            for lin in block {
                r = silu(lin.forward(r));
            }
            h = (h + r).mul_scalar(std::f64::consts::FRAC_1_SQRT_2);
        }
        h
    }

    /// The value and the tangents `t: (k·n, d)` pushed through the trunk (`(k·n, H)`).
    fn forward_tangent(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let mut h = self.map.forward(x);
        let mut t = t.matmul(self.map.weight.val());
        for block in &self.blocks {
            let (mut r, mut tr) = (h.clone(), t.clone());
            for lin in block {
                (r, tr) = linear_silu_tangent(lin, r, tr);
            }
            h = (h + r).mul_scalar(std::f64::consts::FRAC_1_SQRT_2);
            t = (t + tr).mul_scalar(std::f64::consts::FRAC_1_SQRT_2);
        }
        (h, t)
    }
}

impl<B: Backend> ToyGenerator<B> {
    /// `T(x, z)`: `x: (n, d)`, `z: (n, n_z)` → `(n, d)`.
    pub fn forward(&self, x: Tensor<B, 2>, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let zh = self.z_out.forward(silu(self.z_in.forward(z)));
        let h = self.trunk.forward(x) + zh;
        self.out.forward(silu(self.out_hidden.forward(h)))
    }

    /// The latent dimension `n_z`.
    pub fn nz(&self) -> usize {
        self.z_in.weight.dims()[0]
    }
}

impl<B: Backend> ToyPotential<B> {
    /// `v(y)`: `(n, d)` → `(n, 1)`.
    pub fn forward(&self, y: Tensor<B, 2>) -> Tensor<B, 2> {
        self.out
            .forward(silu(self.out_hidden.forward(self.trunk.forward(y))))
    }

    /// `v(y): (n, 1)` and `∇_y v(y): (n, d)` by forward-mode tangents, one direction `e_j` per
    /// input coordinate (the `d` directions stacked as `(d·n, ·)` blocks).
    pub fn forward_with_grad(&self, y: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [n, d] = y.dims();
        let eye = Tensor::<B, 2>::eye(d, &y.device()).cast(y.dtype());
        let t0 = eye.reshape([d, 1, d]).repeat_dim(1, n).reshape([d * n, d]);
        let (h, t) = self.trunk.forward_tangent(y, t0);
        let (h, t) = linear_silu_tangent(&self.out_hidden, h, t);
        let v = self.out.forward(h);
        let g = t.matmul(self.out.weight.val()); // (d·n, 1)
        (v, g.reshape([d, n]).transpose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::convert::to_f64_vec;
    use crate::models::ToF64;
    use burn::tensor::{DType, TensorData};

    #[test]
    fn potential_gradient_matches_finite_differences() {
        let dev = Default::default();
        let cfg = ToyNetConfig::new(2).with_hidden(16).with_blocks(2);
        let net = cfg.potential::<Cpu>(&dev).map(&mut ToF64);
        let ys = vec![0.3, -0.7, 1.2, 0.4, -1.5, 2.0];
        let y = |v: Vec<f64>| {
            Tensor::<Cpu, 2>::from_data(TensorData::new(v, [3, 2]), (&dev, DType::F64))
        };
        let (v, g) = net.forward_with_grad(y(ys.clone()));
        assert_eq!(
            to_f64_vec(v).unwrap(),
            to_f64_vec(net.forward(y(ys.clone()))).unwrap()
        );
        let g = to_f64_vec(g).unwrap();
        let e = 1e-6;
        for i in 0..3 {
            for j in 0..2 {
                let (mut p, mut m) = (ys.clone(), ys.clone());
                p[2 * i + j] += e;
                m[2 * i + j] -= e;
                let f = |v: Vec<f64>| to_f64_vec(net.forward(y(v))).unwrap()[i];
                let fd = (f(p) - f(m)) / (2.0 * e);
                assert!(
                    (g[2 * i + j] - fd).abs() < 1e-7,
                    "({i},{j}): {} vs {fd}",
                    g[2 * i + j]
                );
            }
        }
    }

    #[test]
    fn shapes_and_latent_dimension() {
        let dev = Default::default();
        let cfg = ToyNetConfig::new(2).with_nz(3);
        let g = cfg.generator::<Cpu>(&dev);
        assert_eq!(g.nz(), 3);
        let x = Tensor::<Cpu, 2>::ones([5, 2], &dev);
        let z = Tensor::<Cpu, 2>::zeros([5, 3], &dev);
        assert_eq!(g.forward(x.clone(), z).dims(), [5, 2]);
        assert_eq!(cfg.potential::<Cpu>(&dev).forward(x).dims(), [5, 1]);
    }
}
