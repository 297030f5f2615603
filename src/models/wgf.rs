//! Networks of the two neural Wasserstein-gradient-flow baselines of Table 1
//! (`../shared/docs/jko-ept-spec.md`).
//!
//! * [`PReluMlp`] — JKO-Flow's `Fully_connected` body: `Linear(d, H)`–PReLU, `L` ×
//!   [`Linear(H, H)`–Dropout(p)–PReLU], `Linear(H, out)`–PReLU. As a map it is the residual
//!   `T(x) = x + MLP(x)` ([`PReluMlp::push`]); as a critic the scalar `u(x)` ([`PReluMlp::forward`]).
//!   Dropout acts only on an autodiff backend (training); inference runs without it.
//! * [`RatioMlp`] — EPT's density-ratio network `D: R^d → R`, `d`–64–64–64–1 with ReLU,
//!   Xavier-uniform weights (ReLU gain √2) and zero biases, with its input gradient `∇_x D` computed
//!   by forward-mode tangents ([`RatioMlp::forward_with_grad`]) so that a loss on `∇_x D` (EPT's
//!   gradient penalty) is an ordinary differentiable expression.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PRelu, PReluConfig};
use burn::tensor::activation::relu;
use burn::tensor::{backend::Backend, Tensor};

/// Architecture of [`PReluMlp`].
#[derive(Config, Debug, PartialEq)]
pub struct PReluMlpConfig {
    /// Input dimension.
    pub dim: usize,
    /// Output dimension (`dim` for a map, 1 for a critic).
    pub out: usize,
    /// Hidden width `H`.
    #[config(default = 64)]
    pub hidden: usize,
    /// Hidden `H → H` layers `L`.
    #[config(default = 3)]
    pub layers: usize,
    /// Dropout probability after each hidden linear layer.
    #[config(default = 0.04)]
    pub dropout: f64,
}

/// See the module docs.
#[derive(Module, Debug)]
pub struct PReluMlp<B: Backend> {
    linears: Vec<Linear<B>>,
    acts: Vec<PRelu<B>>,
    dropout: Dropout,
}

impl PReluMlpConfig {
    /// PyTorch-default initialisation (burn's Linear default), PReLU slope 0.25.
    pub fn init<B: Backend>(&self, device: &B::Device) -> PReluMlp<B> {
        let mut widths = vec![self.dim];
        widths.extend(std::iter::repeat_n(self.hidden, self.layers + 1));
        widths.push(self.out);
        let linears: Vec<Linear<B>> = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        let acts = (0..linears.len())
            .map(|_| PReluConfig::new().init(device))
            .collect();
        PReluMlp {
            linears,
            acts,
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl<B: Backend> PReluMlp<B> {
    /// `x: (n, d)` → `(n, out)`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.linears.len() - 1;
        let mut h = x;
        for (i, (lin, act)) in self.linears.iter().zip(&self.acts).enumerate() {
            h = lin.forward(h);
            if i > 0 && i < last {
                h = self.dropout.forward(h);
            }
            h = act.forward(h);
        }
        h
    }

    /// The residual map `T(x) = x + MLP(x)` (`out` must equal `dim`).
    pub fn push(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.clone() + self.forward(x)
    }
}

/// Architecture of [`RatioMlp`].
#[derive(Config, Debug, PartialEq)]
pub struct RatioMlpConfig {
    /// Input dimension.
    pub dim: usize,
    /// Hidden width.
    #[config(default = 64)]
    pub hidden: usize,
    /// Hidden layers.
    #[config(default = 3)]
    pub layers: usize,
}

/// See the module docs.
#[derive(Module, Debug)]
pub struct RatioMlp<B: Backend> {
    linears: Vec<Linear<B>>,
}

impl RatioMlpConfig {
    /// Xavier-uniform weights with gain √2 (`nn.init.calculate_gain('relu')`), zero biases.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RatioMlp<B> {
        let mut widths = vec![self.dim];
        widths.extend(std::iter::repeat_n(self.hidden, self.layers));
        widths.push(1);
        let linears = widths
            .windows(2)
            .map(|w| {
                LinearConfig::new(w[0], w[1])
                    .with_initializer(Initializer::XavierUniform {
                        gain: std::f64::consts::SQRT_2,
                    })
                    .init(device)
            })
            .map(|mut l: Linear<B>| {
                // `Param::map` keeps a parameter trainable only if the new tensor requires grad.
                l.bias = l.bias.map(|b| b.map(|t| t.zeros_like().require_grad()));
                l
            })
            .collect();
        RatioMlp { linears }
    }
}

impl<B: Backend> RatioMlp<B> {
    /// `x: (n, d)` → `D(x): (n, 1)`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.linears.len() - 1;
        let mut h = x;
        for (i, lin) in self.linears.iter().enumerate() {
            h = lin.forward(h);
            if i < last {
                h = relu(h);
            }
        }
        h
    }

