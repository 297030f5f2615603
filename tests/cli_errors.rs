//! Bad input at the command line gets one clear error and writes nothing (found by an audit of
//! the CLI with bad inputs, 2026-12-02): `nsgf run` refuses a config it cannot evaluate before
//! training; `ot sinkhorn` refuses a result that overflows its f32 output instead of writing
//! infinities; an I/O error names its cause once.

use nsgf::io::{write_npy, NpyArray};
use std::path::Path;
use std::process::{Command, Output};

fn nsgf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nsgf"))
        .args(args)
        .output()
        .expect("running nsgf")
}

fn failed_with(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "succeeded: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn run_refuses_a_config_it_cannot_evaluate_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/nsgfpp/moons.toml");
    let err = failed_with(&nsgf(&[
        "run",
        "--config",
        s(&config),
        "--out",
        s(&out),
        "--steps",
        "1",
    ]));
    assert!(
        err.contains("nsgf run") && err.contains("nsgfpp") && err.contains("nsgf train"),
        "{err}"
    );
    assert!(!out.exists(), "trained before refusing");
}

#[test]
fn sinkhorn_refuses_an_output_that_overflows_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y, out) = (
        dir.path().join("x.npy"),
        dir.path().join("y.npy"),
        dir.path().join("o.npz"),
    );
    let cloud = |scale: f64, n: usize| {
        let v: Vec<f64> = (0..2 * n)
            .map(|i| scale * ((i * 7 % 11) as f64 - 5.0))
            .collect();
        NpyArray::f64(vec![n, 2], v)
    };
    write_npy(&x, &cloud(1e20, 20)).unwrap();
    write_npy(&y, &cloud(1.0, 25)).unwrap();
    let args = |x: &Path| {
        nsgf(&[
            "ot",
            "sinkhorn",
            "--x",
            s(x),
            "--y",
            s(&y),
            "--precision",
            "f64",
            "--out",
            s(&out),
        ])
    };
    let err = failed_with(&args(&x));
    assert!(err.contains("does not fit f32"), "{err}");
    assert!(!out.exists(), "wrote the infinities");
    // The same command on points of a sane scale writes the file.
    write_npy(&x, &cloud(0.5, 20)).unwrap();
    assert!(args(&x).status.success());
    assert!(out.exists());
}

#[test]
fn an_io_error_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.npy");
    let err = failed_with(&nsgf(&["eval", "w2", s(&missing), s(&missing)]));
    assert!(err.contains("missing.npy"), "{err}");
    let cause = "No such file or directory";
    assert_eq!(err.matches(cause).count(), 1, "{err}");
}

#[test]
fn toy_evaluation_refuses_zero_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let (config, run) = (dir.path().join("tiny.toml"), dir.path().join("run"));
    std::fs::write(
        &config,
        "problem = \"moons\"\n[nsgf]\nsteps = 3\nbatch = 32\n[pool]\nbatches = 2\n\
         [train]\nsteps = 2\nbatch = 32\nthreads = 1\n[model]\nhidden = 16\nlayers = 2\n",
    )
    .unwrap();
    let trained = nsgf(&["train", "--config", s(&config), "--out", s(&run)]);
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    // It ran one seed when asked for none.
    let err = failed_with(&nsgf(&["eval", "toy", "--run", s(&run), "--seeds", "0"]));
    assert!(err.contains("at least 1 seed"), "{err}");
}
