//! The FID Inception-v3 (TF "inception-2015-12-05", pytorch-fid's `pt_inception-2015-12-05`):
//! the network every comparable FID is computed with, layer for layer as
//! `shared/data/fid/ARCHITECTURE.md` describes.
//!
//! Input `x`: f32 `(N, 3, 299, 299)`, RGB, NCHW, values in [-1, 1] (see
//! `metrics::fid::preprocess`). Output: the pool3 features `(N, 2048)` and, when the weights
//! carry a classifier (`fc.weight` `(K, 2048)`, `fc.bias` `(K)`, K = 1008 or 1000), the logits
//! `(N, K)`. The converted FID weights in `shared/data/fid` have **no classifier**.
//!
//! Every conv layer `L` has the tensors `L.weight` (O, I, kh, kw), `L.mean`, `L.var`, `L.beta`
//! (O) and computes, with BN in eval mode, no conv bias and no BN scale (gamma = 1):
//!
//! ```text
//! y = relu( (conv(x, W) - mean) / sqrt(var + 1e-3) + beta )
//! ```
//!
//! **BN folding.** At load time the BN is folded into the convolution (in f64, then rounded to
//! f32): with `s = 1 / sqrt(var + 1e-3)`, `W' = W * s[o]` and `b' = beta - mean * s`, so that
//! `y = relu(conv(x, W') + b')`. This is exact in real arithmetic and changes the f32 rounding
//! only (features agree with the unfolded TorchScript network to ~1e-5).
//!
//! Blocks (branch order = channel concatenation order):
//! stem `conv, conv_1, conv_2, maxpool3/2, conv_3, conv_4, maxpool3/2`;
//! InceptionA `mixed, mixed_1, mixed_2` (35x35); InceptionB `mixed_3` (35 -> 17);
//! InceptionC `mixed_4..mixed_7` (17x17); InceptionD `mixed_8` (17 -> 8);
//! InceptionE `mixed_9` (avg-pool branch) and `mixed_10` (**max**-pool branch);
//! final 8x8 average pool -> 2048. Average pools in the mixed blocks are 3x3/s1/p1 with
//! `count_include_pad = false`; they are applied after the 1x1 convolution that follows them
//! (an exact rewrite, see `ConvBn::forward_after_avg_pool`), which is cheaper.

use crate::error::{NsgfError, Result};
use crate::io::SafetensorsStore;
use crate::models::ops::{conv2d, pool2d, NnBackend, PoolKind, PoolSpec};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

/// Side of the square network input.
pub const INPUT_SIZE: usize = 299;
/// Dimension of the pool3 features.
pub const FEATURE_DIM: usize = 2048;
/// Batch-norm epsilon of the TF graph.
pub const BN_EPS: f64 = 1e-3;
/// Classifier sizes accepted for an `fc` head (TF graph: 1008, torchvision: 1000).
pub const CLASSIFIER_SIZES: [usize; 2] = [1008, 1000];

/// Output of [`FidInception::forward`].
#[derive(Clone, Debug)]
pub struct InceptionOutput<B: Backend> {
    /// pool3 features, `(N, 2048)`.
    pub pool3: Tensor<B, 2>,
    /// Classifier logits `(N, K)`, when the weights carry an `fc` head.
    pub logits: Option<Tensor<B, 2>>,
}

/// conv (no bias) + BN (eval, folded) + ReLU.
#[derive(Clone, Debug)]
struct ConvBn<B: Backend> {
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    stride: usize,
    padding: [usize; 2],
}

impl<B: NnBackend> ConvBn<B> {
    /// `conv(x, W') + b'` (before the ReLU).
    fn linear(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let opts = ConvOptions::new([self.stride; 2], self.padding, [1, 1], 1);
        conv2d(x, self.weight.clone(), Some(self.bias.clone()), opts)
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.linear(x))
    }

    /// `relu(conv1x1(avgpool3x3(x)))` computed as `relu(avgpool3x3(conv1x1(x)))`: a 1x1
    /// convolution mixes channels at each position and the average pool (padding excluded, so
    /// its divisor depends on the position only) mixes positions within each channel, so the two
    /// linear maps commute, bias included (the average of a constant is the constant). Pooling
    /// after the convolution pools 4-7x fewer channels.
    fn forward_after_avg_pool(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        debug_assert!(self.weight.dims()[2..] == [1, 1] && self.stride == 1);
        relu(avg_pool_3x3_same(self.linear(x)))
    }
}

