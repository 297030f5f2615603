//! Host (CPU) kernels of the image-network ops, on contiguous row-major slices of `f32` or `f64`.
//!
//! Every kernel is a gemm-shaped loop (the `gemm` crate, the same one burn-flex uses) plus
//! cache-sized elementwise passes; work is spread over rayon's threads by image (convolution),
//! by `(image, group)` block (GroupNorm) or by `(image, head)` pair (attention), each task with
//! its own scratch buffers and accumulators, so no two tasks write the same memory.
//!
//! * Convolution (NCHW, groups = dilation = 1): forward `Y_n = W · col(X_n) + b`, weight gradient
//!   `dW = Σ_n dY_n · col(X_n)ᵀ` (per-task accumulators, summed at the end), input gradient
//!   `dX_n = col⁻¹(Wᵀ · dY_n)` (col2im scatter-add). `col(X_n)` is the `[C_in·kh·kw, H_out·W_out]`
//!   im2col matrix; 1×1 stride-1 unpadded convolutions use `X_n` itself.
//! * GroupNorm (+ SiLU): one pass for the statistics (f64 sums), one for the output; the backward
//!   recomputes `x̂` from `x` and the saved `(mean, rstd)` instead of storing it.
//! * Attention: rows of the score matrix are processed in chunks of [`ATTN_ROWS`], so at most
//!   two `[ATTN_ROWS, T]` blocks per task exist at any time (flash-style: the backward recomputes
//!   the probabilities from the saved row log-sum-exp).

use crate::ot::softmin_cpu::HostFloat;
use gemm::Parallelism;
use rayon::prelude::*;
use std::ops::{AddAssign, Div, Neg};

/// The float types of the host kernels: `f32` and `f64`.
pub trait Real:
    HostFloat + bytemuck::Pod + Send + Sync + AddAssign + Div<Output = Self> + Neg<Output = Self>
{
    /// `√x`.
    fn sqrt(self) -> Self;
    /// `ln x`.
    fn ln(self) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
}

