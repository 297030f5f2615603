//! Fast image-network ops behind burn's public custom-op API.
//!
//! Three ops dominate a UNet training step and are slow in burn 0.21's stock autodiff on the CPU
//! (`shared/docs/burn-training-performance.md`): the 2-D convolution's backward, GroupNorm (+
//! SiLU), and attention. Each is provided here as one autodiff node with its own backward:
//!
//! * [`conv2d`]: `y = W ⋆ x + b`, gradients `dx = Wᵀ ⋆ dy`, `dW = Σ_n dy_n · col(x_n)ᵀ`, `db = Σ dy`;
//! * [`group_norm`]: `y = act(γ (x + s − μ) / √(σ² + ε) + β)` per `(image, group)`, with an
//!   optional per-`(image, channel)` shift `s` (the ADM ResBlock's time-embedding bias, fused)
//!   and `act` = SiLU or the identity;
//! * [`selu`]: SELU, one pass forward and one backward (burn builds it from six tensor ops);
//! * [`pool2d`]: max and average pooling (no dilation, floor mode), forward only on the fast
//!   path: burn-flex's max pool always computes argmax indices and both pools check bounds per
//!   element, a fifth of the FID Inception's time; under autodiff it is burn's stock op;
//! * [`attention`]: multi-head self-attention in the `QKVAttentionLegacy` layout of
//!   guided-diffusion / torchcfm, `O = V softmax(QᵀK/√ch)ᵀ`, flash-style (see [`host`]);
//! * [`cat_channels`] and [`upsample2`]: the UNet decoder's skip concatenation and nearest ×2
//!   upsampling, copies on every thread whose gradients come back contiguous (burn's stock
//!   `cat` hands back channel slices, which burn-flex sums into the encoder outputs' gradients
//!   with a serial strided loop, and the stock upsampling copies an expanded view serially).
//!
//! Two traits carry them, so that model code stays generic (`<B: NnBackend>`):
//!
//! * [`NnKernels`]: forward and backward kernels on a backend's primitives. Every method has a
//!   default built from burn's stock tensor ops ([`reference`]), so a backend without fast
//!   kernels (the GPU) implements it with an empty `impl`. burn's `Flex` (CPU) overrides them
//!   with the host kernels of [`host`] for `f32` / `f64` tensors.
//! * [`NnBackend`]: the ops as model code calls them. For a plain backend they run the forward
//!   kernel; for `Autodiff<B>` they register one node whose backward calls `B`'s backward kernel.

pub mod host;
pub mod reference;

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, FloatTensor, FloatTensorOps};
use burn::tensor::{Tensor, TensorMetadata, TensorPrimitive};

/// Settings of a GroupNorm op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormSpec {
    /// Number of groups (must divide the channels).
    pub groups: usize,
    /// Variance epsilon.
    pub eps: f64,
    /// Apply SiLU after the affine map.
    pub silu: bool,
}

/// Which pool: the maximum of each window, or its mean (over the window's positions inside the
/// input, or over all `kh·kw` when `count_include_pad`, as PyTorch's `avg_pool2d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// `y = max over the window` (padding never wins; a NaN in the window gives NaN).
    Max,
    /// `y = (1/count) Σ over the window`.
    Avg {
        /// Count the zero padding in the divisor.
        count_include_pad: bool,
    },
}

/// Settings of a 2-D pooling op: `H_out = ⌊(H + 2·padding − kernel) / stride⌋ + 1` (floor
/// mode, dilation 1; PyTorch requires `padding ≤ kernel / 2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// Max or average.
    pub kind: PoolKind,
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding `[ph, pw]` on each side.
    pub padding: [usize; 2],
}

/// Gradients of a GroupNorm op: `(dx, dgamma, dbeta, dshift)`.
pub type NormGrads<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    Option<FloatTensor<B>>,
);

