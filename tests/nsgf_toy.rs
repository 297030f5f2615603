//! NSGF end to end on a tiny 2-D configuration (seconds on CPU): training cuts W2 by a large
//! factor, checkpoints round-trip, resume continues, bad input is a clear error.

use burn::tensor::{DType, Tensor, TensorData};
use nsgf::backend::{Cpu, CpuAutodiff};
use nsgf::convert::{tensor_to_points, to_f64_vec};
use nsgf::data::toy2d::sample_points;
use nsgf::flows::nsgf::{minibatch_flow, NsgfConfig};
use nsgf::flows::samplers::Solver;
use nsgf::ot::emd::w2;
use nsgf::ot::sinkhorn::{OtProblem, SinkhornConfig};
use nsgf::train::config::ToyConfig;
use nsgf::train::nsgf::{load_run, sample, train};
use rand::SeedableRng;
use std::path::Path;

fn tiny_config() -> ToyConfig {
    ToyConfig::from_toml(
        r#"
problem = "8gaussians"
seed = 3
[nsgf]
steps = 5
eta = 0.8
batch = 128
[nsgf.sinkhorn]
blur = 0.1
scaling = 0.7
[pool]
batches = 12
[train]
steps = 600
batch = 128
lr = 2e-3
checkpoint_every = 300
[model]
hidden = 64
layers = 2
"#,
        Path::new("tiny.toml"),
    )
    .unwrap()
}

#[test]
fn euler_step_of_the_flow_is_x_plus_eta_v() {
    let dev = Default::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let x = sample_points(nsgf::data::toy2d::Distribution::Gaussian, 64, &mut rng);
    let y = sample_points(nsgf::data::toy2d::Distribution::Moons, 64, &mut rng);
    let t = |p: &nsgf::io::Points| {
        Tensor::<Cpu, 2>::from_data(
            TensorData::new(p.data.clone(), [p.n, p.d]),
            (&dev, DType::F64),
        )
    };
    let cfg = NsgfConfig {
        steps: 2,
        eta: 0.3,
        batch: 64,
        sinkhorn: SinkhornConfig::new(0.1, 0.7),
    };
    let (steps, last) = minibatch_flow(t(&x), t(&y), &cfg).unwrap();
    assert_eq!(steps.len(), 2);
    let v0 = OtProblem::uniform(t(&x), t(&y))
        .unwrap()
        .solve(&cfg.sinkhorn)
        .unwrap()
        .velocity();
    let x1 = to_f64_vec(t(&x) + v0.mul_scalar(0.3)).unwrap();
    assert_eq!(to_f64_vec(steps[1].x.clone()).unwrap(), x1);
    let x2 = to_f64_vec(steps[1].x.clone() + steps[1].v.clone().mul_scalar(0.3)).unwrap();
    assert_eq!(to_f64_vec(last).unwrap(), x2);
}

#[test]
fn tiny_run_trains_samples_checkpoints_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut cfg = tiny_config();
    let dev = Default::default();
    let report = train::<CpuAutodiff>(&cfg, &run_dir, &dev, false, false).unwrap();
    assert_eq!(report.steps, 600);
    assert_eq!(report.pool_samples, 12 * 5 * 128);
    assert_eq!(report.pool_bytes, 12 * 5 * 128 * 5 * 4);

    // W2 to a test set: trained samples vs the untrained source.
    let run = load_run::<Cpu>(&run_dir, &dev).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(77);
    let test = sample_points(cfg.problem.target(), 512, &mut rng);
    let source = sample_points(cfg.problem.source(), 512, &mut rng);
    let (x, _, nfe) = sample(&run, 512, 5, Solver::Euler, 1, &dev).unwrap();
    assert_eq!(nfe, 5);
    let w_model = w2(&tensor_to_points(x.clone()).unwrap(), &test).unwrap();
    let w_source = w2(&source, &test).unwrap();
    assert!(
        w_model < w_source / 3.0,
        "W2 model {w_model} vs source {w_source}"
    );

    // Reloading the checkpoint gives identical samples for a fixed seed.
    let again = load_run::<Cpu>(&run_dir, &dev).unwrap();
    let (y, _, _) = sample(&again, 512, 5, Solver::Euler, 1, &dev).unwrap();
    assert_eq!(to_f64_vec(x).unwrap(), to_f64_vec(y).unwrap());

    // Resume continues the step count.
    cfg.train.steps = 700;
    let report = train::<CpuAutodiff>(&cfg, &run_dir, &dev, true, false).unwrap();
    assert_eq!(report.steps, 700);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 700);

    // A truncated checkpoint is a clear error naming the file.
    let model = run_dir.join("model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_run::<Cpu>(&run_dir, &dev).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // A missing one too.
    std::fs::remove_file(&model).unwrap();
    let err = load_run::<Cpu>(&run_dir, &dev).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn diverging_training_stops_with_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config();
    cfg.pool.batches = 1;
    cfg.train.lr = 1e12;
    cfg.train.steps = 200;
    let err = train::<CpuAutodiff>(&cfg, dir.path(), &Default::default(), false, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at step"), "{err}");
}
