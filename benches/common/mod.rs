//! The benchmark data, shared by `benches/sinkhorn.rs` and `benches/softmin_ops.rs` (and
//! re-implemented in numpy by `tools/bench_geomloss.py`).

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED_X: u64 = 12345;
const SEED_Y: u64 = 67890;

/// SplitMix64 as a counter-based generator: word `k` of stream `seed` is
/// `mix(seed + (k + 1)·γ)` (mod 2⁶⁴), exactly the k-th output of `SplitMix64(seed)`.
fn splitmix(seed: u64, k: u64) -> u64 {
    let mut z = seed.wrapping_add(k.wrapping_add(1).wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in (0, 1): `((w >> 11) + 0.5) · 2⁻⁵³`.
fn uniform(seed: u64, k: u64) -> f64 {
    ((splitmix(seed, k) >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal number `k` of a stream (Box–Muller, cosine branch, uniforms `2k`, `2k + 1`).
fn normal(seed: u64, k: u64) -> f64 {
    let (u1, u2) = (uniform(seed, 2 * k), uniform(seed, 2 * k + 1));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The benchmark clouds `x, y: (n, d)`, row-major, f32 (element `k = i·d + j`).
///
/// * `d = 2` (the 2-D experiments): `x = N(0, I)`, `y = 0.6·N(0, I) + 1`.
/// * `d ≥ 784` (image-like, MNIST / CIFAR-10 sized): pixels in (0, 1), `x = U`, `y = U'²`
///   (a darker "image" distribution); diameter `≈ √d`.
pub fn bench_data(n: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
    let len = (n * d) as u64;
    if d == 2 {
        let x = (0..len).map(|k| normal(SEED_X, k) as f32).collect();
        let y = (0..len)
            .map(|k| (0.6 * normal(SEED_Y, k) + 1.0) as f32)
            .collect();
        (x, y)
    } else {
        let x = (0..len).map(|k| uniform(SEED_X, k) as f32).collect();
        let y = (0..len)
            .map(|k| uniform(SEED_Y, k).powi(2) as f32)
            .collect();
        (x, y)
    }
}