/// Forward and backward kernels of the image ops on a backend's primitives (see the module
/// docs). Shapes: `x [N, C_in, H, W]`, `weight [C_out, C_in, kh, kw]`, `bias [C_out]`;
/// GroupNorm `x [N, C, H, W]`, `shift [N, C]`, `gamma, beta [C]`, `stats [N, groups, 2]`
/// (mean, 1/std); attention `qkv [B, heads·3·ch, T]`, output `[B, heads·ch, T]`,
/// `lse [B, heads, T]`.
pub trait NnKernels: Backend {
    /// Convolution forward (groups = dilation = 1 on the fast paths).
    fn nn_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), options)
    }

    /// Convolution backward: the gradients `[dx, dweight, dbias]` that `need` asks for.
    fn nn_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        need: [bool; 3],
    ) -> [Option<FloatTensor<Self>>; 3] {
        reference::conv2d_backward::<Self>(x, weight, grad, options, need)
    }

    /// GroupNorm (+ SiLU) forward: `(y, stats)`.
    fn nn_group_norm(
        x: FloatTensor<Self>,
        shift: Option<FloatTensor<Self>>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        spec: NormSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::group_norm_forward::<Self>(x, shift, gamma, beta, spec)
    }

    /// GroupNorm (+ SiLU) backward.
    fn nn_group_norm_backward(
        x: FloatTensor<Self>,
        shift: Option<FloatTensor<Self>>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        spec: NormSpec,
    ) -> NormGrads<Self> {
        reference::group_norm_backward::<Self>(x, shift, gamma, beta, stats, grad, spec)
    }

    /// Attention forward: `(out, lse)`.
    fn nn_attention(
        qkv: FloatTensor<Self>,
        heads: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::attention_forward::<Self>(qkv, heads)
    }

    /// Attention backward: `dqkv`.
    fn nn_attention_backward(
        qkv: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        heads: usize,
    ) -> FloatTensor<Self> {
        reference::attention_backward::<Self>(qkv, out, lse, grad, heads)
    }

    /// 2-D pooling forward, `x [N, C, H, W]` → `[N, C, H_out, W_out]`.
    fn nn_pool2d(x: FloatTensor<Self>, spec: PoolSpec) -> FloatTensor<Self> {
        reference::pool2d::<Self>(x, spec)
    }

    /// Channel concatenation `[a, b]`, `a [N, Ca, H, W]`, `b [N, Cb, H, W]` →
    /// `[N, Ca + Cb, H, W]`.
    fn nn_cat_channels(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::cat_channels::<Self>(a, b)
    }

    /// The gradient of the concatenation: `grad` split at channel `ca`, `(da, db)`.
    fn nn_split_channels(
        grad: FloatTensor<Self>,
        ca: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::split_channels::<Self>(grad, ca)
    }

    /// Nearest-neighbour ×2 upsampling `[N, C, H, W]` → `[N, C, 2H, 2W]`.
    fn nn_upsample2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::upsample2::<Self>(x)
    }

    /// The gradient of the upsampling: each 2×2 block of `grad` summed.
    fn nn_upsample2_backward(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::upsample2_backward::<Self>(grad)
    }

    /// SELU forward, `y = λx` for `x > 0`, `λα(eˣ − 1)` otherwise.
    fn nn_selu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        prim(burn::tensor::activation::selu(tensor::<Self, 2>(x)))
    }

    /// SELU backward from its output: `dx = dy·λ` where `y > 0`, `dy·(y + λα)` elsewhere.
    fn nn_selu_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::selu_backward::<Self>(y, grad)
    }
}

