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

fn train(config: &Path, out: &Path) {
    let run = Command::new(env!("CARGO_BIN_EXE_nsgf"))
        .args(["train", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
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
    train(&config, &a);
    train(&config, &b);
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
