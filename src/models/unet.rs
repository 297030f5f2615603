//! The ADM UNet (Dhariwal & Nichol, "Diffusion models beat GANs", as guided-diffusion's
//! `UNetModel`) with the semantics of torchcfm's `UNetModelWrapper`, the velocity network of
//! the paper's image experiments (appendix E.2).
//!
//! `u_θ(x, t)`: input `x [N, C, H, W]` and `t [N]` (in [0, 1], unscaled), output `[N, C, H, W]`.
//!
//! * time embedding: `e = W₂ SiLU(W₁ [cos(t·f), sin(t·f)] + b₁) + b₂`, `f_i = 10000^(−i/half)`,
//!   width `4·model_channels`;
//! * ResBlock: `h = conv₃(SiLU(GN(x)))`, `h = conv₃⁰(SiLU(GN(h + W_e SiLU(e) + b_e)))`,
//!   `out = skip(x) + h` (skip = 1×1 conv when the channels change; `conv⁰` zero-initialised);
//! * attention block: `x + proj⁰(attention(qkv(GN(x))))` over the `H·W` positions, heads
//!   `num_heads` or `C / num_head_channels`, legacy QKV layout;
//! * encoder: conv₃, then per level `num_res_blocks` ResBlocks (+ attention where the
//!   downsampling factor is in `attention_resolutions`) and a stride-2 conv between levels;
//!   middle: ResBlock, attention, ResBlock; decoder: per level (reversed) `num_res_blocks + 1`
//!   ResBlocks on the concatenation with the matching encoder output (+ attention), nearest ×2
//!   upsampling + conv₃ between levels; out: `conv₃⁰(SiLU(GN(h)))`.
//!
//! torchcfm's `attention_resolutions = "16"` means the downsampling factor `image_size / 16`:
//! 1 for 28×28 MNIST (attention at full resolution), 2 for 32×32 CIFAR-10 (at 16×16).
//! GroupNorm has 32 groups and ε = 1e-5, as guided-diffusion's `normalization`.
//! Parameter names follow torchcfm's `state_dict` ([`UNet::load_torchcfm`]).

use super::ops::{self, attention, conv2d, group_norm, NnBackend, NormSpec};
use super::{mse, Regressor};
use crate::error::NsgfError;
use crate::flows::VectorField;
use crate::io::SafetensorsStore;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use std::path::Path;

/// GroupNorm groups of every normalisation layer (guided-diffusion's `GroupNorm32`).
pub const NORM_GROUPS: usize = 32;
/// GroupNorm epsilon.
pub const NORM_EPS: f64 = 1e-5;

/// Architecture of [`UNet`] (torchcfm `UNetModelWrapper` arguments).
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Image channels (input = output).
    pub in_channels: usize,
    /// Image side (square images).
    pub image_size: usize,
    /// Base channels (`num_channels`).
    pub model_channels: usize,
    /// ResBlocks per level.
    pub num_res_blocks: usize,
    /// Channel multiplier per level.
    pub channel_mult: Vec<usize>,
    /// Resolutions with attention, torchcfm style (`"16"` → `[16]`): attention where the
    /// downsampling factor equals `image_size / r`.
    pub attention_resolutions: Vec<usize>,
    /// Attention heads (used when `num_head_channels` is `None`).
    #[config(default = 1)]
    pub num_heads: usize,
    /// Channels per head (torchcfm `num_head_channels`; `None` = -1).
    #[config(default = "None")]
    pub num_head_channels: Option<usize>,
}

impl UNetConfig {
    /// The paper's MNIST network (channels 32, depth 1, mult [1, 2, 2], 1 head, attention
    /// "16"): 1,075,361 parameters.
    pub fn mnist() -> Self {
        Self::new(1, 28, 32, 1, vec![1, 2, 2], vec![16])
    }

    /// The paper's CIFAR-10 network (channels 128, depth 2, mult [1, 2, 2, 2], 64 channels per
    /// head, attention "16"): about 35.75 M parameters.
    pub fn cifar10() -> Self {
        Self::new(3, 32, 128, 2, vec![1, 2, 2, 2], vec![16])
            .with_num_heads(4)
            .with_num_head_channels(Some(64))
    }

