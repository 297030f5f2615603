//! The paper's Table 1 harness: NSGF and the flow-matching baselines (FM, I-CFM, OT-CFM, SI,
//! k-RF) trained with the same network (MLP 3×256), optimiser (Adam), batch and step budget on
//! the five 2-D problems, evaluated by exact W2 between 1024 generated and 1024 fresh test
//! samples after 10 and 100 uniform Euler steps, mean ± std over seeds.
//!
//! Every `(problem, method, seed)` cell is trained, evaluated and cached as JSON under the work
//! directory, so an interrupted table resumes where it stopped and a finished cell is never
//! recomputed. The models stay in the work directory (k-RF reads the `(k−1)`-RF model of the
//! same seed, the figures the seed-0 models); the output directory gets `table1.md`,
//! `table1.json` and the figures.
//!
//! Time convention (see [`crate::flows`]): every model is a field on `τ ∈ [0, 1]` and `K`
//! sampling steps are Euler steps of `Δτ = 1/K`. For NSGF, trained on a teacher of `T` flow steps
//! of size `η`, that is `K` steps of size `ηT/K` in the paper's units (`K = T` is Algorithm 2).

use super::checkpoint::{load_model, save_model, CONFIG_FILE, MODEL_FILE};
use super::config::{LrSchedule, OptimConfig, ToyConfig};
use super::fit::{bar, fit_regression};
use super::nsgf::{load_run, train as train_nsgf};
use super::nsgfpp::{
    load_run as load_nsgfpp_run, sample_from, train as train_nsgfpp, NsgfppConfig, NsgfppRun,
};
use super::sjko::{load_run as load_sjko_run, train as train_sjko, SjkoConfig, SjkoRun};
use super::toy_eval::MeanStd;
use super::wgf::{load_run as load_wgf_run, train as train_wgf, WgfConfig, WgfRun};
use crate::convert::to_f32_vec;
use crate::data::toy2d::{sample_points, Distribution, Problem};
use crate::error::{NsgfError, Result};
use crate::flows::matching::{
    ExactOtCfm, IndependentCfm, Matcher, RectifiedFlow, TargetFm, VpInterpolant,
};
use crate::flows::nsgfpp::NsfSchedule;
use crate::flows::reflow::Coupling;
use crate::flows::samplers::{integrate, Solver};
use crate::io::npy::write_atomic;
use crate::metrics::plots::{trajectory_panels, w2_curve};
use crate::models::mlp::{MlpConfig, VelocityMlp};
use crate::models::ops::{NnAutodiffBackend, NnBackend};
use crate::ot::emd::w2;
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use burn::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

/// A row of Table 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Neural Sinkhorn Gradient Flow (trained from `configs/<problem>.toml`).
    Nsgf,
    /// NSGF++ (trained from `configs/nsgfpp/<problem>.toml`): at a budget of `K` evaluations it
    /// runs its `T` NSGF steps, the time predictor, and `K − T − 1` straight-flow steps.
    Nsgfpp,
    /// Flow matching (Lipman et al.).
    Fm,
    /// Independent conditional flow matching.
    Icfm,
    /// Exact-OT conditional flow matching.
    OtCfm,
    /// Trigonometric (variance-preserving) stochastic interpolant.
    Si,
    /// k-rectified flow, `k ≥ 1`.
    Rf(usize),
    /// JKO-Flow (trained from `configs/jko/<problem>.toml`, one run per step count).
    Jko,
    /// EPT without the outer loop (trained from `configs/ept/<problem>.toml`, one run per step
    /// count).
    Ept,
    /// S-JKO (trained from `configs/sjko/<problem>.toml`): one generator call (NFE = 1) in both
    /// columns; its 10-state path is the generator at the end of each of its phases.
    Sjko,
}

impl Method {
    /// Every method of the table, in the paper's order where it has one.
    pub const ALL: [Method; 12] = [
        Method::Nsgf,
        Method::Nsgfpp,
        Method::Jko,
        Method::Ept,
        Method::Sjko,
        Method::OtCfm,
        Method::Rf(1),
        Method::Rf(2),
        Method::Rf(3),
        Method::Si,
        Method::Fm,
        Method::Icfm,
    ];

    /// File-system key ("nsgf", "otcfm", "2rf", ...).
    pub fn key(self) -> String {
        match self {
            Method::Nsgf => "nsgf".into(),
            Method::Nsgfpp => "nsgfpp".into(),
            Method::Fm => "fm".into(),
            Method::Icfm => "icfm".into(),
            Method::OtCfm => "otcfm".into(),
            Method::Si => "si".into(),
            Method::Rf(k) => format!("{k}rf"),
            Method::Jko => "jko".into(),
            Method::Ept => "ept".into(),
            Method::Sjko => "sjko".into(),
        }
    }

    /// The revision of the method's training code. Bump it with any change that alters the
    /// models a method trains: `bench table1` then retrains its cached cells from scratch
    /// (discarding the finished or partial runs that JKO-Flow / EPT / S-JKO cells would
    /// otherwise resume), while cells of other methods stay cached. (A cell's settings key
    /// covers the table's settings and the method's config file, not its code.)
    pub fn revision(self) -> u32 {
        match self {
            Method::Nsgf | Method::Nsgfpp => 0,
            Method::Jko | Method::Ept | Method::Sjko => 0,
            // The flow-matching family and k-RF (one trainer).
            Method::Fm | Method::Icfm | Method::OtCfm | Method::Si | Method::Rf(_) => 0,
        }
    }

    /// The paper's label ("NSGF", "OT-CFM", "2-RF", ...).
    pub fn label(self) -> String {
        match self {
            Method::Nsgf => "NSGF".into(),
            Method::Nsgfpp => "NSGF++".into(),
            Method::Fm => "FM".into(),
            Method::Icfm => "I-CFM".into(),
            Method::OtCfm => "OT-CFM".into(),
            Method::Si => "SI".into(),
            Method::Rf(k) => format!("{k}-RF"),
            Method::Jko => "JKO-Flow".into(),
            Method::Ept => "EPT".into(),
            Method::Sjko => "S-JKO".into(),
        }
    }

