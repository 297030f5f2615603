//! Exact 2-Wasserstein distance between uniform empirical measures, for evaluation.
//!
//! # Definition
//!
//! For point clouds x = (x_1, …, x_n) and y = (y_1, …, y_m) in R^d with uniform weights,
//!
//! ```text
//! M_ij  = |x_i − y_j|²                        (squared Euclidean, f64, explicit differences)
//! W2²   = min_{P ∈ U(1/n, 1/m)} Σ_ij P_ij M_ij
//! U(a, b) = { P ≥ 0 : P 1 = a, Pᵀ 1 = b }
//! W2    = sqrt(W2²)
//! ```
//!
//! which is exactly POT's `sqrt(ot.emd2(ot.unif(n), ot.unif(m), M))` (and torchcfm's
//! `wasserstein(x0, x1, power=2)` up to its float32 cost matrix).
//!
//! # Method
//!
//! * **n = m.** The transportation polytope U(1/n, 1/n) is (1/n)× the Birkhoff polytope, whose
//!   vertices are permutation matrices, so W2² = (1/n) min_σ Σ_i M_{i σ(i)}: a linear sum
//!   assignment problem, solved by [`linear_sum_assignment`] (Jonker–Volgenant).
//! * **n ≠ m.** Let g = gcd(n, m) and L = lcm(n, m) = n m / g. Replicating every x_i
//!   r_x = L/n = m/g times and every y_j r_y = L/m = n/g times gives two clouds of L points each.
//!   Scaling by L, the plans of the original problem are the matrices of U(r_x 1_n, r_y 1_m), whose
//!   vertices are integral (the constraint matrix is totally unimodular); an integral plan is split
//!   into unit flows, i.e. into a permutation of the L×L replicated problem, and conversely every
//!   permutation aggregates into a plan. Hence W2² = (1/L) · (optimal assignment cost of the
//!   replicated L×L problem). This is exact but costs O(L³) time in the worst case, so it is refused
//!   with [`NsgfError::Param`] when L > [`MAX_REPLICATED_SIZE`] (= 8192).
//!
//! # Complexity
//!
//! Building the cost matrix is O(n m d) (parallel over rows with rayon). The assignment solver is
//! O(N³) in the worst case for an N×N problem (N = n, or N = L); on random Euclidean data it behaves
//! far better than that (see `BENCHMARKS.md`). Memory: the cost matrix, 8·n·N bytes (8 n² for
//! n = m; the replicated columns are materialised, the replicated rows are not), plus O(N).

use crate::error::{ensure_finite, NsgfError, Result};
use crate::io::npy::Points;
use rayon::prelude::*;

/// Largest replicated problem size L = lcm(n, m) accepted by [`w2`] / [`w2_squared`] when n ≠ m.
///
/// At the cap the replicated cost matrix holds n·L ≤ L² f64 values (≤ 512 MiB) and the solver
/// needs O(L³) time in the worst case. Equal sizes (n = m) are not capped.
pub const MAX_REPLICATED_SIZE: usize = 8192;

/// Marker for "no row" / "no column".
const NONE: usize = usize::MAX;

/// Solves the linear sum assignment problem min_σ Σ_i cost[i, σ(i)] over permutations σ of 0..n.
///
/// `cost` is an n×n matrix in row-major order (`cost[i * n + j]` is the cost of assigning row i to
/// column j); all entries must be finite. Returns `(perm, total)` with row i assigned to column
/// `perm[i]` and `total = Σ_i cost[i, perm[i]]` (compensated summation).
///
/// Algorithm (f64 throughout): Jonker & Volgenant (1987), "A shortest augmenting path algorithm
/// for dense and sparse linear assignment problems", with column dual potentials v_j and reduced
/// costs c_ij − v_j:
///
/// 1. column reduction (v_j = min_i c_ij) and reduction transfer;
/// 2. augmenting row reduction, run with ε-scaling: JV's augmenting row reduction is a
///    Gauss–Seidel auction with ε = 0, which on floating-point Euclidean costs degenerates into a
///    "price war" of tiny price decrements (measured: > 100 s at n = 1024); here it runs as an
///    ε-scaling auction (Bertsekas) down to a tiny relative ε, with a bid budget per phase. It only
///    provides near-optimal duals and a partial assignment;
/// 3. every row whose assigned reduced cost is not exactly its row minimum is released, and each
///    free row is assigned by JV's Dijkstra-like shortest augmenting path on the reduced costs,
///    followed by the dual update of the scanned columns.
///
/// Step 3 alone is a complete exact algorithm (steps 1–2 only shorten its paths), so the result is
/// an optimal assignment up to floating-point rounding of the dual updates (relative effects of
/// order n·ε_mach on the total).
///
/// Complexity: O(n³) time in the worst case (the auction phases are bounded by a bid budget of
/// O(n) bids of O(n) each); on random Euclidean costs about 0.04 s at n = 1024 and 1.3 s at
/// n = 4096 on one core (see `BENCHMARKS.md`). O(n) extra memory (the cost matrix is read in place).
///
/// Errors: [`NsgfError::Shape`] when `cost.len() != n * n`, [`NsgfError::NonFinite`] on a NaN or
/// an infinity. `n = 0` gives the empty assignment with total 0.
pub fn linear_sum_assignment(cost: &[f64], n: usize) -> Result<(Vec<usize>, f64)> {
    let expected = n
        .checked_mul(n)
        .ok_or_else(|| NsgfError::Shape(format!("cost matrix size {n}×{n} overflows")))?;
    if cost.len() != expected {
        return Err(NsgfError::Shape(format!(
            "cost matrix has {} entries, expected {n}×{n} = {expected}",
            cost.len()
        )));
    }
    ensure_finite(cost, "cost matrix")?;
    if n == 0 {
        return Ok((Vec::new(), 0.0));
    }
    let rows = CostRows {
        data: cost,
        dim: n,
        rep: 1,
    };
    let perm = lapjv(&rows)?;
    let total = neumaier_sum((0..n).map(|i| cost[i * n + perm[i]]));
    Ok((perm, total))
}

