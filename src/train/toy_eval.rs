//! Evaluation of a trained 2-D run (paper E.1 protocol): exact W2 between 1024 generated
//! samples and 1024 fresh test samples, mean ± std over seeds, next to
//!
//! * the two-sample floor: W2(fresh target draw, test) with the same protocol — a perfect
//!   sampler sits there;
//! * the teacher: the raw minibatch Sinkhorn flow after `T` steps (four minibatches of 256
//!   flowed against fresh target minibatches, pooled to 1024 points);
//! * the debiased Sinkhorn divergence S_ε (blur 0.05) between samples and test, which is what
//!   the authors' scripts printed as "W2".

use super::nsgf::{sample, sample_tensor, TrainedRun};
use crate::convert::{tensor_to_points, to_f32_vec};
use crate::data::toy2d::{Distribution, Problem};
use crate::error::{NsgfError, Result};
use crate::flows::nsgf::{minibatch_flow, NsgfConfig};
use crate::flows::samplers::Solver;
use crate::io::npy::Points;
use crate::models::ops::NnBackend;
use crate::ot::emd::w2;
use crate::ot::sinkhorn::{OtProblem, SinkhornConfig};
use burn::tensor::Tensor;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Mean and sample standard deviation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    pub fn of(v: &[f64]) -> Self {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            mean,
            std: var.sqrt(),
        }
    }
}

impl std::fmt::Display for MeanStd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} ± {:.3}", self.mean, self.std)
    }
}

/// One row of the evaluation table (one number of sampling steps).
#[derive(Clone, Debug, Serialize)]
pub struct ToyEvalRow {
    pub steps: usize,
    pub nfe: usize,
    pub w2: MeanStd,
    pub sinkhorn_divergence: MeanStd,
}

/// The whole evaluation of a run.
#[derive(Clone, Debug, Serialize)]
pub struct ToyEval {
    pub problem: String,
    pub seeds: usize,
    pub n: usize,
    pub rows: Vec<ToyEvalRow>,
    pub floor: MeanStd,
    pub teacher_w2: MeanStd,
    /// W2 to the test set after each of the first row's steps, averaged over seeds (Fig. 4).
    pub w2_curve: Vec<(usize, f64)>,
}

fn sinkhorn_div<B: NnBackend>(a: &Points, b: &Points, dev: &B::Device) -> Result<f64> {
    let t = |p: &Points| crate::convert::points_to_tensor::<B>(p, dev, burn::tensor::DType::F32);
    OtProblem::uniform(t(a), t(b))?
        .solve(&SinkhornConfig::new(0.05, 0.9))?
        .loss()
}

fn draw(dist: Distribution, n: usize, seed: u64) -> Points {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    crate::data::toy2d::sample_points(dist, n, &mut rng)
}

/// Evaluates `run` at each entry of `steps` (Euler, uniform schedule) over `seeds` seeds.
pub fn evaluate<B: NnBackend>(
    run: &TrainedRun<B>,
    steps: &[usize],
    seeds: usize,
    n: usize,
    dev: &B::Device,
) -> Result<ToyEval> {
    let target = run.config.problem.target();
    if seeds == 0 || n == 0 || steps.is_empty() {
        return Err(NsgfError::Param(format!(
            "evaluation needs at least 1 seed, 1 sample and 1 step count; got {seeds} seeds, \
             {n} samples, {} step counts",
            steps.len()
        )));
    }
    let mut rows = Vec::new();
    let mut curve_acc: Vec<f64> = Vec::new();
    for (r, &k) in steps.iter().enumerate() {
        let (mut w, mut s, mut nfe) = (Vec::new(), Vec::new(), 0);
        for seed in 0..seeds as u64 {
            let test = draw(target, n, 10_000 + seed);
            let (x, path, used) = sample(run, n, k, Solver::Euler, 20_000 + seed, dev)?;
            nfe = used;
            let x = tensor_to_points(x)?;
            w.push(w2(&x, &test)?);
            s.push(sinkhorn_div::<B>(&x, &test, dev)?);
            if r == 0 {
                curve_acc.resize(path.len(), 0.0);
                for (i, p) in path.into_iter().enumerate() {
                    curve_acc[i] += w2(&tensor_to_points(p)?, &test)? / seeds as f64;
                }
            }
        }
        rows.push(ToyEvalRow {
            steps: k,
            nfe,
            w2: MeanStd::of(&w),
            sinkhorn_divergence: MeanStd::of(&s),
        });
    }
    let mut floor = Vec::new();
    let mut teacher = Vec::new();
    for seed in 0..seeds as u64 {
        let test = draw(target, n, 10_000 + seed);
        floor.push(w2(&draw(target, n, 30_000 + seed), &test)?);
        teacher.push(w2(&teacher_samples(run, n, 40_000 + seed, dev)?, &test)?);
    }
    Ok(ToyEval {
        problem: run.config.problem.to_string(),
        seeds,
        n,
        rows,
        floor: MeanStd::of(&floor),
        teacher_w2: MeanStd::of(&teacher),
        w2_curve: curve_acc.into_iter().enumerate().collect(),
    })
}