    /// The paper's Table 1 values (10 steps, 100 steps) for this method on `problem`, if any
    /// (the paper has no I-CFM row and no 4-RF and beyond).
    pub fn paper(self, problem: Problem) -> Option<(f64, f64)> {
        let row: [(f64, f64); 5] = match self {
            Method::Nsgf => [
                (0.285, 0.278),
                (0.144, 0.144),
                (0.077, 0.067),
                (0.117, 0.110),
                (0.252, 0.147),
            ],
            Method::Jko => [
                (0.290, 0.274),
                (0.177, 0.167),
                (0.085, 0.085),
                (0.135, 0.123),
                (0.269, 0.160),
            ],
            Method::Ept => [
                (0.295, 0.289),
                (0.180, 0.176),
                (0.082, 0.080),
                (0.138, 0.118),
                (0.277, 0.163),
            ],
            Method::OtCfm => [
                (0.289, 0.269),
                (0.173, 0.165),
                (0.088, 0.078),
                (0.149, 0.127),
                (0.253, 0.159),
            ],
            Method::Rf(1) => [
                (0.427, 0.415),
                (0.294, 0.293),
                (0.107, 0.099),
                (0.169, 0.136),
                (0.396, 0.166),
            ],
            Method::Rf(2) => [
                (0.428, 0.430),
                (0.311, 0.311),
                (0.125, 0.121),
                (0.171, 0.136),
                (0.421, 0.170),
            ],
            Method::Rf(3) => [
                (0.421, 0.414),
                (0.298, 0.297),
                (0.110, 0.103),
                (0.170, 0.140),
                (0.413, 0.170),
            ],
            Method::Si => [
                (0.435, 0.411),
                (0.324, 0.294),
                (0.134, 0.096),
                (0.187, 0.139),
                (0.427, 0.166),
            ],
            Method::Fm => [
                (0.423, 0.415),
                (0.292, 0.290),
                (0.111, 0.097),
                (0.171, 0.135),
                (0.417, 0.165),
            ],
            _ => return None,
        };
        let i = Problem::TABLE1.iter().position(|p| *p == problem)?;
        Some(row[i])
    }