/// Reads the tensors of the conv layers and folds their batch norms.
struct Loader<'a, B: Backend> {
    store: &'a SafetensorsStore,
    device: &'a B::Device,
}

impl<B: NnBackend> Loader<'_, B> {
    /// Conv layer `name` with kernel (out, inp, kh, kw) and the given stride and padding.
    fn conv_pad(
        &self,
        name: &str,
        [out, inp, kh, kw]: [usize; 4],
        stride: usize,
        padding: [usize; 2],
    ) -> Result<ConvBn<B>> {
        let w = self
            .store
            .f32_with_shape(&format!("{name}.weight"), &[out, inp, kh, kw])?;
        let mean = self.store.f32_with_shape(&format!("{name}.mean"), &[out])?;
        let var = self.store.f32_with_shape(&format!("{name}.var"), &[out])?;
        let beta = self.store.f32_with_shape(&format!("{name}.beta"), &[out])?;
        let per_out = inp * kh * kw;
        let mut wf = Vec::with_capacity(w.len());
        let mut bf = Vec::with_capacity(out);
        for o in 0..out {
            let v = var[o] as f64 + BN_EPS;
            if !(v > 0.0 && v.is_finite()) {
                return Err(NsgfError::format(
                    self.store.source(),
                    format!(
                        "tensor `{name}.var` has an invalid variance {} at {o}",
                        var[o]
                    ),
                ));
            }
            let s = 1.0 / v.sqrt();
            wf.extend(
                w[o * per_out..(o + 1) * per_out]
                    .iter()
                    .map(|&x| (x as f64 * s) as f32),
            );
            bf.push((beta[o] as f64 - mean[o] as f64 * s) as f32);
        }
        if let Some(i) = wf.iter().chain(&bf).position(|x| !x.is_finite()) {
            return Err(NsgfError::NonFinite(format!(
                "conv layer `{name}` has a non-finite folded parameter (flat index {i})"
            )));
        }
        Ok(ConvBn {
            weight: Tensor::from_data(TensorData::new(wf, [out, inp, kh, kw]), self.device),
            bias: Tensor::from_data(TensorData::new(bf, [out]), self.device),
            stride,
            padding,
        })
    }

    /// Stride-1 conv with "same" padding (kh/2, kw/2).
    fn same(&self, name: &str, shape: [usize; 4]) -> Result<ConvBn<B>> {
        self.conv_pad(name, shape, 1, [shape[2] / 2, shape[3] / 2])
    }

    /// Stride-2 conv without padding.
    fn down(&self, name: &str, shape: [usize; 4]) -> Result<ConvBn<B>> {
        self.conv_pad(name, shape, 2, [0, 0])
    }
}

/// A square pool (`models::ops::pool2d`: burn-flex's stock pools were a fifth of this network's
/// time on the CPU).
fn pool<B: NnBackend>(
    x: Tensor<B, 4>,
    kind: PoolKind,
    k: usize,
    s: usize,
    p: usize,
) -> Tensor<B, 4> {
    pool2d(
        x,
        PoolSpec {
            kind,
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
        },
    )
}

fn max_pool_3x3_s2<B: NnBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    pool(x, PoolKind::Max, 3, 2, 0)
}

fn avg_pool_3x3_same<B: NnBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let kind = PoolKind::Avg {
        count_include_pad: false,
    };
    pool(x, kind, 3, 1, 1)
}

fn max_pool_3x3_same<B: NnBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    pool(x, PoolKind::Max, 3, 1, 1)
}

/// InceptionA (35x35): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avgpool -> 1x1.
#[derive(Clone, Debug)]
struct BlockA<B: Backend> {
    conv: ConvBn<B>,
    tower: [ConvBn<B>; 2],
    tower_1: [ConvBn<B>; 3],
    tower_2: ConvBn<B>,
}