/// Squared exact 2-Wasserstein distance W2² between the uniform empirical measures on the rows of
/// `x` (n×d) and `y` (m×d); see the module documentation for the definition and the method.
///
/// Errors: [`NsgfError::Shape`] for an empty cloud, a zero dimension, `data.len() != n·d` or
/// differing dimensions; [`NsgfError::NonFinite`] for NaN/∞ in the data or in a squared distance
/// (overflow); [`NsgfError::Param`] when n ≠ m and lcm(n, m) > [`MAX_REPLICATED_SIZE`].
pub fn w2_squared(x: &Points, y: &Points) -> Result<f64> {
    check_points(x, "x")?;
    check_points(y, "y")?;
    if x.d != y.d {
        return Err(NsgfError::Shape(format!(
            "point dimensions differ: x is {}×{}, y is {}×{}",
            x.n, x.d, y.n, y.d
        )));
    }
    let (n, m, d) = (x.n, y.n, x.d);
    let g = gcd(n, m);
    let l = (n / g)
        .checked_mul(m)
        .filter(|&l| n == m || l <= MAX_REPLICATED_SIZE)
        .ok_or_else(|| {
            NsgfError::Param(format!(
                "exact W2 between clouds of different sizes n = {n} and m = {m} solves an assignment \
                 problem of size lcm(n, m) = {}, above the cap {MAX_REPLICATED_SIZE}; subsample to \
                 sizes with a smaller least common multiple (e.g. equal sizes)",
                (n as u128 / g as u128) * m as u128
            ))
        })?;
    let (rx, ry) = (l / n, l / m);

    // Row-expanded cost matrix: n rows × l columns; column c stands for y_{c / ry}. Row i of the
    // l×l replicated problem is row i / rx of this matrix.
    let mut cost = vec![0.0f64; n * l];
    cost.par_chunks_mut(l).enumerate().for_each(|(i, row)| {
        let xi = &x.data[i * d..(i + 1) * d];
        for (b, yb) in y.data.chunks_exact(d).enumerate() {
            let c = sq_dist(xi, yb);
            row[b * ry..(b + 1) * ry].fill(c);
        }
    });
    ensure_finite(&cost, "squared-distance matrix (overflow)")?;

    let rows = CostRows {
        data: &cost,
        dim: l,
        rep: rx,
    };
    let perm = lapjv(&rows)?;
    let total = neumaier_sum((0..l).map(|i| cost[(i / rx) * l + perm[i]]));
    Ok(total / l as f64)
}

/// Exact 2-Wasserstein distance W2 = sqrt([`w2_squared`]) between the uniform empirical measures on
/// the rows of `x` (n×d) and `y` (m×d), as POT's `sqrt(ot.emd2(unif(n), unif(m), M))` with
/// M = squared Euclidean distances. Same errors as [`w2_squared`].
pub fn w2(x: &Points, y: &Points) -> Result<f64> {
    Ok(w2_squared(x, y)?.sqrt())
}

fn check_points(p: &Points, name: &str) -> Result<()> {
    if p.n == 0 || p.d == 0 {
        return Err(NsgfError::Shape(format!(
            "point cloud {name} is empty ({}×{})",
            p.n, p.d
        )));
    }
    if p.n.checked_mul(p.d) != Some(p.data.len()) {
        return Err(NsgfError::Shape(format!(
            "point cloud {name} declares {}×{} but holds {} values",
            p.n,
            p.d,
            p.data.len()
        )));
    }
    ensure_finite(&p.data, &format!("point cloud {name}"))
}

/// |a − b|² from explicit differences.
#[inline]
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| {
            let t = p - q;
            t * t
        })
        .sum()
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Neumaier (improved Kahan) summation.
fn neumaier_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = s + v;
        if s.abs() >= v.abs() {
            c += (s - t) + v;
        } else {
            c += (v - t) + s;
        }
        s = t;
    }
    s + c
}

/// A square `dim × dim` cost matrix whose rows come in runs of `rep` identical rows: row i is
/// `data[(i / rep) * dim .. (i / rep + 1) * dim]`.
struct CostRows<'a> {
    data: &'a [f64],
    dim: usize,
    rep: usize,
}

impl CostRows<'_> {
    #[inline(always)]
    fn row(&self, i: usize) -> &[f64] {
        let start = (i / self.rep) * self.dim;
        &self.data[start..start + self.dim]
    }
}

/// Jonker–Volgenant LAPJV (with ε-scaled augmenting row reduction, see [`linear_sum_assignment`])
/// on a square matrix of finite costs; returns `rowsol` (row → column).
fn lapjv(c: &CostRows) -> Result<Vec<usize>> {
    lapjv_with(c, true)
}

