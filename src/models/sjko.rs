//! The networks of S-JKO (`../shared/docs/sjko-spec.md`), on rows `(n, d)` like every other
//! model of the crate, behind two small traits: [`Generator`] `T(x, z)` and [`Potential`] `v(y)`.
//!
//! **2-D** (the official `models/toy/TOY.py`), width `H` = 128 and SiLU throughout:
//!
//! * [`ResNetFc`] — `h = Linear(d, H)(x)`, then `B` residual blocks
//!   `h ← (h + block(h)) / √2` with `block` = 3 × [Linear(H, H), SiLU].
//! * [`ToyGenerator`] — `T(x, z) = out(ResNetFc(x) + zmod(z))` with
//!   `zmod = Linear(n_z, H)–SiLU–Linear(H, H)` and `out = Linear(H, H)–SiLU–Linear(H, d)`.
//! * [`ToyPotential`] — `v(y) = Linear(H, H)–SiLU–Linear(H, 1)` of `ResNetFc(y)`, with its input
//!   gradient by forward-mode tangents ([`ToyPotential::forward_with_grad`]) so that the R1
//!   penalty `|∇_y v|²` is an ordinary differentiable expression (burn has no double backward).
//!
//! **Images** (ours; the official NCSN++ generator and DDGAN discriminator are far beyond a
//! 2-core CPU):
//!
//! * [`ImageGenerator`] — `T(x, z) = x + U(x, W · pn(z))`: the project's ADM UNet `U`
//!   ([`crate::models::unet`]) with the latent, pixel-normalised (`pn(z) = z / √(mean z² + 10⁻⁸)`,
//!   as the official z-mapping) and mapped linearly to the `model_channels` features that the
//!   UNet's time-embedding MLP takes in place of the sinusoidal time features. The UNet's
//!   output convolution starts at zero, so `T` starts as the identity — phase 0's reference.
//! * [`ImagePotential`] — `v(y) = w · mean_{HW} h_L + b` with `h_0 = y` and
//!   `h_l = SiLU(conv₃(h_{l−1}))` (stride 1 for the first layer, 2 after; no normalisation, so
//!   `v` of one image does not depend on the batch). Its R1 term uses a Hutchinson estimate:
//!   for a probe `u ~ N(0, I)`, `E_u (∇v · u)² = |∇v|²`, and `∇v · u` is one forward-mode
//!   tangent through the network ([`ImagePotential::forward_with_directional`]).

use super::ops::NnBackend;
use super::unet::{Conv, UNet, UNetConfig};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{backend::Backend, Tensor};

/// A generator `T(x, z)` on rows.
pub trait Generator<B: Backend>: Module<B> {
    /// `x: (n, d)`, `z: (n, n_z)` → `(n, d)`.
    fn generate(&self, x: Tensor<B, 2>, z: Tensor<B, 2>) -> Tensor<B, 2>;
}

/// A potential `v(y)` on rows, with what its R1 penalty needs.
pub trait Potential<B: Backend>: Module<B> {
    /// Whether [`Potential::value_and_slope`] uses its probe (a Hutchinson estimate) or
    /// ignores it (the exact gradient).
    const NEEDS_PROBE: bool;

    /// `v(y)`: `(n, d)` → `(n, 1)`.
    fn value(&self, y: Tensor<B, 2>) -> Tensor<B, 2>;

    /// `v(y)` and a tensor `g` whose squared row sums are `|∇_y v(y)|²` (exact) or an unbiased
    /// estimate of it (`g = ∇_y v · u` for the probe rows `u: (n, d)`, `u ~ N(0, I)`).
    fn value_and_slope(&self, y: Tensor<B, 2>, probe: Tensor<B, 2>)
        -> (Tensor<B, 2>, Tensor<B, 2>);
}

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
fn silu_grad<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
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

impl<B: Backend> Generator<B> for ToyGenerator<B> {
    fn generate(&self, x: Tensor<B, 2>, z: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x, z)
    }
}

impl<B: Backend> Potential<B> for ToyPotential<B> {
    const NEEDS_PROBE: bool = false;

    fn value(&self, y: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(y)
    }

    fn value_and_slope(
        &self,
        y: Tensor<B, 2>,
        _probe: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        self.forward_with_grad(y)
    }
}

