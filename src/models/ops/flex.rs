//! [`NnKernels`] for burn's CPU backend (`Flex`): the host kernels of [`super::host`] on the
//! tensors' own memory, for `f32` and `f64`; other float types and unsupported settings
//! (grouped or dilated convolutions, channels not divisible by the groups) fall back to the
//! stock ops of [`super::reference`].

use super::host::{self, AttnGeom, ConvGeom, NormGeom, PoolGeom, Real};
use super::{reference, NnKernels, NormGrads, NormSpec, PoolKind, PoolSpec};
use crate::ot::softmin_cpu::HostFloat;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::{DType, TensorData, TensorMetadata};

/// A contiguous copy (or the tensor itself when it already is).
fn contig(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice<T: Real>(t: &FlexTensor) -> &[T] {
    t.as_slice::<T>()
        .expect("host kernel: a contiguous tensor of the dispatched dtype")
}

fn make<T: Real>(v: Vec<T>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

fn dims<const D: usize>(t: &FlexTensor) -> [usize; D] {
    t.shape().dims::<D>()
}

/// Runs `$body` with `$T` = `f32` or `f64` by `$dtype`, else evaluates `$fallback`.
macro_rules! by_dtype {
    ($dtype:expr, $T:ident => $body:expr, _ => $fallback:expr) => {
        match Option::<DType>::from($dtype) {
            Some(DType::F32) => {
                type $T = f32;
                $body
            }
            Some(DType::F64) => {
                type $T = f64;
                $body
            }
            _ => $fallback,
        }
    };
}

fn conv_geom(x: &FlexTensor, w: &FlexTensor, o: &ConvOptions<2>) -> Option<ConvGeom> {
    if o.groups != 1 || o.dilation != [1, 1] || x.dtype() != w.dtype() {
        return None;
    }
    ConvGeom::new(dims(x), dims(w), o.stride, o.padding)
}

fn conv_forward<T: Real>(
    g: &ConvGeom,
    x: &FlexTensor,
    w: &FlexTensor,
    b: &FlexTensor,
) -> FlexTensor {
    let (x, w, b) = (contig(x), contig(w), contig(b));
    let mut y = host::zeros::<T>(g.n * g.co * g.p());
    host::conv2d_forward(g, slice::<T>(&x), slice(&w), Some(slice(&b)), &mut y);
    make(y, vec![g.n, g.co, g.ho, g.wo])
}

fn conv_backward<T: Real>(
    g: &ConvGeom,
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    need: [bool; 3],
) -> [Option<FlexTensor>; 3] {
    let (x, w, dy) = (contig(x), contig(w), contig(dy));
    let dx = need[0].then(|| {
        let mut dx = host::zeros::<T>(g.n * g.ci * g.h * g.w);
        host::conv2d_backward_input(g, slice::<T>(&w), slice(&dy), &mut dx);
        make(dx, vec![g.n, g.ci, g.h, g.w])
    });
    let (dw, db) = if need[1] || need[2] {
        let mut dw = vec![T::ZERO; g.co * g.k()];
        let mut db = vec![T::ZERO; g.co];
        host::conv2d_backward_weight(g, slice::<T>(&x), slice(&dy), &mut dw, Some(&mut db));
        (
            need[1].then(|| make(dw, vec![g.co, g.ci, g.kh, g.kw])),
            need[2].then(|| make(db, vec![g.co])),
        )
    } else {
        (None, None)
    };
    [dx, dw, db]
}

fn norm_geom(x: &FlexTensor, spec: &NormSpec) -> Option<NormGeom> {
    let [n, c, h, w] = dims::<4>(x);
    (spec.groups > 0 && c.is_multiple_of(spec.groups)).then_some(NormGeom {
        n,
        c,
        hw: h * w,
        groups: spec.groups,
    })
}

fn same_dtype(ts: &[&FlexTensor]) -> Option<DType> {
    let d = ts[0].dtype();
    ts.iter().all(|t| t.dtype() == d).then_some(d)
}

impl NnKernels for Flex {
    fn nn_cat_channels(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let ([n, ca, h, w], [nb, cb, hb, wb]) = (dims::<4>(&a), dims::<4>(&b));
        let fits = (n, h, w) == (nb, hb, wb) && [n, ca, cb, h, w].iter().all(|&d| d > 0);
        by_dtype!(same_dtype(&[&a, &b]).filter(|_| fits), T => {
            let (a, b) = (contig(&a), contig(&b));
            let (la, lb) = (ca * h * w, cb * h * w);
            let mut y = host::zeros::<T>(n * (la + lb));
            host::cat_rows(slice::<T>(&a), slice(&b), la, lb, &mut y);
            make(y, vec![n, ca + cb, h, w])
        }, _ => reference::cat_channels::<Self>(a, b))
    }

    fn nn_split_channels(
        grad: FloatTensor<Self>,
        ca: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [n, c, h, w] = dims::<4>(&grad);
        let fits = ca > 0 && ca < c && n * h * w > 0;
        by_dtype!(Some(grad.dtype()).filter(|_| fits), T => {
            let g = contig(&grad);
            let (la, lb) = (ca * h * w, (c - ca) * h * w);
            let (mut da, mut db) = (host::zeros::<T>(n * la), host::zeros::<T>(n * lb));
            host::split_rows(slice::<T>(&g), la, lb, &mut da, &mut db);
            (make(da, vec![n, ca, h, w]), make(db, vec![n, c - ca, h, w]))
        }, _ => reference::split_channels::<Self>(grad, ca))
    }

    fn nn_upsample2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = dims::<4>(&x);
        by_dtype!(Some(x.dtype()).filter(|_| n * c * h * w > 0), T => {
            let x = contig(&x);
            let mut y = host::zeros::<T>(4 * n * c * h * w);
            host::upsample2_forward(slice::<T>(&x), h, w, &mut y);
            make(y, vec![n, c, 2 * h, 2 * w])
        }, _ => reference::upsample2::<Self>(x))
    }

    fn nn_upsample2_backward(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h2, w2] = dims::<4>(&grad);
        let fits = n * c * h2 * w2 > 0 && h2 % 2 == 0 && w2 % 2 == 0;
        by_dtype!(Some(grad.dtype()).filter(|_| fits), T => {
            let g = contig(&grad);
            let (h, w) = (h2 / 2, w2 / 2);
            let mut dx = host::zeros::<T>(n * c * h * w);
            host::upsample2_backward(slice::<T>(&g), h, w, &mut dx);
            make(dx, vec![n, c, h, w])
        }, _ => reference::upsample2_backward::<Self>(grad))
    }

    fn nn_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let Some(g) = conv_geom(&x, &weight, &options) else {
            return <Self as burn::tensor::ops::ModuleOps<Self>>::conv2d(
                x,
                weight,
                Some(bias),
                options,
            );
        };
        by_dtype!(same_dtype(&[&x, &weight, &bias]), T => conv_forward::<T>(&g, &x, &weight, &bias),
            _ => <Self as burn::tensor::ops::ModuleOps<Self>>::conv2d(x, weight, Some(bias), options))
    }

    fn nn_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        need: [bool; 3],
    ) -> [Option<FloatTensor<Self>>; 3] {
        let Some(g) = conv_geom(&x, &weight, &options) else {
            return reference::conv2d_backward::<Self>(x, weight, grad, options, need);
        };
        by_dtype!(same_dtype(&[&x, &weight, &grad]), T => conv_backward::<T>(&g, &x, &weight, &grad, need),
            _ => reference::conv2d_backward::<Self>(x, weight, grad, options, need))
    }

    fn nn_group_norm(
        x: FloatTensor<Self>,
        shift: Option<FloatTensor<Self>>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        spec: NormSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let mut all = vec![&x, &gamma, &beta];
        all.extend(shift.as_ref());
        let (Some(g), Some(dt)) = (norm_geom(&x, &spec), same_dtype(&all)) else {
            return reference::group_norm_forward::<Self>(x, shift, gamma, beta, spec);
        };
        by_dtype!(Some(dt), T => {
            let (x, gamma, beta) = (contig(&x), contig(&gamma), contig(&beta));
            let shift = shift.as_ref().map(contig);
            let mut y = host::zeros::<T>(x.shape().num_elements());
            let mut stats = vec![T::ZERO; g.n * g.groups * 2];
            host::group_norm_forward::<T>(
                &g, slice(&x), shift.as_ref().map(slice), slice(&gamma), slice(&beta),
                spec.eps, spec.silu, &mut y, &mut stats,
            );
            (make(y, x.shape().to_vec()), make(stats, vec![g.n, g.groups, 2]))
        }, _ => reference::group_norm_forward::<Self>(x, shift, gamma, beta, spec))
    }

    fn nn_group_norm_backward(
        x: FloatTensor<Self>,
        shift: Option<FloatTensor<Self>>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        spec: NormSpec,
    ) -> NormGrads<Self> {
        let mut all = vec![&x, &gamma, &beta, &stats, &grad];
        all.extend(shift.as_ref());
        let (Some(g), Some(dt)) = (norm_geom(&x, &spec), same_dtype(&all)) else {
            return reference::group_norm_backward::<Self>(
                x, shift, gamma, beta, stats, grad, spec,
            );
        };
        by_dtype!(Some(dt), T => {
            let (x, gamma, beta) = (contig(&x), contig(&gamma), contig(&beta));
            let (stats, dy) = (contig(&stats), contig(&grad));
            let shift = shift.as_ref().map(contig);
            let mut dx = host::zeros::<T>(x.shape().num_elements());
            let (mut dg, mut db) = (vec![T::ZERO; g.c], vec![T::ZERO; g.c]);
            let mut ds = shift.as_ref().map(|_| vec![T::ZERO; g.n * g.c]);
            host::group_norm_backward::<T>(
                &g, slice(&x), shift.as_ref().map(slice), slice(&gamma), slice(&beta),
                slice(&stats), slice(&dy), spec.silu, &mut dx, &mut dg, &mut db,
                ds.as_deref_mut(),
            );
            (
                make(dx, x.shape().to_vec()),
                make(dg, vec![g.c]),
                make(db, vec![g.c]),
                ds.map(|d| make(d, vec![g.n, g.c])),
            )
        }, _ => reference::group_norm_backward::<Self>(x, shift, gamma, beta, stats, grad, spec))
    }

    fn nn_pool2d(x: FloatTensor<Self>, spec: PoolSpec) -> FloatTensor<Self> {
        let Some(g) = PoolGeom::new(dims(&x), spec.kernel, spec.stride, spec.padding) else {
            return reference::pool2d::<Self>(x, spec);
        };
        let (max, include_pad) = match spec.kind {
            PoolKind::Max => (true, false),
            PoolKind::Avg { count_include_pad } => (false, count_include_pad),
        };
        let [n, c, _, _] = dims::<4>(&x);
        by_dtype!(x.dtype(), T => {
            let x = contig(&x);
            let mut y = host::zeros::<T>(g.planes * g.ho * g.wo);
            host::pool2d_forward::<T>(&g, max, include_pad, slice(&x), &mut y);
            make(y, vec![n, c, g.ho, g.wo])
        }, _ => reference::pool2d::<Self>(x, spec))
    }

    fn nn_attention(
        qkv: FloatTensor<Self>,
        heads: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [b, width, t] = dims::<3>(&qkv);
        if heads == 0 || !width.is_multiple_of(3 * heads) {
            return reference::attention_forward::<Self>(qkv, heads);
        }
        let g = AttnGeom {
            b,
            heads,
            ch: width / (3 * heads),
            t,
        };
        by_dtype!(qkv.dtype(), T => {
            let qkv = contig(&qkv);
            let mut out = host::zeros::<T>(b * heads * g.ch * t);
            let mut lse = vec![T::ZERO; b * heads * t];
            host::attention_forward::<T>(&g, slice(&qkv), &mut out, &mut lse);
            (make(out, vec![b, heads * g.ch, t]), make(lse, vec![b, heads, t]))
        }, _ => reference::attention_forward::<Self>(qkv, heads))
    }

    fn nn_attention_backward(
        qkv: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        heads: usize,
    ) -> FloatTensor<Self> {
        let [b, width, t] = dims::<3>(&qkv);
        let dt = same_dtype(&[&qkv, &out, &lse, &grad]);
        if heads == 0 || !width.is_multiple_of(3 * heads) || dt.is_none() {
            return reference::attention_backward::<Self>(qkv, out, lse, grad, heads);
        }
        let g = AttnGeom {
            b,
            heads,
            ch: width / (3 * heads),
            t,
        };
        by_dtype!(qkv.dtype(), T => {
            let (qkv, out, lse, dy) = (contig(&qkv), contig(&out), contig(&lse), contig(&grad));
            let mut d = host::zeros::<T>(qkv.shape().num_elements());
            host::attention_backward::<T>(&g, slice(&qkv), slice(&out), slice(&lse), slice(&dy), &mut d);
            make(d, vec![b, width, t])
        }, _ => reference::attention_backward::<Self>(qkv, out, lse, grad, heads))
    }
}