    /// The MNIST network's shape (channels 32, depth 1, mult [1, 2, 2], 1 head, attention "16")
    /// for 32×32 RGB: CIFAR-10 at a size a CPU trains (`configs/cifar10-small`); 1,113,955
    /// parameters (torchcfm's count for these arguments).
    pub fn small() -> Self {
        Self::new(3, 32, 32, 1, vec![1, 2, 2], vec![16])
    }

    /// A small network for tests (the parity fixture's): 3×16×16, channels 32, mult [1, 2],
    /// depth 1, 16 channels per head, attention at both resolutions ("16,8"): 715,363
    /// parameters.
    pub fn tiny() -> Self {
        Self::new(3, 16, 32, 1, vec![1, 2], vec![16, 8]).with_num_head_channels(Some(16))
    }

    /// `mnist`, `cifar10` / `cifar`, `small`, or `tiny`.
    pub fn named(name: &str) -> crate::Result<Self> {
        match name {
            "mnist" => Ok(Self::mnist()),
            "cifar10" | "cifar" => Ok(Self::cifar10()),
            "small" => Ok(Self::small()),
            "tiny" => Ok(Self::tiny()),
            other => Err(NsgfError::Param(format!(
                "unknown UNet config {other:?} (mnist, cifar10, small, tiny)"
            ))),
        }
    }

    /// Downsampling factors that carry attention.
    fn attention_ds(&self) -> Vec<usize> {
        self.attention_resolutions
            .iter()
            .filter(|&&r| r > 0)
            .map(|&r| self.image_size / r)
            .collect()
    }

    fn heads(&self, ch: usize) -> usize {
        match self.num_head_channels {
            Some(hc) if hc > 0 => ch / hc,
            _ => self.num_heads,
        }
    }

    /// Checks the settings: every channel count divisible by the 32 norm groups and by the
    /// heads, the image side divisible by the total downsampling.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(NsgfError::Param(format!("UNet config: {m}")));
        if self.in_channels == 0 || self.image_size == 0 || self.channel_mult.is_empty() {
            return bad("in_channels, image_size and channel_mult must be non-empty".into());
        }
        if self.num_res_blocks == 0 {
            return bad("num_res_blocks must be at least 1".into());
        }
        for &m in &self.channel_mult {
            let ch = m * self.model_channels;
            if ch == 0 || !ch.is_multiple_of(NORM_GROUPS) {
                return bad(format!("channels {ch} are not a multiple of {NORM_GROUPS}"));
            }
            let h = self.heads(ch);
            if h == 0 || !ch.is_multiple_of(h) {
                return bad(format!("channels {ch} are not divisible into {h} heads"));
            }
        }
        let levels = self.channel_mult.len() as u32 - 1;
        let mut side = self.image_size;
        for _ in 0..levels {
            side = side.div_ceil(2);
        }
        if side == 0 || self.image_size.div_ceil(1 << levels) != side {
            return bad("image too small for the levels".into());
        }
        // Nearest ×2 upsampling must restore each encoder resolution.
        let mut s = self.image_size;
        for _ in 0..levels {
            if !s.is_multiple_of(2) {
                return bad(format!(
                    "image side {} is not divisible by 2^{levels} (the decoder's ×2 upsampling \
                     cannot restore it)",
                    self.image_size
                ));
            }
            s /= 2;
        }
        Ok(())
    }

    /// Initialises the network as PyTorch does (uniform ±1/√fan_in for convolutions and linear
    /// layers, GroupNorm γ = 1, β = 0) with the zero-initialised output convolutions of ADM.
    pub fn init<B: Backend>(&self, device: &B::Device) -> crate::Result<UNet<B>> {
        self.validate()?;
        let mc = self.model_channels;
        let ed = 4 * mc;
        let ads = self.attention_ds();
        let res = |cin: usize, cout: usize| ResBlock::new(cin, cout, ed, device);
        let attn = |ch: usize| AttnBlock::new(ch, self.heads(ch), device);
        let ch0 = self.channel_mult[0] * mc;
        let mut input = vec![Stage {
            conv: Some(Conv::new(self.in_channels, ch0, 3, 1, false, device)),
            ..Stage::empty()
        }];
        let mut chans = vec![ch0];
        let (mut ch, mut ds) = (ch0, 1);
        let last = self.channel_mult.len() - 1;
        for (level, &mult) in self.channel_mult.iter().enumerate() {
            for _ in 0..self.num_res_blocks {
                let out = mult * mc;
                input.push(Stage {
                    res: Some(res(ch, out)),
                    attn: ads.contains(&ds).then(|| attn(out)),
                    ..Stage::empty()
                });
                ch = out;
                chans.push(ch);
            }
            if level != last {
                input.push(Stage {
                    down: Some(Conv::new(ch, ch, 3, 2, false, device)),
                    ..Stage::empty()
                });
                chans.push(ch);
                ds *= 2;
            }
        }
        let middle = vec![
            Stage {
                res: Some(res(ch, ch)),
                attn: Some(attn(ch)),
                ..Stage::empty()
            },
            Stage {
                res: Some(res(ch, ch)),
                ..Stage::empty()
            },
        ];
        let mut output = Vec::new();
        for (level, &mult) in self.channel_mult.iter().enumerate().rev() {
            for i in 0..=self.num_res_blocks {
                let ich = chans.pop().expect("one encoder output per decoder block");
                let out = mult * mc;
                output.push(Stage {
                    res: Some(res(ch + ich, out)),
                    attn: ads.contains(&ds).then(|| attn(out)),
                    up: (level > 0 && i == self.num_res_blocks)
                        .then(|| Conv::new(out, out, 3, 1, false, device)),
                    ..Stage::empty()
                });
                ch = out;
                if level > 0 && i == self.num_res_blocks {
                    ds /= 2;
                }
            }
        }
        Ok(UNet {
            time1: linear(mc, ed, device),
            time2: linear(ed, ed, device),
            input,
            middle,
            output,
            out_norm: Norm::new(ch, device),
            out_conv: Conv::new(ch, self.in_channels, 3, 1, true, device),
            model_channels: mc,
            in_channels: self.in_channels,
            image_size: self.image_size,
        })
    }
}