/// Architecture of the S-JKO image networks.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageNetConfig {
    /// The generator's UNet (its `in_channels` and `image_size` are the data's).
    pub unet: UNetConfig,
    /// Latent dimension `n_z`.
    pub nz: usize,
    /// Channels of the potential's convolutions (the first at full resolution, each next one
    /// halves the side).
    pub potential_channels: Vec<usize>,
}

/// The S-JKO image generator `T(x, z) = x + U(x, W · pn(z))` (see the module docs).
#[derive(Module, Debug)]
pub struct ImageGenerator<B: Backend> {
    unet: UNet<B>,
    latent: Linear<B>,
}

/// The S-JKO image potential (see the module docs).
#[derive(Module, Debug)]
pub struct ImagePotential<B: Backend> {
    convs: Vec<Conv<B>>,
    out: Linear<B>,
    channels: usize,
    side: usize,
}

impl ImageNetConfig {
    /// A generator with fresh weights.
    pub fn generator<B: NnBackend>(&self, device: &B::Device) -> crate::Result<ImageGenerator<B>> {
        let unet = self.unet.init(device)?;
        Ok(ImageGenerator {
            latent: LinearConfig::new(self.nz, unet.model_channels()).init(device),
            unet,
        })
    }

    /// A potential with fresh weights.
    pub fn potential<B: Backend>(&self, device: &B::Device) -> ImagePotential<B> {
        let mut ci = self.unet.in_channels;
        let convs = self
            .potential_channels
            .iter()
            .enumerate()
            .map(|(l, &co)| {
                let conv = Conv::new(ci, co, 3, if l == 0 { 1 } else { 2 }, false, device);
                ci = co;
                conv
            })
            .collect();
        ImagePotential {
            convs,
            out: LinearConfig::new(ci, 1).init(device),
            channels: self.unet.in_channels,
            side: self.unet.image_size,
        }
    }
}

/// `z / √(mean_j z_j² + 10⁻⁸)` per row.
fn pixel_norm<B: Backend>(z: Tensor<B, 2>) -> Tensor<B, 2> {
    let ms = z.clone().powi_scalar(2).mean_dim(1).add_scalar(1e-8).sqrt();
    z / ms
}

impl<B: NnBackend> ImageGenerator<B> {
    /// `T(x, z)`: `x: (n, C·H·W)` rows, `z: (n, n_z)` → `(n, C·H·W)`.
    pub fn forward(&self, x: Tensor<B, 2>, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let [c, h, w] = self.unet.image_shape();
        let features = self.latent.forward(pixel_norm(z));
        let u = self
            .unet
            .forward_embedded(x.clone().reshape([n, c, h, w]), features);
        x + u.reshape([n, d])
    }
}

impl<B: NnBackend> Generator<B> for ImageGenerator<B> {
    fn generate(&self, x: Tensor<B, 2>, z: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x, z)
    }
}

impl<B: NnBackend> ImagePotential<B> {
    fn images(&self, y: Tensor<B, 2>) -> Tensor<B, 4> {
        let n = y.dims()[0];
        y.reshape([n, self.channels, self.side, self.side])
    }

    /// `(n, c, h, w)` → `(n, c)`: the spatial mean.
    fn pool(h: Tensor<B, 4>) -> Tensor<B, 2> {
        let [n, c, hh, ww] = h.dims();
        h.reshape([n, c, hh * ww]).mean_dim(2).reshape([n, c])
    }

    /// `v(y)`: `(n, C·H·W)` → `(n, 1)`.
    pub fn forward(&self, y: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = self.images(y);
        for conv in &self.convs {
            h = silu(conv.forward(h));
        }
        self.out.forward(Self::pool(h))
    }

    /// `v(y): (n, 1)` and the directional derivatives `∇_y v(y) · u: (n, 1)` along the rows of
    /// `u: (n, C·H·W)`, by one forward-mode tangent.
    pub fn forward_with_directional(
        &self,
        y: Tensor<B, 2>,
        u: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let (mut h, mut t) = (self.images(y), self.images(u));
        for conv in &self.convs {
            let z = conv.forward(h);
            t = conv.forward_tangent(t) * silu_grad(z.clone());
            h = silu(z);
        }
        let v = self.out.forward(Self::pool(h));
        let g = Self::pool(t).matmul(self.out.weight.val());
        (v, g)
    }
}