/// `n` particles pushed by the raw minibatch Sinkhorn flow (the network's teacher): minibatches
/// of the training size flowed for `T` steps against fresh target minibatches.
pub fn teacher_samples<B: NnBackend>(
    run: &TrainedRun<B>,
    n: usize,
    seed: u64,
    dev: &B::Device,
) -> Result<Points> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    flow_samples::<B>(run.config.problem, &run.config.nsgf, n, &mut rng, dev)
}

/// `n` points `(n, 2)` of `problem`'s source pushed by [`minibatch_flow`] with `cfg`: source and
/// target minibatches of `cfg.batch` points (drawn in that order from `rng`) are flowed for `T`
/// steps until `n` particles are collected.
pub fn flow_samples<B: NnBackend>(
    problem: Problem,
    cfg: &NsgfConfig,
    n: usize,
    rng: &mut rand::rngs::StdRng,
    dev: &B::Device,
) -> Result<Points> {
    let mut out = Vec::with_capacity(n * 2);
    while out.len() < n * 2 {
        let x0: Tensor<B, 2> = sample_tensor(problem.source(), cfg.batch, rng, dev);
        let y = sample_tensor(problem.target(), cfg.batch, rng, dev);
        let (_, xt) = minibatch_flow(x0, y, cfg)?;
        out.extend(to_f32_vec(xt)?.into_iter().map(f64::from));
    }
    out.truncate(n * 2);
    Ok(Points { n, d: 2, data: out })
}

pub fn markdown(e: &ToyEval) -> String {
    let paper = match e.problem.as_str() {
        "8gaussians" => Some((0.285, 0.278)),
        "8gaussians-moons" => Some((0.144, 0.144)),
        "moons" => Some((0.077, 0.067)),
        "scurve" => Some((0.117, 0.110)),
        "checkerboard" => Some((0.252, 0.147)),
        _ => None,
    };
    let mut s = format!(
        "### {} ({} seeds, {} samples vs {} test samples)\n\n| | steps | NFE | W2 | S_eps (blur 0.05) | paper NSGF W2 |\n|---|---:|---:|---:|---:|---:|\n",
        e.problem, e.seeds, e.n, e.n
    );
    for r in &e.rows {
        let p = paper
            .map(|(a, b)| {
                if r.steps == 10 {
                    format!("{a}")
                } else if r.steps == 100 {
                    format!("{b}")
                } else {
                    "-".into()
                }
            })
            .unwrap_or_else(|| "-".into());
        s += &format!(
            "| NSGF | {} | {} | {} | {} | {} |\n",
            r.steps, r.nfe, r.w2, r.sinkhorn_divergence, p
        );
    }
    s += &format!(
        "| minibatch Sinkhorn flow (teacher) | T | - | {} | - | - |\n",
        e.teacher_w2
    );
    s += &format!(
        "| two-sample floor (fresh target draw) | - | - | {} | - | - |\n",
        e.floor
    );
    s
}