    /// The matcher of a flow-matching method (`None` for NSGF).
    pub fn matcher(self, sigma: f64) -> Option<Box<dyn Matcher>> {
        Some(match self {
            Method::Nsgf | Method::Nsgfpp | Method::Jko | Method::Ept | Method::Sjko => {
                return None
            }
            Method::Fm => Box::new(TargetFm { sigma }),
            Method::Icfm => Box::new(IndependentCfm { sigma }),
            Method::OtCfm => Box::new(ExactOtCfm { sigma }),
            Method::Si => Box::new(VpInterpolant { sigma }),
            Method::Rf(k) => Box::new(RectifiedFlow::new(k)),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl FromStr for Method {
    type Err = NsgfError;
    fn from_str(s: &str) -> Result<Self> {
        let key = s.to_ascii_lowercase().replace(['-', '_'], "");
        Ok(match key.as_str() {
            "nsgf" => Method::Nsgf,
            "nsgfpp" | "nsgf++" => Method::Nsgfpp,
            "fm" => Method::Fm,
            "icfm" | "cfm" => Method::Icfm,
            "otcfm" => Method::OtCfm,
            "si" => Method::Si,
            "jko" | "jkoflow" => Method::Jko,
            "ept" => Method::Ept,
            "sjko" => Method::Sjko,
            _ => match key.strip_suffix("rf").map(str::parse::<usize>) {
                Some(Ok(k)) if (1..=9).contains(&k) => Method::Rf(k),
                _ => {
                    return Err(NsgfError::Param(format!(
                        "unknown method '{s}'; valid: nsgf, nsgfpp, jko, ept, sjko, fm, icfm, otcfm, si, 1rf, 2rf, 3rf (k-RF for k = 1..9)"
                    )))
                }
            },
        })
    }
}

/// Settings of a table run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table1Settings {
    pub problems: Vec<String>,
    pub methods: Vec<String>,
    /// Training seeds per cell.
    pub seeds: usize,
    /// Test draws every model is scored on (the same draws for every method and seed); a
    /// model's W2 is its mean over them.
    #[serde(default = "default_eval_draws")]
    pub eval_draws: usize,
    /// Gradient steps per model (the paper: 20,000; each k-RF stage gets this budget).
    pub steps: usize,
    /// Training batch (pairs per step; NSGF: samples drawn from its pool).
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Learning-rate schedule of every method (NSGF's config is overridden with it too).
    pub lr_schedule: LrSchedule,
    /// σ of FM (σ_min), I-CFM, OT-CFM and SI (torchcfm's 2-D examples use 0.1).
    pub sigma: f64,
    /// Generated and test samples per evaluation (the paper: 1024).
    pub n_eval: usize,
    /// Pairs of each reflow coupling, and the Euler steps used to generate them.
    pub reflow_pairs: usize,
    pub reflow_steps: usize,
    /// Folder with the NSGF configs (`<problem>.toml`).
    pub configs: PathBuf,
    /// CPU threads of the baselines' training steps (0: all; 1 is fastest for the 2-D MLPs).
    pub threads: usize,
}

fn default_eval_draws() -> usize {
    20
}

impl Default for Table1Settings {
    fn default() -> Self {
        Self {
            problems: Problem::TABLE1.iter().map(|p| p.to_string()).collect(),
            methods: Method::ALL.iter().map(|m| m.key()).collect(),
            seeds: 3,
            eval_draws: default_eval_draws(),
            steps: 20_000,
            batch: 256,
            lr: 1e-3,
            lr_schedule: LrSchedule::Cosine,
            sigma: 0.1,
            n_eval: 1024,
            reflow_pairs: 10_000,
            reflow_steps: 100,
            configs: PathBuf::from("configs"),
            threads: 1,
        }
    }
}

impl Table1Settings {
    /// Everything that changes a cell's result, as text (stored with each cached cell).
    pub fn cell_key(&self) -> String {
        format!(
            "steps={} batch={} lr={} schedule={:?} sigma={} n_eval={} reflow={}x{} configs={}",
            self.steps,
            self.batch,
            self.lr,
            self.lr_schedule,
            self.sigma,
            self.n_eval,
            self.reflow_pairs,
            self.reflow_steps,
            self.configs.display()
        )
    }

    /// Parsed problems and methods; checks every numeric setting.
    pub fn parse(&self) -> Result<(Vec<Problem>, Vec<Method>)> {
        let problems = self
            .problems
            .iter()
            .map(|p| p.parse::<Problem>())
            .collect::<Result<Vec<_>>>()?;
        let methods = self
            .methods
            .iter()
            .map(|m| m.parse::<Method>())
            .collect::<Result<Vec<_>>>()?;
        for (v, name) in [
            (self.seeds, "seeds"),
            (self.eval_draws, "eval_draws"),
            (self.steps, "steps"),
            (self.batch, "batch"),
            (self.n_eval, "n_eval"),
            (self.reflow_pairs, "reflow_pairs"),
            (self.reflow_steps, "reflow_steps"),
            (problems.len(), "problems"),
            (methods.len(), "methods"),
        ] {
            if v == 0 {
                return Err(NsgfError::Param(format!(
                    "table1: {name} must be at least 1"
                )));
            }
        }
        for (i, p) in problems.iter().enumerate() {
            if problems[..i].contains(p) {
                return Err(NsgfError::Param(format!(
                    "table1: problem {p} is listed twice"
                )));
            }
        }
        for (i, m) in methods.iter().enumerate() {
            if methods[..i].contains(m) {
                return Err(NsgfError::Param(format!(
                    "table1: method {} is listed twice",
                    m.key()
                )));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(NsgfError::Param(format!(
                "table1: lr must be > 0, got {}",
                self.lr
            )));
        }
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return Err(NsgfError::Param(format!(
                "table1: sigma must be ≥ 0, got {}",
                self.sigma
            )));
        }
        Ok((problems, methods))
    }
}

/// The evaluation of one trained model (one training seed) on the shared test draws.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub problem: String,
    pub method: String,
    pub seed: u64,
    /// W2 after 10 and 100 Euler steps: the mean over the test draws.
    pub w2_10: f64,
    pub w2_100: f64,
    /// W2 after 10 and 100 steps on each test draw `d = 0..eval_draws` (the same draws for every
    /// method and seed, so that two models can be compared draw by draw).
    #[serde(default)]
    pub w2_10_draws: Vec<f64>,
    #[serde(default)]
    pub w2_100_draws: Vec<f64>,
    /// W2 to the test set after each of the 10 Euler steps (index 0 = the source draw), mean
    /// over the first [`CURVE_DRAWS`] test draws.
    pub curve_10: Vec<f64>,
    /// Training loss (mean of the last 100 steps) and seconds (NSGF: pool + training; k-RF:
    /// coupling generation + training).
    pub final_loss: f64,
    pub train_seconds: f64,
    /// The settings the cell was made with ([`Table1Settings::cell_key`]); a cached cell made
    /// with other settings is recomputed.
    #[serde(default)]
    pub settings: String,
    /// The [`Method::revision`] of the code that trained it (cells written before revisions
    /// existed read as 0).
    #[serde(default)]
    pub revision: u32,
}

fn draw(dist: Distribution, n: usize, seed: u64) -> crate::io::npy::Points {
    let mut rng = StdRng::seed_from_u64(seed);
    sample_points(dist, n, &mut rng)
}

/// Test set, source draw and floor draw of test draw `d` (shared by every method and training
/// seed).
fn eval_draws(problem: Problem, n: usize, d: u64) -> [crate::io::npy::Points; 3] {
    [
        draw(problem.target(), n, 10_000 + d),
        draw(problem.source(), n, 20_000 + d),
        draw(problem.target(), n, 30_000 + d),
    ]
}

/// Test draws whose W2-after-each-step curve is computed (10 exact W2 each; the other draws
/// only score the end states).
pub const CURVE_DRAWS: usize = 3;

/// A trained cell: a velocity field (NSGF and the baselines) or the three NSGF++ networks.
enum Trained<B: NnBackend> {
    Field(VelocityMlp<B>),
    Nsgfpp(Box<NsgfppRun<B>>),
    /// JKO-Flow / EPT: one run with 10 steps and one with 100.
    Steps(Box<[WgfRun<B>; 2]>),
    /// S-JKO: one generator (and its phase snapshots).
    Sjko(Box<SjkoRun<B>>),
}

/// Loads a trained cell from its directory.
fn load_trained<B: NnBackend>(method: Method, dir: &Path, dev: &B::Device) -> Result<Trained<B>> {
    Ok(match method {
        Method::Nsgfpp => Trained::Nsgfpp(Box::new(load_nsgfpp_run::<B>(dir, dev)?)),
        Method::Jko | Method::Ept => Trained::Steps(Box::new([
            load_wgf_run::<B>(&dir.join("k10"), dev)?,
            load_wgf_run::<B>(&dir.join("k100"), dev)?,
        ])),
        Method::Sjko => Trained::Sjko(Box::new(load_sjko_run::<B>(dir, dev)?)),
        _ => Trained::Field(load_model(new_model::<B>(dev), &dir.join(MODEL_FILE))?),
    })
}

/// The file whose presence marks a cell's trained model.
fn model_file(method: Method, dir: &Path) -> PathBuf {
    match method {
        Method::Nsgfpp => dir.join("nsf").join(MODEL_FILE),
        Method::Jko | Method::Ept => dir.join("k100").join("steps").join("0099.safetensors"),
        Method::Sjko => dir.join("generator").join(MODEL_FILE),
        _ => dir.join(MODEL_FILE),
    }
}

/// Paths from the seed-`s` source draw: the states after each of 10 network evaluations (11
/// states, the start included) and the end state at 100 evaluations. A field takes 10 and 100
/// Euler steps; NSGF++ its `T` NSGF steps, `t_φ` (state unchanged) and `K − T − 1` NSF steps.
fn sample_paths<B: NnBackend>(
    model: &Trained<B>,
    problem: Problem,
    n: usize,
    s: u64,
    dev: &B::Device,
) -> Result<(Vec<Vec<f32>>, Vec<f32>)> {
    let x0 = eval_draws(problem, n, s)[1].clone();
    let start = || crate::convert::points_to_tensor::<B>(&x0, dev, burn::tensor::DType::F32);
    let mut path = Vec::new();
    let mut bad = None;
    let mut record = |x: &Tensor<B, 2>| match to_f32_vec(x.clone()) {
        Ok(v) => path.push(v),
        Err(e) => bad = Some(e),
    };
    let x100 = match model {
        Trained::Field(field) => {
            integrate(field, start(), 0.0, 1.0, 10, Solver::Euler, |_, x| {
                record(x)
            })?;
            integrate(field, start(), 0.0, 1.0, 100, Solver::Euler, |_, _| {})?.0
        }
        Trained::Nsgfpp(run) => {
            let nsf_steps = |nfe: usize| {
                let t = run.config.nsgf.steps;
                nfe.checked_sub(t + 1).filter(|&k| k > 0).ok_or_else(|| {
                    NsgfError::Param(format!(
                        "NSGF++ with T = {t} NSGF steps cannot sample with {nfe} evaluations"
                    ))
                })
            };
            let k10 = NsfSchedule::Steps(nsf_steps(10)?);
            sample_from(run, start(), Some(k10), |x| record(x))?;
            let k100 = NsfSchedule::Steps(nsf_steps(100)?);
            sample_from(run, start(), Some(k100), |_| {})?.x
        }
        Trained::Steps(runs) => {
            runs[0].push(start(), |x| record(x));
            runs[1].push(start(), |_| {})
        }
        // One call; the path shows the generator at the end of each phase (same latents).
        Trained::Sjko(run) => run.phases(start(), s, |x| record(x)),
    };
    if let Some(e) = bad {
        return Err(e);
    }
    Ok((path, to_f32_vec(x100)?))
}

fn points(v: &[f32]) -> crate::io::npy::Points {
    crate::io::npy::Points {
        n: v.len() / 2,
        d: 2,
        data: v.iter().map(|&x| x as f64).collect(),
    }
}

/// A model's scores on the test draws `0..draws` (paper E.1 protocol on each draw).
struct Scores {
    w2_10: Vec<f64>,
    w2_100: Vec<f64>,
    curve_10: Vec<f64>,
}

/// Evaluates a trained model on the test draws `0..draws`: W2 after 10 and 100 evaluations on
/// every draw, and the W2-after-each-step curve averaged over the first [`CURVE_DRAWS`] draws.
/// The samples are drawn in order; the exact W2 problems (independent, single-threaded) run in
/// parallel.
fn evaluate_model<B: NnBackend>(
    model: &Trained<B>,
    problem: Problem,
    n: usize,
    draws: usize,
    dev: &B::Device,
) -> Result<Scores> {
    use rayon::prelude::*;
    // (draw, step or None for the 100-step state, samples)
    let mut jobs: Vec<(usize, Option<usize>, Vec<f32>)> = Vec::new();
    for d in 0..draws {
        let (path, x100) = sample_paths(model, problem, n, d as u64, dev)?;
        let steps = path.len();
        for (k, x) in path.into_iter().enumerate() {
            if d < CURVE_DRAWS || k + 1 == steps {
                jobs.push((d, Some(k), x));
            }
        }
        jobs.push((d, None, x100));
    }
    let tests: Vec<_> = (0..draws)
        .map(|d| eval_draws(problem, n, d as u64)[0].clone())
        .collect();
    let values = jobs
        .par_iter()
        .map(|(d, _, x)| w2(&points(x), &tests[*d]))
        .collect::<Result<Vec<_>>>()?;
    let mut w2_10 = vec![f64::NAN; draws];
    let mut w2_100 = vec![f64::NAN; draws];
    let mut curve: Vec<f64> = Vec::new();
    let curve_draws = draws.min(CURVE_DRAWS) as f64;
    let steps = jobs
        .iter()
        .filter_map(|(d, k, _)| (*d == 0).then_some(*k).flatten())
        .max()
        .map_or(0, |k| k + 1);
    for ((d, k, _), v) in jobs.iter().zip(values) {
        match k {
            None => w2_100[*d] = v,
            Some(k) => {
                if *k + 1 == steps {
                    w2_10[*d] = v;
                }
                if *d < CURVE_DRAWS {
                    curve.resize(steps, 0.0);
                    curve[*k] += v / curve_draws;
                }
            }
        }
    }
    Ok(Scores {
        w2_10,
        w2_100,
        curve_10: curve,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Paths of the work directory.
fn cell_dir(work: &Path, problem: Problem, method: Method, seed: u64) -> PathBuf {
    work.join(problem.to_string())
        .join(method.key())
        .join(format!("seed{seed}"))
}
const CELL_FILE: &str = "cell.json";

fn new_model<B: NnBackend>(dev: &B::Device) -> VelocityMlp<B> {
    MlpConfig::new(2).init(dev)
}

/// Trains one flow-matching cell; returns the model, final loss and seconds.
fn train_matcher<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    problem: Problem,
    method: Method,
    seed: u64,
    work: &Path,
    dev: &B::Device,
    show: bool,
) -> Result<(VelocityMlp<B::InnerBackend>, f64, f64)> {
    let t0 = Instant::now();
    let matcher = method
        .matcher(settings.sigma)
        .ok_or_else(|| NsgfError::Other("NSGF has no flow-matching objective".to_string()))?;
    // Once per (problem, method), not once per seed.
    if matcher.needs_gaussian_source() && problem.source() != Distribution::Gaussian && seed == 0 {
        tracing::warn!(
            %problem,
            "{} assumes an N(0, I) source; {problem}'s source is {} (trained anyway, as in the paper)",
            matcher.name(),
            problem.source().name()
        );
    }
    B::seed(dev, seed);
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(7));
    // k-RF, k ≥ 2: pairs from the (k−1)-RF model of the same seed.
    let coupling = match method {
        Method::Rf(k) if k >= 2 => {
            let prev = cell_dir(work, problem, Method::Rf(k - 1), seed).join(MODEL_FILE);
            let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
            let prev_model =
                load_model(new_model::<B::InnerBackend>(&inner), &prev).map_err(|e| {
                    NsgfError::Other(format!("{k}-RF needs the {}-RF model: {e}", k - 1))
                })?;
            let x0 = problem.source().sample(settings.reflow_pairs, &mut rng);
            Some(Coupling::from_flow(
                &prev_model,
                x0,
                2,
                settings.reflow_steps,
                Solver::Euler,
                &inner,
            )?)
        }
        _ => None,
    };
    let opt = OptimConfig {
        steps: settings.steps,
        batch: settings.batch,
        lr: settings.lr,
        lr_schedule: settings.lr_schedule,
        checkpoint_every: 0,
        threads: settings.threads,
        ..OptimConfig::default()
    };
    let mut optim = AdamConfig::new().init::<B, VelocityMlp<B>>();
    let pb = bar(
        settings.steps as u64,
        show,
        &format!(
            "{problem} {} seed {seed} {{bar:30}} {{pos}}/{{len}} loss {{msg}} {{per_sec}} eta {{eta}}",
            method.label()
        ),
    );
    let (model, _, fit) = fit_regression(
        new_model::<B>(dev),
        &mut optim,
        None,
        dev,
        0,
        &opt,
        |_| {
            let (x0, x1) = match &coupling {
                Some(c) => c.sample(settings.batch, &mut rng),
                None => (
                    problem.source().sample(settings.batch, &mut rng),
                    problem.target().sample(settings.batch, &mut rng),
                ),
            };
            matcher.sample(&x0, &x1, 2, &mut rng)
        },
        |_, _, _, _| Ok(()),
        &pb,
    )?;
    pb.finish_and_clear();
    if fit.steps < settings.steps && super::interrupt::requested() {
        return Err(NsgfError::Interrupted {
            step: fit.steps,
            dir: "(table cell, not cached)".into(),
        });
    }
    Ok((model.valid(), fit.final_loss, t0.elapsed().as_secs_f64()))
}

/// A config read for `problem` must be one of `problem`'s.
fn same_problem(found: Problem, problem: Problem, path: &Path) -> Result<()> {
    if found == problem {
        return Ok(());
    }
    Err(NsgfError::format(
        path,
        format!("is a config for {found}, expected {problem}"),
    ))
}

/// The table's budget on one network's optimiser: `steps` gradient steps at the table's batch,
/// learning rate and schedule, no intermediate checkpoints (a cell is cached when done).
fn table_budget(opt: &mut OptimConfig, settings: &Table1Settings, steps: usize) {
    opt.steps = steps;
    opt.batch = settings.batch;
    opt.lr = settings.lr;
    opt.lr_schedule = settings.lr_schedule;
    opt.checkpoint_every = 0;
}

/// Trains one NSGF cell from `configs/<problem>.toml` (seed and budget overridden).
fn train_nsgf_cell<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    problem: Problem,
    seed: u64,
    dir: &Path,
    dev: &B::Device,
    show: bool,
) -> Result<(VelocityMlp<B::InnerBackend>, f64, f64)> {
    let t0 = Instant::now();
    let path = settings.configs.join(format!("{problem}.toml"));
    let mut cfg = ToyConfig::load(&path)?;
    same_problem(cfg.problem, problem, &path)?;
    cfg.seed = seed;
    table_budget(&mut cfg.train, settings, settings.steps);
    let report = train_nsgf::<B>(&cfg, dir, dev, false, show)?;
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    let run = load_run::<B::InnerBackend>(dir, &inner)?;
    Ok((run.model, report.final_loss, t0.elapsed().as_secs_f64()))
}

fn train_nsgfpp_cell<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    problem: Problem,
    seed: u64,
    dir: &Path,
    dev: &B::Device,
    show: bool,
) -> Result<(Trained<B::InnerBackend>, f64, f64)> {
    let t0 = Instant::now();
    let path = nsgfpp_config_path(settings, problem);
    let mut cfg = NsgfppConfig::load(&path)?;
    same_problem(cfg.toy_problem()?, problem, &path)?;
    cfg.seed = seed;
    // The same budget per network as every other method (the time predictor: half of it).
    for (opt, steps) in [
        (&mut cfg.train, settings.steps),
        (&mut cfg.nsf.train, settings.steps),
        (&mut cfg.time.train, settings.steps.div_ceil(2)),
    ] {
        table_budget(opt, settings, steps);
        opt.threads = settings.threads;
    }
    let report = train_nsgfpp::<B>(&cfg, dir, dev, false, show)?;
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    let run = load_nsgfpp_run::<B::InnerBackend>(dir, &inner)?;
    Ok((
        Trained::Nsgfpp(Box::new(run)),
        report.nsf.final_loss,
        t0.elapsed().as_secs_f64(),
    ))
}

/// `configs/<method>/<problem>.toml` (JKO-Flow, EPT, S-JKO).
fn wgf_config_path(settings: &Table1Settings, method: Method, problem: Problem) -> PathBuf {
    settings
        .configs
        .join(method.key())
        .join(format!("{problem}.toml"))
}

/// Whether `dir` holds a (partial) run of exactly `cfg` (its `config.toml` equals `cfg`
/// serialised): the slow cells then resume from its checkpoint instead of starting again, so a
/// table run stopped in the middle of a cell loses nothing (resumed runs end with the same
/// weights as uninterrupted ones).
fn same_config<T: Serialize>(dir: &Path, cfg: &T) -> bool {
    let Ok(text) = toml::to_string_pretty(cfg) else {
        return false;
    };
    std::fs::read_to_string(dir.join(CONFIG_FILE)).is_ok_and(|saved| saved == text)
}

/// Trains a JKO-Flow / EPT cell: two runs from the problem's config (written for K = 10), with
/// K = 10 and K = 100 steps. EPT's step size `η` and its cap scale by 10/K (the same horizon);
/// JKO's `a` is the config's at every K (a JKO step from the data stays there, and a smaller `a`
/// stalls the map). The table's budget of gradient steps is split over the K steps (JKO-Flow:
/// `steps` map updates in all, with the config's critic updates per map update; EPT: `steps`
/// density-ratio updates in all).
fn train_wgf_cell<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    problem: Problem,
    method: Method,
    seed: u64,
    dir: &Path,
    dev: &B::Device,
    show: bool,
) -> Result<(Trained<B::InnerBackend>, f64, f64)> {
    let t0 = Instant::now();
    let path = wgf_config_path(settings, method, problem);
    let base = WgfConfig::load(&path)?;
    same_problem(base.problem, problem, &path)?;
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    let mut runs = Vec::new();
    for k in [10usize, 100] {
        let mut cfg = base.clone();
        cfg.seed = seed;
        cfg.steps = k;
        let scale = 10.0 / k as f64;
        let j = &mut cfg.jko;
        // JKO's step a is kept at every K: with a scaled by 10/K the proximity term pins the
        // map to the identity (8gaussians, KL, K = 100: W2 2.95 with a = 0.2, 1.29 with a = 2).
        j.a_halve_every = 0;
        j.lr_decay_every = 0;
        j.iterations = settings.steps.div_ceil(k * j.map_steps).max(1);
        let e = &mut cfg.ept;
        e.eta *= scale;
        e.max_step = e.max_step.map(|m| m * scale);
        e.updates = settings.steps.div_ceil(k).max(1);
        let sub = dir.join(format!("k{k}"));
        let resume = same_config(&sub, &cfg);
        train_wgf::<B>(&cfg, &sub, dev, resume, show)?;
        runs.push(load_wgf_run::<B::InnerBackend>(&sub, &inner)?);
    }
    let [k10, k100]: [WgfRun<B::InnerBackend>; 2] = runs
        .try_into()
        .map_err(|_| NsgfError::Other("two runs expected".into()))?;
    Ok((
        Trained::Steps(Box::new([k10, k100])),
        0.0, // no single regression loss: the runs' objectives are adversarial / ratio fits
        t0.elapsed().as_secs_f64(),
    ))
}

/// Trains an S-JKO cell from the problem's config: its `K` phases share the table's budget,
/// `steps` iterations in all (one potential and one generator step each), split evenly.
fn train_sjko_cell<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    problem: Problem,
    seed: u64,
    dir: &Path,
    dev: &B::Device,
    show: bool,
) -> Result<(Trained<B::InnerBackend>, f64, f64)> {
    let t0 = Instant::now();
    let path = wgf_config_path(settings, Method::Sjko, problem);
    let mut cfg = SjkoConfig::load(&path)?;
    same_problem(cfg.toy_problem()?, problem, &path)?;
    cfg.seed = seed;
    cfg.iterations = settings.steps.div_ceil(cfg.phases).max(1);
    cfg.init_iterations = None;
    let resume = same_config(dir, &cfg);
    let report = train_sjko::<B>(&cfg, dir, dev, resume, show)?;
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    Ok((
        Trained::Sjko(Box::new(load_sjko_run::<B::InnerBackend>(dir, &inner)?)),
        report.loss_g,
        t0.elapsed().as_secs_f64(),
    ))
}