/// A strided read-only matrix view: element `(i, j)` is `data[off + i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct View<'a, T> {
    data: &'a [T],
    off: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> View<'a, T> {
    fn new(data: &'a [T], off: usize, rs: usize, cs: usize) -> Self {
        Self { data, off, rs, cs }
    }

    /// Panics unless an `rows × cols` matrix fits in the slice (the safety check of [`mm`]).
    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = self.off + (rows - 1) * self.rs + (cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst[m×n] = (accumulate ? dst : 0) + beta · lhs[m×k] · rhs[k×n]`, `dst` with row stride
/// `d_rs` and column stride `d_cs` from offset `d_off`.
#[allow(clippy::too_many_arguments)]
fn mm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    d_off: usize,
    d_rs: usize,
    d_cs: usize,
    lhs: View<'_, T>,
    rhs: View<'_, T>,
    beta: T,
    accumulate: bool,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    View::new(&*dst, d_off, d_rs, d_cs).check(m, n);
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[d_off + i * d_rs + j * d_cs] = T::ZERO;
                }
            }
        }
        return;
    }
    lhs.check(m, k);
    rhs.check(k, n);
    // SAFETY: the three views were bounds-checked above for their full extents, `dst` is borrowed
    // mutably and cannot alias the shared `lhs` / `rhs` borrows, and all strides are non-negative.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(d_off),
            d_cs as isize,
            d_rs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.off),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.off),
            rhs.cs as isize,
            rhs.rs as isize,
            T::of(1.0),
            beta,
            false,
            false,
            false,
            par,
        );
    }
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Buffers at least this long are zeroed by [`zeros`] on every thread.
const PAR_ZERO_MIN: usize = 1 << 16;

/// A zeroed buffer of `len` values for an op's output, zeroed in parallel when large: the
/// allocator zeroes a reused heap block with one serial `memset` on the calling thread while
/// the other threads wait, ~4 % of the CPU time of `nsgf sample` on the MNIST UNet (and twice
/// that of its wall time on two threads).
pub fn zeros<T: Real>(len: usize) -> Vec<T> {
    if len < PAR_ZERO_MIN || threads() < 2 {
        return vec![T::ZERO; len];
    }
    let mut v = Vec::with_capacity(len);
    v.par_extend(rayon::iter::repeat_n(T::ZERO, len));
    v
}

// ---------------------------------------------------------------------------------------------
// Channel concatenation and nearest ×2 upsampling (copies, images or planes in parallel)
// ---------------------------------------------------------------------------------------------

/// `y_i = [a_i, b_i]` for every image `i`: `a [n, la]`, `b [n, lb]` (an image's channels and
/// positions flattened) → `y [n, la + lb]`. `la` and `lb` must be positive.
pub fn cat_rows<T: Real>(a: &[T], b: &[T], la: usize, lb: usize, y: &mut [T]) {
    assert!(la > 0 && lb > 0);
    assert_eq!(a.len() / la, b.len() / lb);
    assert_eq!(y.len(), a.len() + b.len());
    y.par_chunks_mut(la + lb)
        .zip(a.par_chunks(la).zip(b.par_chunks(lb)))
        .for_each(|(yi, (ai, bi))| {
            yi[..la].copy_from_slice(ai);
            yi[la..].copy_from_slice(bi);
        });
}

/// The adjoint of [`cat_rows`]: `g [n, la + lb]` → `da [n, la]`, `db [n, lb]`.
pub fn split_rows<T: Real>(g: &[T], la: usize, lb: usize, da: &mut [T], db: &mut [T]) {
    assert!(la > 0 && lb > 0);
    assert_eq!(g.len(), da.len() + db.len());
    g.par_chunks(la + lb)
        .zip(da.par_chunks_mut(la).zip(db.par_chunks_mut(lb)))
        .for_each(|(gi, (ai, bi))| {
            ai.copy_from_slice(&gi[..la]);
            bi.copy_from_slice(&gi[la..]);
        });
}

/// Nearest ×2 upsampling of planes `h × w` (`x [planes, h, w]`) → `y [planes, 2h, 2w]`,
/// `y[p, i, j] = x[p, ⌊i/2⌋, ⌊j/2⌋]`. `h·w` must be positive.
pub fn upsample2_forward<T: Real>(x: &[T], h: usize, w: usize, y: &mut [T]) {
    let (hw, w2) = (h * w, 2 * w);
    assert!(hw > 0);
    assert_eq!(y.len(), 4 * x.len());
    y.par_chunks_mut(4 * hw)
        .zip(x.par_chunks(hw))
        .for_each(|(yp, xp)| {
            for (i, row) in xp.chunks(w).enumerate() {
                let (top, bottom) = yp[2 * i * w2..(2 * i + 2) * w2].split_at_mut(w2);
                for (pair, &v) in top.chunks_exact_mut(2).zip(row) {
                    pair[0] = v;
                    pair[1] = v;
                }
                bottom.copy_from_slice(top);
            }
        });
}

/// The adjoint of [`upsample2_forward`]: `dx[p, i, j]` = the sum of the 2×2 block
/// `g[p, 2i..2i+2, 2j..2j+2]`, as `(top left + top right) + (bottom left + bottom right)`.
pub fn upsample2_backward<T: Real>(g: &[T], h: usize, w: usize, dx: &mut [T]) {
    let (hw, w2) = (h * w, 2 * w);
    assert!(hw > 0);
    assert_eq!(g.len(), 4 * dx.len());
    dx.par_chunks_mut(hw)
        .zip(g.par_chunks(4 * hw))
        .for_each(|(dp, gp)| {
            for (i, drow) in dp.chunks_mut(w).enumerate() {
                let top = &gp[2 * i * w2..(2 * i + 1) * w2];
                let bottom = &gp[(2 * i + 1) * w2..(2 * i + 2) * w2];
                for (j, d) in drow.iter_mut().enumerate() {
                    *d = (top[2 * j] + top[2 * j + 1]) + (bottom[2 * j] + bottom[2 * j + 1]);
                }
            }
        });
}

// ---------------------------------------------------------------------------------------------
// Convolution
// ---------------------------------------------------------------------------------------------

/// Shapes of a 2-D convolution (NCHW input `[n, ci, h, w]`, weight `[co, ci, kh, kw]`, output
/// `[n, co, ho, wo]`; groups = dilation = 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub ci: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub co: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Zero padding (height, width).
    pub pad: [usize; 2],
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
}

impl ConvGeom {
    /// The geometry, or `None` when the channels disagree, a stride is 0 or the output is empty.
    pub fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        pad: [usize; 2],
    ) -> Option<Self> {
        let [n, ci, h, w] = x;
        let [co, wci, kh, kw] = weight;
        if wci != ci || stride.contains(&0) || kh == 0 || kw == 0 {
            return None;
        }
        let (hp, wp) = (h + 2 * pad[0], w + 2 * pad[1]);
        if hp < kh || wp < kw {
            return None;
        }
        let ho = (hp - kh) / stride[0] + 1;
        let wo = (wp - kw) / stride[1] + 1;
        Some(Self {
            n,
            ci,
            h,
            w,
            co,
            kh,
            kw,
            stride,
            pad,
            ho,
            wo,
        })
    }

    /// Rows of the im2col matrix, `ci·kh·kw`.
    pub fn k(&self) -> usize {
        self.ci * self.kh * self.kw
    }

    /// Output positions per image, `ho·wo`.
    pub fn p(&self) -> usize {
        self.ho * self.wo
    }

    fn in_len(&self) -> usize {
        self.ci * self.h * self.w
    }

    /// 1×1, stride 1, no padding: the im2col matrix is the image itself.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }

    /// Output columns `ow` whose input column `ow·s + kj − p` lies in `[0, w)`: `lo..hi`.
    fn valid_cols(&self, kj: usize) -> (usize, usize) {
        let (s, p, w) = (self.stride[1], self.pad[1], self.w);
        let lo = if kj >= p { 0 } else { (p - kj).div_ceil(s) };
        let hi = if w + p > kj {
            (w + p - kj).div_ceil(s).min(self.wo)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Calls `f(row of col, output row oh, input row slice offset or None, ow range, kj)` for
    /// every im2col row and output row: the shared index walk of im2col and col2im.
    fn walk(&self, mut f: impl FnMut(usize, usize, Option<usize>, (usize, usize), usize)) {
        for c in 0..self.ci {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let r = (c * self.kh + ki) * self.kw + kj;
                    let cols = self.valid_cols(kj);
                    for oh in 0..self.ho {
                        let ih = (oh * self.stride[0] + ki) as isize - self.pad[0] as isize;
                        let src = (ih >= 0 && (ih as usize) < self.h)
                            .then(|| c * self.h * self.w + ih as usize * self.w);
                        f(r, oh, src, cols, kj);
                    }
                }
            }
        }
    }
}

/// `col[k, p] = x_n[c, oh·s + ki − p, ow·s + kj − p]` (0 outside the image).
fn im2col<T: Real>(g: &ConvGeom, x: &[T], col: &mut [T]) {
    let (p, wo, s, pw) = (g.p(), g.wo, g.stride[1], g.pad[1]);
    g.walk(|r, oh, src, (lo, hi), kj| {
        let dst = &mut col[r * p + oh * wo..r * p + (oh + 1) * wo];
        let Some(src) = src else {
            dst.fill(T::ZERO);
            return;
        };
        dst[..lo].fill(T::ZERO);
        dst[hi..].fill(T::ZERO);
        if s == 1 {
            let a = src + lo + kj - pw;
            dst[lo..hi].copy_from_slice(&x[a..a + (hi - lo)]);
        } else {
            for (ow, d) in dst[lo..hi].iter_mut().enumerate() {
                *d = x[src + (ow + lo) * s + kj - pw];
            }
        }
    });
}

/// Adjoint of [`im2col`]: `dx_n[c, ih, iw] += dcol[k, p]` (dx_n must start zeroed).
fn col2im<T: Real>(g: &ConvGeom, dcol: &[T], dx: &mut [T]) {
    let (p, wo, s, pw) = (g.p(), g.wo, g.stride[1], g.pad[1]);
    g.walk(|r, oh, src, (lo, hi), kj| {
        let Some(src) = src else { return };
        let row = &dcol[r * p + oh * wo + lo..r * p + oh * wo + hi];
        if s == 1 {
            let a = src + lo + kj - pw;
            for (d, &v) in dx[a..a + (hi - lo)].iter_mut().zip(row) {
                *d += v;
            }
        } else {
            for (ow, &v) in row.iter().enumerate() {
                dx[src + (ow + lo) * s + kj - pw] += v;
            }
        }
    });
}

/// Runs `f(image index, scratch)` for every image: in parallel over images when there are at
/// least as many images as threads (each gemm single-threaded), else image after image with
/// the gemms parallel.
fn per_image<T: Real, O: Send>(
    n: usize,
    out: &mut [O],
    chunk: usize,
    f: impl Fn(usize, &mut [O], &mut Vec<T>, Parallelism) + Sync,
) {
    if chunk == 0 {
        return;
    }
    if n >= threads() {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each_init(Vec::new, |col, (i, o)| f(i, o, col, Parallelism::None));
    } else {
        let mut col = Vec::new();
        for (i, o) in out.chunks_mut(chunk).enumerate() {
            f(i, o, &mut col, Parallelism::Rayon(0));
        }
    }
}

/// The im2col matrix of image `i` (borrowed from `x` for pointwise convolutions).
fn col_of<'a, T: Real>(g: &ConvGeom, x: &'a [T], i: usize, col: &'a mut Vec<T>) -> &'a [T] {
    let xn = &x[i * g.in_len()..(i + 1) * g.in_len()];
    if g.pointwise() {
        return xn;
    }
    col.resize(g.k() * g.p(), T::ZERO);
    im2col(g, xn, col);
    col
}

/// Forward convolution: `y[n, co, ho, wo] = Σ w[co, ci, ki, kj] x[n, ci, ...] + b[co]`.
pub fn conv2d_forward<T: Real>(g: &ConvGeom, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]) {
    assert_eq!(x.len(), g.n * g.in_len());
    assert_eq!(w.len(), g.co * g.k());
    assert_eq!(y.len(), g.n * g.co * g.p());
    let (k, p) = (g.k(), g.p());
    per_image(g.n, y, g.co * p, |i, yn: &mut [T], col, par| {
        let src = col_of(g, x, i, col);
        if let Some(b) = b {
            for (row, &bv) in yn.chunks_mut(p).zip(b) {
                row.fill(bv);
            }
        }
        let lhs = View::new(w, 0, k, 1);
        let rhs = View::new(src, 0, p, 1);
        mm(
            g.co,
            p,
            k,
            yn,
            0,
            p,
            1,
            lhs,
            rhs,
            T::of(1.0),
            b.is_some(),
            par,
        );
    });
}

/// Weight and bias gradients: `dw[co, k] = Σ_n dy_n[co, p] col_n[k, p]ᵀ`, `db[co] = Σ dy`.
pub fn conv2d_backward_weight<T: Real>(
    g: &ConvGeom,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    db: Option<&mut [T]>,
) {
    assert_eq!(x.len(), g.n * g.in_len());
    assert_eq!(dy.len(), g.n * g.co * g.p());
    assert_eq!(dw.len(), g.co * g.k());
    let (k, p, co) = (g.k(), g.p(), g.co);
    let tasks = g.n.min(threads()).max(1);
    let per = g.n.div_ceil(tasks);
    let par = if g.n >= threads() {
        Parallelism::None
    } else {
        Parallelism::Rayon(0)
    };
    let partial = |t: usize| {
        let mut acc = vec![T::ZERO; co * k];
        let mut bacc = vec![T::ZERO; co];
        let mut col = Vec::new();
        for i in t * per..((t + 1) * per).min(g.n) {
            let src = col_of(g, x, i, &mut col);
            let dyn_ = &dy[i * co * p..(i + 1) * co * p];
            let lhs = View::new(dyn_, 0, p, 1);
            let rhs = View::new(src, 0, 1, p);
            mm(co, k, p, &mut acc, 0, k, 1, lhs, rhs, T::of(1.0), true, par);
            for (bv, row) in bacc.iter_mut().zip(dyn_.chunks(p)) {
                *bv += row.iter().fold(T::ZERO, |a, &v| a + v);
            }
        }
        (acc, bacc)
    };
    let parts: Vec<(Vec<T>, Vec<T>)> = if tasks > 1 {
        (0..tasks).into_par_iter().map(partial).collect()
    } else {
        vec![partial(0)]
    };
    dw.fill(T::ZERO);
    let mut dbv = vec![T::ZERO; co];
    for (a, b) in &parts {
        for (d, &v) in dw.iter_mut().zip(a) {
            *d += v;
        }
        for (d, &v) in dbv.iter_mut().zip(b) {
            *d += v;
        }
    }
    if let Some(db) = db {
        db.copy_from_slice(&dbv);
    }
}

/// Input gradient: `dx_n = col2im(wᵀ · dy_n)`.
pub fn conv2d_backward_input<T: Real>(g: &ConvGeom, w: &[T], dy: &[T], dx: &mut [T]) {
    assert_eq!(w.len(), g.co * g.k());
    assert_eq!(dy.len(), g.n * g.co * g.p());
    assert_eq!(dx.len(), g.n * g.in_len());
    let (k, p, co) = (g.k(), g.p(), g.co);
    per_image(g.n, dx, g.in_len(), |i, dxn: &mut [T], col, par| {
        let dyn_ = &dy[i * co * p..(i + 1) * co * p];
        let lhs = View::new(w, 0, 1, k);
        let rhs = View::new(dyn_, 0, p, 1);
        if g.pointwise() {
            mm(k, p, co, dxn, 0, p, 1, lhs, rhs, T::of(1.0), false, par);
        } else {
            col.resize(k * p, T::ZERO);
            mm(k, p, co, col, 0, p, 1, lhs, rhs, T::of(1.0), false, par);
            dxn.fill(T::ZERO);
            col2im(g, col, dxn);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// GroupNorm (+ SiLU)
// ---------------------------------------------------------------------------------------------

/// Shapes of a GroupNorm over `[n, c, hw]` with `groups` groups of `c / groups` channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormGeom {
    /// Batch.
    pub n: usize,
    /// Channels (a multiple of `groups`).
    pub c: usize,
    /// Spatial positions per channel.
    pub hw: usize,
    /// Groups.
    pub groups: usize,
}

impl NormGeom {
    fn cg(&self) -> usize {
        self.c / self.groups
    }
    fn block(&self) -> usize {
        self.cg() * self.hw
    }
}

/// `σ(a)` without overflow: `e = exp(−|a|)`, `σ = 1/(1+e)` for `a ≥ 0`, `e/(1+e)` otherwise.
#[inline(always)]
fn sigmoid<T: Real, const FMA: bool>(a: T) -> T {
    let neg = a < T::ZERO;
    let e = T::exp_nonpos::<FMA>(if neg { a } else { -a });
    let one = T::of(1.0);
    let r = one / (one + e);
    if neg {
        e * r
    } else {
        r
    }
}

// Lanes of the vectorised reductions (independent accumulators, so that the compiler can keep
// them in SIMD registers; a single running sum is a serial dependency chain): the fused softmin
// kernel's, with its pairwise final sum.
use crate::ot::softmin_cpu::{pairwise_sum as pairwise, L};

/// `Σ f(x_i)` over `xs` with [`L`] accumulators, summed pairwise at the end.
#[inline(always)]
fn lane_sum<T: Real>(xs: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; L];
    let mut it = xs.chunks_exact(L);
    for c in &mut it {
        for l in 0..L {
            acc[l] += f(c[l]);
        }
    }
    for (l, &v) in it.remainder().iter().enumerate() {
        acc[l] += f(v);
    }
    pairwise(acc)
}

/// `max_i xs_i` with [`L`] lanes.
#[inline(always)]
fn lane_max<T: Real>(xs: &[T]) -> T {
    let mut acc = [T::NEG_INF; L];
    let mut it = xs.chunks_exact(L);
    for c in &mut it {
        for l in 0..L {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    for (l, &v) in it.remainder().iter().enumerate() {
        acc[l] = if v > acc[l] { v } else { acc[l] };
    }
    acc.iter()
        .fold(T::NEG_INF, |a, &v| if v > a { v } else { a })
}

/// Forward of one `(image, group)` block: returns `(mean, rstd)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gn_forward_block<T: Real, const FMA: bool>(
    x: &[T],
    shift: Option<&[T]>,
    gamma: &[T],
    beta: &[T],
    eps: f64,
    silu: bool,
    hw: usize,
    y: &mut [T],
) -> (T, T) {
    let sft = |cc: usize| shift.map_or(T::ZERO, |s| s[cc]);
    let len = x.len() as f64;
    let mut sum = 0.0f64;
    for (cc, xc) in x.chunks(hw).enumerate() {
        let s = sft(cc);
        sum += lane_sum(xc, |v| v + s).to_f64();
    }
    let mean = sum / len;
    let mut ss = 0.0f64;
    for (cc, xc) in x.chunks(hw).enumerate() {
        let s = T::of(sft(cc).to_f64() - mean);
        ss += lane_sum(xc, |v| {
            let d = v + s;
            d * d
        })
        .to_f64();
    }
    let rstd = 1.0 / (ss / len + eps).sqrt();
    for (cc, (xc, yc)) in x.chunks(hw).zip(y.chunks_mut(hw)).enumerate() {
        let gm = gamma[cc].to_f64() * rstd;
        let scale = T::of(gm);
        let bias = T::of(beta[cc].to_f64() + (sft(cc).to_f64() - mean) * gm);
        if silu {
            for (o, &v) in yc.iter_mut().zip(xc) {
                let a = T::madd::<FMA>(v, scale, bias);
                *o = a * sigmoid::<T, FMA>(a);
            }
        } else {
            for (o, &v) in yc.iter_mut().zip(xc) {
                *o = T::madd::<FMA>(v, scale, bias);
            }
        }
    }
    (T::of(mean), T::of(rstd))
}

/// Backward of one block. Writes `dx` and the per-channel `Σ da·x̂` / `Σ da` of this image.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gn_backward_block<T: Real, const FMA: bool>(
    x: &[T],
    shift: Option<&[T]>,
    gamma: &[T],
    beta: &[T],
    (mean, rstd): (T, T),
    dy: &[T],
    silu: bool,
    hw: usize,
    dx: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
) {
    let sft = |cc: usize| shift.map_or(T::ZERO, |s| s[cc]);
    // Pass 1: dx̂ = da·γ into dx; channel sums; group sums of dx̂ and dx̂·x̂.
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for cc in 0..gamma.len() {
        let r = cc * hw..(cc + 1) * hw;
        let off = sft(cc) - mean;
        let (g, b) = (gamma[cc], beta[cc]);
        // Four sums per channel, each over L lanes: Σ da·x̂, Σ da, Σ dx̂, Σ dx̂·x̂.
        let mut acc = [[T::ZERO; L]; 4];
        let one = T::of(1.0);
        let step = |l: usize, o: &mut T, v: T, d: T, acc: &mut [[T; L]; 4]| {
            let xh = (v + off) * rstd;
            let da = if silu {
                let a = T::madd::<FMA>(g, xh, b);
                let s = sigmoid::<T, FMA>(a);
                d * s * (one + a * (one - s))
            } else {
                d
            };
            let dxh = da * g;
            acc[0][l] += da * xh;
            acc[1][l] += da;
            acc[2][l] += dxh;
            acc[3][l] += dxh * xh;
            *o = dxh;
        };
        let (xs, dys, dxs) = (&x[r.clone()], &dy[r.clone()], &mut dx[r]);
        let full = xs.len() / L * L;
        for ((oc, xc), dc) in dxs[..full]
            .chunks_exact_mut(L)
            .zip(xs[..full].chunks_exact(L))
            .zip(dys[..full].chunks_exact(L))
        {
            for l in 0..L {
                step(l, &mut oc[l], xc[l], dc[l], &mut acc);
            }
        }
        for (l, ((o, &v), &d)) in dxs[full..]
            .iter_mut()
            .zip(&xs[full..])
            .zip(&dys[full..])
            .enumerate()
        {
            step(l, o, v, d, &mut acc);
        }
        let [dg, db, c1, c2] = acc.map(pairwise);
        dgamma[cc] = dg;
        dbeta[cc] = db;
        s1 += c1.to_f64();
        s2 += c2.to_f64();
    }
    // Pass 2: dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)).
    let len = x.len() as f64;
    let (m1, m2) = (T::of(s1 / len), T::of(s2 / len));
    for cc in 0..gamma.len() {
        let r = cc * hw..(cc + 1) * hw;
        let off = sft(cc) - mean;
        for (o, &v) in dx[r.clone()].iter_mut().zip(&x[r]) {
            let xh = (v + off) * rstd;
            *o = rstd * (*o - m1 - xh * m2);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod fma {
    use super::Real;

    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gn_forward_block<T: Real>(
        x: &[T],
        shift: Option<&[T]>,
        gamma: &[T],
        beta: &[T],
        eps: f64,
        silu: bool,
        hw: usize,
        y: &mut [T],
    ) -> (T, T) {
        super::gn_forward_block::<T, true>(x, shift, gamma, beta, eps, silu, hw, y)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gn_backward_block<T: Real>(
        x: &[T],
        shift: Option<&[T]>,
        gamma: &[T],
        beta: &[T],
        stats: (T, T),
        dy: &[T],
        silu: bool,
        hw: usize,
        dx: &mut [T],
        dgamma: &mut [T],
        dbeta: &mut [T],
    ) {
        super::gn_backward_block::<T, true>(
            x, shift, gamma, beta, stats, dy, silu, hw, dx, dgamma, dbeta,
        )
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn selu_block<T: Real>(x: &[T], y: &mut [T]) {
        super::selu_block::<T, true>(x, y)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax_rows<T: Real>(s: &mut [T], t: usize, lse: &mut [T]) {
        super::softmax_rows::<T, true>(s, t, lse)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn probs_and_dscores<T: Real>(
        s: &mut [T],
        dp: &mut [T],
        t: usize,
        lse: &[T],
        dsum: &[T],
    ) {
        super::probs_and_dscores::<T, true>(s, dp, t, lse, dsum)
    }
}

fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        fma::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// GroupNorm of `x + shift` (shift `[n, c]`, broadcast over positions) with affine `gamma`,
/// `beta` `[c]`, followed by SiLU when `silu`:
/// `y = act(γ_c (x + s_nc − μ_ng) / √(σ²_ng + ε) + β_c)` (biased variance, as PyTorch).
/// Writes `y` and `stats = [(μ, rstd)]` per `(image, group)`, `[n·groups·2]`.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_forward<T: Real>(
    g: &NormGeom,
    x: &[T],
    shift: Option<&[T]>,
    gamma: &[T],
    beta: &[T],
    eps: f64,
    silu: bool,
    y: &mut [T],
    stats: &mut [T],
) {
    let (cg, block, hw) = (g.cg(), g.block(), g.hw);
    assert!(g.groups > 0 && g.c.is_multiple_of(g.groups));
    assert_eq!(x.len(), g.n * g.c * hw);
    assert_eq!(y.len(), x.len());
    assert_eq!(stats.len(), g.n * g.groups * 2);
    assert_eq!((gamma.len(), beta.len()), (g.c, g.c));
    if let Some(s) = shift {
        assert_eq!(s.len(), g.n * g.c);
    }
    if block == 0 {
        return;
    }
    let fast = has_fma();
    y.par_chunks_mut(block)
        .zip(stats.par_chunks_mut(2))
        .enumerate()
        .for_each(|(i, (yb, st))| {
            let ch = (i % g.groups) * cg;
            let xb = &x[i * block..(i + 1) * block];
            let sb = shift.map(|s| &s[(i / g.groups) * g.c + ch..][..cg]);
            let (gm, bt) = (&gamma[ch..ch + cg], &beta[ch..ch + cg]);
            #[cfg(target_arch = "x86_64")]
            let r = if fast {
                // SAFETY: `fast` is true only when the CPU has AVX2 and FMA.
                unsafe { fma::gn_forward_block(xb, sb, gm, bt, eps, silu, hw, yb) }
            } else {
                gn_forward_block::<T, false>(xb, sb, gm, bt, eps, silu, hw, yb)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let r = {
                let _ = fast;
                gn_forward_block::<T, false>(xb, sb, gm, bt, eps, silu, hw, yb)
            };
            st[0] = r.0;
            st[1] = r.1;
        });
}

/// Gradients of [`group_norm_forward`]: `dx` (= the shift's gradient summed over positions,
/// written to `dshift` `[n, c]` when given), `dgamma`, `dbeta` `[c]`.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_backward<T: Real>(
    g: &NormGeom,
    x: &[T],
    shift: Option<&[T]>,
    gamma: &[T],
    beta: &[T],
    stats: &[T],
    dy: &[T],
    silu: bool,
    dx: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    dshift: Option<&mut [T]>,
) {
    let (cg, block, hw) = (g.cg(), g.block(), g.hw);
    assert_eq!(x.len(), g.n * g.c * hw);
    assert_eq!((dy.len(), dx.len()), (x.len(), x.len()));
    assert_eq!(stats.len(), g.n * g.groups * 2);
    assert_eq!((dgamma.len(), dbeta.len()), (g.c, g.c));
    if block == 0 {
        dgamma.fill(T::ZERO);
        dbeta.fill(T::ZERO);
        if let Some(ds) = dshift {
            ds.fill(T::ZERO);
        }
        return;
    }
    let fast = has_fma();
    let mut dg_nc = vec![T::ZERO; g.n * g.c];
    let mut db_nc = vec![T::ZERO; g.n * g.c];
    dx.par_chunks_mut(block)
        .zip(dg_nc.par_chunks_mut(cg))
        .zip(db_nc.par_chunks_mut(cg))
        .enumerate()
        .for_each(|(i, ((dxb, dgb), dbb))| {
            let ch = (i % g.groups) * cg;
            let r = i * block..(i + 1) * block;
            let (xb, dyb) = (&x[r.clone()], &dy[r]);
            let sb = shift.map(|s| &s[(i / g.groups) * g.c + ch..][..cg]);
            let (gm, bt) = (&gamma[ch..ch + cg], &beta[ch..ch + cg]);
            let st = (stats[2 * i], stats[2 * i + 1]);
            #[cfg(target_arch = "x86_64")]
            if fast {
                // SAFETY: `fast` is true only when the CPU has AVX2 and FMA.
                unsafe { fma::gn_backward_block(xb, sb, gm, bt, st, dyb, silu, hw, dxb, dgb, dbb) }
            } else {
                gn_backward_block::<T, false>(xb, sb, gm, bt, st, dyb, silu, hw, dxb, dgb, dbb)
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = fast;
                gn_backward_block::<T, false>(xb, sb, gm, bt, st, dyb, silu, hw, dxb, dgb, dbb)
            }
        });
    dgamma.fill(T::ZERO);
    dbeta.fill(T::ZERO);
    for (gr, br) in dg_nc.chunks(g.c).zip(db_nc.chunks(g.c)) {
        for c in 0..g.c {
            dgamma[c] += gr[c];
            dbeta[c] += br[c];
        }
    }
    if let Some(ds) = dshift {
        assert_eq!(ds.len(), g.n * g.c);
        ds.par_iter_mut()
            .zip(dx.par_chunks(hw))
            .for_each(|(d, row)| *d = row.iter().fold(T::ZERO, |a, &v| a + v));
    }
}

// ---------------------------------------------------------------------------------------------
// SELU
// ---------------------------------------------------------------------------------------------

/// SELU's λ (PyTorch's `scale`).
pub const SELU_LAMBDA: f64 = 1.050_700_987_355_480_5;
/// SELU's α.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;

#[inline(always)]
fn selu_block<T: Real, const FMA: bool>(x: &[T], y: &mut [T]) {
    let (l, la) = (T::of(SELU_LAMBDA), T::of(SELU_LAMBDA * SELU_ALPHA));
    for (o, &v) in y.iter_mut().zip(x) {
        let neg = la * (T::exp_nonpos::<FMA>(if v < T::ZERO { v } else { T::ZERO }) - T::of(1.0));
        *o = if v > T::ZERO { l * v } else { neg };
    }
}

#[inline(always)]
fn selu_backward_block<T: Real>(y: &[T], dy: &[T], dx: &mut [T]) {
    let (l, la) = (T::of(SELU_LAMBDA), T::of(SELU_LAMBDA * SELU_ALPHA));
    for ((o, &v), &d) in dx.iter_mut().zip(y).zip(dy) {
        *o = d * if v > T::ZERO { l } else { v + la };
    }
}

/// Elements per task of the elementwise kernels (below this a second thread costs more than it
/// saves).
const ELEMWISE_CHUNK: usize = 1 << 15;

/// SELU forward: `y = λx` for `x > 0`, `λα(eˣ − 1)` otherwise.
pub fn selu_forward<T: Real>(x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len());
    let fast = has_fma();
    let run = |xs: &[T], ys: &mut [T]| {
        #[cfg(target_arch = "x86_64")]
        if fast {
            // SAFETY: `fast` is true only when the CPU has AVX2 and FMA.
            return unsafe { fma::selu_block(xs, ys) };
        }
        let _ = fast;
        selu_block::<T, false>(xs, ys)
    };
    if x.len() <= ELEMWISE_CHUNK {
        run(x, y);
    } else {
        y.par_chunks_mut(ELEMWISE_CHUNK)
            .zip(x.par_chunks(ELEMWISE_CHUNK))
            .for_each(|(ys, xs)| run(xs, ys));
    }
}

/// SELU backward from the output: `dx = dy·λ` where `y > 0`, `dy·(y + λα)` elsewhere.
pub fn selu_backward<T: Real>(y: &[T], dy: &[T], dx: &mut [T]) {
    assert_eq!((y.len(), dy.len()), (dx.len(), dx.len()));
    if y.len() <= ELEMWISE_CHUNK {
        selu_backward_block(y, dy, dx);
    } else {
        dx.par_chunks_mut(ELEMWISE_CHUNK)
            .zip(
                y.par_chunks(ELEMWISE_CHUNK)
                    .zip(dy.par_chunks(ELEMWISE_CHUNK)),
            )
            .for_each(|(o, (a, b))| selu_backward_block(a, b, o));
    }
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------

/// Query rows processed at once by the attention kernels.
pub const ATTN_ROWS: usize = 128;

/// Shapes of multi-head self-attention in the "legacy" QKV layout of guided-diffusion /
/// torchcfm (`QKVAttentionLegacy`): `qkv` is `[b, heads·3·ch, t]` where head `h` owns the rows
/// `h·3ch .. (h+1)·3ch`, split into `q`, `k`, `v` of `ch` rows each; the output is
/// `[b, heads·ch, t]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnGeom {
    /// Batch.
    pub b: usize,
    /// Heads.
    pub heads: usize,
    /// Channels per head.
    pub ch: usize,
    /// Tokens (spatial positions).
    pub t: usize,
}

/// Softmax of each `t`-long row of `s` in place; `lse[i] = log Σ_j exp(s_ij)`.
#[inline(always)]
fn softmax_rows<T: Real, const FMA: bool>(s: &mut [T], t: usize, lse: &mut [T]) {
    for (row, l) in s.chunks_mut(t).zip(lse.iter_mut()) {
        let mx = lane_max(row);
        let mut acc = [T::ZERO; L];
        let mut it = row.chunks_exact_mut(L);
        for c in &mut it {
            for l in 0..L {
                let e = T::exp_nonpos::<FMA>(c[l] - mx);
                c[l] = e;
                acc[l] += e;
            }
        }
        for (l, v) in it.into_remainder().iter_mut().enumerate() {
            let e = T::exp_nonpos::<FMA>(*v - mx);
            *v = e;
            acc[l] += e;
        }
        let sum = pairwise(acc);
        let inv = T::of(1.0) / sum;
        for v in row.iter_mut() {
            *v = *v * inv;
        }
        *l = mx + sum.ln();
    }
}

/// `p = exp(s − lse_row)` over `s` and `dp ← p ∘ (dp − dsum_row)` (the score gradient).
#[inline(always)]
fn probs_and_dscores<T: Real, const FMA: bool>(
    s: &mut [T],
    dp: &mut [T],
    t: usize,
    lse: &[T],
    dsum: &[T],
) {
    for (((srow, dprow), &l), &d) in s.chunks_mut(t).zip(dp.chunks_mut(t)).zip(lse).zip(dsum) {
        for (sv, dv) in srow.iter_mut().zip(dprow.iter_mut()) {
            let p = T::exp_nonpos::<FMA>(*sv - l);
            *sv = p;
            *dv = p * (*dv - d);
        }
    }
}

fn softmax_rows_dispatch<T: Real>(fast: bool, s: &mut [T], t: usize, lse: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is true only when the CPU has AVX2 and FMA.
        return unsafe { fma::softmax_rows(s, t, lse) };
    }
    let _ = fast;
    softmax_rows::<T, false>(s, t, lse)
}

fn probs_dispatch<T: Real>(fast: bool, s: &mut [T], dp: &mut [T], t: usize, l: &[T], d: &[T]) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is true only when the CPU has AVX2 and FMA.
        return unsafe { fma::probs_and_dscores(s, dp, t, l, d) };
    }
    let _ = fast;
    probs_and_dscores::<T, false>(s, dp, t, l, d)
}

impl AttnGeom {
    fn scale2(&self) -> f64 {
        1.0 / (self.ch as f64).sqrt()
    }
    fn pairs(&self) -> usize {
        self.b * self.heads
    }
    fn par(&self) -> Parallelism {
        if self.pairs() >= threads() {
            Parallelism::None
        } else {
            Parallelism::Rayon(0)
        }
    }
}

/// Attention forward: per `(image, head)`, `O = V · softmax(Qᵀ K / √ch)ᵀ` (`Q, K, V, O` are
/// `[ch, t]`); `lse[b, h, i]` = the log-sum-exp of score row `i` (kept for the backward).
pub fn attention_forward<T: Real>(g: &AttnGeom, qkv: &[T], out: &mut [T], lse: &mut [T]) {
    let (ch, t) = (g.ch, g.t);
    assert_eq!(qkv.len(), g.pairs() * 3 * ch * t);
    assert_eq!(out.len(), g.pairs() * ch * t);
    assert_eq!(lse.len(), g.pairs() * t);
    if ch * t == 0 {
        return;
    }
    let (fast, par, scale2) = (has_fma(), g.par(), T::of(g.scale2()));
    let rows = ATTN_ROWS.min(t);
    let task = |(pair, (ob, lb)): (usize, (&mut [T], &mut [T])), s: &mut Vec<T>| {
        let blk = &qkv[pair * 3 * ch * t..(pair + 1) * 3 * ch * t];
        s.resize(rows * t, T::ZERO);
        for r0 in (0..t).step_by(rows) {
            let tc = rows.min(t - r0);
            let sb = &mut s[..tc * t];
            // S = scale2 · Qᵀ[r0.., :] K
            let q = View::new(blk, r0, 1, t);
            let k = View::new(blk, ch * t, t, 1);
            mm(tc, t, ch, sb, 0, t, 1, q, k, scale2, false, par);
            softmax_rows_dispatch(fast, sb, t, &mut lb[r0..r0 + tc]);
            // O[:, r0..] = V · Pᵀ
            let v = View::new(blk, 2 * ch * t, t, 1);
            let pt = View::new(&*sb, 0, 1, t);
            mm(ch, tc, t, ob, r0, t, 1, v, pt, T::of(1.0), false, par);
        }
    };
    let items = out.par_chunks_mut(ch * t).zip(lse.par_chunks_mut(t));
    if g.pairs() >= threads() {
        items
            .enumerate()
            .for_each_init(Vec::new, |s, it| task(it, s));
    } else {
        let mut s = Vec::new();
        for it in out.chunks_mut(ch * t).zip(lse.chunks_mut(t)).enumerate() {
            task(it, &mut s);
        }
    }
}

/// Attention backward: `dqkv` (same layout as `qkv`) from the output gradient `dout`, the
/// forward's `out` and `lse`. Per `(image, head)` and chunk of query rows:
/// `P = exp(S − lse)`, `dP = dOᵀ V`, `dS = P ∘ (dP − rowsum(dO ∘ O))`,
/// `dQ = scale² · K dSᵀ`, `dK += scale² · Q dS`, `dV += dO P`.
pub fn attention_backward<T: Real>(
    g: &AttnGeom,
    qkv: &[T],
    out: &[T],
    lse: &[T],
    dout: &[T],
    dqkv: &mut [T],
) {
    let (ch, t) = (g.ch, g.t);
    assert_eq!(qkv.len(), g.pairs() * 3 * ch * t);
    assert_eq!(dqkv.len(), qkv.len());
    assert_eq!(
        (out.len(), dout.len()),
        (g.pairs() * ch * t, g.pairs() * ch * t)
    );
    assert_eq!(lse.len(), g.pairs() * t);
    if ch * t == 0 {
        return;
    }
    let (fast, par, scale2) = (has_fma(), g.par(), T::of(g.scale2()));
    let one = T::of(1.0);
    let rows = ATTN_ROWS.min(t);
    let task = |(pair, db): (usize, &mut [T]), buf: &mut (Vec<T>, Vec<T>, Vec<T>)| {
        let blk = &qkv[pair * 3 * ch * t..(pair + 1) * 3 * ch * t];
        let o = &out[pair * ch * t..(pair + 1) * ch * t];
        let d_o = &dout[pair * ch * t..(pair + 1) * ch * t];
        let l = &lse[pair * t..(pair + 1) * t];
        let (s, dp, dsum) = buf;
        s.resize(rows * t, T::ZERO);
        dp.resize(rows * t, T::ZERO);
        // D_i = Σ_c dO[c, i] O[c, i]
        dsum.clear();
        dsum.resize(t, T::ZERO);
        for (orow, drow) in o.chunks(t).zip(d_o.chunks(t)) {
            for ((d, &a), &b) in dsum.iter_mut().zip(orow).zip(drow) {
                *d += a * b;
            }
        }
        let (dq, rest) = db.split_at_mut(ch * t);
        let (dk, dv) = rest.split_at_mut(ch * t);
        let q_all = View::new(blk, 0, t, 1);
        let k_all = View::new(blk, ch * t, t, 1);
        let v_all = View::new(blk, 2 * ch * t, t, 1);
        for r0 in (0..t).step_by(rows) {
            let tc = rows.min(t - r0);
            let (sb, dpb) = (&mut s[..tc * t], &mut dp[..tc * t]);
            let qt = View::new(blk, r0, 1, t);
            mm(tc, t, ch, sb, 0, t, 1, qt, k_all, scale2, false, par);
            let dot = View::new(d_o, r0, 1, t);
            mm(tc, t, ch, dpb, 0, t, 1, dot, v_all, one, false, par);
            probs_dispatch(fast, sb, dpb, t, &l[r0..r0 + tc], &dsum[r0..r0 + tc]);
            let (p, ds) = (View::new(&*sb, 0, t, 1), View::new(&*dpb, 0, t, 1));
            // dQ[:, r0..] = scale2 · K dSᵀ
            let dst_t = View::new(&*dpb, 0, 1, t);
            mm(ch, tc, t, dq, r0, t, 1, k_all, dst_t, scale2, false, par);
            // dK += scale2 · Q[:, r0..] dS ; dV += dO[:, r0..] P
            let qc = View::new(blk, r0, t, 1);
            mm(ch, t, tc, dk, 0, t, 1, qc, ds, scale2, r0 > 0, par);
            let doc = View::new(d_o, r0, t, 1);
            mm(ch, t, tc, dv, 0, t, 1, doc, p, one, r0 > 0, par);
        }
        let _ = q_all;
    };
    if g.pairs() >= threads() {
        dqkv.par_chunks_mut(3 * ch * t)
            .enumerate()
            .for_each_init(|| (Vec::new(), Vec::new(), Vec::new()), |b, it| task(it, b));
    } else {
        let mut b = (Vec::new(), Vec::new(), Vec::new());
        for it in dqkv.chunks_mut(3 * ch * t).enumerate() {
            task(it, &mut b);
        }
    }
}

/// Shapes of a 2-D pool over `[n, c, h, w]` (see [`super::PoolSpec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    /// Planes: batch × channels.
    pub planes: usize,
    /// Input height and width.
    pub h: usize,
    /// See `h`.
    pub w: usize,
    /// Output height and width.
    pub ho: usize,
    /// See `ho`.
    pub wo: usize,
    /// Window.
    pub k: [usize; 2],
    /// Stride.
    pub s: [usize; 2],
    /// Padding.
    pub p: [usize; 2],
}

impl PoolGeom {
    /// The geometry, or `None` when the settings are outside the kernel's domain (an empty
    /// input axis, a zero window or stride, padding over half the window, or a window larger
    /// than the padded input), where the caller falls back to the stock op and its errors.
    /// With `Some`, every window holds at least one input position.
    pub fn new(
        [n, c, h, w]: [usize; 4],
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
    ) -> Option<Self> {
        let out = |len: usize, i: usize| {
            let padded = len.checked_add(p[i].checked_mul(2)?)?;
            (len > 0 && k[i] > 0 && s[i] > 0 && 2 * p[i] <= k[i] && padded >= k[i])
                .then(|| (padded - k[i]) / s[i] + 1)
        };
        Some(Self {
            planes: n * c,
            h,
            w,
            ho: out(h, 0)?,
            wo: out(w, 1)?,
            k,
            s,
            p,
        })
    }

    /// The input range `[lo, hi)` of output index `o` along axis `i` of length `len`, clipped
    /// to the input.
    #[inline(always)]
    fn window(&self, o: usize, i: usize, len: usize) -> (usize, usize) {
        let start = o * self.s[i];
        let lo = start.saturating_sub(self.p[i]);
        let hi = (start + self.k[i]).saturating_sub(self.p[i]).min(len);
        (lo, hi)
    }
}

/// The larger of `a` and `b`, NaN if either is (`a` a running maximum: once NaN, it stays).
#[inline(always)]
fn nan_max<T: Real>(a: T, b: T) -> T {
    // `b != b`: b is NaN.
    #[allow(clippy::eq_op)]
    let take = b > a || b != b;
    if take {
        b
    } else {
        a
    }
}

/// 2-D pooling forward, `x [planes, h, w]` → `y [planes, ho, wo]`: the maximum of each window
/// (`max`; padding never wins, NaN propagates) or its mean (the divisor counts the positions
/// inside the input, or the whole window when `count_include_pad`). Separable: each input row
/// is reduced over the windows' columns (`[h, wo]`), then the rows of each window are combined
/// elementwise (contiguous, vectorised). Parallel over planes.
pub fn pool2d_forward<T: Real>(
    g: &PoolGeom,
    max: bool,
    count_include_pad: bool,
    x: &[T],
    y: &mut [T],
) {
    let (hw, out) = (g.h * g.w, g.ho * g.wo);
    assert_eq!(x.len(), g.planes * hw);
    assert_eq!(y.len(), g.planes * out);
    if g.planes == 0 {
        return;
    }
    let cols: Vec<(usize, usize)> = (0..g.wo).map(|o| g.window(o, 1, g.w)).collect();
    let full = T::of((g.k[0] * g.k[1]) as f64);
    y.par_chunks_mut(out)
        .enumerate()
        .for_each_init(Vec::new, |rows, (plane, yp)| {
            let xp = &x[plane * hw..][..hw];
            // Each input row reduced over every output column's window.
            rows.clear();
            rows.resize(g.h * g.wo, T::ZERO);
            for (xr, rr) in xp.chunks_exact(g.w).zip(rows.chunks_exact_mut(g.wo)) {
                for (v, &(c0, c1)) in rr.iter_mut().zip(&cols) {
                    let win = &xr[c0..c1];
                    *v = if max {
                        win.iter().fold(T::NEG_INF, |m, &a| nan_max(m, a))
                    } else {
                        win.iter().fold(T::ZERO, |s, &a| s + a)
                    };
                }
            }
            // The rows of each output row's window, combined.
            for (oh, yr) in yp.chunks_exact_mut(g.wo).enumerate() {
                let (r0, r1) = g.window(oh, 0, g.h);
                yr.copy_from_slice(&rows[r0 * g.wo..][..g.wo]);
                for r in r0 + 1..r1 {
                    let rr = &rows[r * g.wo..][..g.wo];
                    if max {
                        for (a, &b) in yr.iter_mut().zip(rr) {
                            *a = nan_max(*a, b);
                        }
                    } else {
                        for (a, &b) in yr.iter_mut().zip(rr) {
                            *a += b;
                        }
                    }
                }
                if !max {
                    for (a, &(c0, c1)) in yr.iter_mut().zip(&cols) {
                        let count = if count_include_pad {
                            full
                        } else {
                            T::of(((r1 - r0) * (c1 - c0)) as f64)
                        };
                        *a = *a / count;
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (six-loop) convolution, the definition.
    fn conv_naive(g: &ConvGeom, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; g.n * g.co * g.p()];
        for n in 0..g.n {
            for o in 0..g.co {
                for oh in 0..g.ho {
                    for ow in 0..g.wo {
                        let mut acc = b[o];
                        for c in 0..g.ci {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let ih = (oh * g.stride[0] + ki) as isize - g.pad[0] as isize;
                                    let iw = (ow * g.stride[1] + kj) as isize - g.pad[1] as isize;
                                    if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize
                                    {
                                        continue;
                                    }
                                    acc += w[((o * g.ci + c) * g.kh + ki) * g.kw + kj]
                                        * x[((n * g.ci + c) * g.h + ih as usize) * g.w
                                            + iw as usize];
                                }
                            }
                        }
                        y[((n * g.co + o) * g.ho + oh) * g.wo + ow] = acc;
                    }
                }
            }
        }
        y
    }

    fn seq(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn conv_forward_matches_the_definition_and_im2col_is_adjoint_to_col2im() {
        for (x, w, s, p) in [
            ([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], [1, 1]),
            ([3, 2, 8, 8], [5, 2, 3, 3], [2, 2], [1, 1]),
            ([1, 4, 5, 9], [2, 4, 1, 1], [1, 1], [0, 0]),
            ([2, 2, 6, 5], [3, 2, 2, 3], [2, 1], [0, 2]),
        ] {
            let g = ConvGeom::new(x, w, s, p).unwrap();
            let xv = seq(g.n * g.in_len(), 1);
            let wv = seq(g.co * g.k(), 2);
            let bv = seq(g.co, 3);
            let mut y = vec![0.0; g.n * g.co * g.p()];
            conv2d_forward(&g, &xv, &wv, Some(&bv), &mut y);
            let r = conv_naive(&g, &xv, &wv, &bv);
            for (a, b) in y.iter().zip(&r) {
                assert!((a - b).abs() < 1e-12, "{g:?}: {a} vs {b}");
            }
            // <im2col(x), c> = <x, col2im(c)>
            let xn = &xv[..g.in_len()];
            let c = seq(g.k() * g.p(), 4);
            let mut col = vec![0.0; g.k() * g.p()];
            im2col(&g, xn, &mut col);
            let mut back = vec![0.0; g.in_len()];
            col2im(&g, &c, &mut back);
            let lhs: f64 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f64 = xn.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0));
        }
    }

    #[test]
    fn softmax_rows_and_lse() {
        let mut s = vec![1.0, 2.0, 3.0, -1.0, 0.0, 1000.0];
        let mut lse = vec![0.0; 2];
        softmax_rows::<f64, false>(&mut s, 3, &mut lse);
        let z: f64 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((lse[0] - z).abs() < 1e-12);
        assert!((s[2] - (3.0 - z).exp()).abs() < 1e-12);
        assert!((lse[1] - 1000.0).abs() < 1e-12 && (s[5] - 1.0).abs() < 1e-12);
    }

    /// The output buffers: every length zero, on one thread and (from `PAR_ZERO_MIN` on)
    /// filled in parallel on two, over a heap block that held other values before.
    #[test]
    fn zeros_are_zero_serial_and_parallel() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for len in [0, 5, PAR_ZERO_MIN - 1, PAR_ZERO_MIN, 3 * PAR_ZERO_MIN + 7] {
            drop(vec![7.5f32; len]);
            let v = pool.install(|| zeros::<f32>(len));
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0), "len {len}");
            let w = zeros::<f64>(len);
            assert!(w.len() == len && w.iter().all(|&x| x == 0.0), "len {len}");
        }
    }
}
