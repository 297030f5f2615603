//! A fused softmin kernel for the CPU, on host `f32` / `f64` data.
//!
//! Same value as [`super::softmin::Tensorized`],
//! `softmin(ε, C, h)_i = −ε · log Σ_j exp(h_j − C_ij/ε)`, but computed row by row in one fused
//! loop instead of five whole-matrix tensor ops:
//!
//! 1. `s_j = h_j − C_ij/ε` into a row buffer (it stays in the L1/L2 cache) with its maximum
//!    `M_i` in the same pass; `C_ij` is read from an explicit matrix ([`HostCost::Matrix`]) or,
//!    for low-dimensional clouds, computed on the fly as `|x_i − y_j|²/2` from the points
//!    ([`HostCost::Points`]: no `(n, m)` matrix is streamed from memory at all);
//! 2. `Σ_j exp(s_j − M_i)` with a branch-free polynomial `exp` that the compiler vectorises;
//! 3. `softmin_i = −ε (M_i + log Σ)`.
//!
//! The log-sum-exp is the stable one (every exponent is `≤ 0`, the largest term is 1), so f32
//! stays finite at blur 0.01 on data of diameter 10. Rows are spread over rayon's threads. On
//! x86-64 the row loops are compiled a second time with AVX2 + FMA and picked at run time when
//! the CPU has them; elsewhere the portable build (auto-vectorised for the baseline target) runs.
//!
//! `exp` accuracy: f32 ≤ 2 ulp (Cephes `expf` polynomial), f64 ≤ 2 ulp (degree-13 Taylor
//! polynomial on `|r| ≤ ln2/2`, remainder `< 5·10⁻¹⁸`); arguments below −80 (f32) / −700 (f64)
//! are clamped there (their terms are `< 10⁻³⁴` of the largest one, which is 1).

use super::softmin::Softmin;
use burn::tensor::{backend::Backend, Element, Tensor, TensorData};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::ops::{Add, Mul, Sub};

/// Lanes of the unrolled row loops (two AVX2 registers of f32, four of f64).
pub(crate) const L: usize = 16;

/// Largest dimension for which [`HostCost::for_clouds`] computes costs on the fly (`3d` flops
/// per entry instead of streaming a 4- or 8-byte matrix entry from memory).
pub const ONLINE_MAX_DIM: usize = 16;

/// The float types of the fused kernel: `f32` and `f64`.
pub trait HostFloat:
    Element + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + 'static
{
    /// 0.
    const ZERO: Self;
    /// −∞.
    const NEG_INF: Self;
    /// From f64 (rounded).
    fn of(v: f64) -> Self;
    /// To f64 (exact).
    fn to_f64(self) -> f64;
    /// `a·b + c`, fused (one rounding) when `FMA` (only instantiated where the CPU has FMA
    /// instructions: elsewhere `mul_add` is a slow library call), else a product and a sum.
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self;
    /// `e^x` for `x ≤ 0` (branch-free, vectorisable; NaN propagates).
    fn exp_nonpos<const FMA: bool>(x: Self) -> Self;
}

impl HostFloat for f32 {
    const ZERO: Self = 0.0;
    const NEG_INF: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
    #[inline(always)]
    fn exp_nonpos<const FMA: bool>(x: f32) -> f32 {
        // Cephes expf: x = n ln2 + r, |r| ≤ ln2/2 (Cody–Waite), e^r by a degree-7 polynomial,
        // 2^n added to the exponent bits. n is rounded with the 1.5·2²³ trick (no SSE4.1 needed).
        const LO: f32 = -80.0;
        const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        let x = if x < LO { LO } else { x };
        let m = Self::madd::<FMA>;
        let t = m(x, std::f32::consts::LOG2_E, MAGIC);
        let n = t - MAGIC;
        let r = m(-n, LN2_LO, m(-n, LN2_HI, x));
        let p = 1.987_569_1e-4_f32;
        let p = m(p, r, 1.398_199_9e-3);
        let p = m(p, r, 8.333_452e-3);
        let p = m(p, r, 4.166_579_6e-2);
        let p = m(p, r, 1.666_666_5e-1);
        let p = m(p, r, 0.5);
        let p = m(p, r * r, r) + 1.0;
        let k = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
        f32::from_bits((p.to_bits() as i32).wrapping_add(k << 23) as u32)
    }
}

