//! Exact W2 / linear sum assignment on Gaussian 2-D clouds (n = 1024, 4096).
//!
//! `lsa/n`: the Jonker–Volgenant solver alone on a precomputed squared-distance matrix (the
//! quantity comparable with POT's `ot.emd2(a, b, M)` timed with M built outside).
//! `w2/n`: end to end, cost matrix included.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nsgf::io::npy::Points;
use nsgf::ot::emd::{linear_sum_assignment, w2};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use std::hint::black_box;
use std::time::Duration;

fn gauss(rng: &mut StdRng, n: usize, scale: f64, shift: [f64; 2]) -> Points {
    let data = (0..n * 2)
        .map(|k| scale * rng.sample::<f64, _>(StandardNormal) + shift[k % 2])
        .collect();
    Points { n, d: 2, data }
}

fn sq_cost(x: &Points, y: &Points) -> Vec<f64> {
    let mut c = Vec::with_capacity(x.n * y.n);
    for a in x.data.chunks_exact(2) {
        for b in y.data.chunks_exact(2) {
            let (dx, dy) = (a[0] - b[0], a[1] - b[1]);
            c.push(dx * dx + dy * dy);
        }
    }
    c
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("emd");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for n in [1024usize, 4096] {
        // Same recipe as the W2 fixtures: x ~ N(0, I), y ~ 0.5 N(0, I) + (1, -0.5).
        let mut rng = StdRng::seed_from_u64(n as u64);
        let x = gauss(&mut rng, n, 1.0, [0.0, 0.0]);
        let y = gauss(&mut rng, n, 0.5, [1.0, -0.5]);
        let cost = sq_cost(&x, &y);
        g.bench_with_input(BenchmarkId::new("lsa", n), &cost, |b, cost| {
            b.iter(|| linear_sum_assignment(black_box(cost), n).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("w2", n), &(x, y), |b, (x, y)| {
            b.iter(|| w2(black_box(x), black_box(y)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
