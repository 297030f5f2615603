//! Where the time of one tensorized softmin goes: each burn op of
//! `softmin(ε, C, h) = −ε · logsumexp_j(h_j − C_ij/ε)` timed separately on an (n, n) f32 cost
//! matrix (CPU backend), for `C = C_xy` (contiguous) and `C = C_xyᵀ` (the transposed view the
//! solver used to pass for `C_yx`). Plain timing (median of `NSGF_OPS_REPS`, default 7),
//! no criterion: `cargo bench --bench softmin_ops` (`NSGF_OPS_N=1024,4096` to pick sizes).
//!
//! With `NSGF_OPS_SOLVE=n,d,blur,scaling[;...]` it instead times whole solves on the data of
//! `benches/sinkhorn.rs` (reimplemented here), phase by phase (cost matrices, Sinkhorn loop,
//! velocity + loss), and reports the process CPU time per solve next to the wall time: on a
//! loaded machine the CPU time is the steadier number.
//!
//! The op table also times the fused host kernel of `nsgf::ot::softmin_cpu` (what the solver
//! runs on the CPU) on the same data: softmin on the explicit matrix and on the fly, the
//! barycentric projection, and the direct-difference cost matrix.

use burn::tensor::{Tensor, TensorData};
use nsgf::backend::Cpu;
use nsgf::ot::cost::half_sq_cost;
use nsgf::ot::sinkhorn::{OtProblem, SinkhornConfig};
use nsgf::ot::softmin::{Softmin, Tensorized};
use nsgf::ot::softmin_cpu::HostCost;
use std::time::Instant;

mod common;

type T2 = Tensor<Cpu, 2>;
type T1 = Tensor<Cpu, 1>;

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

/// Forces evaluation (the CPU backend is eager, but be safe on lazy backends).
fn sync2(t: T2) {
    std::hint::black_box(t.into_data());
}
fn sync1(t: T1) {
    std::hint::black_box(t.into_data());
}

/// User + system CPU time of this process (all threads), seconds (`/proc/self/stat`, 100 Hz).
fn cpu_time_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    // After the command name: state (not numeric, skipped), ppid, ..., utime = field 14, stime = 15.
    f.get(10).copied().unwrap_or(0.0) / 100.0 + f.get(11).copied().unwrap_or(0.0) / 100.0
}

/// `NSGF_OPS_SOLVE` mode: whole solves, phase by phase, wall and CPU time.
fn profile_solves(spec: &str, reps: usize) {
    let dev = Default::default();
    println!("| n | d | blur/scal | iters | costs (ms) | solve (ms) | velocity+loss (ms) | total wall (ms) | total CPU (ms) |");
    println!("|---:|---:|:---:|---:|---:|---:|---:|---:|---:|");
    for cell in spec.split(';').filter(|c| !c.trim().is_empty()) {
        let v: Vec<f64> = cell.split(',').map(|t| t.trim().parse().unwrap()).collect();
        let (n, d, cfg) = (
            v[0] as usize,
            v[1] as usize,
            SinkhornConfig::new(v[2], v[3]),
        );
        let (xs, ys) = common::bench_data(n, d);
        let x: T2 = Tensor::from_data(TensorData::new(xs, [n, d]), &dev);
        let y: T2 = Tensor::from_data(TensorData::new(ys, [n, d]), &dev);
        let mut rows = Vec::new();
        let mut iters = 0;
        for rep in 0..=reps {
            let (t0, c0) = (Instant::now(), cpu_time_s());
            // The cost matrices alone (what `solve` builds first: C_xy, its transpose, C_xx, C_yy).
            let cxy = half_sq_cost(&x, &y);
            std::hint::black_box((
                cxy.clone()
                    .transpose()
                    .reshape([n * n])
                    .reshape([n, n])
                    .into_data(),
                half_sq_cost(&x, &x).into_data(),
                half_sq_cost(&y, &y).into_data(),
            ));
            let t_cost = t0.elapsed().as_secs_f64();
            let (t1, c1) = (Instant::now(), cpu_time_s());
            let sol = OtProblem::uniform(x.clone(), y.clone())
                .unwrap()
                .solve(&cfg)
                .unwrap();
            // Force the potentials (lazy backends).
            std::hint::black_box(sol.duals.f_xy.clone().into_data());
            let t_solve = t1.elapsed().as_secs_f64();
            let t2 = Instant::now();
            std::hint::black_box((sol.velocity().into_data(), sol.loss().unwrap()));
            let t_vel = t2.elapsed().as_secs_f64();
            let (wall, cpu) = (t1.elapsed().as_secs_f64(), cpu_time_s() - c1);
            let _ = (t0, c0);
            iters = sol.iterations;
            if rep > 0 {
                rows.push([t_cost, t_solve, t_vel, wall, cpu]);
            }
        }
        let med = |k: usize| {
            let mut c: Vec<f64> = rows.iter().map(|r| r[k]).collect();
            c.sort_by(f64::total_cmp);
            1e3 * c[c.len() / 2]
        };
        let cpu_mean = 1e3 * rows.iter().map(|r| r[4]).sum::<f64>() / rows.len() as f64;
        println!(
            "| {n} | {d} | {}/{} | {iters} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            cfg.blur,
            cfg.scaling,
            med(0),
            med(1),
            med(2),
            med(3),
            cpu_mean
        );
    }
}

