//! S-JKO on images end to end at a tiny size (16x16 grey images, the `tiny` UNet generator with
//! its latent in place of the time features, the convolutional potential with the Hutchinson
//! R1): a run moves the prior towards the data in one generator call, a run stopped after every
//! iteration resumes to the same bits as an uninterrupted one (phase boundaries, EMA and R1
//! probes included), sampling does not depend on the batch size, and the CLI writes the samples
//! as a uint8 `.npy` with a grid.

mod common;

use common::{nsgf_ok, stop_after_every_iteration, write_square_images as write_images};
use nsgf::backend::{Cpu, CpuAutodiff};
use nsgf::train::sjko::{load_run, train, SjkoConfig};
use std::path::Path;

/// Model initialisation seeds the backend's global RNG and the interrupt flag is process-wide.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config_text(images: &Path, extra: &str) -> String {
    format!(
        "method = \"sjko\"\nseed = 4\nunet = \"tiny\"\nnz = 3\npotential_channels = [8, 16]\n\
         batch = 4\nlr_g = 1e-3\nlr_d = 1e-3\nh = 0.5\n{extra}\n\
         [data]\ndataset = {{ kind = \"images\", path = \"{}\" }}\n",
        images.display()
    )
}

fn config(images: &Path, extra: &str) -> SjkoConfig {
    SjkoConfig::from_toml(&config_text(images, extra), Path::new("tiny.toml")).unwrap()
}

/// Mean over the rows of `x` of the squared distance to the nearest row of `data`, per pixel.
fn nearest_sq(x: &[f32], data: &[f32]) -> f64 {
    let d = 256;
    let n = x.len() / d;
    let mut total = 0.0;
    for a in x.chunks(d) {
        let best = data
            .chunks(d)
            .map(|b| {
                a.iter()
                    .zip(b)
                    .map(|(p, q)| ((p - q) as f64).powi(2))
                    .sum::<f64>()
            })
            .fold(f64::INFINITY, f64::min);
        total += best / d as f64;
    }
    total / n as f64
}

#[test]
fn a_tiny_image_run_moves_the_prior_towards_the_data() {
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.npy");
    let data = write_images(&images);
    let cfg = config(
        &images,
        "phases = 2\niterations = 20\ninit_iterations = 40\nr1 = 0.1",
    );
    let dev = Default::default();
    let run_dir = dir.path().join("run");
    let report = train::<CpuAutodiff>(&cfg, &run_dir, &dev, false, false).unwrap();
    assert_eq!(report.iterations, 60);
    assert!(report.loss_d.is_finite() && report.loss_g.is_finite());
    // timing.json carries the keys every run's timing has (the experiment scripts sum them).
    let timing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("timing.json")).unwrap()).unwrap();
    assert_eq!(timing["step"], 60);
    assert!(timing["seconds"].as_f64().unwrap() > 0.0);
    let run = load_run::<Cpu>(&run_dir, &dev).unwrap();
    assert_eq!(run.config.image_shape, Some([1, 16, 16]));
    let x = run.sample_many(16, 16, 7, &dev, |_| {}).unwrap();
    // The prior points of the same draw: N(0, I) rows.
    let prior = nsgf::data::pairs::source_rows(None, Some([1, 16, 16]), 16, 7, 71, 0).unwrap();
    let (model, start) = (nearest_sq(&x, &data), nearest_sq(&prior, &data));
    eprintln!("S-JKO tiny images: nearest-image MSE {model:.3} (prior {start:.3})");
    assert!(model < 0.65 * start, "{model} vs prior {start}");
}

#[test]
fn an_image_run_stopped_anywhere_resumes_to_the_same_weights_and_samples_in_any_batch() {
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.npy");
    write_images(&images);
    let cfg = config(
        &images,
        "phases = 2\niterations = 3\ninit_iterations = 4\ncheckpoint_every = 2\nema = 0.9\nr1 = 0.2",
    );
    let dev = Default::default();
    let full = dir.path().join("full");
    train::<CpuAutodiff>(&cfg, &full, &dev, false, false).unwrap();
    let parts = dir.path().join("parts");
    stop_after_every_iteration(6, |resume| {
        train::<CpuAutodiff>(&cfg, &parts, &dev, resume, false)
    });
    assert_eq!(
        train::<CpuAutodiff>(&cfg, &parts, &dev, true, false)
            .unwrap()
            .new_iterations,
        1
    );
    for f in [
        "generator/model.safetensors",
        "generator/ema.safetensors",
        "generator/optim.mpk",
        "potential/model.safetensors",
        "potential/optim.mpk",
        "phases/000.safetensors",
        "phases/001.safetensors",
    ] {
        assert!(
            std::fs::read(full.join(f)).unwrap() == std::fs::read(parts.join(f)).unwrap(),
            "{f} differs after resume"
        );
    }
    // The phase-0 generator differs from the final one, and the samples do not depend on the
    // batch they are drawn in.
    assert!(
        std::fs::read(full.join("phases/000.safetensors")).unwrap()
            != std::fs::read(full.join("phases/001.safetensors")).unwrap()
    );
    let run = load_run::<Cpu>(&full, &dev).unwrap();
    let a = run.sample_many(7, 7, 3, &dev, |_| {}).unwrap();
    let b = run.sample_many(7, 3, 3, &dev, |_| {}).unwrap();
    assert_eq!(a.len(), 7 * 256);
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "batch 7 vs 3: {diff}");
}

#[test]
fn image_configs_are_checked() {
    let images = Path::new("images.npy");
    for (text, what) in [
        (
            config_text(images, "").replace("unet = \"tiny\"\n", ""),
            "unet",
        ),
        (
            config_text(images, "problem = \"moons\""),
            "either a 2-D `problem` or an image",
        ),
        (
            config_text(images, "potential_channels = []")
                .replace("potential_channels = [8, 16]\n", ""),
            "potential_channels",
        ),
        (
            config_text(images, "phases = 4294967297\niterations = 4294967297"),
            "overflow",
        ),
    ] {
        let e = SjkoConfig::from_toml(&text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(what), "{what}: {e}");
    }
}

#[test]
fn the_cli_trains_and_samples_an_image_sjko_run() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.npy");
    write_images(&images);
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, config_text(&images, "phases = 2\niterations = 2")).unwrap();
    let run = dir.path().join("run");
    nsgf_ok([
        "train".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        run.as_os_str(),
    ]);
    let (npy, grid) = (dir.path().join("x.npy"), dir.path().join("grid.png"));
    let err = nsgf_ok([
        "sample".as_ref(),
        "--run".as_ref(),
        run.as_os_str(),
        "--n".as_ref(),
        "12".as_ref(),
        "--batch".as_ref(),
        "5".as_ref(),
        "--out".as_ref(),
        npy.as_os_str(),
        "--grid".as_ref(),
        grid.as_os_str(),
    ]);
    assert!(err.contains("NFE = 1"), "{err}");
    let x = nsgf::io::read_npy(&npy).unwrap();
    assert_eq!(x.shape, vec![12, 16, 16]);
    assert!(grid.exists());
}