/// The image ops as model code calls them (see the module docs).
pub trait NnBackend: Backend {
    /// See [`conv2d`].
    fn conv2d_op(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
    /// See [`group_norm`].
    fn group_norm_op(
        x: FloatTensor<Self>,
        shift: Option<FloatTensor<Self>>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        spec: NormSpec,
    ) -> FloatTensor<Self>;
    /// See [`attention`].
    fn attention_op(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self>;
    /// See [`selu`].
    fn selu_op(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// See [`pool2d`].
    fn pool2d_op(x: FloatTensor<Self>, spec: PoolSpec) -> FloatTensor<Self>;
    /// See [`cat_channels`].
    fn cat_channels_op(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
    /// See [`upsample2`].
    fn upsample2_op(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// A training backend: autodiff over a backend whose plain form also runs the ops.
pub trait NnAutodiffBackend: AutodiffBackend<InnerBackend: NnBackend> + NnBackend {}
impl<B: AutodiffBackend<InnerBackend: NnBackend> + NnBackend> NnAutodiffBackend for B {}

/// `NnBackend` for a plain backend: the forward kernels.
macro_rules! forward_kernels {
    ($B:ty) => {
        impl NnBackend for $B {
            fn conv2d_op(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                options: ConvOptions<2>,
            ) -> FloatTensor<Self> {
                <$B as NnKernels>::nn_conv2d(x, weight, bias, options)
            }
            fn group_norm_op(
                x: FloatTensor<Self>,
                shift: Option<FloatTensor<Self>>,
                gamma: FloatTensor<Self>,
                beta: FloatTensor<Self>,
                spec: NormSpec,
            ) -> FloatTensor<Self> {
                <$B as NnKernels>::nn_group_norm(x, shift, gamma, beta, spec).0
            }
            fn attention_op(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
                <$B as NnKernels>::nn_attention(qkv, heads).0
            }
            fn selu_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
                <$B as NnKernels>::nn_selu(x)
            }
            fn pool2d_op(x: FloatTensor<Self>, spec: PoolSpec) -> FloatTensor<Self> {
                <$B as NnKernels>::nn_pool2d(x, spec)
            }
            fn cat_channels_op(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
                <$B as NnKernels>::nn_cat_channels(a, b)
            }
            fn upsample2_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
                <$B as NnKernels>::nn_upsample2(x)
            }
        }
    };
}

mod flex;

forward_kernels!(burn::backend::Flex);

#[cfg(feature = "cuda")]
impl NnKernels for burn::backend::Cuda {}
#[cfg(feature = "cuda")]
forward_kernels!(burn::backend::Cuda);

impl<B: NnKernels, C: CheckpointStrategy> NnBackend for Autodiff<B, C> {
    fn conv2d_op(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Conv2dBackward;

        impl<B: NnKernels> Backward<B, 3> for Conv2dBackward {
            type State = (NodeId, NodeId, ConvOptions<2>);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_w, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_id, w_id, options) = ops.state;
                let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_id);
                let w: FloatTensor<B> = checkpointer.retrieve_node_output(w_id);
                let need = [node_x.is_some(), node_w.is_some(), node_b.is_some()];
                let [dx, dw, db] = B::nn_conv2d_backward(x, w, grad, options, need);
                for (node, g) in [(node_x, dx), (node_w, dw), (node_b, db)] {
                    if let (Some(node), Some(g)) = (node, g) {
                        grads.register::<B>(node.id, g);
                    }
                }
            }
        }

        let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
        match Conv2dBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    options.clone(),
                );
                let out = B::nn_conv2d(x.primitive, weight.primitive, bias.primitive, options);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::nn_conv2d(
                x.primitive,
                weight.primitive,
                bias.primitive,
                options,
            )),
        }
    }

    fn group_norm_op(
        x: FloatTensor<Self>,
        shift: Option<FloatTensor<Self>>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        spec: NormSpec,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct GroupNormBackward;

        impl<B: NnKernels> Backward<B, 4> for GroupNormBackward {
            /// (x, shift if any, gamma, beta, stats, spec)
            type State = (
                NodeId,
                Option<NodeId>,
                NodeId,
                NodeId,
                FloatTensor<B>,
                NormSpec,
            );

            fn backward(
                self,
                ops: Ops<Self::State, 4>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_s, node_g, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_id, s_id, g_id, b_id, stats, spec) = ops.state;
                let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_id);
                let shift: Option<FloatTensor<B>> =
                    s_id.map(|id| checkpointer.retrieve_node_output(id));
                let gamma: FloatTensor<B> = checkpointer.retrieve_node_output(g_id);
                let beta: FloatTensor<B> = checkpointer.retrieve_node_output(b_id);
                let (dx, dg, db, ds) =
                    B::nn_group_norm_backward(x, shift, gamma, beta, stats, grad, spec);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, dx);
                }
                if let (Some(node), Some(ds)) = (node_s, ds) {
                    grads.register::<B>(node.id, ds);
                }
                if let Some(node) = node_g {
                    grads.register::<B>(node.id, dg);
                }
                if let Some(node) = node_b {
                    grads.register::<B>(node.id, db);
                }
            }
        }

        // Without a shift, an untracked zero tensor stands in for its graph node.
        let has_shift = shift.is_some();
        let shift = shift.unwrap_or_else(|| {
            let [n, c, _, _] = x.primitive.shape().dims::<4>();
            let device = B::float_device(&x.primitive);
            Self::float_zeros([n, c].into(), &device, x.primitive.dtype().into())
        });
        let nodes = [
            x.node.clone(),
            shift.node.clone(),
            gamma.node.clone(),
            beta.node.clone(),
        ];
        let inner_shift = has_shift.then(|| shift.primitive.clone());
        match GroupNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_id = prep.checkpoint(&x);
                let s_id = has_shift.then(|| prep.checkpoint(&shift));
                let g_id = prep.checkpoint(&gamma);
                let b_id = prep.checkpoint(&beta);
                let (y, stats) = B::nn_group_norm(
                    x.primitive,
                    inner_shift,
                    gamma.primitive,
                    beta.primitive,
                    spec,
                );
                prep.finish((x_id, s_id, g_id, b_id, stats, spec), y)
            }
            OpsKind::UnTracked(prep) => {
                let (y, _) = B::nn_group_norm(
                    x.primitive,
                    inner_shift,
                    gamma.primitive,
                    beta.primitive,
                    spec,
                );
                prep.finish(y)
            }
        }
    }

    fn attention_op(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct AttentionBackward;

        impl<B: NnKernels> Backward<B, 1> for AttentionBackward {
            /// (qkv, out, lse, heads)
            type State = (NodeId, FloatTensor<B>, FloatTensor<B>, usize);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (qkv_id, out, lse, heads) = ops.state;
                if let Some(node) = node {
                    let qkv: FloatTensor<B> = checkpointer.retrieve_node_output(qkv_id);
                    let d = B::nn_attention_backward(qkv, out, lse, grad, heads);
                    grads.register::<B>(node.id, d);
                }
            }
        }

        match AttentionBackward
            .prepare::<C>([qkv.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let id = prep.checkpoint(&qkv);
                let (out, lse) = B::nn_attention(qkv.primitive, heads);
                prep.finish((id, out.clone(), lse, heads), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::nn_attention(qkv.primitive, heads).0),
        }
    }

    fn selu_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SeluBackward;

        impl<B: NnKernels> Backward<B, 1> for SeluBackward {
            /// The output `y` (the derivative is a function of it).
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                if let Some(node) = node {
                    grads.register::<B>(node.id, B::nn_selu_backward(ops.state, grad));
                }
            }
        }

        match SeluBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::nn_selu(x.primitive);
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::nn_selu(x.primitive)),
        }
    }

    /// burn's stock pooling with its autodiff (no model trains through `pool2d`: the FID
    /// Inception runs on the plain backend, where the fast kernel serves).
    fn pool2d_op(x: FloatTensor<Self>, spec: PoolSpec) -> FloatTensor<Self> {
        reference::pool2d::<Self>(x, spec)
    }

    fn cat_channels_op(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct CatBackward;

        impl<B: NnKernels> Backward<B, 2> for CatBackward {
            /// The channels of the first input.
            type State = usize;

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_a, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (da, db) = B::nn_split_channels(grad, ops.state);
                for (node, g) in [(node_a, da), (node_b, db)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, g);
                    }
                }
            }
        }

        let ca = a.primitive.shape().dims::<4>()[1];
        match CatBackward
            .prepare::<C>([a.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(ca, B::nn_cat_channels(a.primitive, b.primitive)),
            OpsKind::UnTracked(prep) => prep.finish(B::nn_cat_channels(a.primitive, b.primitive)),
        }
    }

    fn upsample2_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct UpsampleBackward;

        impl<B: NnKernels> Backward<B, 1> for UpsampleBackward {
            type State = ();

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                if let Some(node) = node {
                    grads.register::<B>(node.id, B::nn_upsample2_backward(grad));
                }
            }
        }

        match UpsampleBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((), B::nn_upsample2(x.primitive)),
            OpsKind::UnTracked(prep) => prep.finish(B::nn_upsample2(x.primitive)),
        }
    }
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn tensor<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// 2-D convolution `x [N, C_in, H, W]`, `weight [C_out, C_in, kh, kw]`, `bias [C_out]` →
/// `[N, C_out, H_out, W_out]` (zeros stand in for a missing bias).
pub fn conv2d<B: NnBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<2>,
) -> Tensor<B, 4> {
    let bias = bias.unwrap_or_else(|| {
        let co = weight.dims()[0];
        Tensor::zeros([co], (&weight.device(), weight.dtype()))
    });
    tensor(B::conv2d_op(prim(x), prim(weight), prim(bias), options))
}