/// [`lapjv`] with the auction warm start switchable (tests check that the exact phase alone and
/// the warm-started solver agree).
fn lapjv_with(c: &CostRows, warm_start: bool) -> Result<Vec<usize>> {
    let dim = c.dim;
    if dim == 1 {
        return Ok(vec![0]);
    }
    let mut v = vec![f64::INFINITY; dim];
    let mut rowsol = vec![NONE; dim];
    let mut colsol = vec![NONE; dim];

    // ---- Column reduction: v_j = min_i c_ij, scanned row by row (cache-friendly); the first
    // minimising row wins ties. Replicated rows cannot improve a strict minimum, skip them.
    {
        let mut imin = vec![0usize; dim];
        for i in (0..dim).step_by(c.rep) {
            let row = c.row(i);
            for ((vj, ij), &cij) in v.iter_mut().zip(imin.iter_mut()).zip(row) {
                if cij < *vj {
                    *vj = cij;
                    *ij = i;
                }
            }
        }
        let mut matches = vec![0u32; dim];
        // Reverse column order, as in the original code.
        for j in (0..dim).rev() {
            let i = imin[j];
            matches[i] += 1;
            if matches[i] == 1 {
                rowsol[i] = j;
                colsol[j] = i;
            } else if v[j] < v[rowsol[i]] {
                let j1 = rowsol[i];
                rowsol[i] = j;
                colsol[j] = i;
                colsol[j1] = NONE;
            } else {
                colsol[j] = NONE;
            }
        }

        // ---- Reduction transfer from rows assigned exactly once; collect the free rows.
        let mut free = Vec::with_capacity(dim);
        for i in 0..dim {
            match matches[i] {
                0 => free.push(i),
                1 => {
                    let j1 = rowsol[i];
                    let row = c.row(i);
                    let mut min = f64::INFINITY;
                    for (j, (&cij, &vj)) in row.iter().zip(&v).enumerate() {
                        let h = cij - vj;
                        if h < min && j != j1 {
                            min = h;
                        }
                    }
                    v[j1] -= min;
                }
                _ => {}
            }
        }
        if warm_start {
            auction(c, &mut v, &mut rowsol, &mut colsol, &mut free);
        }
        free_loose_rows(c, &v, &mut rowsol, &mut colsol, &mut free);
        augment(c, &mut v, &mut rowsol, &mut colsol, &free);
    }

    // Internal consistency check (cheap): rowsol must be a permutation.
    let mut seen = vec![false; dim];
    for &j in &rowsol {
        if j >= dim || seen[j] {
            return Err(NsgfError::Other(
                "internal error: assignment solver did not return a permutation".into(),
            ));
        }
        seen[j] = true;
    }
    Ok(rowsol)
}

/// Block width of the vectorisable pre-checks in [`two_smallest`] and [`row_min`].
const LANES: usize = 8;

