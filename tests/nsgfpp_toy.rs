//! NSGF++ end to end on a tiny 2-D configuration (Algorithm 3 trains the three networks,
//! Algorithm 4 samples): W2 falls far below the source's, the NFE is T + 1 + NSF steps, a
//! resumed run equals an uninterrupted one, bad configs are clear errors.

mod common;

use common::files_of;
use nsgf::backend::{Cpu, CpuAutodiff};
use nsgf::convert::{tensor_to_points, to_f64_vec};
use nsgf::data::toy2d::sample_points;
use nsgf::flows::nsgfpp::NsfSchedule;
use nsgf::ot::emd::w2;
use nsgf::train::nsgfpp::{load_run, sample, train, NsgfppConfig};
use rand::SeedableRng;
use std::path::Path;

const TINY: &str = r#"
method = "nsgfpp"
problem = "8gaussians"
seed = 3
[nsgf]
steps = 3
eta = 1.0
batch = 128
[nsgf.sinkhorn]
blur = 0.1
scaling = 0.8
[pool]
batches = 10
[train]
steps = 400
batch = 128
lr = 2e-3
[model]
hidden = 64
layers = 2
[nsf.model]
hidden = 64
layers = 2
[nsf.train]
steps = 400
batch = 128
lr = 2e-3
checkpoint_every = 200
[time.model]
hidden = 64
layers = 2
[time.train]
steps = 300
batch = 128
lr = 2e-3
[sampling]
nsf_steps = 4
"#;

fn tiny() -> NsgfppConfig {
    NsgfppConfig::from_toml(TINY, Path::new("tiny.toml")).unwrap()
}

#[test]
fn tiny_nsgfpp_trains_samples_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let cfg = tiny();
    let dev = Default::default();
    let report = train::<CpuAutodiff>(&cfg, &run_dir, &dev, false, false).unwrap();
    assert_eq!(
        (report.nsgf.steps, report.nsf.steps, report.time.steps),
        (400, 400, 300)
    );
    // The time predictor beats the constant 1/2 (whose loss is Var U(0,1) = 1/12).
    assert!(
        report.time.final_loss < 0.5 / 12.0,
        "t_phi loss {}",
        report.time.final_loss
    );

    let run = load_run::<Cpu>(&run_dir, &dev).unwrap();
    let out = sample(&run, 512, None, 1, &dev).unwrap();
    assert_eq!(out.nfe, 3 + 1 + 4);
    let t_hat = to_f64_vec(out.t_hat.clone()).unwrap();
    assert!(t_hat.iter().all(|t| (0.0..=1.0).contains(t)));
    let mut rng = rand::rngs::StdRng::seed_from_u64(77);
    let test = sample_points(cfg.problem.unwrap().target(), 512, &mut rng);
    let source = sample_points(cfg.problem.unwrap().source(), 512, &mut rng);
    let w_model = w2(&tensor_to_points(out.x.clone()).unwrap(), &test).unwrap();
    let w_source = w2(&source, &test).unwrap();
    assert!(
        w_model < w_source / 3.0,
        "W2 NSGF++ {w_model} vs source {w_source}"
    );
    // ω schedule: K = ⌈(1 − min t̂)/ω⌉.
    let t_min = t_hat.iter().cloned().fold(f64::INFINITY, f64::min);
    let omega = sample(&run, 512, Some(NsfSchedule::Omega(0.1)), 1, &dev).unwrap();
    assert_eq!(omega.nsf_steps, ((1.0 - t_min) / 0.1).ceil() as usize);

    // Resume: stop the NSGF field and the NSF after 200 steps (their checkpoints), continue to
    // 400: the same weights, bit for bit, as the uninterrupted run (the pool flows and every
    // batch are functions of the seed and the step; the checkpoint restores the Adam moments
    // onto their parameters).
    let dir2 = tempfile::tempdir().unwrap();
    let run2 = dir2.path().join("run");
    let mut half = cfg.clone();
    half.nsf.train.steps = 200;
    half.train.steps = 200;
    train::<CpuAutodiff>(&half, &run2, &dev, false, false).unwrap();
    let report = train::<CpuAutodiff>(&cfg, &run2, &dev, true, false).unwrap();
    assert_eq!((report.nsgf.steps, report.nsf.steps), (400, 400));
    for part in ["nsgf", "nsf"] {
        let a = std::fs::read(run_dir.join(part).join("model.safetensors")).unwrap();
        let b = std::fs::read(run2.join(part).join("model.safetensors")).unwrap();
        assert!(
            a == b,
            "the resumed {part} network differs from the uninterrupted one"
        );
    }
    // Resuming a finished run trains nothing and reports the mean losses it logged last.
    let again = train::<CpuAutodiff>(&cfg, &run2, &dev, true, false).unwrap();
    for (part, loss) in [
        ("nsgf", again.nsgf.final_loss),
        ("nsf", again.nsf.final_loss),
        ("time", again.time.final_loss),
    ] {
        let text = std::fs::read_to_string(run2.join(part).join("metrics.jsonl")).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(loss, last["mean_loss"].as_f64().unwrap(), "{part}");
        assert!(loss.abs() > 0.0, "{part}: {loss}");
    }
    // Resuming it under another NSF time range is refused before anything trains.
    let mut other = cfg.clone();
    other.nsf.t_min = 0.5;
    let before = files_of(&run2);
    let err = train::<CpuAutodiff>(&other, &run2, &dev, true, false).unwrap_err();
    assert!(err.to_string().contains("differs in nsf.t_min"), "{err}");
    let after = files_of(&run2);
    assert!(after == before, "a refused resume changed the run's files");
}

#[test]
fn bad_nsgfpp_configs_are_errors() {
    let too_long = TINY.replace("steps = 3\neta", "steps = 8\neta");
    let err = NsgfppConfig::from_toml(&too_long, Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("at most 5"), "{err}");
    let zero = TINY.replace("nsf_steps = 4", "nsf_steps = 0");
    assert!(NsgfppConfig::from_toml(&zero, Path::new("x.toml")).is_err());
    let unknown = format!("{TINY}\n[extra]\nx = 1\n");
    assert!(NsgfppConfig::from_toml(&unknown, Path::new("x.toml")).is_err());
    for bad in ["1.0", "-0.1", "nan", "inf"] {
        let text = TINY.replace("[nsf.model]", &format!("[nsf]\nt_min = {bad}\n[nsf.model]"));
        let err = NsgfppConfig::from_toml(&text, Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("nsf.t_min"), "{bad}: {err}");
    }
    // The time predictor keeps the paper's U(0, 1): it has no such key.
    let text = TINY.replace("[time.model]", "[time]\nt_min = 0.5\n[time.model]");
    let err = NsgfppConfig::from_toml(&text, Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("unknown field `t_min`"), "{err}");
}

#[test]
fn nsf_time_window_defaults_to_the_paper_and_round_trips() {
    // Without `t_min` the paper's U(0, 1), and the written config has no such key (run
    // folders written before the option read back unchanged).
    let cfg = tiny();
    assert_eq!(cfg.nsf.t_min, 0.0);
    assert!(!cfg.to_toml().unwrap().contains("t_min"));
    let text = TINY.replace("[nsf.model]", "[nsf]\nt_min = 0.5\n[nsf.model]");
    let cfg = NsgfppConfig::from_toml(&text, Path::new("x.toml")).unwrap();
    assert_eq!(cfg.nsf.t_min, 0.5);
    let again = NsgfppConfig::from_toml(&cfg.to_toml().unwrap(), Path::new("y.toml")).unwrap();
    assert_eq!(again, cfg);
}
