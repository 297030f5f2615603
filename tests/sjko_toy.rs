//! S-JKO on a 2-D problem end to end at tiny sizes: a run lowers W2 far below the source's in
//! one generator call, the phases chain (phase `k`'s reference is the generator at the end of
//! phase `k − 1`; the last phase's generator is the final one), a run stopped anywhere (mid
//! phase, at a phase boundary) and resumed ends with the same weights bit for bit, and bad
//! configs are clear errors.

mod common;

use nsgf::backend::{Cpu, CpuAutodiff};
use nsgf::convert::tensor_to_points;
use nsgf::data::toy2d::sample_points;
use nsgf::ot::emd::w2;
use nsgf::train::sjko::{load_run, train, SjkoConfig};
use rand::SeedableRng;
use std::path::Path;

/// Serialises the tests: model initialisation seeds the backend's global RNG, and the
/// interrupt flag is process-wide.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config(extra: &str) -> SjkoConfig {
    let text = format!(
        "method = \"sjko\"\nproblem = \"8gaussians\"\nseed = 3\nbatch = 128\nhidden = 32\nblocks = 2\n\
         lr_g = 1e-3\nlr_d = 1e-3\n{extra}\n"
    );
    SjkoConfig::from_toml(&text, Path::new("tiny.toml")).unwrap()
}

#[test]
fn a_tiny_run_lowers_w2_in_one_call_and_its_phases_chain() {
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config("phases = 3\niterations = 150\ninit_iterations = 300\n");
    let dir = tempfile::tempdir().unwrap();
    let dev = Default::default();
    let report = train::<CpuAutodiff>(&cfg, dir.path(), &dev, false, false).unwrap();
    assert_eq!((report.iterations, report.new_iterations), (600, 600));
    assert_eq!(
        report.phase_seconds.iter().map(|p| p.0).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(report.loss_d.is_finite() && report.loss_g.is_finite());
    let run = load_run::<Cpu>(dir.path(), &dev).unwrap();
    let x = run.sample(512, 1, &dev).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let test = sample_points(cfg.problem.unwrap().target(), 512, &mut rng);
    let source = sample_points(cfg.problem.unwrap().source(), 512, &mut rng);
    let w_model = w2(&tensor_to_points(x.clone()).unwrap(), &test).unwrap();
    let w_source = w2(&source, &test).unwrap();
    eprintln!("S-JKO 8gaussians: W2 {w_model:.3} (source {w_source:.3})");
    assert!(
        w_model < 0.4 * w_source,
        "W2 {w_model} vs source {w_source}"
    );

    // The phases chain: the path has the start and one state per phase, the last phase's
    // generator is the final one (no EMA), and the phases differ.
    let x0 = nsgf::convert::rows_to_tensor::<Cpu>(vec![0.5, -0.25, 1.0, 2.0], 2, 2, &dev);
    let mut states = Vec::new();
    let last = run.phases(x0.clone(), 5, |s| {
        states.push(nsgf::convert::to_f32_vec(s.clone()).unwrap())
    });
    assert_eq!(states.len(), 4);
    assert_eq!(states[0], vec![0.5, -0.25, 1.0, 2.0]);
    assert_eq!(states[3], nsgf::convert::to_f32_vec(last).unwrap());
    assert_ne!(states[1], states[2]);
    let phase =
        |k: usize| std::fs::read(dir.path().join(format!("phases/{k:03}.safetensors"))).unwrap();
    assert!(phase(2) == std::fs::read(dir.path().join("generator/model.safetensors")).unwrap());
    assert!(phase(0) != phase(1));
    // One call per sample (NFE = 1): the same prior points and latents give the same output.
    assert_eq!(
        nsgf::convert::to_f32_vec(run.generate(x0.clone(), 5)).unwrap(),
        states[3]
    );
    let timing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("timing.json")).unwrap()).unwrap();
    assert_eq!(timing["phase_seconds"].as_array().unwrap().len(), 3);
}

