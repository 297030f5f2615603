//! The NSGF++ phase-transition time predictor `t_φ: X → (0, 1)` (paper Sec. 4.4, Algorithm 3):
//! trained by least squares on straight paths, `L(φ) = E_{t ~ U(0,1)} ‖t − t_φ(t Y + (1 − t) X₀)‖²`,
//! it tells where on the straight path from the source to the data a sample stands, so that
//! the neural straight flow can continue from there (Algorithm 4).
//!
//! * [`TimeMlp`] for vectors (2-D): `x (n, d)` → Linear–SELU × `layers` → Linear → sigmoid → `(n, 1)`.
//! * [`TimeCnn`] for images (paper E.2): four 3×3 convolutions (stride 1, padding 1) of 32, 64,
//!   128, 256 channels, each followed by ReLU and 2×2 average pooling (floor: 28 → 14 → 7 → 3 → 1,
//!   32 → 16 → 8 → 4 → 2), a linear layer on the flattened features, sigmoid. Input rows are
//!   flattened `C·H·W` images.

use super::ops::{conv2d, NnBackend};
use super::{mse, Regressor};
use crate::error::NsgfError;
use crate::flows::TimePredictor;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, selu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// Architecture of [`TimeMlp`].
#[derive(Config, Debug, PartialEq)]
pub struct TimeMlpConfig {
    /// Input dimension `d`.
    pub dim: usize,
    /// Hidden width.
    #[config(default = 256)]
    pub hidden: usize,
    /// Hidden layers.
    #[config(default = 3)]
    pub layers: usize,
}

/// `t_φ` for vectors, see the module docs.
#[derive(Module, Debug)]
pub struct TimeMlp<B: Backend> {
    layers: Vec<Linear<B>>,
}

impl TimeMlpConfig {
    /// burn's default (Kaiming-uniform) initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> TimeMlp<B> {
        let mut widths = vec![self.dim];
        widths.extend(std::iter::repeat_n(self.hidden, self.layers));
        widths.push(1);
        TimeMlp {
            layers: widths
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
        }
    }
}

impl<B: Backend> TimeMlp<B> {
    /// `x: (n, d)` → `t̂: (n, 1)` in (0, 1).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = x;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = selu(h);
            }
        }
        sigmoid(h)
    }
}

/// Channels of the four convolutions of [`TimeCnn`] (paper E.2).
pub const TIME_CNN_CHANNELS: [usize; 4] = [32, 64, 128, 256];

/// Image shape of a [`TimeCnn`].
#[derive(Config, Debug, PartialEq)]
pub struct TimeCnnConfig {
    /// Image channels.
    pub channels: usize,
    /// Image side (square images, at least 16 so that four poolings leave a pixel).
    pub image_size: usize,
}

/// A 3×3 convolution with bias (PyTorch's default initialisation).
#[derive(Module, Debug)]
struct Conv3<B: Backend> {
    weight: Param<Tensor<B, 4>>,
    bias: Param<Tensor<B, 1>>,
}

/// `t_φ` for images, see the module docs.
#[derive(Module, Debug)]
pub struct TimeCnn<B: Backend> {
    convs: Vec<Conv3<B>>,
    head: Linear<B>,
    channels: usize,
    image_size: usize,
}

impl TimeCnnConfig {
    /// Side after the four 2×2 poolings.
    fn final_side(&self) -> usize {
        (0..TIME_CNN_CHANNELS.len()).fold(self.image_size, |s, _| s / 2)
    }

    /// PyTorch-style initialisation (uniform ±1/√fan_in).
    pub fn init<B: Backend>(&self, device: &B::Device) -> crate::Result<TimeCnn<B>> {
        let side = self.final_side();
        if self.channels == 0 || side == 0 {
            return Err(NsgfError::Param(format!(
                "time predictor CNN needs images of at least 16x16 with ≥ 1 channel (got {}x{}x{})",
                self.channels, self.image_size, self.image_size
            )));
        }
        let mut cin = self.channels;
        let mut convs = Vec::new();
        for &cout in &TIME_CNN_CHANNELS {
            let b = 1.0 / ((cin * 9) as f64).sqrt();
            let init = Initializer::Uniform { min: -b, max: b };
            convs.push(Conv3 {
                weight: init.init([cout, cin, 3, 3], device),
                bias: init.init([cout], device),
            });
            cin = cout;
        }
        let feat = cin * side * side;
        let b = 1.0 / (feat as f64).sqrt();
        let head = LinearConfig::new(feat, 1)
            .with_initializer(Initializer::Uniform { min: -b, max: b })
            .init(device);
        Ok(TimeCnn {
            convs,
            head,
            channels: self.channels,
            image_size: self.image_size,
        })
    }
}

impl<B: NnBackend> TimeCnn<B> {
    /// `x: (n, C·H·W)` flattened images → `t̂: (n, 1)` in (0, 1).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let s = self.image_size;
        let mut h = x.reshape([n, self.channels, s, s]);
        let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        for c in &self.convs {
            h = relu(conv2d(h, c.weight.val(), Some(c.bias.val()), opts.clone()));
            h = avg_pool2d(h, [2, 2], [2, 2], [0, 0], true, false);
        }
        sigmoid(self.head.forward(h.flatten(1, 3)))
    }
}

impl<B: Backend> Regressor<B> for TimeMlp<B> {
    fn regression_loss(
        &self,
        x: Tensor<B, 2>,
        tau: Tensor<B, 2>,
        _u: Option<Tensor<B, 2>>,
    ) -> crate::Result<Tensor<B, 1>> {
        mse(self.forward(x), Some(tau), "time predictor")
    }
}

impl<B: NnBackend> Regressor<B> for TimeCnn<B> {
    fn regression_loss(
        &self,
        x: Tensor<B, 2>,
        tau: Tensor<B, 2>,
        _u: Option<Tensor<B, 2>>,
    ) -> crate::Result<Tensor<B, 1>> {
        let d = self.channels * self.image_size * self.image_size;
        if x.dims()[1] != d {
            return Err(NsgfError::Shape(format!(
                "time predictor for {}x{}x{} images got rows of {} values",
                self.channels,
                self.image_size,
                self.image_size,
                x.dims()[1]
            )));
        }
        mse(self.forward(x), Some(tau), "time predictor")
    }
}

impl<B: Backend> TimePredictor<B> for TimeMlp<B> {
    fn predict(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x)
    }
}

impl<B: NnBackend> TimePredictor<B> for TimeCnn<B> {
    fn predict(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x)
    }
}