fn nsgfpp_config_path(settings: &Table1Settings, problem: Problem) -> PathBuf {
    settings
        .configs
        .join("nsgfpp")
        .join(format!("{problem}.toml"))
}

/// The cache key of a cell: the table settings, plus a hash of the config file for NSGF (so
/// that editing `configs/<problem>.toml` recomputes the NSGF cells).
fn cell_key(settings: &Table1Settings, problem: Problem, method: Method) -> Result<String> {
    let mut key = settings.cell_key();
    let config = match method {
        Method::Nsgf => Some(settings.configs.join(format!("{problem}.toml"))),
        Method::Nsgfpp => Some(nsgfpp_config_path(settings, problem)),
        Method::Jko | Method::Ept | Method::Sjko => {
            Some(wgf_config_path(settings, method, problem))
        }
        _ => None,
    };
    if let Some(path) = config {
        let text = std::fs::read(&path).map_err(|e| NsgfError::io(&path, e))?;
        key += &format!(" config_fnv={}", crate::io::fnv1a_hex(&text));
    }
    Ok(key)
}

/// Trains (or loads from the cache) and evaluates one cell.
fn run_cell<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    problem: Problem,
    method: Method,
    seed: u64,
    work: &Path,
    dev: &B::Device,
    show: bool,
) -> Result<Cell> {
    let dir = cell_dir(work, problem, method, seed);
    let cell_path = dir.join(CELL_FILE);
    let key = cell_key(settings, problem, method)?;
    let inner = <B::InnerBackend as burn::tensor::backend::BackendTypes>::Device::default();
    let n = settings.n_eval;
    let draws = settings.eval_draws;
    let finish = |model: &Trained<B::InnerBackend>, final_loss: f64, train_seconds: f64| {
        // JSON has no NaN: a run that logged no loss records 0.
        let final_loss = if final_loss.is_finite() {
            final_loss
        } else {
            0.0
        };
        let scores = evaluate_model(model, problem, n, draws, &inner)?;
        let cell = Cell {
            problem: problem.to_string(),
            method: method.key(),
            seed,
            w2_10: mean(&scores.w2_10),
            w2_100: mean(&scores.w2_100),
            w2_10_draws: scores.w2_10,
            w2_100_draws: scores.w2_100,
            curve_10: scores.curve_10,
            final_loss,
            train_seconds,
            settings: key.clone(),
            revision: method.revision(),
        };
        let json = serde_json::to_vec_pretty(&cell).map_err(|e| NsgfError::Other(e.to_string()))?;
        write_atomic(&cell_path, &json)?;
        Ok(cell)
    };
    if let Ok(text) = std::fs::read(&cell_path) {
        match serde_json::from_slice::<Cell>(&text) {
            Ok(cell) if cell.revision != method.revision() => {
                tracing::info!(
                    path = %cell_path.display(),
                    "cached cell trained by revision {} of the {} code (now {}): retraining from scratch",
                    cell.revision,
                    method.label(),
                    method.revision()
                );
                std::fs::remove_dir_all(&dir).map_err(|e| NsgfError::io(&dir, e))?;
            }
            Ok(cell) if cell.settings == key && model_file(method, &dir).exists() => {
                if cell.w2_10_draws.len() == draws && cell.w2_100_draws.len() == draws {
                    return Ok(cell);
                }
                // Trained with these settings, scored on other test draws: score it again.
                let model = load_trained::<B::InnerBackend>(method, &dir, &inner)?;
                return finish(&model, cell.final_loss, cell.train_seconds);
            }
            Ok(_) => {
                tracing::info!(path = %cell_path.display(), "cached cell made with other settings, recomputing")
            }
            Err(_) => {
                tracing::warn!(path = %cell_path.display(), "unreadable cached cell, recomputing")
            }
        }
    }
    crate::io::create_dir_all(&dir)?;
    let (model, final_loss, train_seconds) = match method {
        Method::Nsgf => {
            let (m, l, t) = train_nsgf_cell::<B>(settings, problem, seed, &dir, dev, show)?;
            (Trained::Field(m), l, t)
        }
        Method::Nsgfpp => train_nsgfpp_cell::<B>(settings, problem, seed, &dir, dev, show)?,
        Method::Jko | Method::Ept => {
            train_wgf_cell::<B>(settings, problem, method, seed, &dir, dev, show)?
        }
        Method::Sjko => train_sjko_cell::<B>(settings, problem, seed, &dir, dev, show)?,
        _ => {
            let (m, l, t) = train_matcher::<B>(settings, problem, method, seed, work, dev, show)?;
            save_model(&m, &dir.join(MODEL_FILE))?;
            (Trained::Field(m), l, t)
        }
    };
    finish(&model, final_loss, train_seconds)
}

