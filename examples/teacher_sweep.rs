//! How close does the raw minibatch Sinkhorn flow (NSGF's teacher, Algorithm 1's inner loop) get
//! to the target? Flows `batch`-sized source minibatches for `T` steps of size `η` against target
//! minibatches and prints the exact W2 between 1024 flowed particles and 1024 test samples (mean
//! over 3 seeds), next to the two-sample floor W2(fresh target draw, test).
//!
//! ```sh
//! cargo run --release --example teacher_sweep -- PROBLEM ETA T BLUR [BATCH=256] [SCALING=0.7]
//! cargo run --release --example teacher_sweep -- moons 0.3 10 0.05 256 0.95
//! ```
//! Also printed (stderr, seed 0, first minibatch): W2 between the flowed minibatch and its own
//! target minibatch, which a converged flow drives to 0. results/toy2d/README.md lists a sweep.

use anyhow::{bail, Context, Result};
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use nsgf::data::toy2d::{sample_points, Problem};
use nsgf::flows::nsgf::{minibatch_flow, NsgfConfig};
use nsgf::io::npy::Points;
use nsgf::ot::emd::w2;
use nsgf::ot::sinkhorn::SinkhornConfig;
use rand::SeedableRng;

type B = Flex;

fn tensor(p: &Points) -> Tensor<B, 2> {
    let v: Vec<f32> = p.data.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [p.n, p.d]), &Default::default())
}

fn points(t: Tensor<B, 2>) -> Result<Points> {
    let [n, d] = t.dims();
    let data = t
        .into_data()
        .into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(Points {
        n,
        d,
        data: data.into_iter().map(f64::from).collect(),
    })
}

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
    let (mut teacher, mut floor) = (0.0, 0.0);
    for seed in 0..3u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 100);
        let test = sample_points(problem.target(), 1024, &mut rng);
        let fresh = sample_points(problem.target(), 1024, &mut rng);
        let mut flowed = Vec::with_capacity(2048);
        while flowed.len() < 2048 {
            let x0 = sample_points(problem.source(), batch, &mut rng);
            let y = sample_points(problem.target(), batch, &mut rng);
            let (_, xt) = minibatch_flow(tensor(&x0), tensor(&y), &cfg)?;
            let xt = points(xt)?;
            if seed == 0 && flowed.is_empty() {
                eprintln!(
                    "first minibatch: W2(x_0, y) = {:.3}, W2(x_T, y) = {:.3}",
                    w2(&x0, &y)?,
                    w2(&xt, &y)?
                );
            }
            flowed.extend(xt.data);
        }
        flowed.truncate(2048);
        let flowed = Points {
            n: 1024,
            d: 2,
            data: flowed,
        };
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