fn main() {
    let reps: usize = std::env::var("NSGF_OPS_REPS")
        .ok()
        .map_or(7, |s| s.parse().unwrap());
    let ns: Vec<usize> = std::env::var("NSGF_OPS_N")
        .ok()
        .map(|s| s.split(',').map(|t| t.trim().parse().unwrap()).collect())
        .unwrap_or(vec![1024, 4096]);
    // `cargo bench` passes `--bench`; ignore arguments.
    if let Ok(spec) = std::env::var("NSGF_OPS_SOLVE") {
        profile_solves(&spec, reps);
        return;
    }
    let dev = Default::default();
    let d = 2;
    for n in ns {
        let pts = |seed: u64| -> T2 {
            let v: Vec<f32> = (0..n * d)
                .map(|k| {
                    (((k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ seed) >> 40) as f32)
                        / (1u64 << 24) as f32
                        * 4.0
                })
                .collect();
            Tensor::from_data(TensorData::new(v, [n, d]), &dev)
        };
        let (x, y) = (pts(1), pts(2));
        let eps = 0.01;
        let c = half_sq_cost(&x, &y);
        let ct = c.clone().transpose();
        let h: T1 = Tensor::full([n], -(n as f64).ln(), &dev);
        let s = h.clone().unsqueeze_dim::<2>(0) - c.clone().div_scalar(eps);
        let mx = s.clone().max_dim(1);
        let sh = s.clone() - mx.clone();
        let ex = sh.clone().exp();
        let host = |t: T2| t.into_data().into_vec::<f32>().unwrap();
        let hh = h.clone().into_data().into_vec::<f32>().unwrap();
        let hc_matrix = HostCost::matrix(host(c.clone()), n, n);
        let hc_points = HostCost::points(&host(x.clone()), &host(y.clone()), d);
        let mb = (n * n * 4) as f64 / 1e6;
        println!("## n = m = {n} ({mb:.0} MB per f32 matrix), median of {reps} runs, ms");
        let rows: Vec<(&str, f64)> = vec![
            (
                "cost: half_sq_cost(x, y) (d = 2)",
                median_ms(reps, || sync2(half_sq_cost(&x, &y))),
            ),
            (
                "C.div_scalar(eps)   [C shared: copy]",
                median_ms(reps, || sync2(c.clone().div_scalar(eps))),
            ),
            (
                "C.mul_scalar(-1/eps) [C shared: copy]",
                median_ms(reps, || sync2(c.clone().mul_scalar(-1.0 / eps))),
            ),
            (
                "h(1,m) - S  [broadcast lhs]",
                median_ms(reps, || {
                    let t = c.clone().div_scalar(eps);
                    sync2(h.clone().unsqueeze_dim::<2>(0) - t)
                }),
            ),
            (
                "  (div_scalar + broadcast sub together)",
                median_ms(reps, || {
                    sync2(h.clone().unsqueeze_dim::<2>(0) - c.clone().div_scalar(eps))
                }),
            ),
            (
                "S + h(1,m)  [broadcast rhs, S unique]",
                median_ms(reps, || {
                    sync2(c.clone().mul_scalar(-1.0 / eps) + h.clone().unsqueeze_dim::<2>(0))
                }),
            ),
            (
                "S.max_dim(1)",
                median_ms(reps, || sync2(s.clone().max_dim(1))),
            ),
            (
                "S - max(n,1)  [S shared: copy]",
                median_ms(reps, || sync2(s.clone() - mx.clone())),
            ),
            (
                "exp (shared: copy)",
                median_ms(reps, || sync2(sh.clone().exp())),
            ),
            (
                "sum_dim(1)",
                median_ms(reps, || sync2(ex.clone().sum_dim(1))),
            ),
            (
                "softmin on C_xy (contiguous)",
                median_ms(reps, || sync1(Tensorized.softmin(eps, &c, h.clone()))),
            ),
            (
                "softmin on C_xy^T (transposed view)",
                median_ms(reps, || sync1(Tensorized.softmin(eps, &ct, h.clone()))),
            ),
            (
                "fused host softmin, explicit C (f32)",
                median_ms(reps, || {
                    std::hint::black_box(hc_matrix.softmin(eps, &hh));
                }),
            ),
            (
                "fused host softmin, on-the-fly C (f32, d = 2)",
                median_ms(reps, || {
                    std::hint::black_box(hc_points.softmin(eps, &hh));
                }),
            ),
            (
                "fused host projection, on-the-fly C (f32, d = 2)",
                median_ms(reps, || {
                    std::hint::black_box(hc_points.barycentric(eps, &hh));
                }),
            ),
            (
                "direct-difference C on the host (f32, d = 2)",
                median_ms(reps, || {
                    std::hint::black_box(hc_points.to_matrix());
                }),
            ),
            (
                "softmax(S, 1) (flex fused)",
                median_ms(reps, || {
                    sync2(burn::tensor::activation::softmax(s.clone(), 1))
                }),
            ),
            (
                "S.matmul(z) (n,n)x(n,2)",
                median_ms(reps, || sync2(s.clone().matmul(x.clone()))),
            ),
        ];
        for (name, ms) in rows {
            println!("{name:<45} {ms:9.2}");
        }
        println!();
    }
}