/// One aggregated entry of the table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub problem: String,
    pub method: String,
    pub label: String,
    pub w2_10: MeanStd,
    pub w2_100: MeanStd,
    pub paper: Option<(f64, f64)>,
    /// Mean W2 after each of the 10 steps.
    pub curve_10: Vec<f64>,
    pub train_seconds: MeanStd,
}

/// NSGF or NSGF++ against another method on one problem, paired by training seed and test draw.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Paired {
    pub problem: String,
    /// The reference method (`nsgf` or `nsgfpp`) and the one it is compared with.
    pub method: String,
    pub other: String,
    /// Network evaluations (10 or 100).
    pub steps: usize,
    /// Over training seeds `s`: `W2(method, s) − W2(other, s)`, each W2 the mean over the shared
    /// test draws; negative means `method` is lower.
    pub diff: MeanStd,
    /// Training seeds on which `method` is lower, of `seeds`.
    pub seeds_lower: usize,
    pub seeds: usize,
    /// (seed, test draw) pairs on which `method` is lower, of `pairs`.
    pub pairs_lower: usize,
    pub pairs: usize,
}

/// Compares `a` with `b` seed by seed (cells in seed order) after `steps` evaluations.
fn paired(problem: Problem, a: (Method, &[Cell]), b: (Method, &[Cell]), steps: usize) -> Paired {
    let pick = |c: &Cell| {
        if steps == 10 {
            (c.w2_10, c.w2_10_draws.clone())
        } else {
            (c.w2_100, c.w2_100_draws.clone())
        }
    };
    let mut diffs = Vec::new();
    let (mut pairs, mut pairs_lower) = (0, 0);
    for (ca, cb) in a.1.iter().zip(b.1) {
        let ((ma, da), (mb, db)) = (pick(ca), pick(cb));
        diffs.push(ma - mb);
        for (x, y) in da.iter().zip(&db) {
            pairs += 1;
            pairs_lower += usize::from(x < y);
        }
    }
    Paired {
        problem: problem.to_string(),
        method: a.0.key(),
        other: b.0.key(),
        steps,
        diff: MeanStd::of(&diffs),
        seeds_lower: diffs.iter().filter(|&&d| d < 0.0).count(),
        seeds: diffs.len(),
        pairs_lower,
        pairs,
    }
}

