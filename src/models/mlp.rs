//! Time-conditioned MLP velocity field `u_θ(x, τ)` (paper appendix E.1: 3 hidden layers of 256
//! units; SELU activations as in torchcfm's `MLP`, each one fused op, [`super::ops::selu`]). The
//! time `τ ∈ [0, 1]` is appended to `x` as an input feature: input `(n, d + 1)`, output `(n, d)`.

use super::ops::{selu, NnBackend};
use super::{mse, Regressor};
use crate::flows::VectorField;
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{backend::Backend, Tensor};

/// Architecture of [`VelocityMlp`].
#[derive(Config, Debug, PartialEq)]
pub struct MlpConfig {
    /// Data dimension `d`.
    pub dim: usize,
    /// Hidden width.
    #[config(default = 256)]
    pub hidden: usize,
    /// Number of hidden layers.
    #[config(default = 3)]
    pub layers: usize,
}

/// MLP `(x, τ) ↦ u`, see the module docs.
#[derive(Module, Debug)]
pub struct VelocityMlp<B: Backend> {
    layers: Vec<Linear<B>>,
}

impl MlpConfig {
    /// Initialises the network with burn's default (Kaiming-uniform) weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> VelocityMlp<B> {
        let mut widths = vec![self.dim + 1];
        widths.extend(std::iter::repeat_n(self.hidden, self.layers));
        widths.push(self.dim);
        let layers = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        VelocityMlp { layers }
    }
}

impl<B: NnBackend> VelocityMlp<B> {
    /// `x: (n, d)`, `tau: (n, 1)` → `(n, d)`.
    pub fn forward(&self, x: Tensor<B, 2>, tau: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = Tensor::cat(vec![x, tau], 1);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = selu(h);
            }
        }
        h
    }
}

impl<B: NnBackend> VectorField<B> for VelocityMlp<B> {
    fn eval_rows(&self, x: Tensor<B, 2>, tau: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x, tau)
    }
}

impl<B: NnBackend> Regressor<B> for VelocityMlp<B> {
    fn regression_loss(
        &self,
        x: Tensor<B, 2>,
        tau: Tensor<B, 2>,
        u: Option<Tensor<B, 2>>,
    ) -> crate::Result<Tensor<B, 1>> {
        mse(self.forward(x, tau), u, "velocity MLP")
    }
}