#[test]
fn a_run_stopped_anywhere_resumes_to_the_same_weights() {
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config("phases = 3\niterations = 6\ninit_iterations = 8\ncheckpoint_every = 5\nema = 0.9\nr1 = 0.2\npsi = \"softplus\"\nalpha_end = 3.0\nlr_schedule = \"cosine\"\nlr_min = 1e-4\ngrad_clip_d = 0.5");
    let dir = tempfile::tempdir().unwrap();
    let dev = Default::default();
    let full = dir.path().join("full");
    train::<CpuAutodiff>(&cfg, &full, &dev, false, false).unwrap();

    // Stop after every iteration (as Ctrl-C would): each call trains one iteration, writes a
    // checkpoint and returns Interrupted; the run passes both phase boundaries this way.
    let parts = dir.path().join("parts");
    common::stop_after_every_iteration(19, |resume| {
        train::<CpuAutodiff>(&cfg, &parts, &dev, resume, false)
    });
    let report = train::<CpuAutodiff>(&cfg, &parts, &dev, true, false).unwrap();
    assert_eq!(report.new_iterations, 1);
    for f in [
        "generator/model.safetensors",
        "generator/ema.safetensors",
        "potential/model.safetensors",
        "phases/000.safetensors",
        "phases/001.safetensors",
        "phases/002.safetensors",
    ] {
        assert!(
            std::fs::read(full.join(f)).unwrap() == std::fs::read(parts.join(f)).unwrap(),
            "{f} differs after resume"
        );
    }
    // Resuming a finished run trains nothing.
    let again = train::<CpuAutodiff>(&cfg, &parts, &dev, true, false).unwrap();
    assert_eq!(again.new_iterations, 0);
}

#[test]
fn bad_configs_and_mismatched_checkpoints_are_errors() {
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let e = SjkoConfig::from_toml(
        "method = \"sjko\"\nproblem = \"moons\"\nlr_g = -1.0\n",
        Path::new("bad.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("lr_g") && e.contains("> 0"), "{e}");
    let e = SjkoConfig::from_toml(
        "method = \"sjko\"\nproblem = \"spiral\"\n",
        Path::new("b.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("twocircles"), "{e}");
    // A potential checkpoint from another iteration than the generator's is refused.
    let cfg = config("phases = 1\niterations = 4\ncheckpoint_every = 2");
    let dir = tempfile::tempdir().unwrap();
    let dev = Default::default();
    train::<CpuAutodiff>(&cfg, dir.path(), &dev, false, false).unwrap();
    let state = dir.path().join("potential/state.json");
    let text = std::fs::read_to_string(&state)
        .unwrap()
        .replace("\"step\": 4", "\"step\": 2");
    std::fs::write(&state, text).unwrap();
    let e = train::<CpuAutodiff>(&cfg, dir.path(), &dev, true, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not match"), "{e}");
}

#[test]
fn the_cli_trains_and_samples_an_sjko_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        "method = \"sjko\"\nproblem = \"twocircles\"\nphases = 2\niterations = 5\nbatch = 16\nhidden = 8\nblocks = 1\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    let err = common::nsgf_ok([
        "train".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        run.as_os_str(),
    ]);
    assert!(err.contains("S-JKO: 2 phases, 10 iterations"), "{err}");
    let (npy, png) = (dir.path().join("x.npy"), dir.path().join("phases.png"));
    let err = common::nsgf_ok([
        "sample".as_ref(),
        "--run".as_ref(),
        run.as_os_str(),
        "--n".as_ref(),
        "64".as_ref(),
        "--out".as_ref(),
        npy.as_os_str(),
        "--plot".as_ref(),
        png.as_os_str(),
    ]);
    assert!(err.contains("NFE = 1"), "{err}");
    let x = nsgf::io::read_npy(&npy).unwrap();
    assert_eq!(x.shape, vec![64, 2]);
    assert!(png.exists());
}