impl<B: NnBackend> Potential<B> for ImagePotential<B> {
    const NEEDS_PROBE: bool = true;

    fn value(&self, y: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(y)
    }

    fn value_and_slope(
        &self,
        y: Tensor<B, 2>,
        probe: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        self.forward_with_directional(y, probe)
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

    fn tiny_image_net() -> ImageNetConfig {
        ImageNetConfig {
            unet: UNetConfig::new(1, 8, 32, 1, vec![1, 2], vec![]),
            nz: 3,
            potential_channels: vec![4, 6, 5],
        }
    }

    #[test]
    fn image_potential_directional_derivative_matches_finite_differences() {
        let dev = Default::default();
        let (n, d) = (2, 64);
        let ys: Vec<f64> = (0..n * d)
            .map(|i| ((i * 37 % 23) as f64 / 11.0) - 1.0)
            .collect();
        let us: Vec<f64> = (0..n * d)
            .map(|i| ((i * 17 % 13) as f64 / 6.0) - 1.0)
            .collect();
        let rows = |v: Vec<f64>| {
            Tensor::<Cpu, 2>::from_data(TensorData::new(v, [n, d]), (&dev, DType::F64))
        };
        // A random initialisation whose derivatives are all clearly away from 0 (about one in
        // 3,000 has one under 1e-6, which made this test fail now and then).
        let (net, v, g) = (0..10)
            .map(|_| {
                let net = tiny_image_net().potential::<Cpu>(&dev).map(&mut ToF64);
                let (v, g) = net.forward_with_directional(rows(ys.clone()), rows(us.clone()));
                (net, v, g)
            })
            .find(|(_, _, g)| {
                to_f64_vec(g.clone())
                    .unwrap()
                    .iter()
                    .all(|d| d.abs() > 1e-4)
            })
            .expect("ten initialisations with a zero derivative");
        assert_eq!(v.dims(), [n, 1]);
        assert_eq!(
            to_f64_vec(v).unwrap(),
            to_f64_vec(net.forward(rows(ys.clone()))).unwrap()
        );
        let g = to_f64_vec(g).unwrap();
        let e = 1e-6;
        let shifted = |s: f64| {
            let y: Vec<f64> = ys.iter().zip(&us).map(|(y, u)| y + s * u).collect();
            to_f64_vec(net.forward(rows(y))).unwrap()
        };
        let (p, m) = (shifted(e), shifted(-e));
        for i in 0..n {
            let fd = (p[i] - m[i]) / (2.0 * e);
            assert!(g[i].abs() > 1e-6, "a zero derivative tests nothing");
            assert!(
                (g[i] - fd).abs() < 1e-7 * (1.0 + fd.abs()),
                "{i}: {} vs {fd}",
                g[i]
            );
        }
    }

    #[test]
    fn image_generator_starts_as_the_identity_and_reads_the_latent() {
        let dev = Default::default();
        let cfg = tiny_image_net();
        let g = cfg.generator::<Cpu>(&dev).unwrap();
        let x =
            Tensor::<Cpu, 2>::random([3, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let z =
            Tensor::<Cpu, 2>::random([3, 3], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let out = to_f64_vec(g.forward(x.clone(), z.clone())).unwrap();
        assert_eq!(out, to_f64_vec(x.clone()).unwrap());
        // With a non-zero output layer, the latent changes the image.
        let g = g.map(&mut Perturb);
        let a = to_f64_vec(g.forward(x.clone(), z.clone())).unwrap();
        let b = to_f64_vec(g.forward(x, z.mul_scalar(-1.0))).unwrap();
        assert!(a.iter().zip(&b).any(|(a, b)| (a - b).abs() > 1e-4));
    }

    /// Adds 0.05 to every parameter (so zero-initialised layers become active).
    struct Perturb;
    impl<B: Backend> burn::module::ModuleMapper<B> for Perturb {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<B, D>>,
        ) -> burn::module::Param<Tensor<B, D>> {
            let (id, t, m) = param.consume();
            burn::module::Param::from_mapped_value(id, t.add_scalar(0.05), m)
        }
    }
}
