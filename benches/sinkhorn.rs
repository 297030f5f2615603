//! Sinkhorn benchmarks (CPU, f32): debiased GeomLoss-compatible solve + NSGF velocity + loss.
//!
//! Grid: n = m ∈ {256, 1024, 4096}, d ∈ {2, 784, 3072}, (blur, scaling) ∈ {(0.05, 0.9), (1.0, 0.8)}.
//! One benchmark id per cell, `sinkhorn/n{n}_d{d}_blur{blur}_scal{scaling}`, so a subset can be
//! picked with a criterion filter (`cargo bench --bench sinkhorn -- n1024_d784`) or with the
//! environment variables `NSGF_BENCH_N`, `NSGF_BENCH_D`, `NSGF_BENCH_CFG` (comma-separated
//! lists, e.g. `NSGF_BENCH_N=256,1024 NSGF_BENCH_CFG=0.05/0.9`). `NSGF_BENCH_TIME` sets the
//! measurement time in seconds (default 5; criterion needs at least 10 samples, so the slowest
//! cells take 10 runs whatever the time).
//!
//! Data (shared with `tools/bench_geomloss.py`, which implements the same generator in numpy):
//! see `common::bench_data`. Every timed iteration builds the problem, runs the full ε-scaling
//! schedule, computes the velocity and reads the velocity and the loss back to the host.

use burn::tensor::{Tensor, TensorData};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use nsgf::backend::Cpu;
use nsgf::ot::sinkhorn::{OtProblem, SinkhornConfig};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

const NS: [usize; 3] = [256, 1024, 4096];
const DS: [usize; 3] = [2, 784, 3072];
const CFGS: [(f64, f64); 2] = [(0.05, 0.9), (1.0, 0.8)];

mod common;
use common::bench_data;

fn env_list<T: std::str::FromStr>(name: &str) -> Option<Vec<T>> {
    std::env::var(name).ok().map(|s| {
        s.split(',')
            .filter(|t| !t.trim().is_empty())
            .map(|t| {
                t.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value {t:?} in {name}"))
            })
            .collect()
    })
}

fn bench_sinkhorn(c: &mut Criterion) {
    let ns = env_list::<usize>("NSGF_BENCH_N").unwrap_or(NS.to_vec());
    let ds = env_list::<usize>("NSGF_BENCH_D").unwrap_or(DS.to_vec());
    let cfgs: Vec<(f64, f64)> = env_list::<String>("NSGF_BENCH_CFG")
        .map(|v| {
            v.iter()
                .map(|s| {
                    let (b, sc) = s
                        .split_once('/')
                        .expect("NSGF_BENCH_CFG entries are blur/scaling");
                    (b.parse().expect("blur"), sc.parse().expect("scaling"))
                })
                .collect()
        })
        .unwrap_or(CFGS.to_vec());
    let secs: f64 = std::env::var("NSGF_BENCH_TIME")
        .ok()
        .map(|s| s.parse().expect("NSGF_BENCH_TIME"))
        .unwrap_or(5.0);

    let dev = Default::default();
    let mut group = c.benchmark_group("sinkhorn");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs_f64(secs))
        .sampling_mode(SamplingMode::Flat);
    for &n in &ns {
        for &d in &ds {
            // Generated lazily, only for the cells the filter selects.
            let mut data: Option<(Tensor<Cpu, 2>, Tensor<Cpu, 2>)> = None;
            for &(blur, scaling) in &cfgs {
                let cfg = SinkhornConfig::new(blur, scaling);
                let name = format!("n{n}_d{d}_blur{blur}_scal{scaling}");
                let last_loss = Cell::new(f64::NAN);
                group.bench_function(BenchmarkId::from_parameter(&name), |b| {
                    let (x, y) = data.get_or_insert_with(|| {
                        let (x, y) = bench_data(n, d);
                        (
                            Tensor::from_data(TensorData::new(x, [n, d]), &dev),
                            Tensor::from_data(TensorData::new(y, [n, d]), &dev),
                        )
                    });
                    b.iter(|| {
                        let problem = OtProblem::uniform(x.clone(), y.clone()).unwrap();
                        let sol = problem.solve(&cfg).unwrap();
                        let v = sol.velocity().into_data();
                        let loss = sol.loss().unwrap();
                        last_loss.set(loss);
                        black_box((v, loss))
                    })
                });
                // For tools/bench_sinkhorn_compare.py (cross-check against GeomLoss' loss).
                if !last_loss.get().is_nan() {
                    println!("nsgf-bench-loss {name} {:.9e}", last_loss.get());
                }
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_sinkhorn);
criterion_main!(benches);
