//! The same seeded run writes byte-identical files: `nsgf train` twice on a tiny 2-D config into
//! two folders gives the same `model.safetensors`, `optim.mpk` (the Adam state: parameters keyed
//! by sequential ids, its maps written in sorted order), `state.json` and `config.toml`.

use std::path::Path;
use std::process::Command;

const TINY: &str = r#"
problem = "moons"
seed = 7
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
steps = 20
batch = 32
lr = 1e-3
checkpoint_every = 10
[model]
hidden = 16
layers = 2
"#;

fn train(config: &Path, out: &Path, extra: &[&str]) {
    let run = Command::new(env!("CARGO_BIN_EXE_nsgf"))
        .args(["train", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("running nsgf train");
    assert!(
        run.status.success(),
        "nsgf train failed ({}): {}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn same_seeded_train_writes_identical_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train(&config, &a, &[]);
    train(&config, &b, &[]);
    for file in [
        "model.safetensors",
        "optim.mpk",
        "state.json",
        "config.toml",
    ] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(x == y, "{file} differs between two identical seeded runs");
    }
}

/// `nsgf train` into a folder that holds a checkpoint (its own or a part's) is refused unless
/// told --resume or --overwrite; --overwrite trains from scratch.
#[test]
fn training_over_a_checkpoint_needs_resume_or_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train(&config, &a, &[]);
    let before = std::fs::read(a.join("state.json")).unwrap();
    for out in [&a, &b] {
        if out == &b {
            // A part's checkpoint, as NSGF++ or S-JKO keep them.
            std::fs::create_dir_all(b.join("nsf")).unwrap();
            std::fs::write(b.join("nsf").join("state.json"), "{}").unwrap();
        }
        let run = Command::new(env!("CARGO_BIN_EXE_nsgf"))
            .args(["train", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{err}");
        assert!(
            err.contains("already holds a trained run")
                && err.contains("--resume")
                && err.contains("--overwrite"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(a.join("state.json")).unwrap(), before);
    // --overwrite trains from scratch: another seed gives other weights, the first seed again
    // the first run's; a part's stale checkpoint is removed.
    let first = std::fs::read(a.join("model.safetensors")).unwrap();
    train(&config, &a, &["--overwrite", "--seed", "1"]);
    assert_ne!(std::fs::read(a.join("model.safetensors")).unwrap(), first);
    train(&config, &a, &["--overwrite"]);
    assert_eq!(std::fs::read(a.join("model.safetensors")).unwrap(), first);
    assert_eq!(std::fs::read(a.join("state.json")).unwrap(), before);
    train(&config, &b, &["--overwrite"]);
    assert!(!b.join("nsf").join("state.json").exists());
    assert_eq!(std::fs::read(b.join("model.safetensors")).unwrap(), first);
}
