//! Tests of the 2-D toy distributions (`nsgf::data::toy2d`) against the reference samples and
//! moments in `tests/fixtures/toy2d/` (see `tests/fixtures/README.md` for their provenance).
//!
//! * moments: 100k samples (two fixed seeds and one fresh seed, printed on failure; set
//!   `NSGF_TOY2D_SEED` to replay one) have mean and covariance within 5 standard errors of the
//!   analytic population moments stored in `toy2d_stats.json`; the fixture samples pass the same
//!   check (sanity), and a wrong 8gaussians (covariance 0.1·I instead of √0.1·I) fails it;
//! * support: checkerboard points lie in the 8 right squares, moons points on the two noisy arcs,
//!   scurve points near the S curve with the right spread, 8gaussians points around the 8 centres
//!   with equal weights and the right radial spread;
//! * two samples: the energy distance between our samples and the 10k reference samples is
//!   comparable to that between disjoint subsets of the reference samples, and wrong samplers
//!   (moons with Gaussian noise, checkerboard with a truncated `%`) are detected.

use nsgf::data::toy2d::{sample_points, Distribution, Problem};
use nsgf::NsgfError;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::StandardNormal;
use std::f64::consts::{FRAC_1_SQRT_2, PI};

type P2 = [f64; 2];

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/toy2d");

/// The tensors of the fixture file and the distribution each one is drawn from.
const FIXTURE_SETS: [(&str, Distribution); 6] = [
    ("8gaussians", Distribution::EightGaussians),
    ("moons", Distribution::Moons),
    ("8gaussians_moons.x0", Distribution::EightGaussians),
    ("8gaussians_moons.x1", Distribution::Moons),
    ("scurve", Distribution::Scurve),
    ("checkerboard", Distribution::Checkerboard),
];