fn uniform(fan_in: usize) -> Initializer {
    let b = 1.0 / (fan_in as f64).sqrt();
    Initializer::Uniform { min: -b, max: b }
}

fn linear<B: Backend>(i: usize, o: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(i, o)
        .with_initializer(uniform(i))
        .init(device)
}

/// A 2-D convolution with bias (square kernel, padding `k / 2`).
#[derive(Module, Debug)]
pub struct Conv<B: Backend> {
    weight: Param<Tensor<B, 4>>,
    bias: Param<Tensor<B, 1>>,
    stride: usize,
    padding: usize,
}

impl<B: Backend> Conv<B> {
    pub fn new(
        ci: usize,
        co: usize,
        k: usize,
        stride: usize,
        zero: bool,
        device: &B::Device,
    ) -> Self {
        let init = if zero {
            Initializer::Zeros
        } else {
            uniform(ci * k * k)
        };
        Self {
            weight: init.init([co, ci, k, k], device),
            bias: init.init([co], device),
            stride,
            padding: k / 2,
        }
    }
}

impl<B: NnBackend> Conv<B> {
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(x, self.weight.val(), Some(self.bias.val()), self.options())
    }

    /// The convolution's derivative applied to a tangent `t` (the linear part, no bias).
    pub fn forward_tangent(&self, t: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(t, self.weight.val(), None, self.options())
    }

    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], 1)
    }
}

/// GroupNorm(32) affine parameters.
#[derive(Module, Debug)]
pub struct Norm<B: Backend> {
    gamma: Param<Tensor<B, 1>>,
    beta: Param<Tensor<B, 1>>,
}

impl<B: Backend> Norm<B> {
    pub fn new(c: usize, device: &B::Device) -> Self {
        Self {
            gamma: Initializer::Ones.init([c], device),
            beta: Initializer::Zeros.init([c], device),
        }
    }
}

impl<B: NnBackend> Norm<B> {
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        shift: Option<Tensor<B, 2>>,
        silu: bool,
    ) -> Tensor<B, 4> {
        let spec = NormSpec {
            groups: NORM_GROUPS,
            eps: NORM_EPS,
            silu,
        };
        group_norm(x, shift, self.gamma.val(), self.beta.val(), spec)
    }
}