impl HostFloat for f64 {
    const ZERO: Self = 0.0;
    const NEG_INF: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
    #[inline(always)]
    fn exp_nonpos<const FMA: bool>(x: f64) -> f64 {
        const LO: f64 = -700.0;
        const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
        const LN2_HI: f64 = 6.931_457_519_531_25e-1;
        const LN2_LO: f64 = 1.428_606_820_309_417_3e-6;
        let x = if x < LO { LO } else { x };
        let m = Self::madd::<FMA>;
        let t = m(x, std::f64::consts::LOG2_E, MAGIC);
        let n = t - MAGIC;
        let r = m(-n, LN2_LO, m(-n, LN2_HI, x));
        // Taylor polynomial of degree 13 (Horner from the top): remainder < 5·10⁻¹⁸ on |r| ≤ ln2/2.
        let mut p = 1.0 / 6_227_020_800.0; // 1/13!
        for c in [
            1.0 / 479_001_600.0, // 1/12!
            1.0 / 39_916_800.0,
            1.0 / 3_628_800.0,
            1.0 / 362_880.0,
            1.0 / 40_320.0,
            1.0 / 5_040.0,
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
            1.0,
            1.0,
        ] {
            p = m(p, r, c);
        }
        let k = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
        f64::from_bits((p.to_bits() as i64).wrapping_add(k << 52) as u64)
    }
}

#[inline(always)]
fn max<T: HostFloat>(a: T, b: T) -> T {
    if b > a {
        b
    } else {
        a
    }
}

#[inline(always)]
fn reduce_max<T: HostFloat>(acc: [T; L]) -> T {
    acc.into_iter().fold(T::NEG_INF, max)
}

/// `s_j = h_j + k·c_j` (`k = −1/ε`); returns `max_j s_j`.
#[inline(always)]
fn fill_matrix<T: HostFloat, const FMA: bool>(s: &mut [T], h: &[T], c: &[T], k: T) -> T {
    let mut mx = [T::NEG_INF; L];
    let mut sc = s.chunks_exact_mut(L);
    let mut hc = h.chunks_exact(L);
    let mut cc = c.chunks_exact(L);
    for ((sv, hv), cv) in (&mut sc).zip(&mut hc).zip(&mut cc) {
        let sv: &mut [T; L] = sv.try_into().unwrap();
        let hv: &[T; L] = hv.try_into().unwrap();
        let cv: &[T; L] = cv.try_into().unwrap();
        for l in 0..L {
            let v = T::madd::<FMA>(cv[l], k, hv[l]);
            sv[l] = v;
            mx[l] = max(mx[l], v);
        }
    }
    let rest = sc.into_remainder();
    for ((sv, &hv), &cv) in rest.iter_mut().zip(hc.remainder()).zip(cc.remainder()) {
        let v = T::madd::<FMA>(cv, k, hv);
        *sv = v;
        mx[0] = max(mx[0], v);
    }
    reduce_max(mx)
}