fn load_fixture(name: &str) -> Vec<P2> {
    let bytes = std::fs::read(format!("{FIXTURE_DIR}/toy2d_samples.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
    assert_eq!(t.shape(), &[10000, 2], "{name}");
    let vals: Vec<f64> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect();
    to_points(&vals)
}

fn load_stats() -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{FIXTURE_DIR}/toy2d_stats.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (mean, covariance) of a set's `population` (or `sample`) entry in `toy2d_stats.json`.
fn stats_moments(stats: &serde_json::Value, set: &str, which: &str) -> (P2, [P2; 2]) {
    let e = &stats["stats"][set][which];
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let mean = [f(&e["mean"][0]), f(&e["mean"][1])];
    let c = &e["cov"];
    let cov = [[f(&c[0][0]), f(&c[0][1])], [f(&c[1][0]), f(&c[1][1])]];
    (mean, cov)
}

fn to_points(flat: &[f64]) -> Vec<P2> {
    flat.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
}

fn sample(dist: Distribution, n: usize, seed: u64) -> Vec<P2> {
    let p = sample_points(dist, n, &mut StdRng::seed_from_u64(seed));
    assert_eq!((p.n, p.d, p.data.len()), (n, 2, 2 * n));
    to_points(&p.data)
}

/// A fresh seed, or `NSGF_TOY2D_SEED` when set (to replay a failure).
fn fresh_seed() -> u64 {
    match std::env::var("NSGF_TOY2D_SEED") {
        Ok(s) => s.parse().expect("NSGF_TOY2D_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    }
}

// ---------------------------------------------------------------------------------------------
// Moments
// ---------------------------------------------------------------------------------------------

/// Compares the sample mean and (unbiased) covariance of `pts` with population values, each
/// within `k` standard errors. The standard error of the mean uses the population variance
/// (σ_ii / n); that of the covariance entry σ_ij uses the sample fourth moments:
/// SE² = Var[(x_i − μ_i)(x_j − μ_j)] / n. Returns the violations (empty when all pass).
fn moment_violations(pts: &[P2], mean: P2, cov: [P2; 2], k: f64) -> Vec<String> {
    let n = pts.len() as f64;
    let mut m = [0.0; 2];
    for p in pts {
        m[0] += p[0];
        m[1] += p[1];
    }
    m = [m[0] / n, m[1] / n];
    let mut bad = Vec::new();
    for i in 0..2 {
        let se = (cov[i][i] / n).sqrt();
        let err = (m[i] - mean[i]).abs();
        if err > k * se {
            bad.push(format!(
                "mean[{i}] = {:.5}, population {:.5}, |diff| {err:.5} > {k} SE = {:.5}",
                m[i],
                mean[i],
                k * se
            ));
        }
    }
    for (i, j) in [(0, 0), (0, 1), (1, 1)] {
        let prods: Vec<f64> = pts.iter().map(|p| (p[i] - m[i]) * (p[j] - m[j])).collect();
        let c = prods.iter().sum::<f64>() / (n - 1.0);
        let pm = prods.iter().sum::<f64>() / n;
        let var = prods.iter().map(|q| (q - pm) * (q - pm)).sum::<f64>() / (n - 1.0);
        let se = (var / n).sqrt();
        let err = (c - cov[i][j]).abs();
        if err > k * se {
            bad.push(format!(
                "cov[{i}][{j}] = {c:.5}, population {:.5}, |diff| {err:.5} > {k} SE = {:.5}",
                cov[i][j],
                k * se
            ));
        }
    }
    bad
}

#[test]
fn analytic_moments_match_stats_json() {
    let stats = load_stats();
    for (set, dist) in FIXTURE_SETS {
        let (mean, cov) = stats_moments(&stats, set, "population");
        let (m, c) = (dist.mean(), dist.covariance());
        for i in 0..2 {
            assert!(
                (m[i] - mean[i]).abs() < 1e-9,
                "{set}: mean {m:?} vs {mean:?}"
            );
            for j in 0..2 {
                assert!(
                    (c[i][j] - cov[i][j]).abs() < 1e-9,
                    "{set}: cov {c:?} vs {cov:?}"
                );
            }
        }
    }
    assert_eq!(Distribution::Gaussian.mean(), [0.0, 0.0]);
    assert_eq!(
        Distribution::Gaussian.covariance(),
        [[1.0, 0.0], [0.0, 1.0]]
    );
}

#[test]
fn fixture_samples_match_population_moments() {
    let stats = load_stats();
    for (set, dist) in FIXTURE_SETS {
        let pts = load_fixture(set);
        let bad = moment_violations(&pts, dist.mean(), dist.covariance(), 5.0);
        assert!(bad.is_empty(), "fixture {set}: {bad:#?}");
        // The stored sample moments are those of the stored samples.
        let (smean, scov) = stats_moments(&stats, set, "sample");
        let n = pts.len() as f64;
        let m = [
            pts.iter().map(|p| p[0]).sum::<f64>() / n,
            pts.iter().map(|p| p[1]).sum::<f64>() / n,
        ];
        assert!((m[0] - smean[0]).abs() < 1e-9 && (m[1] - smean[1]).abs() < 1e-9);
        let cxy = pts
            .iter()
            .map(|p| (p[0] - m[0]) * (p[1] - m[1]))
            .sum::<f64>()
            / (n - 1.0);
        assert!(
            (cxy - scov[0][1]).abs() < 1e-9,
            "{set}: {cxy} vs {}",
            scov[0][1]
        );
    }
}

fn check_sampler_moments(seed: u64, how: &str) {
    for dist in Distribution::ALL {
        let pts = sample(dist, 100_000, seed);
        let bad = moment_violations(&pts, dist.mean(), dist.covariance(), 5.0);
        assert!(
            bad.is_empty(),
            "{dist}, {how} seed {seed} (replay with NSGF_TOY2D_SEED={seed}): {bad:#?}"
        );
    }
}

#[test]
fn sampler_moments_match_population_fixed_seeds() {
    for seed in [0, 20260401] {
        check_sampler_moments(seed, "fixed");
    }
}

#[test]
fn sampler_moments_match_population_fresh_seed() {
    let seed = fresh_seed();
    println!("toy2d fresh seed: {seed}");
    check_sampler_moments(seed, "fresh");
}

/// The 8gaussians gotcha: component covariance 0.1·I instead of √0.1·I.
fn wrong_eight_gaussians(n: usize, rng: &mut impl Rng) -> Vec<P2> {
    (0..n)
        .map(|_| {
            let c = centre(rng.random_range(0..8usize));
            let s = 0.1f64.sqrt();
            [
                c[0] + s * rng.sample::<f64, _>(StandardNormal),
                c[1] + s * rng.sample::<f64, _>(StandardNormal),
            ]
        })
        .collect()
}

#[test]
fn moment_check_detects_wrong_eight_gaussians_covariance() {
    let pts = wrong_eight_gaussians(100_000, &mut StdRng::seed_from_u64(5));
    let d = Distribution::EightGaussians;
    let bad = moment_violations(&pts, d.mean(), d.covariance(), 5.0);
    assert!(
        bad.iter().any(|b| b.starts_with("cov[0][0]"))
            && bad.iter().any(|b| b.starts_with("cov[1][1]")),
        "{bad:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Supports
// ---------------------------------------------------------------------------------------------

/// Distance from `q` to the half circle of radius 1 around `c`, upper (y ≥ c.y) or lower half.
fn half_circle_dist(q: P2, c: P2, upper: bool) -> f64 {
    let (dx, dy) = (q[0] - c[0], q[1] - c[1]);
    let dy = if upper { dy } else { -dy };
    if dy >= 0.0 {
        ((dx * dx + dy * dy).sqrt() - 1.0).abs()
    } else {
        let a = ((dx - 1.0).powi(2) + dy * dy).sqrt();
        let b = ((dx + 1.0).powi(2) + dy * dy).sqrt();
        a.min(b)
    }
}

/// Distance (in torchdyn's unscaled coordinates) from a moons point `p` to the noiseless support:
/// {arc point + s·(1, 1) : s ∈ [0, 0.2]}, arcs = outer upper half circle around (0, 0) and inner
/// lower half circle around (1, 0.5). The offset is scanned on a grid of step 0.001 (error
/// ≤ 0.0008).
fn moons_support_dist(p: P2) -> f64 {
    let q = [(p[0] + 1.0) / 3.0, (p[1] + 1.0) / 3.0];
    let mut best = f64::INFINITY;
    for k in 0..=200 {
        let s = 0.001 * k as f64;
        let r = [q[0] - s, q[1] - s];
        best = best
            .min(half_circle_dist(r, [0.0, 0.0], true))
            .min(half_circle_dist(r, [1.0, 0.5], false));
    }
    best
}

#[test]
fn moons_lie_on_the_noisy_arcs() {
    for (what, pts) in [
        ("ours", sample(Distribution::Moons, 20_000, 11)),
        ("fixture moons", load_fixture("moons")),
        ("fixture x1", load_fixture("8gaussians_moons.x1")),
    ] {
        let worst = pts
            .iter()
            .map(|&p| moons_support_dist(p))
            .fold(0.0, f64::max);
        // (x, y) ↦ 3x − 1 of f32 values: rounding is far below the tolerance.
        assert!(
            worst < 2e-3,
            "{what}: a point is {worst} from the moons support"
        );
        // Both arcs are populated equally. Unambiguous regions: unscaled x < 0 only occurs on the
        // outer arc (cos t + 0.2u < 0), x > 1.2 only on the inner arc (1 − cos t + 0.2u > 1.2);
        // both have the same probability, 1/2 · P(cos t < −0.2u) ≈ 0.234.
        let outer = pts.iter().filter(|p| (p[0] + 1.0) / 3.0 < 0.0).count() as f64;
        let inner = pts.iter().filter(|p| (p[0] + 1.0) / 3.0 > 1.2).count() as f64;
        let n = pts.len() as f64;
        assert!(
            (outer - inner).abs() < 5.0 * (outer + inner).sqrt(),
            "{what}: {outer} outer-only vs {inner} inner-only points of {n}"
        );
    }
    // The check has teeth: Gaussian noise (the wrong reading of `noise=0.2`) leaves the support.
    let wrong = wrong_moons_gaussian_noise(2000, &mut StdRng::seed_from_u64(3));
    let outside = wrong
        .iter()
        .filter(|&&p| moons_support_dist(p) > 2e-3)
        .count();
    assert!(outside > 500, "{outside}");
}

#[test]
fn checkerboard_lies_in_the_eight_squares() {
    for (what, pts) in [
        ("ours", sample(Distribution::Checkerboard, 100_000, 12)),
        ("fixture", load_fixture("checkerboard")),
    ] {
        let n = pts.len() as f64;
        let mut counts = [[0usize; 4]; 4];
        for p in &pts {
            // f32 rounding may put a point exactly on a cell edge: nudge towards the cell centre.
            let cell = |v: f64| {
                assert!(
                    (-4.0 - 1e-5..=4.0 + 1e-5).contains(&v),
                    "{what}: {p:?} off the board"
                );
                ((v / 2.0).floor() as i64).clamp(-2, 1)
            };
            let (i, j) = (cell(p[0]), cell(p[1]));
            let (i, j) = fix_edge(p, i, j);
            assert!(
                (i + j).rem_euclid(2) == 0,
                "{what}: {p:?} in a white square ({i}, {j})"
            );
            counts[(i + 2) as usize][(j + 2) as usize] += 1;
        }
        // The 8 black squares each hold 1/8 of the points (binomial, 5 standard errors).
        let se = (n * (1.0 / 8.0) * (7.0 / 8.0)).sqrt();
        for (i, row) in counts.iter().enumerate() {
            for (j, &c) in row.iter().enumerate() {
                if (i + j) % 2 == 0 {
                    assert!(
                        (c as f64 - n / 8.0).abs() < 5.0 * se,
                        "{what}: square ({i},{j}) holds {c} of {n}"
                    );
                }
            }
        }
    }
    // A truncated remainder (Rust's `%` on ⌊x1⌋ = −1 gives −1, Python's gives 1) breaks it: half
    // of the column x ∈ [−2, 0) falls off the board, into y ∈ [−6, −4).
    let wrong = wrong_checkerboard_truncated_rem(1000, &mut StdRng::seed_from_u64(4));
    let misplaced = wrong
        .iter()
        .filter(|p| {
            let (i, j) = ((p[0] / 2.0).floor() as i64, (p[1] / 2.0).floor() as i64);
            !(-2..=1).contains(&i) || !(-2..=1).contains(&j) || (i + j).rem_euclid(2) != 0
        })
        .count();
    assert!(misplaced > 80, "{misplaced}");
}

/// A point within 1e-5 of a cell edge (f32 rounding of 2·(U − 2B + o) can round up onto the
/// edge) is counted in the neighbouring cell when that one is black.
fn fix_edge(p: &P2, i: i64, j: i64) -> (i64, i64) {
    if (i + j).rem_euclid(2) == 0 {
        return (i, j);
    }
    for (di, dj) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
        let (a, b) = (i + di, j + dj);
        if !(-2..=1).contains(&a) || !(-2..=1).contains(&b) {
            continue;
        }
        let near = |v: f64, c: i64| v >= 2.0 * c as f64 - 1e-5 && v <= 2.0 * (c + 1) as f64 + 1e-5;
        if near(p[0], a) && near(p[1], b) {
            return (a, b);
        }
    }
    (i, j)
}

/// Distance from `p` (unscaled by 1.5) to the noiseless S curve (sin t, sign t·(cos t − 1)),
/// t ∈ [−3π/2, 3π/2]: two three-quarter circles of radius 1 around (0, −1) (t ≥ 0) and
/// (0, 1) (t ≤ 0).
fn scurve_dist(p: P2) -> f64 {
    // Upper part, t ≥ 0: (sin t, cos t − 1) = (0, −1) + (sin t, cos t), angle θ = atan2(x, y + 1)
    // ∈ [0, 3π/2] ⇔ θ ∈ [0, π] ∪ [−π, −π/2] in atan2's range.
    let arc = |c: P2, flip: f64| {
        let (dx, dy) = (p[0] - c[0], flip * (p[1] - c[1]));
        let th = dx.atan2(dy);
        if th >= 0.0 || th <= -PI / 2.0 {
            ((dx * dx + dy * dy).sqrt() - 1.0).abs()
        } else {
            // The nearest point is an end: t = 0 at (0, 1) relative, t = 3π/2 at (−1, 0).
            let a = (dx * dx + (dy - 1.0).powi(2)).sqrt();
            let b = ((dx + 1.0).powi(2) + dy * dy).sqrt();
            a.min(b)
        }
    };
    // t ≤ 0: (sin t, 1 − cos t) = (0, 1) + (sin t, −cos t); with s = −t ≥ 0 this is
    // (0, 1) + (−sin s, −cos s), the point reflection of the t ≥ 0 arc through the origin.
    let q = [-p[0], -p[1]];
    let lower = {
        let (dx, dy) = (q[0], q[1] + 1.0);
        let th = dx.atan2(dy);
        if th >= 0.0 || th <= -PI / 2.0 {
            ((dx * dx + dy * dy).sqrt() - 1.0).abs()
        } else {
            let a = (dx * dx + (dy - 1.0).powi(2)).sqrt();
            let b = ((dx + 1.0).powi(2) + dy * dy).sqrt();
            a.min(b)
        }
    };
    arc([0.0, -1.0], 1.0).min(lower)
}

#[test]
fn scurve_lies_near_the_s_curve_with_the_right_spread() {
    // Noiseless points sit exactly on the curve.
    for k in 0..=600 {
        let t = 3.0 * PI * (k as f64 / 600.0 - 0.5);
        let p = [t.sin(), t.signum() * (t.cos() - 1.0)];
        assert!(scurve_dist(p) < 1e-12, "t = {t}: {}", scurve_dist(p));
    }
    assert!((scurve_dist([0.0, 0.5]) - 0.5).abs() < 1e-12);
    for (what, pts) in [
        ("ours", sample(Distribution::Scurve, 100_000, 13)),
        ("fixture", load_fixture("scurve")),
    ] {
        let d: Vec<f64> = pts
            .iter()
            .map(|p| scurve_dist([p[0] / 1.5, p[1] / 1.5]))
            .collect();
        let worst = d.iter().cloned().fold(0.0, f64::max);
        // The noise is N(0, 0.05² I): |e| > 0.3 has probability e^{-18}.
        assert!(worst < 0.3, "{what}: a point is {worst} from the curve");
        // The distance is about the normal component of the noise: E[d²] ≈ 0.05².
        let msd = d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64;
        assert!(
            (0.7 * 0.0025..1.3 * 0.0025).contains(&msd),
            "{what}: mean squared distance {msd}"
        );
    }
}

fn centre(k: usize) -> P2 {
    let s = FRAC_1_SQRT_2;
    let c = [
        [1.0, 0.0],
        [-1.0, 0.0],
        [0.0, 1.0],
        [0.0, -1.0],
        [s, s],
        [s, -s],
        [-s, s],
        [-s, -s],
    ][k];
    [5.0 * c[0], 5.0 * c[1]]
}

#[test]
fn eight_gaussians_components() {
    for (what, pts) in [
        ("ours", sample(Distribution::EightGaussians, 100_000, 14)),
        ("fixture", load_fixture("8gaussians")),
        ("fixture x0", load_fixture("8gaussians_moons.x0")),
    ] {
        let n = pts.len() as f64;
        let mut counts = [0usize; 8];
        let (mut r1, mut r2) = (0.0, 0.0);
        for p in &pts {
            let dist2 = |k: usize| {
                let c = centre(k);
                (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)
            };
            let k = (0..8)
                .min_by(|&a, &b| dist2(a).total_cmp(&dist2(b)))
                .unwrap();
            counts[k] += 1;
            // Radial deviation from the centre (barely affected by the nearest-centre split).
            let c = centre(k);
            let r = ((p[0] - c[0]) * c[0] + (p[1] - c[1]) * c[1]) / 5.0;
            r1 += r;
            r2 += r * r;
        }
        let se = (n / 8.0 * 7.0 / 8.0).sqrt();
        for c in counts {
            assert!((c as f64 - n / 8.0).abs() < 5.0 * se, "{what}: {counts:?}");
        }
        let (mean, var) = (r1 / n, r2 / n - (r1 / n).powi(2));
        let v = 0.1f64.sqrt(); // the component variance √0.1 (NOT 0.1)
        assert!(
            mean.abs() < 5.0 * (v / n).sqrt(),
            "{what}: radial mean {mean}"
        );
        assert!(
            (var - v).abs() < 5.0 * v * (2.0 / n).sqrt(),
            "{what}: radial variance {var}, expected {v}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Two-sample energy distance against the reference samples
// ---------------------------------------------------------------------------------------------

/// Mean Euclidean distance between the points of `a` and of `b` (all pairs, including i = j
/// when `a` and `b` are the same set: the V-statistic).
fn mean_dist(a: &[P2], b: &[P2]) -> f64 {
    let mut s = 0.0;
    for p in a {
        let mut row = 0.0;
        for q in b {
            row += ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
        }
        s += row;
    }
    s / (a.len() * b.len()) as f64
}

/// Energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'| (V-statistics), from precomputed self terms.
fn energy(a: &[P2], self_a: f64, b: &[P2], self_b: f64) -> f64 {
    2.0 * mean_dist(a, b) - self_a - self_b
}

const M: usize = 2000;

/// Splits the reference set into 5 disjoint subsets of 2000 after a fixed shuffle (the fixture
/// moons are ordered: first half outer arc, second half inner arc).
fn reference_subsets(name: &str) -> Vec<Vec<P2>> {
    let mut pts = load_fixture(name);
    let mut rng = StdRng::seed_from_u64(99);
    for i in (1..pts.len()).rev() {
        let j = rng.random_range(0..=i);
        pts.swap(i, j);
    }
    pts.chunks_exact(M).map(|c| c.to_vec()).collect()
}

struct TwoSample {
    /// Mean energy distance over the 10 pairs of disjoint reference subsets.
    null: f64,
    /// Acceptance threshold 2·null + slack, slack = E|X−X'| / M (half the V-statistic's
    /// expected value under the null, 2E|X−X'|/M).
    threshold: f64,
    refs: Vec<Vec<P2>>,
    self_refs: Vec<f64>,
}

impl TwoSample {
    fn new(name: &str) -> Self {
        let refs = reference_subsets(name);
        let self_refs: Vec<f64> = refs.iter().map(|r| mean_dist(r, r)).collect();
        let mut null = 0.0;
        let mut pairs = 0;
        for i in 0..refs.len() {
            for j in i + 1..refs.len() {
                null += energy(&refs[i], self_refs[i], &refs[j], self_refs[j]);
                pairs += 1;
            }
        }
        null /= pairs as f64;
        let spread = self_refs.iter().sum::<f64>() / self_refs.len() as f64;
        let threshold = 2.0 * null + spread / M as f64;
        TwoSample {
            null,
            threshold,
            refs,
            self_refs,
        }
    }

    /// Mean energy distance between 5 batches of 2000 draws and each reference subset.
    fn statistic(&self, mut draw: impl FnMut(u64) -> Vec<P2>) -> f64 {
        let mut s = 0.0;
        for k in 0..5 {
            let b = draw(k);
            assert_eq!(b.len(), M);
            let sb = mean_dist(&b, &b);
            for (r, sr) in self.refs.iter().zip(&self.self_refs) {
                s += energy(&b, sb, r, *sr);
            }
        }
        s / (5 * self.refs.len()) as f64
    }
}

#[test]
fn energy_distance_to_reference_samples_is_null_like() {
    for (set, dist) in FIXTURE_SETS {
        let ts = TwoSample::new(set);
        let stat = ts.statistic(|k| sample(dist, M, 1000 + k));
        println!(
            "{set}: energy distance ours {stat:.5}, reference null {:.5}, threshold {:.5}",
            ts.null, ts.threshold
        );
        assert!(
            stat < ts.threshold,
            "{set}: energy distance to the reference {stat} ≥ threshold {} (null {})",
            ts.threshold,
            ts.null
        );
    }
}

/// Moons with independent N(0, 0.2²) noise per coordinate instead of one shared U[0, 0.2).
fn wrong_moons_gaussian_noise(n: usize, rng: &mut impl Rng) -> Vec<P2> {
    (0..n)
        .map(|_| {
            let t = PI * rng.random::<f64>();
            let (x, y) = if rng.random_bool(0.5) {
                (t.cos(), t.sin())
            } else {
                (1.0 - t.cos(), 0.5 - t.sin())
            };
            let ex = 0.2 * rng.sample::<f64, _>(StandardNormal);
            let ey = 0.2 * rng.sample::<f64, _>(StandardNormal);
            [3.0 * (x + ex) - 1.0, 3.0 * (y + ey) - 1.0]
        })
        .collect()
}

/// Checkerboard with a truncated remainder (`floor(x1) % 2` in Rust is −1 for ⌊x1⌋ = −1).
fn wrong_checkerboard_truncated_rem(n: usize, rng: &mut impl Rng) -> Vec<P2> {
    (0..n)
        .map(|_| {
            let x1 = 4.0 * rng.random::<f64>() - 2.0;
            let b = if rng.random_bool(0.5) { 2.0 } else { 0.0 };
            let x2 = rng.random::<f64>() - b + x1.floor() % 2.0;
            [2.0 * x1, 2.0 * x2]
        })
        .collect()
}

#[test]
fn energy_distance_detects_wrong_samplers() {
    let ts = TwoSample::new("moons");
    let stat = ts.statistic(|k| wrong_moons_gaussian_noise(M, &mut StdRng::seed_from_u64(k)));
    println!(
        "moons with Gaussian noise: {stat:.5} (threshold {:.5})",
        ts.threshold
    );
    assert!(
        stat > ts.threshold,
        "not detected: {stat} vs {}",
        ts.threshold
    );

    let ts = TwoSample::new("checkerboard");
    let stat = ts.statistic(|k| wrong_checkerboard_truncated_rem(M, &mut StdRng::seed_from_u64(k)));
    println!(
        "checkerboard with truncated %: {stat:.5} (threshold {:.5})",
        ts.threshold
    );
    assert!(
        stat > ts.threshold,
        "not detected: {stat} vs {}",
        ts.threshold
    );

    // 8gaussians with covariance 0.1·I is only weakly visible to the energy distance at 2000
    // points (ratio to the null 1.1–3.5 in calibration runs); the moment test catches it
    // (`moment_check_detects_wrong_eight_gaussians_covariance`). Reported, not asserted.
    let ts = TwoSample::new("8gaussians");
    let stat = ts.statistic(|k| wrong_eight_gaussians(M, &mut StdRng::seed_from_u64(k)));
    println!(
        "8gaussians with covariance 0.1 I: {stat:.5} (null {:.5}, threshold {:.5})",
        ts.null, ts.threshold
    );
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_problem_name_lists_valid_names() {
    let err = "8gaussians->circles".parse::<Problem>().unwrap_err();
    assert!(matches!(err, NsgfError::Param(_)), "{err:?}");
    let msg = err.to_string();
    for name in [
        "8gaussians",
        "8gaussians-moons",
        "moons",
        "scurve",
        "checkerboard",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
    for p in Problem::ALL {
        assert_eq!(p.to_string().parse::<Problem>().unwrap(), p);
    }
}