/// ADM residual block with the time-embedding bias (no scale-shift norm, dropout 0).
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    in_norm: Norm<B>,
    in_conv: Conv<B>,
    emb: Linear<B>,
    out_norm: Norm<B>,
    out_conv: Conv<B>,
    skip: Option<Conv<B>>,
}

impl<B: Backend> ResBlock<B> {
    pub fn new(ci: usize, co: usize, emb: usize, device: &B::Device) -> Self {
        Self {
            in_norm: Norm::new(ci, device),
            in_conv: Conv::new(ci, co, 3, 1, false, device),
            emb: linear(emb, co, device),
            out_norm: Norm::new(co, device),
            out_conv: Conv::new(co, co, 3, 1, true, device),
            skip: (ci != co).then(|| Conv::new(ci, co, 1, 1, false, device)),
        }
    }
}

impl<B: NnBackend> ResBlock<B> {
    /// `x [N, C_in, H, W]`, `emb = SiLU(e) [N, 4·mc]` → `[N, C_out, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>, emb: &Tensor<B, 2>) -> Tensor<B, 4> {
        let h = self
            .in_conv
            .forward(self.in_norm.forward(x.clone(), None, true));
        let e = self.emb.forward(emb.clone());
        let h = self
            .out_conv
            .forward(self.out_norm.forward(h, Some(e), true));
        let skip = match &self.skip {
            Some(c) => c.forward(x),
            None => x,
        };
        skip + h
    }
}

/// Self-attention over the spatial positions.
#[derive(Module, Debug)]
pub struct AttnBlock<B: Backend> {
    norm: Norm<B>,
    qkv: Conv<B>,
    proj: Conv<B>,
    heads: usize,
}

impl<B: Backend> AttnBlock<B> {
    pub fn new(c: usize, heads: usize, device: &B::Device) -> Self {
        Self {
            norm: Norm::new(c, device),
            qkv: Conv::new(c, 3 * c, 1, 1, false, device),
            proj: Conv::new(c, c, 1, 1, true, device),
            heads,
        }
    }
}

impl<B: NnBackend> AttnBlock<B> {
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let qkv = self.qkv.forward(self.norm.forward(x.clone(), None, false));
        let a = attention(qkv.reshape([n, 3 * c, h * w]), self.heads);
        x + self.proj.forward(a.reshape([n, c, h, w]))
    }
}

/// One entry of torchcfm's `input_blocks` / `middle_block` / `output_blocks`: the layers present,
/// applied in this order (conv, ResBlock, attention, downsampling, upsampling).
#[derive(Module, Debug)]
pub struct Stage<B: Backend> {
    conv: Option<Conv<B>>,
    res: Option<ResBlock<B>>,
    attn: Option<AttnBlock<B>>,
    down: Option<Conv<B>>,
    up: Option<Conv<B>>,
}

impl<B: Backend> Stage<B> {
    fn empty() -> Self {
        Self {
            conv: None,
            res: None,
            attn: None,
            down: None,
            up: None,
        }
    }
}

impl<B: NnBackend> Stage<B> {
    pub fn forward(&self, mut h: Tensor<B, 4>, emb: &Tensor<B, 2>) -> Tensor<B, 4> {
        if let Some(c) = &self.conv {
            h = c.forward(h);
        }
        if let Some(r) = &self.res {
            h = r.forward(h, emb);
        }
        if let Some(a) = &self.attn {
            h = a.forward(h);
        }
        if let Some(d) = &self.down {
            h = d.forward(h);
        }
        if let Some(u) = &self.up {
            h = u.forward(ops::upsample2(h));
        }
        h
    }
}

/// The ADM UNet velocity field (see the module docs).
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    time1: Linear<B>,
    time2: Linear<B>,
    input: Vec<Stage<B>>,
    middle: Vec<Stage<B>>,
    output: Vec<Stage<B>>,
    out_norm: Norm<B>,
    out_conv: Conv<B>,
    model_channels: usize,
    in_channels: usize,
    image_size: usize,
}