/// `s_j = h_j + k·|x − y_j|²` (`k = −1/(2ε)`, `yt` = the `y_j` transposed, `(d, m)`); returns
/// `max_j s_j`.
#[inline(always)]
fn fill_points<T: HostFloat, const FMA: bool>(s: &mut [T], h: &[T], x: &[T], yt: &[T], k: T) -> T {
    let m = h.len();
    let mut mx = [T::NEG_INF; L];
    let full = m - m % L;
    let mut j0 = 0;
    while j0 < full {
        let mut acc = [T::ZERO; L];
        for (dk, &xk) in x.iter().enumerate() {
            let yv: &[T; L] = yt[dk * m + j0..dk * m + j0 + L].try_into().unwrap();
            for l in 0..L {
                let t = xk - yv[l];
                acc[l] = T::madd::<FMA>(t, t, acc[l]);
            }
        }
        let hv: &[T; L] = h[j0..j0 + L].try_into().unwrap();
        let sv: &mut [T; L] = (&mut s[j0..j0 + L]).try_into().unwrap();
        for l in 0..L {
            let v = T::madd::<FMA>(acc[l], k, hv[l]);
            sv[l] = v;
            mx[l] = max(mx[l], v);
        }
        j0 += L;
    }
    for j in full..m {
        let mut acc = T::ZERO;
        for (dk, &xk) in x.iter().enumerate() {
            let t = xk - yt[dk * m + j];
            acc = T::madd::<FMA>(t, t, acc);
        }
        let v = T::madd::<FMA>(acc, k, h[j]);
        s[j] = v;
        mx[0] = max(mx[0], v);
    }
    reduce_max(mx)
}

/// `Σ_j exp(s_j − mx)`.
#[inline(always)]
fn exp_sum<T: HostFloat, const FMA: bool>(s: &[T], mx: T) -> T {
    let mut acc = [T::ZERO; L];
    let mut sc = s.chunks_exact(L);
    for sv in &mut sc {
        let sv: &[T; L] = sv.try_into().unwrap();
        for l in 0..L {
            acc[l] = acc[l] + T::exp_nonpos::<FMA>(sv[l] - mx);
        }
    }
    for (l, &v) in sc.remainder().iter().enumerate() {
        acc[l] = acc[l] + T::exp_nonpos::<FMA>(v - mx);
    }
    pairwise_sum(acc)
}

/// `((a0 + a8) + (a4 + a12)) + ...`
#[inline(always)]
pub(crate) fn pairwise_sum<T: HostFloat>(mut acc: [T; L]) -> T {
    let mut w = L;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] = acc[l] + acc[l + w];
        }
    }
    acc[0]
}

/// Log-sum-exp of one row: `(M, Σ_j exp(s_j − M))`.
#[inline(always)]
fn lse_row_matrix<T: HostFloat, const FMA: bool>(s: &mut [T], h: &[T], c: &[T], k: T) -> (T, T) {
    let mx = fill_matrix::<T, FMA>(s, h, c, k);
    (mx, exp_sum::<T, FMA>(s, mx))
}

#[inline(always)]
fn lse_row_points<T: HostFloat, const FMA: bool>(
    s: &mut [T],
    h: &[T],
    x: &[T],
    yt: &[T],
    k: T,
) -> (T, T) {
    let mx = fill_points::<T, FMA>(s, h, x, yt, k);
    (mx, exp_sum::<T, FMA>(s, mx))
}

/// `w_j = exp(s_j − mx)` written over `s`; returns `Σ_j w_j`.
#[inline(always)]
fn exp_store_sum<T: HostFloat, const FMA: bool>(s: &mut [T], mx: T) -> T {
    let mut acc = [T::ZERO; L];
    let mut sc = s.chunks_exact_mut(L);
    for sv in &mut sc {
        let sv: &mut [T; L] = sv.try_into().unwrap();
        for l in 0..L {
            let w = T::exp_nonpos::<FMA>(sv[l] - mx);
            sv[l] = w;
            acc[l] = acc[l] + w;
        }
    }
    for (l, v) in sc.into_remainder().iter_mut().enumerate() {
        let w = T::exp_nonpos::<FMA>(*v - mx);
        *v = w;
        acc[l] = acc[l] + w;
    }
    pairwise_sum(acc)
}