    /// `D(x): (n, 1)` and `∇_x D(x): (n, d)`, the gradient by forward-mode tangents: with
    /// `z_l = W_l h_{l−1} + b_l` and `h_l = relu(z_l)`, the tangent of input direction `e_j` is
    /// `t_l = 1[z_l > 0] ⊙ (W_l t_{l−1})`, `t_0 = e_j`, and `∂D/∂x_j = W_out t_L`. Every term is
    /// a tensor expression, so a loss on the gradient differentiates through it (the ReLU masks
    /// are constants almost everywhere).
    pub fn forward_with_grad(&self, x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [n, d] = x.dims();
        let last = self.linears.len() - 1;
        let mut h = x.clone();
        // Tangents stacked as (d·n, ·): block j holds direction e_j for every point.
        let eye = Tensor::<B, 2>::eye(d, &x.device()).cast(x.dtype());
        let mut t: Tensor<B, 2> = eye.reshape([d, 1, d]).repeat_dim(1, n).reshape([d * n, d]);
        for (i, lin) in self.linears.iter().enumerate() {
            let z = lin.forward(h);
            let w = lin.weight.val(); // (in, out)
            t = t.matmul(w);
            if i < last {
                let mask = z.clone().greater_elem(0.0).float().cast(z.dtype());
                t = t * mask.clone().repeat_dim(0, d);
                h = relu(z);
            } else {
                h = z;
            }
        }
        // t: (d·n, 1) → (n, d).
        let grad = t.reshape([d, n]).transpose();
        (h, grad)
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
    fn ratio_gradient_matches_finite_differences() {
        let dev = Default::default();
        let net: RatioMlp<Cpu> = RatioMlpConfig::new(2).with_hidden(16).init(&dev);
        let net = net.map(&mut ToF64);
        let xs = vec![0.3, -0.7, 1.2, 0.4, -1.5, 2.0];
        let x =
            Tensor::<Cpu, 2>::from_data(TensorData::new(xs.clone(), [3, 2]), (&dev, DType::F64));
        let (d, g) = net.forward_with_grad(x.clone());
        assert_eq!(to_f64_vec(d).unwrap(), to_f64_vec(net.forward(x)).unwrap());
        let g = to_f64_vec(g).unwrap();
        let h = 1e-6;
        for i in 0..3 {
            for j in 0..2 {
                let mut p = xs.clone();
                let mut m = xs.clone();
                p[2 * i + j] += h;
                m[2 * i + j] -= h;
                let f = |v: Vec<f64>| {
                    let t =
                        Tensor::<Cpu, 2>::from_data(TensorData::new(v, [3, 2]), (&dev, DType::F64));
                    to_f64_vec(net.forward(t)).unwrap()[i]
                };
                let fd = (f(p) - f(m)) / (2.0 * h);
                assert!(
                    (g[2 * i + j] - fd).abs() < 1e-6,
                    "({i},{j}): {} vs {fd}",
                    g[2 * i + j]
                );
            }
        }
    }

    #[test]
    fn biases_start_at_zero_and_train() {
        use crate::backend::CpuAutodiff;
        let dev = Default::default();
        let net: RatioMlp<CpuAutodiff> = RatioMlpConfig::new(2).init(&dev);
        let x = Tensor::<CpuAutodiff, 2>::zeros([1, 2], &dev);
        let grads = net.forward(x).sum().backward();
        let last = net.linears.last().unwrap().bias.as_ref().unwrap();
        assert!(
            last.val().grad(&grads).is_some(),
            "the output bias gets no gradient"
        );
    }

    #[test]
    fn residual_map_and_zero_biases() {
        let dev = Default::default();
        let net: RatioMlp<Cpu> = RatioMlpConfig::new(2).init(&dev);
        for l in &net.linears {
            let b = to_f64_vec(l.bias.as_ref().unwrap().val()).unwrap();
            assert!(b.iter().all(|&v| v == 0.0));
        }
        let map: PReluMlp<Cpu> = PReluMlpConfig::new(2, 2)
            .with_hidden(8)
            .with_layers(2)
            .init(&dev);
        let x = Tensor::<Cpu, 2>::ones([4, 2], &dev);
        let diff = to_f64_vec(map.push(x.clone()) - x.clone() - map.forward(x)).unwrap();
        assert!(diff.iter().all(|v| v.abs() < 1e-6));
    }
}
