//! Bad input at the command line gets one clear error and writes nothing (found by an audit of
//! the CLI with bad inputs, 2026-12-02): `nsgf run` refuses a config it cannot evaluate before
//! training; `ot sinkhorn` refuses a result that overflows its f32 output instead of writing
//! infinities; an I/O error names its cause once; `nsgf sample` refuses the flags a run does not
//! use (they were ignored), counts of 0 and draws that cannot fit in memory (the process
//! aborted); `nsgf train --resume` refuses to shorten a run (it rewrote the run's config).

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

/// An error of the argument parser (clap's exit code 2) with `needle` in it.
fn usage_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "{err}");
}

/// A tiny 2-D NSGF run (2 steps) trained into `dir/run`; returns its config and run folder.
fn tiny_run(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (config, run) = (dir.join("tiny.toml"), dir.join("run"));
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
    (config, run)
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
    let (_, run) = tiny_run(dir.path());
    // It ran one seed when asked for none.
    let err = failed_with(&nsgf(&["eval", "toy", "--run", s(&run), "--seeds", "0"]));
    assert!(err.contains("at least 1 seed"), "{err}");
}

#[test]
fn sample_refuses_what_does_not_apply_and_what_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (_, run) = tiny_run(dir.path());
    let out = dir.path().join("x.npy");
    let sample = |extra: &[&str]| {
        let mut args = vec!["sample", "--run", s(&run), "--n", "16", "--out", s(&out)];
        args.extend_from_slice(extra);
        nsgf(&args)
    };
    // Image-only flags and an adaptive tolerance on a 2-D NSGF run were ignored.
    let err = failed_with(&sample(&["--batch", "5", "--grid", "g.png"]));
    assert!(
        err.contains(
            "--batch (image runs only), --grid (image runs only) do not apply to a 2-D NSGF run"
        ),
        "{err}"
    );
    let err = failed_with(&sample(&["--tol", "1e-3"]));
    assert!(err.contains("--tol") && err.contains("2-D NSGF"), "{err}");
    assert!(!out.exists());
    // --nfe counts the solver's evaluations (it was ignored too).
    let done = sample(&["--nfe", "6", "--solver", "heun"]);
    let text = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success() && text.contains("NFE = 6"), "{text}");
    let err = failed_with(&sample(&["--nfe", "5", "--solver", "heun"]));
    assert!(err.contains("2 evaluations per step"), "{err}");
    // Conflicting and zero counts are refused while parsing.
    usage_error(
        &sample(&["--steps", "3", "--nfe", "6"]),
        "cannot be used with",
    );
    usage_error(
        &sample(&["--tol", "1e-3", "--steps", "3"]),
        "cannot be used with",
    );
    usage_error(
        &nsgf(&["sample", "--run", s(&run), "--n", "0", "--out", s(&out)]),
        "must be at least 1",
    );
    let a = dir.path().join("a.npy");
    usage_error(
        &nsgf(&["eval", "fid", s(&a), s(&a), "--batch-size", "0"]),
        "must be at least 1",
    );
    // A draw far past the memory aborted the process in its allocation.
    let err = failed_with(&nsgf(&[
        "sample",
        "--run",
        s(&run),
        "--n",
        "100000000000",
        "--out",
        s(&out),
    ]));
    assert!(err.contains("more than this machine can give"), "{err}");
    // An output under a file: named, not "File exists".
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under = file.join("x.npy");
    let err = failed_with(&nsgf(&[
        "sample",
        "--run",
        s(&run),
        "--n",
        "4",
        "--out",
        s(&under),
    ]));
    assert!(err.contains("is a file"), "{err}");
}

#[test]
fn resume_refuses_to_shorten_a_run_and_skips_a_finished_one() {
    let dir = tempfile::tempdir().unwrap();
    let (config, run) = tiny_run(dir.path());
    let saved = std::fs::read(run.join("config.toml")).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--config",
            s(&config),
            "--out",
            s(&run),
            "--resume",
        ];
        args.extend_from_slice(extra);
        nsgf(&args)
    };
    // It trained nothing, reported the 2 steps and rewrote config.toml to 1 step.
    let err = failed_with(&train(&["--steps", "1"]));
    assert!(
        err.contains("cannot resume to 1 steps") && err.contains("at step 2"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("config.toml")).unwrap(), saved);
    // Resumed at its end: nothing to train, and no pool built for it.
    let done = train(&[]);
    let text = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{text}");
    assert!(text.contains("nothing left to train"), "{text}");
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(report["steps"], 2);
    assert_eq!(report["pool_samples"], 0);
}