/// The whole table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table1 {
    pub settings: Table1Settings,
    pub entries: Vec<Entry>,
    /// Two-sample floor W2(fresh target draw, test) per problem, over the test draws.
    pub floor: Vec<(String, MeanStd)>,
    /// NSGF and NSGF++ against every other method, per problem and column.
    #[serde(default)]
    pub paired: Vec<Paired>,
    pub seconds: f64,
}

/// The methods in the order their cells are trained: k-RF needs (k−1)-RF first, so the
/// missing lower stages come too, before it.
fn training_order(methods: &[Method]) -> Vec<Method> {
    let mut order: Vec<Method> = Vec::new();
    for &m in methods {
        if let Method::Rf(k) = m {
            for j in 1..k {
                if !order.contains(&Method::Rf(j)) {
                    order.push(Method::Rf(j));
                }
            }
        }
        if !order.contains(&m) {
            order.push(m);
        }
    }
    order
}

fn cells_bar(
    settings: &Table1Settings,
    problems: usize,
    methods: usize,
    show: bool,
) -> indicatif::ProgressBar {
    bar(
        (problems * methods * settings.seeds) as u64,
        show,
        "table1 {bar:30} {pos}/{len} cells {elapsed_precise} eta {eta}",
    )
}

/// Trains and evaluates every cell into its cache under `work` and stops there: no table, no
/// figures (what `nsgf bench table1 --jobs N` asks of each child; the parent then reads the
/// cached cells and writes the table once).
pub fn train_cells<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    work: &Path,
    dev: &B::Device,
    show: bool,
) -> Result<()> {
    let (problems, methods) = settings.parse()?;
    let order = training_order(&methods);
    let overall = cells_bar(settings, problems.len(), order.len(), show);
    for &problem in &problems {
        for &method in &order {
            for s in 0..settings.seeds as u64 {
                run_cell::<B>(settings, problem, method, s, work, dev, show)?;
                overall.inc(1);
            }
        }
    }
    overall.finish_and_clear();
    Ok(())
}

