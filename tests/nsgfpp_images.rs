//! NSGF++ on images end to end at a tiny size (16x16 grey images, the `tiny` UNet, the paper's
//! time-predictor CNN): Algorithm 3 trains the three networks through the streaming trajectory
//! pool, resumes to the same bits as an uninterrupted run (pool refreshes, EMA, clipping and
//! warm-up included), and Algorithm 4 samples with the NFE it reports; the CLI writes the
//! samples as a uint8 `.npy` and the Fig. 5-style grid.

mod common;

use common::{files_of, write_square_images};
use nsgf::backend::{Cpu, CpuAutodiff};
use nsgf::train::nsgfpp::{load_run, sample_many, train, NsgfppConfig};
use std::path::Path;
use std::process::Command;

/// Model initialisation draws from the backend's global RNG (`Backend::seed`): tests that
/// compare seeded runs take this lock so that no other test reseeds it meanwhile.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config(images: &Path) -> String {
    format!(
        r#"
method = "nsgfpp"
seed = 5
[data]
dataset = {{ kind = "images", path = "{}" }}
[nsgf]
steps = 3
eta = 0.3
batch = 16
[nsgf.sinkhorn]
blur = 0.5
scaling = 0.8
[pool]
batches = 2
refresh_every = 2
refresh_batches = 1
f16 = true
[model]
unet = "tiny"
[train]
steps = 6
batch = 4
lr = 1e-3
warmup = 3
grad_clip = 1.0
ema = 0.99
checkpoint_every = 3
log_every = 2
[nsf.model]
unet = "tiny"
[nsf.train]
steps = 4
batch = 4
ema = 0.99
checkpoint_every = 2
[time.train]
steps = 4
batch = 8
[sampling]
nsf_steps = 2
"#,
        images.display()
    )
}