impl<B: NnBackend> BlockA<B> {
    fn load(l: &Loader<B>, p: &str, inp: usize, pool_features: usize) -> Result<Self> {
        Ok(Self {
            conv: l.same(&format!("{p}.conv"), [64, inp, 1, 1])?,
            tower: [
                l.same(&format!("{p}.tower.conv"), [48, inp, 1, 1])?,
                l.same(&format!("{p}.tower.conv_1"), [64, 48, 5, 5])?,
            ],
            tower_1: [
                l.same(&format!("{p}.tower_1.conv"), [64, inp, 1, 1])?,
                l.same(&format!("{p}.tower_1.conv_1"), [96, 64, 3, 3])?,
                l.same(&format!("{p}.tower_1.conv_2"), [96, 96, 3, 3])?,
            ],
            tower_2: l.same(&format!("{p}.tower_2.conv"), [pool_features, inp, 1, 1])?,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b0 = self.conv.forward(x.clone());
        let b1 = chain(&self.tower, x.clone());
        let b2 = chain(&self.tower_1, x.clone());
        let b3 = self.tower_2.forward_after_avg_pool(x);
        Tensor::cat(vec![b0, b1, b2, b3], 1)
    }
}

/// InceptionB (35 -> 17): 3x3/s2 | 1x1 -> 3x3 -> 3x3/s2 | maxpool3x3/s2.
#[derive(Clone, Debug)]
struct BlockB<B: Backend> {
    conv: ConvBn<B>,
    tower: [ConvBn<B>; 3],
}

impl<B: NnBackend> BlockB<B> {
    fn load(l: &Loader<B>, p: &str, inp: usize) -> Result<Self> {
        Ok(Self {
            conv: l.down(&format!("{p}.conv"), [384, inp, 3, 3])?,
            tower: [
                l.same(&format!("{p}.tower.conv"), [64, inp, 1, 1])?,
                l.same(&format!("{p}.tower.conv_1"), [96, 64, 3, 3])?,
                l.down(&format!("{p}.tower.conv_2"), [96, 96, 3, 3])?,
            ],
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b0 = self.conv.forward(x.clone());
        let b1 = chain(&self.tower, x.clone());
        let b2 = max_pool_3x3_s2(x);
        Tensor::cat(vec![b0, b1, b2], 1)
    }
}

/// InceptionC (17x17, 768 -> 768): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 |
/// avgpool -> 1x1.
#[derive(Clone, Debug)]
struct BlockC<B: Backend> {
    conv: ConvBn<B>,
    tower: [ConvBn<B>; 3],
    tower_1: [ConvBn<B>; 5],
    tower_2: ConvBn<B>,
}

impl<B: NnBackend> BlockC<B> {
    fn load(l: &Loader<B>, p: &str, c7: usize) -> Result<Self> {
        let inp = 768;
        Ok(Self {
            conv: l.same(&format!("{p}.conv"), [192, inp, 1, 1])?,
            tower: [
                l.same(&format!("{p}.tower.conv"), [c7, inp, 1, 1])?,
                l.same(&format!("{p}.tower.conv_1"), [c7, c7, 1, 7])?,
                l.same(&format!("{p}.tower.conv_2"), [192, c7, 7, 1])?,
            ],
            tower_1: [
                l.same(&format!("{p}.tower_1.conv"), [c7, inp, 1, 1])?,
                l.same(&format!("{p}.tower_1.conv_1"), [c7, c7, 7, 1])?,
                l.same(&format!("{p}.tower_1.conv_2"), [c7, c7, 1, 7])?,
                l.same(&format!("{p}.tower_1.conv_3"), [c7, c7, 7, 1])?,
                l.same(&format!("{p}.tower_1.conv_4"), [192, c7, 1, 7])?,
            ],
            tower_2: l.same(&format!("{p}.tower_2.conv"), [192, inp, 1, 1])?,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b0 = self.conv.forward(x.clone());
        let b1 = chain(&self.tower, x.clone());
        let b2 = chain(&self.tower_1, x.clone());
        let b3 = self.tower_2.forward_after_avg_pool(x);
        Tensor::cat(vec![b0, b1, b2, b3], 1)
    }
}

/// InceptionD (17 -> 8): 1x1 -> 3x3/s2 | 1x1 -> 1x7 -> 7x1 -> 3x3/s2 | maxpool3x3/s2.
#[derive(Clone, Debug)]
struct BlockD<B: Backend> {
    tower: [ConvBn<B>; 2],
    tower_1: [ConvBn<B>; 4],
}

impl<B: NnBackend> BlockD<B> {
    fn load(l: &Loader<B>, p: &str) -> Result<Self> {
        let inp = 768;
        Ok(Self {
            tower: [
                l.same(&format!("{p}.tower.conv"), [192, inp, 1, 1])?,
                l.down(&format!("{p}.tower.conv_1"), [320, 192, 3, 3])?,
            ],
            tower_1: [
                l.same(&format!("{p}.tower_1.conv"), [192, inp, 1, 1])?,
                l.same(&format!("{p}.tower_1.conv_1"), [192, 192, 1, 7])?,
                l.same(&format!("{p}.tower_1.conv_2"), [192, 192, 7, 1])?,
                l.down(&format!("{p}.tower_1.conv_3"), [192, 192, 3, 3])?,
            ],
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b0 = chain(&self.tower, x.clone());
        let b1 = chain(&self.tower_1, x.clone());
        let b2 = max_pool_3x3_s2(x);
        Tensor::cat(vec![b0, b1, b2], 1)
    }
}

/// Pool of the last branch of an InceptionE block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EPool {
    /// `mixed_9`: 3x3/s1/p1 average, padding excluded.
    Avg,
    /// `mixed_10`: 3x3/s1/p1 max.
    Max,
}

/// InceptionE (8x8 -> 2048): 1x1 | a -> 1x3, a -> 3x1 | b -> 1x3, b -> 3x1 | pool -> 1x1 with
/// `a = 1x1(x)`, `b = 3x3(1x1(x))`.
#[derive(Clone, Debug)]
struct BlockE<B: Backend> {
    conv: ConvBn<B>,
    tower_conv: ConvBn<B>,
    tower_mixed: [ConvBn<B>; 2],
    tower_1_conv: [ConvBn<B>; 2],
    tower_1_mixed: [ConvBn<B>; 2],
    tower_2_conv: ConvBn<B>,
    pool: EPool,
}

impl<B: NnBackend> BlockE<B> {
    fn load(l: &Loader<B>, p: &str, inp: usize, pool: EPool) -> Result<Self> {
        Ok(Self {
            conv: l.same(&format!("{p}.conv"), [320, inp, 1, 1])?,
            tower_conv: l.same(&format!("{p}.tower_conv"), [384, inp, 1, 1])?,
            tower_mixed: [
                l.same(&format!("{p}.tower_mixed_conv"), [384, 384, 1, 3])?,
                l.same(&format!("{p}.tower_mixed_conv_1"), [384, 384, 3, 1])?,
            ],
            tower_1_conv: [
                l.same(&format!("{p}.tower_1_conv"), [448, inp, 1, 1])?,
                l.same(&format!("{p}.tower_1_conv_1"), [384, 448, 3, 3])?,
            ],
            tower_1_mixed: [
                l.same(&format!("{p}.tower_1_mixed_conv"), [384, 384, 1, 3])?,
                l.same(&format!("{p}.tower_1_mixed_conv_1"), [384, 384, 3, 1])?,
            ],
            tower_2_conv: l.same(&format!("{p}.tower_2_conv"), [192, inp, 1, 1])?,
            pool,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.tower_conv.forward(x.clone());
        let b = chain(&self.tower_1_conv, x.clone());
        let b0 = self.conv.forward(x.clone());
        let b1 = self.tower_mixed[0].forward(a.clone());
        let b2 = self.tower_mixed[1].forward(a);
        let b3 = self.tower_1_mixed[0].forward(b.clone());
        let b4 = self.tower_1_mixed[1].forward(b);
        let b5 = match self.pool {
            EPool::Avg => self.tower_2_conv.forward_after_avg_pool(x),
            EPool::Max => self.tower_2_conv.forward(max_pool_3x3_same(x)),
        };
        Tensor::cat(vec![b0, b1, b2, b3, b4, b5], 1)
    }
}

fn chain<B: NnBackend>(layers: &[ConvBn<B>], x: Tensor<B, 4>) -> Tensor<B, 4> {
    layers.iter().fold(x, |h, l| l.forward(h))
}

/// The FID Inception-v3 with its weights on a device. See the module docs.
#[derive(Clone, Debug)]
pub struct FidInception<B: Backend> {
    stem_a: [ConvBn<B>; 3],
    stem_b: [ConvBn<B>; 2],
    mixed_a: [BlockA<B>; 3],
    mixed_3: BlockB<B>,
    mixed_c: [BlockC<B>; 4],
    mixed_8: BlockD<B>,
    mixed_9: BlockE<B>,
    mixed_10: BlockE<B>,
    /// Classifier `(W^T (2048, K), b (K))`, when present.
    fc: Option<(Tensor<B, 2>, Tensor<B, 1>)>,
}

impl<B: NnBackend> FidInception<B> {
    /// Loads the weights from a checkpoint (a `*.safetensors.index.json`, a single
    /// `.safetensors`, or a folder holding one; see [`SafetensorsStore::open`]).
    pub fn load(path: impl AsRef<std::path::Path>, device: &B::Device) -> Result<Self> {
        let store = SafetensorsStore::open(path)?;
        Self::from_store(&store, device)
    }

    /// Builds the network from the tensors of an opened checkpoint. Every tensor's shape is
    /// checked; an error names the first tensor that is missing or has the wrong shape.
    pub fn from_store(store: &SafetensorsStore, device: &B::Device) -> Result<Self> {
        let l = Loader::<B> { store, device };
        let fc = if store.contains("fc.weight") || store.contains("fc.bias") {
            let k = store.get("fc.weight")?.shape.first().copied().unwrap_or(0);
            if !CLASSIFIER_SIZES.contains(&k) {
                return Err(NsgfError::format(
                    store.source(),
                    format!(
                        "tensor `fc.weight` has {k} rows; a classifier head must have \
                         {CLASSIFIER_SIZES:?} classes"
                    ),
                ));
            }
            let w = store.f32_with_shape("fc.weight", &[k, FEATURE_DIM])?;
            let b = store.f32_with_shape("fc.bias", &[k])?;
            let w = Tensor::<B, 2>::from_data(TensorData::new(w, [k, FEATURE_DIM]), device);
            Some((
                w.transpose(),
                Tensor::from_data(TensorData::new(b, [k]), device),
            ))
        } else {
            None
        };
        Ok(Self {
            stem_a: [
                l.conv_pad("conv", [32, 3, 3, 3], 2, [0, 0])?,
                l.conv_pad("conv_1", [32, 32, 3, 3], 1, [0, 0])?,
                l.conv_pad("conv_2", [64, 32, 3, 3], 1, [1, 1])?,
            ],
            stem_b: [
                l.conv_pad("conv_3", [80, 64, 1, 1], 1, [0, 0])?,
                l.conv_pad("conv_4", [192, 80, 3, 3], 1, [0, 0])?,
            ],
            mixed_a: [
                BlockA::load(&l, "mixed", 192, 32)?,
                BlockA::load(&l, "mixed_1", 256, 64)?,
                BlockA::load(&l, "mixed_2", 288, 64)?,
            ],
            mixed_3: BlockB::load(&l, "mixed_3", 288)?,
            mixed_c: [
                BlockC::load(&l, "mixed_4", 128)?,
                BlockC::load(&l, "mixed_5", 160)?,
                BlockC::load(&l, "mixed_6", 160)?,
                BlockC::load(&l, "mixed_7", 192)?,
            ],
            mixed_8: BlockD::load(&l, "mixed_8")?,
            mixed_9: BlockE::load(&l, "mixed_9", 1280, EPool::Avg)?,
            mixed_10: BlockE::load(&l, "mixed_10", 2048, EPool::Max)?,
            fc,
        })
    }

    /// Number of classes of the classifier head, `None` when the weights carry none (the
    /// standard FID weights carry none).
    pub fn num_classes(&self) -> Option<usize> {
        self.fc.as_ref().map(|(w, _)| w.dims()[1])
    }

    /// pool3 features `(N, 2048)` of a preprocessed batch `x` `(N, 3, 299, 299)`.
    pub fn pool3(&self, x: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        let [n, c, h, w] = x.dims();
        if c != 3 || h != INPUT_SIZE || w != INPUT_SIZE {
            return Err(NsgfError::Shape(format!(
                "FID Inception input must be (N, 3, {INPUT_SIZE}, {INPUT_SIZE}), got \
                 ({n}, {c}, {h}, {w})"
            )));
        }
        let x = chain(&self.stem_a, x);
        let x = max_pool_3x3_s2(x);
        let x = chain(&self.stem_b, x);
        let mut x = max_pool_3x3_s2(x);
        for block in &self.mixed_a {
            x = block.forward(x);
        }
        x = self.mixed_3.forward(x);
        for block in &self.mixed_c {
            x = block.forward(x);
        }
        x = self.mixed_8.forward(x);
        x = self.mixed_9.forward(x);
        x = self.mixed_10.forward(x);
        // (N, 2048, 8, 8) -> 8x8 average -> (N, 2048).
        let kind = PoolKind::Avg {
            count_include_pad: true,
        };
        let x = pool(x, kind, 8, 8, 0);
        Ok(x.reshape([n, FEATURE_DIM]))
    }

    /// pool3 features and, with a classifier head, the logits `pool3 W^T + b`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Result<InceptionOutput<B>> {
        let pool3 = self.pool3(x)?;
        let logits = self
            .fc
            .as_ref()
            .map(|(wt, b)| pool3.clone().matmul(wt.clone()) + b.clone().unsqueeze_dim(0));
        Ok(InceptionOutput { pool3, logits })
    }
}