/// Sinusoidal embedding `[cos(t·f), sin(t·f)]`, `f_i = 10000^(−i/half)`, `t [N]` → `[N, dim]`
/// (a zero column is appended for odd `dim`), guided-diffusion's `timestep_embedding`.
pub fn timestep_embedding<B: Backend>(t: Tensor<B, 1>, dim: usize) -> Tensor<B, 2> {
    let n = t.dims()[0];
    let half = dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10_000f64.ln()) * i as f64 / half as f64).exp() as f32)
        .collect();
    let f = Tensor::<B, 1>::from_data(TensorData::new(freqs, [half]), &t.device())
        .cast(t.dtype())
        .reshape([1, half]);
    let args = t.reshape([n, 1]) * f;
    let mut parts = vec![args.clone().cos(), args.sin()];
    if dim % 2 == 1 {
        parts.push(Tensor::zeros(
            [n, 1],
            (&parts[0].device(), parts[0].dtype()),
        ));
    }
    Tensor::cat(parts, 1)
}

impl<B: NnBackend> UNet<B> {
    /// `u_θ(x, t)`: `x [N, C, H, W]`, `t [N]` → `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>, t: Tensor<B, 1>) -> Tensor<B, 4> {
        self.forward_embedded(x, timestep_embedding(t, self.model_channels))
    }

    /// The network with the sinusoidal time features replaced by `features [N, model_channels]`
    /// (they go through the same embedding MLP): a UNet conditioned on any vector, e.g. S-JKO's
    /// latent ([`crate::models::sjko::ImageGenerator`]).
    pub fn forward_embedded(&self, x: Tensor<B, 4>, features: Tensor<B, 2>) -> Tensor<B, 4> {
        let emb = self.time2.forward(silu(self.time1.forward(features)));
        let emb = silu(emb);
        let mut skips = Vec::with_capacity(self.input.len());
        let mut h = x;
        for s in &self.input {
            h = s.forward(h, &emb);
            skips.push(h.clone());
        }
        for s in &self.middle {
            h = s.forward(h, &emb);
        }
        for s in &self.output {
            let skip = skips.pop().expect("one skip per decoder block");
            h = s.forward(ops::cat_channels(h, skip), &emb);
        }
        self.out_conv.forward(self.out_norm.forward(h, None, true))
    }
}

/// A source of torchcfm parameters by `state_dict` name (without the wrapper's `model.` prefix).
pub trait TorchParams {
    /// The values (row-major) of parameter `name` with the PyTorch shape `shape`. A 1-D
    /// convolution's `[co, ci, 1]` weight is asked for as `[co, ci, 1, 1]` (the same elements).
    fn values(&self, name: &str, shape: &[usize]) -> crate::Result<Vec<f32>>;
}

impl TorchParams for SafetensorsStore {
    fn values(&self, name: &str, shape: &[usize]) -> crate::Result<Vec<f32>> {
        let stored = &self.get(name)?.shape;
        let conv1d = shape.len() == 4 && shape[3] == 1 && stored[..] == shape[..3];
        self.f32_with_shape(name, if conv1d { stored } else { shape })
    }
}

/// Deterministic synthetic weights, the convention of the UNet parity fixtures
/// (`tools/unet_torchcfm_fixture.py`, `synthetic_values`; same bits): element `i` of parameter
/// `name` is `u = 2·(splitmix64(fnv1a64(name) + i) >> 11)/2⁵³ − 1` in [-1, 1), scaled in f64 and
/// rounded to f32 — rank-1 `*.weight` (GroupNorm) `1 + 0.1u`, `*.bias` `0.1u`, other weights
/// `u·√(3/fan_in)` with `fan_in = numel / shape[0]`.
pub struct SyntheticTorchParams;

impl TorchParams for SyntheticTorchParams {
    fn values(&self, name: &str, shape: &[usize]) -> crate::Result<Vec<f32>> {
        let key = crate::io::fnv1a(name.as_bytes());
        let n: usize = shape.iter().product();
        let rank1 = shape.len() == 1;
        let fan_in = n / shape.first().copied().unwrap_or(1).max(1);
        Ok((0..n as u64)
            .map(|i| {
                let mut z = key.wrapping_add(i).wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                let u = (z >> 11) as f64 * 2f64.powi(-53) * 2.0 - 1.0;
                let v = if name.ends_with(".bias") {
                    0.1 * u
                } else if rank1 {
                    1.0 + 0.1 * u
                } else {
                    u * (3.0 / fan_in as f64).sqrt()
                };
                v as f32
            })
            .collect())
    }
}