/// GroupNorm of `x + shift` (`x [N, C, H, W]`, `shift [N, C]` broadcast over positions) with
/// affine `gamma`, `beta` `[C]`, then SiLU when `spec.silu`. Biased variance, as PyTorch's
/// `GroupNorm`.
pub fn group_norm<B: NnBackend>(
    x: Tensor<B, 4>,
    shift: Option<Tensor<B, 2>>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    spec: NormSpec,
) -> Tensor<B, 4> {
    tensor(B::group_norm_op(
        prim(x),
        shift.map(prim),
        prim(gamma),
        prim(beta),
        spec,
    ))
}

/// Multi-head self-attention, `qkv [B, heads·3·ch, T]` in the legacy layout (head `h` owns
/// rows `h·3ch..(h+1)·3ch` = q, k, v) → `[B, heads·ch, T]`:
/// `out_h = V_h softmax(Q_hᵀ K_h / √ch)ᵀ`.
pub fn attention<B: NnBackend>(qkv: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
    tensor(B::attention_op(prim(qkv), heads))
}

/// SELU (`λ = 1.0507…`, `α = 1.6733…`, as PyTorch and torchcfm's MLP) as one op with its own
/// backward, `x (n, d)` → `(n, d)`.
pub fn selu<B: NnBackend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    tensor(B::selu_op(prim(x)))
}

/// Channel concatenation of `a [N, Ca, H, W]` and `b [N, Cb, H, W]` → `[N, Ca + Cb, H, W]`
/// (`Tensor::cat([a, b], 1)` as one op; see the module docs).
pub fn cat_channels<B: NnBackend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
    tensor(B::cat_channels_op(prim(a), prim(b)))
}

/// Nearest-neighbour ×2 upsampling `[N, C, H, W]` → `[N, C, 2H, 2W]`:
/// `y[n, c, i, j] = x[n, c, ⌊i/2⌋, ⌊j/2⌋]`.
pub fn upsample2<B: NnBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    tensor(B::upsample2_op(prim(x)))
}

/// 2-D max or average pooling of `x [N, C, H, W]` (see [`PoolSpec`] for the output size).
pub fn pool2d<B: NnBackend>(x: Tensor<B, 4>, spec: PoolSpec) -> Tensor<B, 4> {
    tensor(B::pool2d_op(prim(x), spec))
}

#[cfg(test)]
mod tests;
