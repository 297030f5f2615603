//! Long runs survive interruption: `nsgf train` stopped by SIGINT writes a checkpoint at the
//! step it reached and exits with status 130 and a message saying how to continue; one killed
//! by SIGKILL keeps its last checkpoint. Either way `--resume` ends with the same weights, bit for
//! bit, as an uninterrupted run (the pool's refreshes and every batch are keyed draws of the
//! seed and the step).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
problem = "8gaussians"
seed = 11
[nsgf]
steps = 3
eta = 0.5
batch = 32
[nsgf.sinkhorn]
blur = 0.1
scaling = 0.7
[pool]
batches = 3
refresh_every = 70
refresh_batches = 1
[train]
steps = 3000
batch = 32
lr = 1e-3
checkpoint_every = 50
threads = 1
[model]
hidden = 16
layers = 2
"#;

fn nsgf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nsgf"))
}

fn start(config: &Path, out: &Path, resume: bool) -> Child {
    let mut c = nsgf();
    c.args(["train", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out);
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nsgf train")
}

fn saved_step(out: &Path) -> Option<u64> {
    let text = std::fs::read(out.join("state.json")).ok()?;
    serde_json::from_slice::<serde_json::Value>(&text).ok()?["step"].as_u64()
}

/// Waits until the run has checkpointed at least `step`, then returns (false if it finished).
fn wait_for_checkpoint(child: &mut Child, out: &Path, step: u64) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(300) {
        if saved_step(out).is_some_and(|s| s >= step) {
            return child.try_wait().unwrap().is_none();
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no checkpoint at step {step} after 300 s");
}

fn finish(child: Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn interrupted_and_killed_runs_resume_to_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(&config, CONFIG).unwrap();

    let full = dir.path().join("full");
    let (status, err) = finish(start(&config, &full, false));
    assert!(status.success(), "{err}");
    let want = std::fs::read(full.join("model.safetensors")).unwrap();

    // SIGINT: a checkpoint at the step reached, status 130, a hint to resume.
    let int = dir.path().join("int");
    let mut child = start(&config, &int, false);
    if wait_for_checkpoint(&mut child, &int, 100) {
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let (status, err) = finish(child);
        assert_eq!(status.code(), Some(130), "{err}");
        assert!(
            err.contains("--resume") && err.contains("interrupted after step"),
            "{err}"
        );
        let step = saved_step(&int).unwrap();
        assert!((100..3000).contains(&step), "stopped at {step}");
    } else {
        eprintln!("the run finished before the interrupt: only the resume is checked");
        finish(child);
    }
    let (status, err) = finish(start(&config, &int, true));
    assert!(status.success(), "{err}");
    let got = std::fs::read(int.join("model.safetensors")).unwrap();
    assert!(
        got == want,
        "interrupted + resumed differs from the uninterrupted run"
    );

    // SIGKILL between checkpoints: the last checkpoint stays usable.
    let killed = dir.path().join("killed");
    let mut child = start(&config, &killed, false);
    if wait_for_checkpoint(&mut child, &killed, 150) {
        child.kill().unwrap();
        finish(child);
        let step = saved_step(&killed).unwrap();
        assert!(step.is_multiple_of(50) && step < 3000, "{step}");
    } else {
        finish(child);
    }
    let (status, err) = finish(start(&config, &killed, true));
    assert!(status.success(), "{err}");
    let got = std::fs::read(killed.join("model.safetensors")).unwrap();
    assert!(
        got == want,
        "killed + resumed differs from the uninterrupted run"
    );
}