/// Reads torchcfm parameters by name with their PyTorch shapes.
struct TorchLoader<'a, B: Backend> {
    src: &'a dyn TorchParams,
    device: &'a B::Device,
}

impl<B: Backend> TorchLoader<'_, B> {
    fn get<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> crate::Result<Tensor<B, D>> {
        let v = self.src.values(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(v, shape), self.device))
    }

    fn conv(&mut self, p: &str, c: Conv<B>) -> crate::Result<Conv<B>> {
        let [co, ci, kh, kw] = c.weight.dims();
        let weight = self.get(&format!("{p}.weight"), [co, ci, kh, kw])?;
        Ok(Conv {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(self.get(&format!("{p}.bias"), [co])?),
            ..c
        })
    }

    fn norm(&mut self, p: &str, n: Norm<B>) -> crate::Result<Norm<B>> {
        let c = n.gamma.dims()[0];
        Ok(Norm {
            gamma: Param::from_tensor(self.get(&format!("{p}.weight"), [c])?),
            beta: Param::from_tensor(self.get(&format!("{p}.bias"), [c])?),
        })
    }

    fn linear(&mut self, p: &str, l: Linear<B>) -> crate::Result<Linear<B>> {
        let [i, o] = l.weight.dims();
        let w = self.get(&format!("{p}.weight"), [o, i])?.transpose();
        let b = self.get(&format!("{p}.bias"), [o])?;
        Ok(Linear {
            weight: Param::from_tensor(w),
            bias: Some(Param::from_tensor(b)),
        })
    }

    fn res(&mut self, p: &str, r: ResBlock<B>) -> crate::Result<ResBlock<B>> {
        Ok(ResBlock {
            in_norm: self.norm(&format!("{p}.in_layers.0"), r.in_norm)?,
            in_conv: self.conv(&format!("{p}.in_layers.2"), r.in_conv)?,
            emb: self.linear(&format!("{p}.emb_layers.1"), r.emb)?,
            out_norm: self.norm(&format!("{p}.out_layers.0"), r.out_norm)?,
            out_conv: self.conv(&format!("{p}.out_layers.3"), r.out_conv)?,
            skip: match r.skip {
                Some(s) => Some(self.conv(&format!("{p}.skip_connection"), s)?),
                None => None,
            },
        })
    }

    fn attn(&mut self, p: &str, a: AttnBlock<B>) -> crate::Result<AttnBlock<B>> {
        Ok(AttnBlock {
            norm: self.norm(&format!("{p}.norm"), a.norm)?,
            qkv: self.conv(&format!("{p}.qkv"), a.qkv)?,
            proj: self.conv(&format!("{p}.proj_out"), a.proj)?,
            heads: a.heads,
        })
    }

    /// A TimestepEmbedSequential: its layers are numbered in order of presence.
    fn stage(&mut self, p: &str, s: Stage<B>) -> crate::Result<Stage<B>> {
        let mut i = 0;
        let mut next = || {
            i += 1;
            format!("{p}.{}", i - 1)
        };
        let conv = match s.conv {
            Some(c) => Some(self.conv(&next(), c)?),
            None => None,
        };
        let res = match s.res {
            Some(r) => Some(self.res(&next(), r)?),
            None => None,
        };
        let attn = match s.attn {
            Some(a) => Some(self.attn(&next(), a)?),
            None => None,
        };
        let down = match s.down {
            Some(c) => Some(self.conv(&format!("{}.op", next()), c)?),
            None => None,
        };
        let up = match s.up {
            Some(c) => Some(self.conv(&format!("{}.conv", next()), c)?),
            None => None,
        };
        Ok(Stage {
            conv,
            res,
            attn,
            down,
            up,
        })
    }
}

