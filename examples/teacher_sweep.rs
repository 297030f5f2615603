//! How close does the raw minibatch Sinkhorn flow (NSGF's teacher, Algorithm 1's inner loop) get
//! to the target? Flows `batch`-sized source minibatches for `T` steps of size `η` against target
//! minibatches and prints the exact W2 between 1024 flowed particles and 1024 test samples (mean
//! over 3 seeds), next to the two-sample floor W2(fresh target draw, test).
//!
//! ```sh
//! cargo run --release --example teacher_sweep -- PROBLEM ETA T BLUR [BATCH=256] [SCALING=0.7]
//! cargo run --release --example teacher_sweep -- moons 0.3 10 0.05 256 0.95
//! ```
//! Also printed (stderr, one minibatch): W2 between the flowed minibatch and its own
//! target minibatch, which a converged flow drives to 0. results/toy2d/README.md lists a sweep.

use anyhow::{bail, Context, Result};
use burn::backend::Flex;
use burn::tensor::DType;
use nsgf::convert::{points_to_tensor, tensor_to_points};
use nsgf::data::toy2d::{sample_points, Problem};
use nsgf::flows::nsgf::{minibatch_flow, NsgfConfig};
use nsgf::io::npy::Points;
use nsgf::ot::emd::w2;
use nsgf::ot::sinkhorn::SinkhornConfig;
use nsgf::train::toy_eval::flow_samples;
use rand::SeedableRng;

type B = Flex;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        bail!("usage: teacher_sweep PROBLEM ETA T BLUR [BATCH=256] [SCALING=0.7]");
    }
    let problem: Problem = args[0].parse()?;
    let eta: f64 = args[1].parse().context("ETA")?;
    let steps: usize = args[2].parse().context("T")?;
    let blur: f64 = args[3].parse().context("BLUR")?;
    let batch: usize = args
        .get(4)
        .map_or(Ok(256), |s| s.parse())
        .context("BATCH")?;
    let scaling: f64 = args
        .get(5)
        .map_or(Ok(0.7), |s| s.parse())
        .context("SCALING")?;
    let cfg = NsgfConfig {
        steps,
        eta,
        batch,
        sinkhorn: SinkhornConfig {
            blur,
            scaling,
            ..Default::default()
        },
    };
    cfg.validate()?;
    let dev = Default::default();
    // One minibatch against its own targets (its own random stream).
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let x0 = sample_points(problem.source(), batch, &mut rng);
    let y = sample_points(problem.target(), batch, &mut rng);
    let tensor = |p: &Points| points_to_tensor::<B>(p, &dev, DType::F32);
    let (_, xt) = minibatch_flow(tensor(&x0), tensor(&y), &cfg)?;
    eprintln!(
        "one minibatch: W2(x_0, y) = {:.3}, W2(x_T, y) = {:.3}",
        w2(&x0, &y)?,
        w2(&tensor_to_points(xt)?, &y)?
    );
    let (mut teacher, mut floor) = (0.0, 0.0);
    for seed in 0..3u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 100);
        let test = sample_points(problem.target(), 1024, &mut rng);
        let fresh = sample_points(problem.target(), 1024, &mut rng);
        let flowed = flow_samples::<B>(problem, &cfg, 1024, &mut rng, &dev)?;
        teacher += w2(&flowed, &test)? / 3.0;
        floor += w2(&fresh, &test)? / 3.0;
    }
    println!(
        "{problem} eta={eta} T={steps} blur={blur} batch={batch} scaling={scaling}: \
         teacher W2 {teacher:.3}, floor {floor:.3}, ratio {:.2}",
        teacher / floor
    );
    Ok(())
}