/// `a < b ? a : b` (compiles to a packed min, unlike `f64::min` with its NaN rules).
#[inline(always)]
fn fmin(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// Minimum of `h[..LANES]`.
#[inline(always)]
fn block_min(h: &[f64; LANES]) -> f64 {
    let a = fmin(fmin(h[0], h[1]), fmin(h[2], h[3]));
    let b = fmin(fmin(h[4], h[5]), fmin(h[6], h[7]));
    fmin(a, b)
}

/// Minimum and second minimum of the reduced costs `row[j] − v[j]` with their columns
/// `(min, j_min, second_min, j_second)`; the first minimising column wins ties, and
/// `second_min == min` signals a tie. `row.len() == v.len() >= 2`.
///
/// Blocks of [`LANES`] columns are first reduced to their minimum (vectorised); a block is scanned
/// element by element only when it can change the result.
#[inline]
fn two_smallest(row: &[f64], v: &[f64]) -> (f64, usize, f64, usize) {
    let mut top = Top2 {
        umin: f64::INFINITY,
        j1: 0,
        usubmin: f64::INFINITY,
        j2: 0,
    };
    let rc = row.chunks_exact(LANES);
    let vc = v.chunks_exact(LANES);
    let tail = rc.len() * LANES;
    for (b, (r, w)) in rc.zip(vc).enumerate() {
        let mut h = [0.0f64; LANES];
        for t in 0..LANES {
            h[t] = r[t] - w[t];
        }
        if block_min(&h) < top.usubmin {
            for (t, &ht) in h.iter().enumerate() {
                top.push(ht, b * LANES + t);
            }
        }
    }
    for (j, (&cij, &vj)) in row.iter().zip(v).enumerate().skip(tail) {
        top.push(cij - vj, j);
    }
    (top.umin, top.j1, top.usubmin, top.j2)
}

/// Running minimum and second minimum with their indices.
struct Top2 {
    umin: f64,
    j1: usize,
    usubmin: f64,
    j2: usize,
}

impl Top2 {
    #[inline(always)]
    fn push(&mut self, h: f64, j: usize) {
        if h < self.usubmin {
            if h >= self.umin {
                self.usubmin = h;
                self.j2 = j;
            } else {
                self.usubmin = self.umin;
                self.umin = h;
                self.j2 = self.j1;
                self.j1 = j;
            }
        }
    }
}

/// min_j (row[j] − v[j]), vectorised.
#[inline]
fn row_min(row: &[f64], v: &[f64]) -> f64 {
    let mut acc = [f64::INFINITY; LANES];
    let rc = row.chunks_exact(LANES);
    let vc = v.chunks_exact(LANES);
    let tail = rc.len() * LANES;
    for (r, w) in rc.zip(vc) {
        for t in 0..LANES {
            acc[t] = fmin(acc[t], r[t] - w[t]);
        }
    }
    let mut m = block_min(&acc);
    for (&cij, &vj) in row[tail..].iter().zip(&v[tail..]) {
        m = fmin(m, cij - vj);
    }
    m
}

/// ε-scaling auction (Bertsekas) on the column prices `v`, used only to warm-start the exact
/// shortest-path phase with near-optimal duals. Each phase first releases the rows whose assigned
/// reduced cost exceeds their row minimum by more than ε, then lets free rows bid (Gauss–Seidel):
/// row i takes its best column j1 and lowers `v[j1]` by (second min − min) + ε, displacing the
/// previous owner. ε shrinks geometrically from a fraction of the cost range down to a small
/// relative floor (well above the f64 resolution of the prices, so that every bid changes a price).
/// A bid budget per phase bounds the work whatever the data; rows left over stay free.
fn auction(
    c: &CostRows,
    v: &mut [f64],
    rowsol: &mut [usize],
    colsol: &mut [usize],
    free: &mut Vec<usize>,
) {
    let dim = c.dim;
    let (mut cmin, mut cmax) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in (0..dim).step_by(c.rep) {
        for &x in c.row(i) {
            cmin = cmin.min(x);
            cmax = cmax.max(x);
        }
    }
    let range = cmax - cmin;
    // (All entries are finite, so `range` is a number.)
    if range <= 0.0 || free.is_empty() {
        return;
    }
    let scale = cmax.abs().max(cmin.abs());
    let eps_final = (range * AUCTION_EPS_FINAL / dim as f64).max(scale * 1e-11);
    let mut eps = (range * AUCTION_EPS_START).max(eps_final);
    let max_bids = AUCTION_MAX_BIDS_PER_ROW * dim;
    let mut first = true;
    loop {
        if !first {
            // Release the rows that violate ε-complementary slackness for the new ε.
            for (i, ri) in rowsol.iter_mut().enumerate() {
                let a = *ri;
                if a == NONE || colsol[a] != i {
                    continue;
                }
                let row = c.row(i);
                if row[a] - v[a] - row_min(row, v) > eps {
                    colsol[a] = NONE;
                    *ri = NONE;
                    free.push(i);
                }
            }
        }
        first = false;
        let mut bids = 0usize;
        while let Some(i) = free.pop() {
            if bids >= max_bids {
                free.push(i);
                break;
            }
            bids += 1;
            let row = c.row(i);
            let (umin, j1, usubmin, _) = two_smallest(row, v);
            v[j1] -= (usubmin - umin) + eps;
            let i0 = colsol[j1];
            rowsol[i] = j1;
            colsol[j1] = i;
            if i0 != NONE {
                rowsol[i0] = NONE;
                free.push(i0);
            }
        }
        if eps <= eps_final || !free.is_empty() {
            break;
        }
        eps = (eps / AUCTION_THETA).max(eps_final);
    }
}

/// First auction ε, as a fraction of the cost range max c − min c.
const AUCTION_EPS_START: f64 = 0.05;
/// Factor by which ε shrinks between auction phases.
const AUCTION_THETA: f64 = 7.0;
/// Last auction ε: this fraction of (cost range / N), but at least 1e-11 × max |c| (far above the
/// f64 resolution of the prices).
const AUCTION_EPS_FINAL: f64 = 1e-6;
/// Bid budget of one auction phase, per row.
const AUCTION_MAX_BIDS_PER_ROW: usize = 64;

/// Releases every assigned row whose assigned reduced cost is not exactly its row minimum (the
/// invariant required by [`augment`]) and rebuilds `free` as the list of unassigned rows.
fn free_loose_rows(
    c: &CostRows,
    v: &[f64],
    rowsol: &mut [usize],
    colsol: &mut [usize],
    free: &mut Vec<usize>,
) {
    free.clear();
    for (i, ri) in rowsol.iter_mut().enumerate() {
        let a = *ri;
        if a != NONE && colsol[a] == i {
            let row = c.row(i);
            if row[a] - v[a] <= row_min(row, v) {
                continue;
            }
            colsol[a] = NONE;
        }
        *ri = NONE;
        free.push(i);
    }
}

/// Shortest augmenting path phase: for every free row, a Dijkstra search over columns on the
/// reduced costs c_ij − v_j − u_i (u_i implicit: the reduced cost of row i's assigned column),
/// stopping at the first unassigned column; then dual update of the scanned columns and
/// augmentation along the path.
fn augment(
    c: &CostRows,
    v: &mut [f64],
    rowsol: &mut [usize],
    colsol: &mut [usize],
    free: &[usize],
) {
    let dim = c.dim;
    let mut d = vec![0.0f64; dim];
    let mut pred = vec![0usize; dim];
    let mut collist: Vec<usize> = (0..dim).collect();
    for &freerow in free {
        let row = c.row(freerow);
        for (j, ((dj, pj), (&cij, &vj))) in d
            .iter_mut()
            .zip(pred.iter_mut())
            .zip(row.iter().zip(v.iter()))
            .enumerate()
        {
            *dj = cij - vj;
            *pj = freerow;
            collist[j] = j;
        }
        // collist[..low]: scanned ("ready") columns; collist[low..up]: columns at the current
        // minimum distance, to scan; collist[up..]: the rest.
        let (mut low, mut up) = (0usize, 0usize);
        let mut last = 0usize;
        let mut min = 0.0f64;
        let endofpath;
        'search: loop {
            if up == low {
                last = low;
                min = d[collist[up]];
                up += 1;
                // `up` moves inside the loop; the scan range is fixed at its start.
                let first = up;
                for k in first..dim {
                    let j = collist[k];
                    let h = d[j];
                    if h <= min {
                        if h < min {
                            up = low;
                            min = h;
                        }
                        collist[k] = collist[up];
                        collist[up] = j;
                        up += 1;
                    }
                }
                for &j in &collist[low..up] {
                    if colsol[j] == NONE {
                        endofpath = j;
                        break 'search;
                    }
                }
            }
            // Scan the next column at the current minimum: relax through its row.
            let j1 = collist[low];
            low += 1;
            let i = colsol[j1];
            let rowi = c.row(i);
            let h = rowi[j1] - v[j1] - min;
            let first = up;
            for k in first..dim {
                let j = collist[k];
                let v2 = rowi[j] - v[j] - h;
                if v2 < d[j] {
                    pred[j] = i;
                    if v2 == min {
                        if colsol[j] == NONE {
                            endofpath = j;
                            break 'search;
                        }
                        collist[k] = collist[up];
                        collist[up] = j;
                        up += 1;
                    }
                    d[j] = v2;
                }
            }
        }
        // Dual update of the columns scanned before the last minimum level.
        for &j in &collist[..last] {
            v[j] += d[j] - min;
        }
        // Augment along the alternating path.
        let mut j = endofpath;
        loop {
            let i = pred[j];
            colsol[j] = i;
            let next = rowsol[i];
            rowsol[i] = j;
            if i == freerow {
                break;
            }
            j = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use rand_distr::StandardNormal;

    fn pts(n: usize, d: usize, data: Vec<f64>) -> Points {
        Points { n, d, data }
    }

    fn gauss(rng: &mut StdRng, n: usize, d: usize) -> Points {
        let data = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
        pts(n, d, data)
    }

    /// Minimum assignment cost by enumerating all permutations (Heap's algorithm).
    fn brute_force(cost: &[f64], n: usize) -> f64 {
        let mut p: Vec<usize> = (0..n).collect();
        let eval = |p: &[usize]| (0..n).map(|i| cost[i * n + p[i]]).sum::<f64>();
        let mut best = eval(&p);
        let mut cnt = vec![0usize; n];
        let mut i = 1;
        while i < n {
            if cnt[i] < i {
                if i % 2 == 0 {
                    p.swap(0, i);
                } else {
                    p.swap(cnt[i], i);
                }
                best = best.min(eval(&p));
                cnt[i] += 1;
                i = 1;
            } else {
                cnt[i] = 0;
                i += 1;
            }
        }
        best
    }

    /// Independent reference: the classic O(n³) Hungarian algorithm with potentials
    /// (shortest augmenting paths, one row at a time, no heuristics).
    fn hungarian(cost: &[f64], n: usize) -> f64 {
        let inf = f64::INFINITY;
        let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
        let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
        for i in 1..=n {
            p[0] = i;
            let mut j0 = 0;
            let mut minv = vec![inf; n + 1];
            let mut used = vec![false; n + 1];
            loop {
                used[j0] = true;
                let (i0, mut delta, mut j1) = (p[j0], inf, 0);
                for j in 1..=n {
                    if !used[j] {
                        let cur = cost[(i0 - 1) * n + j - 1] - u[i0] - v[j];
                        if cur < minv[j] {
                            minv[j] = cur;
                            way[j] = j0;
                        }
                        if minv[j] < delta {
                            delta = minv[j];
                            j1 = j;
                        }
                    }
                }
                for j in 0..=n {
                    if used[j] {
                        u[p[j]] += delta;
                        v[j] -= delta;
                    } else {
                        minv[j] -= delta;
                    }
                }
                j0 = j1;
                if p[j0] == 0 {
                    break;
                }
            }
            loop {
                let j1 = way[j0];
                p[j0] = p[j1];
                j0 = j1;
                if j0 == 0 {
                    break;
                }
            }
        }
        (1..=n).map(|j| cost[(p[j] - 1) * n + j - 1]).sum()
    }

    fn check_perm(perm: &[usize], n: usize) {
        let mut seen = vec![false; n];
        for &j in perm {
            assert!(j < n && !seen[j], "not a permutation: {perm:?}");
            seen[j] = true;
        }
    }

    fn assert_close(a: f64, b: f64, rel: f64, what: &str) {
        let scale = a.abs().max(b.abs()).max(1e-300);
        assert!((a - b).abs() <= rel * scale, "{what}: {a} vs {b}");
    }

    fn sq_cost(x: &Points, y: &Points) -> Vec<f64> {
        let mut c = Vec::with_capacity(x.n * y.n);
        for xi in x.data.chunks_exact(x.d) {
            for yj in y.data.chunks_exact(y.d) {
                c.push(sq_dist(xi, yj));
            }
        }
        c
    }

    fn check_against_brute_force(seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        for n in 1..=7 {
            for kind in 0..3 {
                let cost: Vec<f64> = (0..n * n)
                    .map(|_| match kind {
                        0 => rng.random::<f64>(),
                        // Small integers: many ties.
                        1 => rng.random_range(0..4) as f64,
                        _ => rng.sample::<f64, _>(StandardNormal) * 1e3,
                    })
                    .collect();
                let (perm, total) = linear_sum_assignment(&cost, n).unwrap();
                check_perm(&perm, n);
                let recomputed: f64 = (0..n).map(|i| cost[i * n + perm[i]]).sum();
                assert_close(total, recomputed, 1e-14, "total");
                let bf = brute_force(&cost, n);
                assert!(
                    (total - bf).abs() <= 1e-12 * (1.0 + bf.abs()),
                    "seed {seed} n {n} kind {kind}: lapjv {total} vs brute force {bf}"
                );
            }
        }
    }

    #[test]
    fn lsa_matches_brute_force_fixed_seeds() {
        for seed in [0, 1, 2, 42, 1234, 987_654_321] {
            check_against_brute_force(seed);
        }
    }

    #[test]
    fn lsa_matches_brute_force_fresh_seeds() {
        for _ in 0..5 {
            let seed: u64 = rand::random();
            eprintln!("fresh seed {seed}");
            check_against_brute_force(seed);
        }
    }

    #[test]
    fn lsa_matches_hungarian_medium_sizes() {
        let seed: u64 = rand::random();
        eprintln!("fresh seed {seed}");
        for s in [7u64, 8, seed] {
            let mut rng = StdRng::seed_from_u64(s);
            for &n in &[2usize, 3, 10, 37, 64, 150, 300] {
                for kind in 0..4 {
                    let cost: Vec<f64> = (0..n * n)
                        .map(|_| match kind {
                            0 => rng.random::<f64>(),
                            1 => rng.random_range(0..5) as f64,
                            // Nearly equal costs (tiny differences): stresses the float
                            // augmenting row reduction.
                            2 => 1.0 + 1e-14 * rng.random::<f64>(),
                            _ => (rng.random::<f64>() * 1e6).floor(),
                        })
                        .collect();
                    let (perm, total) = linear_sum_assignment(&cost, n).unwrap();
                    check_perm(&perm, n);
                    let h = hungarian(&cost, n);
                    assert!(
                        (total - h).abs() <= 1e-12 * (1.0 + h.abs()),
                        "seed {s} n {n} kind {kind}: lapjv {total} vs hungarian {h}"
                    );
                }
            }
        }
    }

    #[test]
    fn exact_phase_alone_agrees_with_warm_started_solver() {
        let mut rng = StdRng::seed_from_u64(21);
        for &n in &[2usize, 9, 64, 257] {
            for kind in 0..3 {
                let cost: Vec<f64> = (0..n * n)
                    .map(|_| match kind {
                        0 => rng.random::<f64>(),
                        1 => rng.random_range(0..3) as f64,
                        // Large offset, small spread: range ≪ magnitude.
                        _ => 1e6 + rng.random::<f64>() * 1e-3,
                    })
                    .collect();
                let rows = CostRows {
                    data: &cost,
                    dim: n,
                    rep: 1,
                };
                let total = |p: &[usize]| neumaier_sum((0..n).map(|i| cost[i * n + p[i]]));
                let cold = lapjv_with(&rows, false).unwrap();
                let warm = lapjv_with(&rows, true).unwrap();
                check_perm(&cold, n);
                check_perm(&warm, n);
                let h = hungarian(&cost, n);
                assert_close(total(&cold), h, 1e-12, "exact phase alone");
                assert_close(total(&warm), h, 1e-12, "warm-started");
            }
        }
    }

    #[test]
    fn w2_unequal_matches_hungarian_on_replicated_clouds() {
        let mut rng = StdRng::seed_from_u64(22);
        for (n, m) in [(30usize, 45usize), (12, 40), (64, 48)] {
            let x = gauss(&mut rng, n, 3);
            let y = gauss(&mut rng, m, 3);
            let l = n / gcd(n, m) * m;
            let rep = |p: &Points, r: usize| {
                let data = p
                    .data
                    .chunks_exact(p.d)
                    .flat_map(|row| std::iter::repeat_n(row, r).flatten().copied())
                    .collect();
                pts(p.n * r, p.d, data)
            };
            let (xr, yr) = (rep(&x, l / n), rep(&y, l / m));
            let h = hungarian(&sq_cost(&xr, &yr), l) / l as f64;
            assert_close(
                w2_squared(&x, &y).unwrap(),
                h,
                1e-12,
                "unequal vs hungarian",
            );
        }
    }

    #[test]
    fn w2_with_duplicate_points() {
        let mut rng = StdRng::seed_from_u64(23);
        let base = gauss(&mut rng, 10, 2);
        // 40 points, each of the 10 base points 4 times, against a fresh cloud.
        let x = pts(
            40,
            2,
            (0..40)
                .flat_map(|k| base.data[(k % 10) * 2..(k % 10) * 2 + 2].to_vec())
                .collect(),
        );
        let y = gauss(&mut rng, 40, 2);
        let cost = sq_cost(&x, &y);
        let h = hungarian(&cost, 40) / 40.0;
        assert_close(w2_squared(&x, &y).unwrap(), h, 1e-12, "duplicates");
        // Duplicated x against its 10 base points: zero.
        assert_eq!(w2(&x, &base).unwrap(), 0.0);
    }

    #[test]
    fn lsa_euclidean_clouds_match_hungarian() {
        let mut rng = StdRng::seed_from_u64(3);
        for &n in &[5usize, 50, 200] {
            let x = gauss(&mut rng, n, 2);
            let y = gauss(&mut rng, n, 2);
            let cost = sq_cost(&x, &y);
            let (_, total) = linear_sum_assignment(&cost, n).unwrap();
            assert_close(total, hungarian(&cost, n), 1e-12, "euclidean");
            assert_close(w2_squared(&x, &y).unwrap(), total / n as f64, 1e-12, "w2²");
        }
    }

    #[test]
    fn lsa_degenerate_ties() {
        for n in [1usize, 2, 5, 33] {
            let cost = vec![2.5; n * n];
            let (perm, total) = linear_sum_assignment(&cost, n).unwrap();
            check_perm(&perm, n);
            assert_eq!(total, 2.5 * n as f64);
        }
        // Rank-one structure: every permutation has the same cost c_ij = a_i + b_j.
        let n = 40;
        let cost: Vec<f64> = (0..n * n)
            .map(|k| (k / n) as f64 + 10.0 * (k % n) as f64)
            .collect();
        let (perm, total) = linear_sum_assignment(&cost, n).unwrap();
        check_perm(&perm, n);
        assert_eq!(total, (0..n).map(|i| 11.0 * i as f64).sum::<f64>());
        // Identical rows.
        let row: Vec<f64> = (0..n).map(|j| ((j * 7919) % 13) as f64).collect();
        let cost: Vec<f64> = (0..n).flat_map(|_| row.iter().copied()).collect();
        let (perm, total) = linear_sum_assignment(&cost, n).unwrap();
        check_perm(&perm, n);
        assert_eq!(total, row.iter().sum::<f64>());
    }

    #[test]
    fn lsa_known_small_case() {
        // Optimal: 0→1, 1→0, 2→2 with cost 1 + 2 + 2 = 5 (scipy's documentation example).
        let cost = [4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0];
        let (perm, total) = linear_sum_assignment(&cost, 3).unwrap();
        assert_eq!(total, 5.0);
        check_perm(&perm, 3);
        let (perm, total) = linear_sum_assignment(&[], 0).unwrap();
        assert!(perm.is_empty() && total == 0.0);
    }

    #[test]
    fn lsa_bad_inputs() {
        assert!(matches!(
            linear_sum_assignment(&[1.0, 2.0, 3.0], 2),
            Err(NsgfError::Shape(_))
        ));
        assert!(matches!(
            linear_sum_assignment(&[1.0, f64::NAN, 3.0, 4.0], 2),
            Err(NsgfError::NonFinite(_))
        ));
        assert!(matches!(
            linear_sum_assignment(&[1.0, 2.0, f64::INFINITY, 4.0], 2),
            Err(NsgfError::NonFinite(_))
        ));
        assert!(matches!(
            linear_sum_assignment(&[], usize::MAX),
            Err(NsgfError::Shape(_))
        ));
    }

    #[test]
    fn w2_identity_is_zero() {
        let mut rng = StdRng::seed_from_u64(11);
        for (n, d) in [(1, 1), (7, 3), (100, 2)] {
            let x = gauss(&mut rng, n, d);
            assert_eq!(w2(&x, &x).unwrap(), 0.0);
            // Same cloud, shuffled rows.
            let mut rows: Vec<&[f64]> = x.data.chunks_exact(d).collect();
            rows.reverse();
            let y = pts(n, d, rows.concat());
            assert_eq!(w2(&x, &y).unwrap(), 0.0);
        }
    }

    #[test]
    fn w2_translation_equals_shift_norm() {
        let mut rng = StdRng::seed_from_u64(12);
        let (n, d) = (64, 3);
        let x = gauss(&mut rng, n, d);
        let t = [0.3, -1.2, 2.0];
        let tn = t.iter().map(|v| v * v).sum::<f64>().sqrt();
        let ydata = x
            .data
            .iter()
            .enumerate()
            .map(|(k, v)| v + t[k % d])
            .collect();
        let y = pts(n, d, ydata);
        assert_close(w2(&x, &y).unwrap(), tn, 1e-12, "translation");
        // Also with different sizes: each point of x duplicated in y (n = 64, m = 128).
        let ydup = pts(
            2 * n,
            d,
            y.data
                .chunks_exact(d)
                .flat_map(|r| r.iter().chain(r.iter()).copied())
                .collect(),
        );
        assert_close(w2(&x, &ydup).unwrap(), tn, 1e-12, "translation, duplicated");
    }

    #[test]
    fn w2_symmetric() {
        let mut rng = StdRng::seed_from_u64(13);
        for (n, m) in [(20, 20), (6, 9), (12, 5)] {
            let x = gauss(&mut rng, n, 2);
            let y = gauss(&mut rng, m, 2);
            let a = w2(&x, &y).unwrap();
            let b = w2(&y, &x).unwrap();
            assert_close(a, b, 1e-12, "symmetry");
        }
    }

    #[test]
    fn w2_unequal_sizes_closed_forms() {
        let mut rng = StdRng::seed_from_u64(14);
        // m = 1: every x_i goes to the single y.
        let x = gauss(&mut rng, 9, 2);
        let y = gauss(&mut rng, 1, 2);
        let expect = x
            .data
            .chunks_exact(2)
            .map(|r| sq_dist(r, &y.data))
            .sum::<f64>()
            / 9.0;
        assert_close(w2_squared(&x, &y).unwrap(), expect, 1e-14, "m = 1");
        assert_close(w2_squared(&y, &x).unwrap(), expect, 1e-14, "n = 1");
        // 1-D: the optimal plan is the monotone (quantile) coupling.
        let (n, m) = (4usize, 6usize);
        let mut xs: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let mut ys: Vec<f64> = (0..m).map(|_| rng.random::<f64>() * 3.0).collect();
        xs.sort_by(f64::total_cmp);
        ys.sort_by(f64::total_cmp);
        // Quantile coupling on the common grid of L = 12 atoms of mass 1/12.
        let l = 12;
        let q = (0..l)
            .map(|k| (xs[k / (l / n)] - ys[k / (l / m)]).powi(2))
            .sum::<f64>()
            / l as f64;
        let x = pts(n, 1, xs);
        let y = pts(m, 1, ys);
        assert_close(
            w2_squared(&x, &y).unwrap(),
            q,
            1e-13,
            "1-D quantile coupling",
        );
    }

    #[test]
    fn w2_unequal_matches_replicated_brute_force() {
        let mut rng = StdRng::seed_from_u64(15);
        // n = 2, m = 3 → L = 6: brute force over the 720 permutations of the replicated problem
        // with the cost matrix built here independently.
        let x = gauss(&mut rng, 2, 2);
        let y = gauss(&mut rng, 3, 2);
        let xr = pts(
            6,
            2,
            (0..6)
                .flat_map(|k| x.data[(k / 3) * 2..(k / 3) * 2 + 2].to_vec())
                .collect(),
        );
        let yr = pts(
            6,
            2,
            (0..6)
                .flat_map(|k| y.data[(k / 2) * 2..(k / 2) * 2 + 2].to_vec())
                .collect(),
        );
        let bf = brute_force(&sq_cost(&xr, &yr), 6) / 6.0;
        assert_close(
            w2_squared(&x, &y).unwrap(),
            bf,
            1e-13,
            "replicated brute force",
        );
    }

    #[test]
    fn w2_bad_inputs() {
        let x = pts(3, 2, vec![0.0; 6]);
        let empty = pts(0, 2, vec![]);
        assert!(matches!(w2(&x, &empty), Err(NsgfError::Shape(_))));
        assert!(matches!(w2(&empty, &x), Err(NsgfError::Shape(_))));
        assert!(matches!(
            w2(&pts(3, 0, vec![]), &x),
            Err(NsgfError::Shape(_))
        ));
        assert!(matches!(
            w2(&x, &pts(3, 3, vec![0.0; 9])),
            Err(NsgfError::Shape(_))
        ));
        assert!(matches!(
            w2(&x, &pts(3, 2, vec![0.0; 5])),
            Err(NsgfError::Shape(_))
        ));
        let mut bad = vec![0.0; 6];
        bad[4] = f64::NAN;
        assert!(matches!(
            w2(&x, &pts(3, 2, bad)),
            Err(NsgfError::NonFinite(_))
        ));
        assert!(matches!(
            w2(&pts(1, 1, vec![f64::NEG_INFINITY]), &x),
            Err(NsgfError::NonFinite(_))
        ));
        // Finite data whose squared distance overflows.
        assert!(matches!(
            w2(&pts(1, 1, vec![1e200]), &pts(1, 1, vec![-1e200])),
            Err(NsgfError::NonFinite(_))
        ));
        // lcm(8191, 8190) is far above the cap.
        let a = pts(8191, 1, vec![0.0; 8191]);
        let b = pts(8190, 1, vec![0.0; 8190]);
        assert!(matches!(w2(&a, &b), Err(NsgfError::Param(_))));
    }

    fn cost_strategy() -> impl Strategy<Value = (usize, Vec<f64>)> {
        (1usize..=6).prop_flat_map(|n| {
            (
                Just(n),
                prop::collection::vec(
                    prop_oneof![-1e3f64..1e3, (0i32..4).prop_map(f64::from)],
                    n * n,
                ),
            )
        })
    }

    proptest! {
        #[test]
        fn prop_lsa_optimal((n, cost) in cost_strategy()) {
            let (perm, total) = linear_sum_assignment(&cost, n).unwrap();
            check_perm(&perm, n);
            let identity: f64 = (0..n).map(|i| cost[i * n + i]).sum();
            prop_assert!(total <= identity + 1e-9 * (1.0 + identity.abs()));
            let bf = brute_force(&cost, n);
            prop_assert!((total - bf).abs() <= 1e-9 * (1.0 + bf.abs()), "{} vs {}", total, bf);
        }

        #[test]
        fn prop_w2_symmetric_and_bounded(
            xs in prop::collection::vec(-10.0f64..10.0, 2..=16),
            ys in prop::collection::vec(-10.0f64..10.0, 2..=16),
        ) {
            // 2-D clouds of 1..=8 points (sizes may differ): W2² is symmetric, nonnegative and
            // at most the cost of the independent coupling (mean of all squared distances).
            let x = pts(xs.len() / 2, 2, xs[..xs.len() / 2 * 2].to_vec());
            let y = pts(ys.len() / 2, 2, ys[..ys.len() / 2 * 2].to_vec());
            let a = w2_squared(&x, &y).unwrap();
            let b = w2_squared(&y, &x).unwrap();
            prop_assert!(a >= 0.0);
            prop_assert!((a - b).abs() <= 1e-12 * (1.0 + a));
            let indep = sq_cost(&x, &y).iter().sum::<f64>() / (x.n * y.n) as f64;
            prop_assert!(a <= indep * (1.0 + 1e-12) + 1e-12);
        }
    }
}
