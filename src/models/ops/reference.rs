//! The image ops built from burn's stock tensor ops: the default kernels of
//! [`NnKernels`](super::NnKernels) (used on the GPU, where burn's own kernels are autotuned) and
//! the reference the fast CPU kernels are tested against. Same shapes and formulas as the
//! module docs of [`super`].

use super::{prim, tensor, NormGrads, NormSpec, PoolKind, PoolSpec};
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::Tensor;

/// `[dx, dweight, dbias]` of a convolution through burn's stock backward ops.
pub fn conv2d_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    options: ConvOptions<2>,
    need: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let dx = need[0]
        .then(|| B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone()));
    let dw = need[1].then(|| B::conv2d_weight_backward(x, weight, grad.clone(), options));
    let db = need[2].then(|| {
        let g: Tensor<B, 4> = tensor(grad);
        let co = g.dims()[1];
        prim(g.sum_dim(0).sum_dim(2).sum_dim(3).reshape([co]))
    });
    [dx, dw, db]
}

/// Shared pieces of the GroupNorm forward and backward.
struct Normalised<B: Backend> {
    /// `x̂` `[N, C, H, W]`.
    xhat: Tensor<B, 4>,
    /// `1/σ` `[N, G, 1]`.
    rstd: Tensor<B, 3>,
    /// `μ` `[N, G, 1]`.
    mean: Tensor<B, 3>,
}

fn normalise<B: Backend>(
    x: FloatTensor<B>,
    shift: Option<FloatTensor<B>>,
    spec: NormSpec,
) -> Normalised<B> {
    let x: Tensor<B, 4> = tensor(x);
    let [n, c, h, w] = x.dims();
    let x = match shift {
        Some(s) => x + tensor::<B, 2>(s).reshape([n, c, 1, 1]),
        None => x,
    };
    let xg = x.reshape([n, spec.groups, (c / spec.groups) * h * w]);
    let mean = xg.clone().mean_dim(2);
    let xc = xg - mean.clone();
    let var = xc.clone().powi_scalar(2).mean_dim(2);
    let rstd = var.add_scalar(spec.eps).sqrt().recip();
    let xhat = (xc * rstd.clone()).reshape([n, c, h, w]);
    Normalised { xhat, rstd, mean }
}

fn affine<B: Backend>(
    xhat: Tensor<B, 4>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
) -> Tensor<B, 4> {
    let c = gamma.dims()[0];
    xhat * gamma.clone().reshape([1, c, 1, 1]) + beta.clone().reshape([1, c, 1, 1])
}

/// GroupNorm (+ SiLU) forward: `(y, stats [N, G, 2])`.
pub fn group_norm_forward<B: Backend>(
    x: FloatTensor<B>,
    shift: Option<FloatTensor<B>>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    spec: NormSpec,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let nz = normalise::<B>(x, shift, spec);
    let a = affine(nz.xhat, &tensor(gamma), &tensor(beta));
    let y = if spec.silu { silu(a) } else { a };
    (prim(y), prim(Tensor::cat(vec![nz.mean, nz.rstd], 2)))
}

/// GroupNorm (+ SiLU) backward (recomputes `x̂`; `stats` is not needed by this version).
pub fn group_norm_backward<B: Backend>(
    x: FloatTensor<B>,
    shift: Option<FloatTensor<B>>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    _stats: FloatTensor<B>,
    grad: FloatTensor<B>,
    spec: NormSpec,
) -> NormGrads<B> {
    let has_shift = shift.is_some();
    let nz = normalise::<B>(x, shift, spec);
    let (gamma, beta): (Tensor<B, 1>, Tensor<B, 1>) = (tensor(gamma), tensor(beta));
    let dy: Tensor<B, 4> = tensor(grad);
    let [n, c, h, w] = dy.dims();
    let da = if spec.silu {
        let a = affine(nz.xhat.clone(), &gamma, &beta);
        let s = sigmoid(a.clone());
        dy * s.clone() * (a * (s.neg().add_scalar(1.0))).add_scalar(1.0)
    } else {
        dy
    };
    let sum_c = |t: Tensor<B, 4>| t.sum_dim(0).sum_dim(2).sum_dim(3).reshape([c]);
    let dgamma = sum_c(da.clone() * nz.xhat.clone());
    let dbeta = sum_c(da.clone());
    let m = (c / spec.groups) * h * w;
    let dxh = (da * gamma.reshape([1, c, 1, 1])).reshape([n, spec.groups, m]);
    let xh = nz.xhat.reshape([n, spec.groups, m]);
    let m1 = dxh.clone().mean_dim(2);
    let m2 = (dxh.clone() * xh.clone()).mean_dim(2);
    let dx = ((dxh - m1 - xh * m2) * nz.rstd).reshape([n, c, h, w]);
    let dshift = has_shift.then(|| prim(dx.clone().sum_dim(2).sum_dim(3).reshape([n, c])));
    (prim(dx), prim(dgamma), prim(dbeta), dshift)
}

/// `(q, k, v)`, each `[B·heads, ch, T]`, and `(b, ch, t)`.
#[allow(clippy::type_complexity)]
fn split<B: Backend>(
    qkv: FloatTensor<B>,
    heads: usize,
) -> (
    (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>),
    (usize, usize, usize),
) {
    let qkv: Tensor<B, 3> = tensor(qkv);
    let [b, width, t] = qkv.dims();
    let ch = width / (3 * heads);
    let r = qkv.reshape([b * heads, 3 * ch, t]);
    let q = r.clone().narrow(1, 0, ch);
    let k = r.clone().narrow(1, ch, ch);
    let v = r.narrow(1, 2 * ch, ch);
    ((q, k, v), (b, ch, t))
}