/// `Σ_j a_j b_j`.
#[inline(always)]
fn dot<T: HostFloat, const FMA: bool>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; L];
    let mut ac = a.chunks_exact(L);
    let mut bc = b.chunks_exact(L);
    for (av, bv) in (&mut ac).zip(&mut bc) {
        let av: &[T; L] = av.try_into().unwrap();
        let bv: &[T; L] = bv.try_into().unwrap();
        for l in 0..L {
            acc[l] = T::madd::<FMA>(av[l], bv[l], acc[l]);
        }
    }
    for (l, (&a, &b)) in ac.remainder().iter().zip(bc.remainder()).enumerate() {
        acc[l] = T::madd::<FMA>(a, b, acc[l]);
    }
    pairwise_sum(acc)
}

/// One row of the barycentric projection on the points: `out_k = Σ_j P_j y_kj` with
/// `P = softmax_j(h_j − |x − y_j|²/(2ε))` (`k = −1/(2ε)`).
#[inline(always)]
fn project_row_points<T: HostFloat, const FMA: bool>(
    s: &mut [T],
    h: &[T],
    x: &[T],
    yt: &[T],
    k: T,
    out: &mut [T],
) {
    let m = h.len();
    let mx = fill_points::<T, FMA>(s, h, x, yt, k);
    let sum = exp_store_sum::<T, FMA>(s, mx);
    for (dk, o) in out.iter_mut().enumerate() {
        *o = T::of(dot::<T, FMA>(s, &yt[dk * m..(dk + 1) * m]).to_f64() / sum.to_f64());
    }
}