impl<B: Backend> UNet<B> {
    /// Loads a torchcfm `UNetModelWrapper` `state_dict` saved as safetensors (names
    /// `model.time_embed.0.weight`, `model.input_blocks.1.0.in_layers.0.weight`, ...; the
    /// `model.` prefix is optional) into a network of the same configuration. Every tensor of
    /// the network must be present with its PyTorch shape.
    pub fn load_torchcfm(self, path: impl AsRef<Path>, device: &B::Device) -> crate::Result<Self> {
        let mut store = SafetensorsStore::open_single(path.as_ref())?;
        // Strip torchcfm's wrapper prefix.
        let names: Vec<String> = store.names().map(str::to_owned).collect();
        for name in names {
            if let Some(rest) = name.strip_prefix("model.") {
                if let Some(arr) = store.remove(&name) {
                    store.insert(rest.to_owned(), arr);
                }
            }
        }
        self.load_torchcfm_params(&store, device)
    }

    /// Loads torchcfm parameters from any [`TorchParams`] source (names without `model.`).
    pub fn load_torchcfm_params(
        self,
        src: &dyn TorchParams,
        device: &B::Device,
    ) -> crate::Result<Self> {
        let mut l = TorchLoader::<B> { src, device };
        let mut stages = |p: &str, v: Vec<Stage<B>>| -> crate::Result<Vec<Stage<B>>> {
            v.into_iter()
                .enumerate()
                .map(|(i, s)| l.stage(&format!("{p}.{i}"), s))
                .collect()
        };
        let input = stages("input_blocks", self.input)?;
        let output = stages("output_blocks", self.output)?;
        // The middle block is one sequential of three layers: res, attn, res.
        let missing = || NsgfError::Shape("UNet middle block is not res, attention, res".into());
        let mut mid = self.middle.into_iter();
        let m0 = mid.next().ok_or_else(missing)?;
        let m1 = mid.next().ok_or_else(missing)?;
        let middle0 = Stage {
            res: Some(l.res("middle_block.0", m0.res.ok_or_else(missing)?)?),
            attn: Some(l.attn("middle_block.1", m0.attn.ok_or_else(missing)?)?),
            ..Stage::empty()
        };
        let middle1 = Stage {
            res: Some(l.res("middle_block.2", m1.res.ok_or_else(missing)?)?),
            ..Stage::empty()
        };
        Ok(UNet {
            time1: l.linear("time_embed.0", self.time1)?,
            time2: l.linear("time_embed.2", self.time2)?,
            input,
            middle: vec![middle0, middle1],
            output,
            out_norm: l.norm("out.0", self.out_norm)?,
            out_conv: l.conv("out.2", self.out_conv)?,
            model_channels: self.model_channels,
            in_channels: self.in_channels,
            image_size: self.image_size,
        })
    }
}

impl<B: NnBackend> UNet<B> {
    /// `model_channels`: the width of the features [`UNet::forward_embedded`] takes.
    pub fn model_channels(&self) -> usize {
        self.model_channels
    }

    /// The image shape `[C, H, W]` of the network's input and output.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.in_channels, self.image_size, self.image_size]
    }

    /// `u_θ` on flattened images: `x: (n, C·H·W)` rows, `tau: (n, 1)` → `(n, C·H·W)`.
    pub fn forward_rows(&self, x: Tensor<B, 2>, tau: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let [c, h, w] = self.image_shape();
        let t = tau.reshape([n]);
        self.forward(x.reshape([n, c, h, w]), t).reshape([n, d])
    }
}

impl<B: NnBackend> Regressor<B> for UNet<B> {
    fn regression_loss(
        &self,
        x: Tensor<B, 2>,
        tau: Tensor<B, 2>,
        u: Option<Tensor<B, 2>>,
    ) -> crate::Result<Tensor<B, 1>> {
        let [c, h, w] = self.image_shape();
        if x.dims()[1] != c * h * w {
            return Err(NsgfError::Shape(format!(
                "UNet for {c}x{h}x{w} images got rows of {} values",
                x.dims()[1]
            )));
        }
        mse(self.forward_rows(x, tau), u, "UNet velocity")
    }
}

impl<B: NnBackend> VectorField<B> for UNet<B> {
    fn eval_rows(&self, x: Tensor<B, 2>, tau: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_rows(x, tau)
    }
}