fn scores<B: Backend>(q: &Tensor<B, 3>, k: &Tensor<B, 3>, ch: usize) -> Tensor<B, 3> {
    q.clone()
        .swap_dims(1, 2)
        .matmul(k.clone())
        .mul_scalar(1.0 / (ch as f64).sqrt())
}

/// Attention forward with materialised `[B·heads, T, T]` scores: `(out, lse)`.
pub fn attention_forward<B: Backend>(
    qkv: FloatTensor<B>,
    heads: usize,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let ((q, k, v), (b, ch, t)) = split::<B>(qkv, heads);
    let s = scores(&q, &k, ch);
    let mx = s.clone().max_dim(2);
    let e = (s - mx.clone()).exp();
    let l = e.clone().sum_dim(2);
    let p = e / l.clone();
    let lse = (mx + l.log()).reshape([b, heads, t]);
    let out = v.matmul(p.swap_dims(1, 2)).reshape([b, heads * ch, t]);
    (prim(out), prim(lse))
}

/// Attention backward with materialised scores: `dqkv`.
pub fn attention_backward<B: Backend>(
    qkv: FloatTensor<B>,
    out: FloatTensor<B>,
    lse: FloatTensor<B>,
    grad: FloatTensor<B>,
    heads: usize,
) -> FloatTensor<B> {
    let ((q, k, v), (b, ch, t)) = split::<B>(qkv, heads);
    let bh = b * heads;
    let lse: Tensor<B, 3> = tensor::<B, 3>(lse).reshape([bh, t, 1]);
    let p = (scores(&q, &k, ch) - lse).exp();
    let d_o: Tensor<B, 3> = tensor::<B, 3>(grad).reshape([bh, ch, t]);
    let o: Tensor<B, 3> = tensor::<B, 3>(out).reshape([bh, ch, t]);
    let dp = d_o.clone().swap_dims(1, 2).matmul(v);
    let dsum = (d_o.clone() * o).sum_dim(1).swap_dims(1, 2);
    let ds = p.clone() * (dp - dsum);
    let scale2 = 1.0 / (ch as f64).sqrt();
    let dq = k.matmul(ds.clone().swap_dims(1, 2)).mul_scalar(scale2);
    let dk = q.matmul(ds).mul_scalar(scale2);
    let dv = d_o.matmul(p);
    prim(Tensor::cat(vec![dq, dk, dv], 1).reshape([b, heads * 3 * ch, t]))
}

/// SELU forward through burn's stock activation.
pub fn selu_forward<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    prim(burn::tensor::activation::selu(tensor::<B, 2>(x)))
}

/// SELU backward from the output `y`: `dy·λ` where `y > 0`, else `dy·(y + λα)`.
pub fn selu_backward<B: Backend>(y: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let (l, a) = (super::host::SELU_LAMBDA, super::host::SELU_ALPHA);
    let y: Tensor<B, 2> = tensor(y);
    let dy: Tensor<B, 2> = tensor(grad);
    let pos = y.clone().greater_elem(0.0);
    let d = y.add_scalar(l * a).mask_fill(pos, l);
    prim(dy * d)
}

/// 2-D pooling by burn's stock `max_pool2d` / `avg_pool2d` (dilation 1, floor mode).
pub fn pool2d<B: Backend>(x: FloatTensor<B>, spec: PoolSpec) -> FloatTensor<B> {
    match spec.kind {
        PoolKind::Max => B::max_pool2d(x, spec.kernel, spec.stride, spec.padding, [1, 1], false),
        PoolKind::Avg { count_include_pad } => B::avg_pool2d(
            x,
            spec.kernel,
            spec.stride,
            spec.padding,
            count_include_pad,
            false,
        ),
    }
}

/// Channel concatenation `[a, b]` (`a [N, Ca, H, W]`, `b [N, Cb, H, W]` → `[N, Ca + Cb, H, W]`).
pub fn cat_channels<B: Backend>(a: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
    prim(Tensor::cat(vec![tensor::<B, 4>(a), tensor::<B, 4>(b)], 1))
}

/// The gradient of [`cat_channels`]: `grad [N, Ca + Cb, H, W]` split at channel `ca`.
pub fn split_channels<B: Backend>(
    grad: FloatTensor<B>,
    ca: usize,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let g: Tensor<B, 4> = tensor(grad);
    let [n, c, h, w] = g.dims();
    (
        prim(g.clone().slice([0..n, 0..ca, 0..h, 0..w])),
        prim(g.slice([0..n, ca..c, 0..h, 0..w])),
    )
}

/// Nearest-neighbour ×2 upsampling `[N, C, H, W]` → `[N, C, 2H, 2W]`.
pub fn upsample2<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let x: Tensor<B, 4> = tensor(x);
    let [n, c, h, w] = x.dims();
    prim(
        x.reshape([n, c, h, 1, w, 1])
            .expand([n, c, h, 2, w, 2])
            .reshape([n, c, 2 * h, 2 * w]),
    )
}

/// The gradient of [`upsample2`]: each 2×2 block of `grad [N, C, 2H, 2W]` summed.
pub fn upsample2_backward<B: Backend>(grad: FloatTensor<B>) -> FloatTensor<B> {
    let g: Tensor<B, 4> = tensor(grad);
    let [n, c, h2, w2] = g.dims();
    let (h, w) = (h2 / 2, w2 / 2);
    prim(
        g.reshape([n, c, h, 2, w, 2])
            .sum_dim(5)
            .sum_dim(3)
            .reshape([n, c, h, w]),
    )
}