#[test]
fn tiny_image_nsgfpp_trains_resumes_exactly_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.npy");
    write_square_images(&images);
    let cfg = NsgfppConfig::from_toml(&config(&images), Path::new("tiny.toml")).unwrap();
    let dev = Default::default();
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());

    let full = dir.path().join("full");
    let report = train::<CpuAutodiff>(&cfg, &full, &dev, false, false).unwrap();
    assert_eq!(
        (report.nsgf.steps, report.nsf.steps, report.time.steps),
        (6, 4, 4)
    );
    // 2 flows x 3 steps x 16 particles of 256 values in f16 (+ f32 times).
    assert_eq!(report.nsgf.pool_samples, 96);
    assert_eq!(report.nsgf.pool_bytes, 96 * (2 * 2 * 256 + 4));
    assert!(report.nsgf.final_loss.is_finite() && report.time.final_loss < 0.5);
    let metrics = std::fs::read_to_string(full.join("nsgf/metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, vec![2, 4, 6]);
    assert!(full.join("nsgf/ema.safetensors").exists());

    // Interrupted after 3 NSGF steps (a checkpoint; refreshes at steps 2 and 4 straddle it) and 2
    // NSF steps, then resumed: every file of the three networks equals the uninterrupted run's.
    let parts = dir.path().join("parts");
    let mut first = cfg.clone();
    first.train.steps = 3;
    first.nsf.train.steps = 2;
    first.time.train.steps = 1;
    train::<CpuAutodiff>(&first, &parts, &dev, false, false).unwrap();
    train::<CpuAutodiff>(&cfg, &parts, &dev, true, false).unwrap();
    for file in [
        "nsgf/model.safetensors",
        "nsgf/ema.safetensors",
        "nsf/model.safetensors",
        "nsf/ema.safetensors",
        "time/model.safetensors",
    ] {
        let a = std::fs::read(full.join(file)).unwrap();
        let b = std::fs::read(parts.join(file)).unwrap();
        assert!(
            a == b,
            "{file}: the resumed run differs from the uninterrupted one"
        );
    }
    // The interrupted run logged its last step (3); the resumed one continues after it.
    let resumed = std::fs::read_to_string(parts.join("nsgf/metrics.jsonl")).unwrap();
    let steps: Vec<u64> = resumed
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, vec![2, 3, 4, 6], "{resumed}");

    // Algorithm 4: NFE = T + 1 + NSF steps; samples do not depend on how many are asked for.
    let run = load_run::<Cpu>(&full, &dev).unwrap();
    assert_eq!(run.config.image_shape, Some([1, 16, 16]));
    let a = sample_many(&run, 5, 4, None, 9, &dev, |_| {}).unwrap();
    assert_eq!(a.nfe, 3 + 1 + 2);
    assert_eq!(
        (a.x.len(), a.after_nsgf.len(), a.t_hat.len()),
        (5 * 256, 5 * 256, 5)
    );
    assert!(a.x.iter().all(|v| v.is_finite()));
    assert!(a.t_hat.iter().all(|t| (0.0..=1.0).contains(t)));
    let b = sample_many(&run, 3, 4, None, 9, &dev, |_| {}).unwrap();
    assert_eq!(&a.x[..3 * 256], &b.x[..]);

    // The CLI: uint8 samples, a PNG folder, the grid, and --nfe checked against the run.
    let bin = env!("CARGO_BIN_EXE_nsgf");
    let npy = dir.path().join("samples.npy");
    let grid = dir.path().join("grid.png");
    let out = Command::new(bin)
        .args(["sample", "--run"])
        .arg(&full)
        .args(["--n", "6", "--nfe", "7", "--out"])
        .arg(&npy)
        .arg("--grid")
        .arg(&grid)
        .env("RUST_LOG", "warn,nsgf=info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("NFE = 7"), "{stderr}");
    // Not on a terminal: the progress goes to the log as lines, the last one at 100 %.
    assert!(stderr.contains(": 6/6 (100%)"), "{stderr}");
    let arr = nsgf::data::images::read_image_npy(&npy).unwrap();
    assert_eq!((arr.n, arr.height, arr.width, arr.channels), (6, 16, 16, 1));
    let g = image::open(&grid).unwrap();
    assert_eq!(g.width(), 10 * 18 + 2);
    let pngs = dir.path().join("pngs");
    let out = Command::new(bin)
        .args(["sample", "--run"])
        .arg(&full)
        .args(["--n", "2", "--out"])
        .arg(&pngs)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(pngs.join("000001.png").exists());
    let out = Command::new(bin)
        .args(["sample", "--run"])
        .arg(&full)
        .args(["--n", "2", "--nfe", "4", "--out"])
        .arg(&npy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("NFE must be 4 + k*1"),
        "{stderr}"
    );

    // Drawn in parts (`<out>.parts/`, 4 rows = 2 batches each): the same samples as in one
    // part, and the parts folder is gone afterwards.
    let sample = |out: &Path, part_rows: &str| {
        Command::new(bin)
            .args(["sample", "--run"])
            .arg(&full)
            .args([
                "--n",
                "5",
                "--nfe",
                "7",
                "--batch",
                "2",
                "--part-rows",
                part_rows,
            ])
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let (one, three) = (dir.path().join("one.npy"), dir.path().join("three.npy"));
    assert!(sample(&one, "6").status.success());
    assert!(sample(&three, "4").status.success());
    let read = |p: &Path| nsgf::data::images::read_image_npy(p).unwrap().data;
    assert_eq!(read(&one), read(&three));
    assert!(!dir.path().join("three.npy.parts").exists());
    let out = sample(&dir.path().join("x.npy"), "3");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("multiple of --batch 2"));
    assert!(!dir.path().join("x.npy.parts").exists());
    let out = Command::new(bin)
        .args(["sample", "--run"])
        .arg(&full)
        .args(["--n", "0", "--out"])
        .arg(dir.path().join("none.npy"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("'--n <N>': must be at least 1"));

    // Interrupted after its parts were written (here: the final write fails, the output path
    // being a folder), the draw resumes from them: part 1, overwritten with zeros, comes back
    // as it is in the resumed output; the other parts are the ones drawn before.
    let stuck = dir.path().join("stuck.npy");
    std::fs::create_dir(&stuck).unwrap();
    assert!(!sample(&stuck, "2").status.success());
    let parts_dir = dir.path().join("stuck.npy.parts");
    let names: Vec<String> = std::fs::read_dir(&parts_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}"); // key.txt and 3 parts
    let part1 = parts_dir.join("part-00001.npz");
    let mut arrays = nsgf::io::read_npz(&part1).unwrap();
    for (name, a) in &mut arrays {
        if name == "x" {
            *a = nsgf::io::NpyArray::f32(a.shape.clone(), vec![0.0; a.len()]);
        }
    }
    let refs: Vec<(&str, nsgf::io::NpyArray)> = arrays
        .iter()
        .map(|(n, a)| (n.as_str(), a.clone()))
        .collect();
    nsgf::io::write_npz(&part1, &refs).unwrap();
    // Resuming the finished run (as a script that passes every stage again does) trains
    // nothing and leaves every file of it as it was, modification times included: the draw's
    // parts, keyed by the run's files, stay valid.
    let before = files_of(&full);
    let again = train::<CpuAutodiff>(&cfg, &full, &dev, true, false).unwrap();
    assert_eq!(
        (again.nsgf.steps, again.nsf.steps, again.time.steps),
        (6, 4, 4)
    );
    assert!(
        files_of(&full) == before,
        "resuming a finished run rewrote its files"
    );
    std::fs::remove_dir(&stuck).unwrap();
    let out = sample(&stuck, "2");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (want, got) = (read(&one), read(&stuck));
    let row = 16 * 16;
    assert_eq!(got[..2 * row], want[..2 * row]);
    assert!(got[2 * row..4 * row].iter().all(|&v| v == got[2 * row]));
    assert_ne!(got[2 * row..4 * row], want[2 * row..4 * row]);
    assert_eq!(got[4 * row..], want[4 * row..]);
    assert!(!parts_dir.exists());
    // Parts of another draw (another seed) are not reused.
    std::fs::create_dir_all(&parts_dir).unwrap();
    std::fs::write(parts_dir.join("key.txt"), "another draw").unwrap();
    nsgf::io::write_npz(parts_dir.join("part-00000.npz"), &refs).unwrap();
    assert!(sample(&stuck, "2").status.success());
    assert_eq!(read(&stuck), want);
}

#[test]
fn bad_image_configs_are_clear_errors() {
    let images = Path::new("/nonexistent/images.npy");
    let text = config(images);
    let parse = |t: &str| NsgfppConfig::from_toml(t, Path::new("x.toml"));
    assert!(parse(&text).is_ok());
    let e = parse(&text.replace("[model]\nunet = \"tiny\"", "[model]\nhidden = 8"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.unet"), "{e}");
    let e = parse(&text.replace("unet = \"tiny\"", "unet = \"huge\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("huge"), "{e}");
    let e = parse(&format!("problem = \"moons\"\n{text}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("either"), "{e}");
    let e = parse(&text.replace("grad_clip = 1.0", "grad_clip = -1.0"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("grad_clip"), "{e}");
    // The data is read when training starts: a missing file is named.
    let cfg = parse(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = train::<CpuAutodiff>(&cfg, dir.path(), &Default::default(), false, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/images.npy"), "{e}");
}

#[test]
fn tiny_image_flow_matching_trains_resumes_exactly_and_samples() {
    use nsgf::train::cfm;
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.npy");
    write_square_images(&images);
    let text = format!(
        r#"
method = "cfm"
matcher = "otcfm"
seed = 2
[data]
dataset = {{ kind = "images", path = "{}" }}
[model]
unet = "tiny"
[train]
steps = 4
batch = 4
warmup = 2
grad_clip = 1.0
ema = 0.9
checkpoint_every = 2
[sampling]
steps = 3
"#,
        images.display()
    );
    let cfg = cfm::CfmConfig::from_toml(&text, Path::new("cfm.toml")).unwrap();
    let dev = Default::default();
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let full = dir.path().join("full");
    let report = cfm::train::<CpuAutodiff>(&cfg, &full, &dev, false, false).unwrap();
    assert_eq!(report.steps, 4);
    let parts = dir.path().join("parts");
    let mut first = cfg.clone();
    first.train.steps = 2;
    cfm::train::<CpuAutodiff>(&first, &parts, &dev, false, false).unwrap();
    cfm::train::<CpuAutodiff>(&cfg, &parts, &dev, true, false).unwrap();
    for file in ["model.safetensors", "ema.safetensors"] {
        let a = std::fs::read(full.join(file)).unwrap();
        let b = std::fs::read(parts.join(file)).unwrap();
        assert!(
            a == b,
            "{file}: the resumed run differs from the uninterrupted one"
        );
    }
    let run = cfm::load_run::<Cpu>(&full, &dev).unwrap();
    let (x, nfe) = cfm::sample_many(
        &run,
        3,
        2,
        cfm::Integration::Fixed {
            steps: 3,
            solver: nsgf::flows::samplers::Solver::Heun,
        },
        0,
        &dev,
        |_| {},
    )
    .unwrap();
    assert_eq!((x.len(), nfe), (3 * 256, 6.0));
    assert!(x.iter().all(|v| v.is_finite()));

    let npy = dir.path().join("s.npy");
    let out = Command::new(env!("CARGO_BIN_EXE_nsgf"))
        .args(["sample", "--run"])
        .arg(&full)
        .args(["--n", "3", "--nfe", "4", "--solver", "heun", "--out"])
        .arg(&npy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("(NFE = 4)"),
        "{stderr}"
    );
    assert_eq!(nsgf::data::images::read_image_npy(&npy).unwrap().n, 3);
    // `n` rows in parts of 2 rows (batches of 2), 3 Heun steps: NFE 6, printed exactly.
    let parted = |n: &str, name: &str| {
        let path = dir.path().join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_nsgf"))
            .args(["sample", "--run"])
            .arg(&full)
            .args(["--n", n, "--steps", "3", "--solver", "heun", "--batch", "2"])
            .args(["--part-rows", "2", "--out"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.contains("(NFE = 6)"),
            "{stderr}"
        );
        nsgf::data::images::read_image_npy(&path).unwrap()
    };
    // The rows of the one-call draw above, as uint8.
    let want = nsgf::data::dataset::unit_nchw_to_images(&x, [3, 1, 16, 16]).unwrap();
    assert_eq!(parted("3", "parted.npy").data, want.data);
    assert!(!dir.path().join("parted.npy.parts").exists());
    // 7 rows: the mean NFE is averaged once at the end, so it prints exactly (part by part,
    // 6·2/7 three times plus 6/7 gave 5.999999999999999).
    assert_eq!(parted("7", "seven.npy").n, 7);
}