/// Trains and evaluates every cell (cached under `work`), then writes `table1.md`,
/// `table1.json`, `paths_<problem>.png` and `w2_curve_<problem>.png` into `out`.
pub fn run_table1<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    work: &Path,
    out: &Path,
    dev: &B::Device,
    show: bool,
) -> Result<Table1> {
    run_table1_since::<B>(settings, work, out, dev, show, Instant::now())
}

/// [`run_table1`] for an invocation that started at `t0` (the table's wall time counts from
/// there: e.g. from before other processes trained its cells into `work`).
pub fn run_table1_since<B: NnAutodiffBackend>(
    settings: &Table1Settings,
    work: &Path,
    out: &Path,
    dev: &B::Device,
    show: bool,
    t0: Instant,
) -> Result<Table1> {
    let (problems, methods) = settings.parse()?;
    let order = training_order(&methods);
    let overall = cells_bar(settings, problems.len(), order.len(), show);
    let mut entries = Vec::new();
    let mut floor = Vec::new();
    let mut pairs = Vec::new();
    for &problem in &problems {
        let n = settings.n_eval;
        let f = {
            use rayon::prelude::*;
            (0..settings.eval_draws as u64)
                .into_par_iter()
                .map(|d| {
                    let [test, _, fresh] = eval_draws(problem, n, d);
                    w2(&fresh, &test)
                })
                .collect::<Result<Vec<_>>>()?
        };
        floor.push((problem.to_string(), MeanStd::of(&f)));
        let mut scored: Vec<(Method, Vec<Cell>)> = Vec::new();
        for &method in &order {
            let mut cells = Vec::new();
            for s in 0..settings.seeds as u64 {
                cells.push(run_cell::<B>(
                    settings, problem, method, s, work, dev, show,
                )?);
                overall.inc(1);
            }
            if !methods.contains(&method) {
                continue;
            }
            let pick =
                |f: &dyn Fn(&Cell) -> f64| MeanStd::of(&cells.iter().map(f).collect::<Vec<_>>());
            let len = cells.iter().map(|c| c.curve_10.len()).min().unwrap_or(0);
            entries.push(Entry {
                problem: problem.to_string(),
                method: method.key(),
                label: method.label(),
                w2_10: pick(&|c| c.w2_10),
                w2_100: pick(&|c| c.w2_100),
                paper: method.paper(problem),
                curve_10: (0..len)
                    .map(|k| cells.iter().map(|c| c.curve_10[k]).sum::<f64>() / cells.len() as f64)
                    .collect(),
                train_seconds: pick(&|c| c.train_seconds),
            });
            scored.push((method, cells));
        }
        for (m, cells) in scored
            .iter()
            .filter(|(m, _)| matches!(m, Method::Nsgf | Method::Nsgfpp))
        {
            for (o, other) in scored.iter().filter(|(o, _)| o != m) {
                for steps in [10, 100] {
                    pairs.push(paired(problem, (*m, cells), (*o, other), steps));
                }
            }
        }
        figures::<B::InnerBackend>(problem, &methods, settings, work, out, &floor)?;
    }
    overall.finish_and_clear();
    let table = Table1 {
        settings: settings.clone(),
        entries,
        floor,
        paired: pairs,
        seconds: t0.elapsed().as_secs_f64(),
    };
    crate::io::create_dir_all(out)?;
    write_atomic(&out.join("table1.md"), markdown(&table).as_bytes())?;
    let json = serde_json::to_vec_pretty(&table).map_err(|e| NsgfError::Other(e.to_string()))?;
    write_atomic(&out.join("table1.json"), &json)?;
    Ok(table)
}

/// Path panels (seed-0 models, 10 Euler steps) and W2-vs-step curves of one problem.
fn figures<B: NnBackend>(
    problem: Problem,
    methods: &[Method],
    settings: &Table1Settings,
    work: &Path,
    out: &Path,
    floor: &[(String, MeanStd)],
) -> Result<()> {
    let dev = B::Device::default();
    let n = settings.n_eval;
    let mut panels = Vec::new();
    let mut curves = Vec::new();
    for &m in methods {
        let dir = cell_dir(work, problem, m, 0);
        let model = load_trained::<B>(m, &dir, &dev)?;
        let (path, _) = sample_paths(&model, problem, n, 0, &dev)?;
        panels.push((m.label(), path));
        let mut mean = Vec::new();
        for s in 0..settings.seeds as u64 {
            let p = cell_dir(work, problem, m, s).join(CELL_FILE);
            let text = std::fs::read(&p).map_err(|e| NsgfError::io(&p, e))?;
            let cell: Cell =
                serde_json::from_slice(&text).map_err(|e| NsgfError::format(&p, e.to_string()))?;
            mean.resize(cell.curve_10.len(), 0.0);
            for (a, v) in mean.iter_mut().zip(&cell.curve_10) {
                *a += v / settings.seeds as f64;
            }
        }
        curves.push((m.label(), mean.into_iter().enumerate().collect()));
    }
    let test = &eval_draws(problem, n, 0)[0];
    let target: Vec<f32> = test.data.iter().map(|&v| v as f32).collect();
    trajectory_panels(&out.join(format!("paths_{problem}.png")), &panels, &target)?;
    let fl = floor
        .iter()
        .find(|(p, _)| *p == problem.to_string())
        .map(|(_, f)| f.mean);
    w2_curve(
        &out.join(format!("w2_curve_{problem}.png")),
        &curves,
        fl,
        &format!("{problem}: W2 after each of 10 network evaluations (mean over seeds)"),
    )
}

