//! Failed writes (a fault-injecting writer that fails half-way with "no space left on device",
//! as a full disk does): a checkpoint whose save fails leaves the previous checkpoint whole, no
//! temporary file behind, an error that says so, and a run that resumes from it to the same
//! weights as an uninterrupted run; a checkpoint mixed from two saves is refused on loading.

use burn::optim::AdamConfig;
use nsgf::backend::CpuAutodiff;
use nsgf::io::npy::{fault, write_atomic};
use nsgf::models::mlp::{MlpConfig, VelocityMlp};
use nsgf::train::checkpoint::{load_checkpoint, save_checkpoint, TrainState};
use nsgf::train::config::ToyConfig;
use nsgf::train::nsgf::train;
use std::path::Path;

/// The fault counter and the backend's seed are process-wide.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_failed_write_keeps_the_previous_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    write_atomic(&path, b"old contents").unwrap();
    fault::fail_write_after(0);
    let e = write_atomic(&path, &[7u8; 4096]).unwrap_err().to_string();
    fault::clear();
    assert!(e.contains("No space left"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents");
    assert_eq!(
        files(dir.path()).len(),
        1,
        "a temporary file was left behind"
    );
}

#[test]
fn a_failed_checkpoint_leaves_the_previous_one_whole_and_says_so() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Default::default();
    let cfg = MlpConfig::new(2).with_hidden(8).with_layers(2);
    let model: VelocityMlp<CpuAutodiff> = cfg.init(&dev);
    let optim = AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>();
    let dir = tempfile::tempdir().unwrap();
    save_checkpoint(dir.path(), &model, &optim, &TrainState { step: 1 }).unwrap();
    let before = files(dir.path());
    let other: VelocityMlp<CpuAutodiff> = cfg.init(&dev);
    // Every file of the checkpoint in turn: model, optimizer state, state.json.
    for k in 0..3 {
        fault::fail_write_after(k);
        let e = save_checkpoint(dir.path(), &other, &optim, &TrainState { step: 2 })
            .unwrap_err()
            .to_string();
        fault::clear();
        assert!(
            e.contains("step 2") && e.contains("previous checkpoint there is intact"),
            "{e}"
        );
        assert!(
            files(dir.path()) == before,
            "fault at file {k}: the checkpoint changed"
        );
    }
    let fresh: VelocityMlp<CpuAutodiff> = cfg.init(&dev);
    let (_, _, state) = load_checkpoint(
        dir.path(),
        fresh,
        AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>(),
        &dev,
    )
    .unwrap();
    assert_eq!(state.step, 1);

    // A checkpoint mixed from two saves (a crash between the renames) is refused by name.
    let newer = tempfile::tempdir().unwrap();
    save_checkpoint(newer.path(), &other, &optim, &TrainState { step: 2 }).unwrap();
    std::fs::copy(
        newer.path().join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let Err(e) = load_checkpoint(
        dir.path(),
        cfg.init::<CpuAutodiff>(&dev),
        AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>(),
        &dev,
    ) else {
        panic!("a mixed checkpoint loaded");
    };
    let e = e.to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("inconsistent"),
        "{e}"
    );
}

const TINY: &str = r#"
problem = "moons"
seed = 5
[nsgf]
steps = 3
eta = 0.5
batch = 32
[nsgf.sinkhorn]
blur = 0.1
scaling = 0.7
[pool]
batches = 2
[train]
steps = 30
batch = 32
lr = 1e-3
checkpoint_every = 10
[model]
hidden = 16
layers = 2
"#;

#[test]
fn a_run_whose_checkpoint_write_fails_resumes_from_the_previous_one() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = ToyConfig::from_toml(TINY, Path::new("tiny.toml")).unwrap();
    let dev = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    train::<CpuAutodiff>(&cfg, &full, &dev, false, false).unwrap();

    // Files staged by a run: config.toml, then per checkpoint model, optim, timing.json, state.
    // Fail the optimizer state of the second checkpoint (step 20).
    let cut = dir.path().join("cut");
    fault::fail_write_after(1 + 4 + 1);
    let e = train::<CpuAutodiff>(&cfg, &cut, &dev, false, false);
    fault::clear();
    let e = e.unwrap_err().to_string();
    assert!(e.contains("step 20") && e.contains("intact"), "{e}");
    let state = std::fs::read_to_string(cut.join("state.json")).unwrap();
    assert!(state.contains("\"step\": 10"), "{state}");
    train::<CpuAutodiff>(&cfg, &cut, &dev, true, false).unwrap();
    for f in ["model.safetensors", "optim.mpk", "state.json"] {
        assert!(
            std::fs::read(full.join(f)).unwrap() == std::fs::read(cut.join(f)).unwrap(),
            "{f} differs from the uninterrupted run"
        );
    }
}