/// One row of `softmax_j(h_j − C_j/ε)` (`k = −1/ε`), written to `p`.
#[inline(always)]
fn softmax_row_matrix<T: HostFloat, const FMA: bool>(p: &mut [T], h: &[T], c: &[T], k: T) {
    let mx = fill_matrix::<T, FMA>(p, h, c, k);
    let inv = T::of(1.0 / exp_store_sum::<T, FMA>(p, mx).to_f64());
    p.iter_mut().for_each(|v| *v = *v * inv);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::HostFloat;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lse_row_matrix<T: HostFloat>(
        s: &mut [T],
        h: &[T],
        c: &[T],
        k: T,
    ) -> (T, T) {
        super::lse_row_matrix::<T, true>(s, h, c, k)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lse_row_points<T: HostFloat>(
        s: &mut [T],
        h: &[T],
        x: &[T],
        yt: &[T],
        k: T,
    ) -> (T, T) {
        super::lse_row_points::<T, true>(s, h, x, yt, k)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn project_row_points<T: HostFloat>(
        s: &mut [T],
        h: &[T],
        x: &[T],
        yt: &[T],
        k: T,
        out: &mut [T],
    ) {
        super::project_row_points::<T, true>(s, h, x, yt, k, out)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax_row_matrix<T: HostFloat>(p: &mut [T], h: &[T], c: &[T], k: T) {
        super::softmax_row_matrix::<T, true>(p, h, c, k)
    }

    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
}

/// Rows per rayon task: enough to amortise the task (≥ ~16k entries), enough tasks to balance.
fn rows_per_task(n: usize, m: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (n / (4 * threads))
        .max((16_384 / m.max(1)).max(1))
        .min(n)
        .max(1)
}

/// A cost the fused kernel can apply: an explicit matrix or two point clouds.
#[derive(Clone, Debug)]
pub enum HostCost<T> {
    /// Row-major `(n, m)` cost matrix.
    Matrix {
        /// The entries `C_ij` at `i·m + j`.
        c: Vec<T>,
        /// Rows.
        n: usize,
        /// Columns.
        m: usize,
    },
    /// `C_ij = |x_i − y_j|²/2`, computed on the fly.
    Points {
        /// `x: (n, d)`, row-major.
        x: Vec<T>,
        /// `yᵀ: (d, m)` (the target points transposed, for contiguous column loads).
        yt: Vec<T>,
        /// Rows (points of `x`).
        n: usize,
        /// Columns (points of `y`).
        m: usize,
        /// Dimension.
        d: usize,
    },
}

impl<T: HostFloat> HostCost<T> {
    /// An explicit row-major `(n, m)` matrix.
    pub fn matrix(c: Vec<T>, n: usize, m: usize) -> Self {
        assert_eq!(
            c.len(),
            n * m,
            "cost matrix has {} entries, not {n}·{m}",
            c.len()
        );
        Self::Matrix { c, n, m }
    }

    /// The on-the-fly cost `|x_i − y_j|²/2` between row-major clouds `x: (n, d)`, `y: (m, d)`.
    pub fn points(x: &[T], y: &[T], d: usize) -> Self {
        assert!(d > 0 && x.len().is_multiple_of(d) && y.len().is_multiple_of(d));
        let (n, m) = (x.len() / d, y.len() / d);
        let mut yt = vec![T::ZERO; d * m];
        for (j, yj) in y.chunks_exact(d).enumerate() {
            for (k, &v) in yj.iter().enumerate() {
                yt[k * m + j] = v;
            }
        }
        Self::Points {
            x: x.to_vec(),
            yt,
            n,
            m,
            d,
        }
    }

    /// `(n, m)`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Self::Matrix { n, m, .. } | Self::Points { n, m, .. } => [*n, *m],
        }
    }

    /// The explicit row-major `(n, m)` matrix (for `Points`, `|x_i − y_j|²/2` by direct
    /// differences, rows in parallel).
    pub fn to_matrix(&self) -> Vec<T> {
        match self {
            Self::Matrix { c, .. } => c.clone(),
            Self::Points { x, yt, m, d, .. } => {
                let (m, d) = (*m, *d);
                let mut c = vec![T::ZERO; self.dims()[0] * m];
                if m == 0 {
                    return c;
                }
                c.par_chunks_mut(m).enumerate().for_each(|(i, row)| {
                    row.fill(T::ZERO);
                    for dk in 0..d {
                        let xk = x[i * d + dk];
                        for (cj, &yk) in row.iter_mut().zip(&yt[dk * m..(dk + 1) * m]) {
                            let t = xk - yk;
                            *cj = *cj + t * t;
                        }
                    }
                    let half = T::of(0.5);
                    row.iter_mut().for_each(|cj| *cj = *cj * half);
                });
                c
            }
        }
    }

    /// Entropic barycentric projection onto the column points of a `Points` cost:
    /// `T_i = Σ_j P_ij y_j`, `P_ij = softmax_j(h_j − C_ij/ε)`; `(n, d)` row-major.
    /// `None` for a `Matrix` cost (it does not know the points).
    pub fn barycentric(&self, eps: f64, h: &[T]) -> Option<Vec<T>> {
        let Self::Points { x, yt, n, m, d } = self else {
            return None;
        };
        let (n, m, d) = (*n, *m, *d);
        assert_eq!(h.len(), m, "h has length {}, the cost {m} columns", h.len());
        let mut out = vec![T::ZERO; n * d];
        if n == 0 || m == 0 {
            return Some(out);
        }
        #[cfg(target_arch = "x86_64")]
        let simd = avx2::available();
        let rows = rows_per_task(n, m);
        let k = T::of(-0.5 / eps);
        out.par_chunks_mut(rows * d)
            .enumerate()
            .for_each(|(blk, out_blk)| {
                let mut s = vec![T::ZERO; m];
                for (r, o) in out_blk.chunks_exact_mut(d).enumerate() {
                    let i = blk * rows + r;
                    let xi = &x[i * d..(i + 1) * d];
                    #[cfg(target_arch = "x86_64")]
                    if simd {
                        // SAFETY: AVX2 and FMA were detected at run time.
                        unsafe { avx2::project_row_points(&mut s, h, xi, yt, k, o) }
                    } else {
                        project_row_points::<T, false>(&mut s, h, xi, yt, k, o)
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    project_row_points::<T, false>(&mut s, h, xi, yt, k, o);
                }
            });
        Some(out)
    }

    /// The row-stochastic matrix `P_ij = softmax_j(h_j − C_ij/ε)` of a `Matrix` cost, `(n, m)`
    /// row-major (`None` for a `Points` cost: use [`Self::barycentric`]).
    pub fn softmax(&self, eps: f64, h: &[T]) -> Option<Vec<T>> {
        let Self::Matrix { c, n, m } = self else {
            return None;
        };
        let (n, m) = (*n, *m);
        assert_eq!(h.len(), m, "h has length {}, the cost {m} columns", h.len());
        let mut p = vec![T::ZERO; n * m];
        if n == 0 || m == 0 {
            return Some(p);
        }
        #[cfg(target_arch = "x86_64")]
        let simd = avx2::available();
        let k = T::of(-1.0 / eps);
        p.par_chunks_mut(m)
            .zip(c.par_chunks(m))
            .for_each(|(pi, ci)| {
                #[cfg(target_arch = "x86_64")]
                if simd {
                    // SAFETY: AVX2 and FMA were detected at run time.
                    unsafe { avx2::softmax_row_matrix(pi, h, ci, k) }
                } else {
                    softmax_row_matrix::<T, false>(pi, h, ci, k)
                }
                #[cfg(not(target_arch = "x86_64"))]
                softmax_row_matrix::<T, false>(pi, h, ci, k);
            });
        Some(p)
    }

    /// `softmin(ε, C, h)_i = −ε · log Σ_j exp(h_j − C_ij/ε)`, `h: (m,)` → `(n,)`.
    pub fn softmin(&self, eps: f64, h: &[T]) -> Vec<T> {
        let [n, m] = self.dims();
        assert_eq!(h.len(), m, "h has length {}, the cost {m} columns", h.len());
        let mut out = vec![T::ZERO; n];
        if n == 0 {
            return out;
        }
        #[cfg(target_arch = "x86_64")]
        let simd = avx2::available();
        let rows = rows_per_task(n, m);
        let finish = |mx: T, sum: T| T::of(-eps * (mx.to_f64() + sum.to_f64().ln()));
        match self {
            Self::Matrix { c, .. } => {
                let k = T::of(-1.0 / eps);
                out.par_chunks_mut(rows)
                    .enumerate()
                    .for_each(|(blk, out_blk)| {
                        let mut s = vec![T::ZERO; m];
                        for (r, o) in out_blk.iter_mut().enumerate() {
                            let i = blk * rows + r;
                            let ci = &c[i * m..(i + 1) * m];
                            #[cfg(target_arch = "x86_64")]
                            let (mx, sum) = if simd {
                                // SAFETY: AVX2 and FMA were detected at run time.
                                unsafe { avx2::lse_row_matrix(&mut s, h, ci, k) }
                            } else {
                                lse_row_matrix::<T, false>(&mut s, h, ci, k)
                            };
                            #[cfg(not(target_arch = "x86_64"))]
                            let (mx, sum) = lse_row_matrix::<T, false>(&mut s, h, ci, k);
                            *o = finish(mx, sum);
                        }
                    });
            }
            Self::Points { x, yt, d, .. } => {
                let d = *d;
                let k = T::of(-0.5 / eps);
                out.par_chunks_mut(rows)
                    .enumerate()
                    .for_each(|(blk, out_blk)| {
                        let mut s = vec![T::ZERO; m];
                        for (r, o) in out_blk.iter_mut().enumerate() {
                            let i = blk * rows + r;
                            let xi = &x[i * d..(i + 1) * d];
                            #[cfg(target_arch = "x86_64")]
                            let (mx, sum) = if simd {
                                // SAFETY: AVX2 and FMA were detected at run time.
                                unsafe { avx2::lse_row_points(&mut s, h, xi, yt, k) }
                            } else {
                                lse_row_points::<T, false>(&mut s, h, xi, yt, k)
                            };
                            #[cfg(not(target_arch = "x86_64"))]
                            let (mx, sum) = lse_row_points::<T, false>(&mut s, h, xi, yt, k);
                            *o = finish(mx, sum);
                        }
                    });
            }
        }
        out
    }
}

/// The fused host softmin as a [`Softmin`] kernel: tensors in and out, the work on host `T`
/// data. Meant for the CPU backend, where moving a vector between a tensor and the host is a
/// copy of `n` numbers (on a device backend it would be a round trip per softmin).
#[derive(Clone, Copy, Debug, Default)]
pub struct Fused<T>(PhantomData<T>);

impl<T> Fused<T> {
    /// The kernel.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// A rank-1 tensor's elements as host `T`.
pub fn host_vec<B: Backend, T: HostFloat>(t: Tensor<B, 1>) -> Vec<T> {
    t.into_data()
        .convert::<T>()
        .into_vec::<T>()
        .expect("converted tensor data holds the requested element type")
}

impl<B: Backend, T: HostFloat> Softmin<B> for Fused<T> {
    type Cost = HostCost<T>;

    fn softmin(&self, eps: f64, cost: &HostCost<T>, h: Tensor<B, 1>) -> Tensor<B, 1> {
        let dev = h.device();
        let out = cost.softmin(eps, &host_vec::<B, T>(h));
        let n = out.len();
        Tensor::from_data(TensorData::new(out, [n]), (&dev, T::dtype()))
    }

    fn c_transform(
        &self,
        eps: f64,
        cost: &HostCost<T>,
        log_w: &Tensor<B, 1>,
        dual: &Tensor<B, 1>,
    ) -> Tensor<B, 1> {
        let dev = dual.device();
        let w = host_vec::<B, T>(log_w.clone());
        let g = host_vec::<B, T>(dual.clone());
        let e = T::of(eps);
        let h: Vec<T> = w
            .iter()
            .zip(&g)
            .map(|(&w, &g)| w + T::of(g.to_f64() / e.to_f64()))
            .collect();
        let out = cost.softmin(eps, &h);
        let n = out.len();
        Tensor::from_data(TensorData::new(out, [n]), (&dev, T::dtype()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(eps: f64, c: &[f64], h: &[f64], n: usize, m: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let s: f64 = (0..m).map(|j| (h[j] - c[i * m + j] / eps).exp()).sum();
                -eps * s.ln()
            })
            .collect()
    }

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst32 = 0.0f64;
        let mut worst64 = 0.0f64;
        for k in 0..=200_000 {
            let x = -80.0 * k as f64 / 200_000.0;
            let e32 = f32::exp_nonpos::<false>(x as f32) as f64;
            let w32 = (x as f32).exp() as f64;
            worst32 = worst32.max((e32 - w32).abs() / w32);
            let e64 = f64::exp_nonpos::<false>(x);
            let w64 = x.exp();
            worst64 = worst64.max((e64 - w64).abs() / w64);
        }
        assert!(
            worst32 < 3.0 * f32::EPSILON as f64,
            "f32 exp rel err {worst32}"
        );
        assert!(worst64 < 3.0 * f64::EPSILON, "f64 exp rel err {worst64}");
        assert_eq!(f64::exp_nonpos::<false>(0.0), 1.0);
        assert_eq!(f32::exp_nonpos::<false>(0.0), 1.0);
        assert!(f32::exp_nonpos::<false>(-1e30) >= 0.0 && f32::exp_nonpos::<false>(-1e30) < 1e-34);
        assert!(f32::exp_nonpos::<false>(f32::NEG_INFINITY) < 1e-34);
        assert!(f32::exp_nonpos::<false>(f32::NAN).is_nan());
        assert!(f64::exp_nonpos::<false>(f64::NAN).is_nan());
    }

    /// Clouds and a dual with uneven sizes (remainder lanes exercised).
    fn case(n: usize, m: usize, d: usize, scale: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let x = (0..n * d)
            .map(|k| scale * ((k as f64 * 0.731).sin() + 0.3 * (k as f64 * 1.37).cos()))
            .collect();
        let y = (0..m * d)
            .map(|k| scale * (0.8 * (k as f64 * 0.419).cos() + 0.5))
            .collect();
        let h = (0..m)
            .map(|j| -(m as f64).ln() + 0.3 * (j as f64 * 0.77).sin())
            .collect();
        (x, y, h)
    }

    fn half_sq(x: &[f64], y: &[f64], d: usize) -> Vec<f64> {
        let (n, m) = (x.len() / d, y.len() / d);
        let mut c = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                c[i * m + j] = 0.5
                    * (0..d)
                        .map(|k| (x[i * d + k] - y[j * d + k]).powi(2))
                        .sum::<f64>();
            }
        }
        c
    }

    #[test]
    fn matrix_and_points_match_the_naive_formula_f64() {
        for &(n, m, d) in &[
            (1, 1, 1),
            (7, 37, 2),
            (33, 19, 3),
            (64, 130, 5),
            (5, 300, 17),
        ] {
            let (x, y, h) = case(n, m, d, 1.0);
            let c = half_sq(&x, &y, d);
            for eps in [2.0, 0.3, 0.05] {
                let want = naive(eps, &c, &h, n, m);
                let got_m = HostCost::matrix(c.clone(), n, m).softmin(eps, &h);
                let got_p = HostCost::points(&x, &y, d).softmin(eps, &h);
                for i in 0..n {
                    let tol = 1e-13 * want[i].abs().max(1.0);
                    assert!(
                        (got_m[i] - want[i]).abs() < tol,
                        "matrix {n}x{m}x{d} eps {eps}"
                    );
                    assert!(
                        (got_p[i] - want[i]).abs() < tol,
                        "points {n}x{m}x{d} eps {eps}"
                    );
                }
            }
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let (n, m, d) = (45, 71, 2);
        let (x, y, h) = case(n, m, d, 2.0);
        let c = half_sq(&x, &y, d);
        let eps = 0.1;
        let want = naive(eps, &c, &h, n, m);
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let got_m = HostCost::matrix(f(&c), n, m).softmin(eps, &f(&h));
        let got_p = HostCost::points(&f(&x), &f(&y), d).softmin(eps, &f(&h));
        for i in 0..n {
            // f32 rounding of C/ε (up to ~10²) and of the result.
            let tol = 1e-5 * want[i].abs().max(1.0);
            assert!(
                (got_m[i] as f64 - want[i]).abs() < tol,
                "{} vs {}",
                got_m[i],
                want[i]
            );
            assert!(
                (got_p[i] as f64 - want[i]).abs() < tol,
                "{} vs {}",
                got_p[i],
                want[i]
            );
        }
    }

    #[test]
    fn stays_finite_at_tiny_eps_in_f32() {
        // Diameter ~10, blur 0.01: C/ε up to ~5·10⁵; the naive formula underflows to log 0.
        let (n, m, d) = (40, 50, 2);
        let (x, y, h) = case(n, m, d, 5.0);
        let c = half_sq(&x, &y, d);
        let eps = 1e-4;
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        for got in [
            HostCost::matrix(f(&c), n, m).softmin(eps, &f(&h)),
            HostCost::points(&f(&x), &f(&y), d).softmin(eps, &f(&h)),
        ] {
            for i in 0..n {
                let hard = (0..m)
                    .map(|j| c[i * m + j] - eps * h[j])
                    .fold(f64::INFINITY, f64::min);
                let g = got[i] as f64;
                assert!(g.is_finite());
                // softmin ∈ [hard − ε log m, hard], up to f32 rounding of C (~1e-6 · 50).
                assert!(g <= hard + 1e-4 && g >= hard - eps * (m as f64).ln() - 1e-4);
            }
        }
    }
}