/// `table1.md`: W2 at 10 and 100 steps per method and problem (ours mean ± std, the paper's
/// value in brackets), the floor row, and the paper's comparative claim tested.
pub fn markdown(t: &Table1) -> String {
    let problems: Vec<String> = t.floor.iter().map(|(p, _)| p.clone()).collect();
    let mut labels: Vec<(String, String)> = Vec::new();
    for e in &t.entries {
        if !labels.iter().any(|(k, _)| *k == e.method) {
            labels.push((e.method.clone(), e.label.clone()));
        }
    }
    let find = |p: &str, m: &str| t.entries.iter().find(|e| e.problem == p && e.method == m);
    let mut s = String::new();
    s += &format!(
        "# Table 1 (2-D): exact W2, {} generated vs {} test samples; each model scored on the same {} \
test draws (its W2: the mean over them); mean ± std over {} training seeds\n\n",
        t.settings.n_eval, t.settings.n_eval, t.settings.eval_draws, t.settings.seeds
    );
    s += &format!(
        "Budget per model: {} Adam steps (lr {}, {:?} schedule), batch {}, MLP 3×256; σ = {} (FM, I-CFM, OT-CFM, SI); \
k-RF couplings: {} pairs by {} Euler steps of the previous model. In brackets: the paper's value. \
Training time of the listed cells (pool / coupling + training, summed over seeds): {:.1} min; \
wall time of the invocation that wrote this file (cached cells cost nothing): {:.1} min.\n\n",
        t.settings.steps,
        t.settings.lr,
        t.settings.lr_schedule,
        t.settings.batch,
        t.settings.sigma,
        t.settings.reflow_pairs,
        t.settings.reflow_steps,
        t.entries
            .iter()
            .map(|e| e.train_seconds.mean * t.settings.seeds as f64)
            .sum::<f64>()
            / 60.0,
        t.seconds / 60.0
    );
    for (col, title) in [(0usize, "10 Euler steps"), (1, "100 Euler steps")] {
        s += &format!("## {title}\n\n| method |");
        for p in &problems {
            s += &format!(" {p} |");
        }
        s += "\n|---|";
        s += &"---:|".repeat(problems.len());
        s += "\n";
        for (key, label) in &labels {
            s += &format!("| {label} |");
            for p in &problems {
                match find(p, key) {
                    Some(e) => {
                        let v = if col == 0 { e.w2_10 } else { e.w2_100 };
                        let paper = e
                            .paper
                            .map(|(a, b)| format!(" ({:.3})", if col == 0 { a } else { b }))
                            .unwrap_or_default();
                        s += &format!(" {v}{paper} |");
                    }
                    None => s += " - |",
                }
            }
            s += "\n";
        }
        s += "| *two-sample floor* |";
        for (_, f) in &t.floor {
            s += &format!(" {f} |");
        }
        s += "\n\n";
    }
    if labels.iter().any(|(k, _)| k == "sjko") {
        s += "S-JKO samples in one generator call (NFE = 1): its row is the same model in both \
columns; its W2-after-each-step curve is the generator at the end of each of its phases.\n\n";
    }
    // The paper's claim: NSGF at 10 steps beats every baseline of the paper's Table 1 (the rows
    // with a paper value: JKO-Flow, EPT, OT-CFM, k-RF, SI, FM) at 10 steps.
    let baselines: Vec<&(String, String)> = labels
        .iter()
        .filter(|(k, _)| {
            k != "nsgf"
                && t.entries
                    .iter()
                    .any(|e| e.method == *k && e.paper.is_some())
        })
        .collect();
    if labels.iter().any(|(k, _)| k == "nsgf") && !baselines.is_empty() {
        let mut wins = Vec::new();
        for p in &problems {
            let Some(nsgf) = find(p, "nsgf") else {
                continue;
            };
            let best = baselines
                .iter()
                .filter_map(|(k, l)| find(p, k).map(|e| (e.w2_10.mean, l.clone())))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((b, label)) = best {
                let win = nsgf.w2_10.mean < b;
                wins.push(win);
                s += &format!(
                    "- {p}: NSGF {:.3} vs best baseline {label} {b:.3} at 10 steps → {}\n",
                    nsgf.w2_10.mean,
                    if win { "NSGF lower" } else { "NSGF not lower" }
                );
            }
        }
        let k = wins.iter().filter(|w| **w).count();
        s += &format!(
            "\n**Paper's claim (NSGF at 10 steps below every baseline of its Table 1 on ≥ 4 of 5 problems; \
the baselines run here): NSGF is lower on {k} of {} problems here — {}.**\n",
            wins.len(),
            if k >= 4 && wins.len() == 5 {
                "the claim holds"
            } else if wins.len() < 5 {
                "not all five problems were run"
            } else {
                "the claim does not hold"
            }
        );
    }
    s += &paired_markdown(t, &problems, &labels);
    s
}

/// The paired comparisons: per reference method and column, `mean ± std` over training seeds of
/// the per-seed difference, then `k/n` seeds lower and the share of (seed, draw) pairs lower.
fn paired_markdown(t: &Table1, problems: &[String], labels: &[(String, String)]) -> String {
    let mut s = String::new();
    let label = |k: &str| {
        labels
            .iter()
            .find(|(key, _)| key == k)
            .map_or(k.to_string(), |(_, l)| l.clone())
    };
    for reference in ["nsgf", "nsgfpp"] {
        if !t.paired.iter().any(|p| p.method == reference) {
            continue;
        }
        for steps in [10, 100] {
            s += &format!(
                "\n## Paired: {} − other at {steps} steps\n\nPer training seed: W2({0}) − W2(other), both the \
mean over the same {} test draws; mean ± std over seeds (negative: {0} lower), then the seeds on which {0} \
is lower and the share of (seed, test draw) pairs on which it is lower.\n\n| vs |",
                label(reference),
                t.settings.eval_draws
            );
            for p in problems {
                s += &format!(" {p} |");
            }
            s += "\n|---|";
            s += &"---:|".repeat(problems.len());
            s += "\n";
            let others: Vec<&str> = labels
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| *k != reference)
                .collect();
            for other in others {
                s += &format!("| {} |", label(other));
                for p in problems {
                    match t.paired.iter().find(|c| {
                        c.method == reference
                            && c.other == other
                            && c.steps == steps
                            && c.problem == *p
                    }) {
                        Some(c) => {
                            s += &format!(
                                " {:+.3} ± {:.3} ({}/{}, {:.0} %) |",
                                c.diff.mean,
                                c.diff.std,
                                c.seeds_lower,
                                c.seeds,
                                100.0 * c.pairs_lower as f64 / c.pairs.max(1) as f64
                            )
                        }
                        None => s += " - |",
                    }
                }
                s += "\n";
            }
        }
    }
    s
}
