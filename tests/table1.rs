//! The Table 1 harness on a tiny configuration (one problem, NSGF and 2-RF, few steps): every
//! output is written, k-RF trains its lower stages first, finished cells are not recomputed,
//! and bad settings are clear errors.

mod common;

use nsgf::backend::CpuAutodiff;
use nsgf::data::toy2d::Problem;
use nsgf::train::table1::{run_table1, Cell, Method, Table1, Table1Settings};
use std::path::Path;
use std::str::FromStr;

const TINY_NSGF: &str = r#"
problem = "moons"
seed = 0
[nsgf]
steps = 4
eta = 1.0
batch = 64
[nsgf.sinkhorn]
blur = 0.1
scaling = 0.7
[pool]
batches = 2
[model]
hidden = 256
layers = 3
"#;

fn settings(configs: &Path) -> Table1Settings {
    Table1Settings {
        problems: vec!["moons".into()],
        methods: vec!["nsgf".into(), "2rf".into()],
        seeds: 2,
        eval_draws: 4,
        steps: 40,
        batch: 64,
        n_eval: 128,
        reflow_pairs: 256,
        reflow_steps: 10,
        configs: configs.to_path_buf(),
        ..Table1Settings::default()
    }
}

#[test]
fn tiny_table_runs_writes_outputs_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::write(configs.join("moons.toml"), TINY_NSGF).unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let s = settings(&configs);
    let dev = Default::default();
    let table = run_table1::<CpuAutodiff>(&s, &work, &out, &dev, false).unwrap();

    // Entries for the requested methods only; 1-RF was trained (2-RF's coupling needs it).
    let keys: Vec<&str> = table.entries.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(keys, ["nsgf", "2rf"]);
    assert!(work.join("moons/1rf/seed0/model.safetensors").exists());
    assert!(work.join("moons/1rf/seed1/cell.json").exists());
    for e in &table.entries {
        assert!(e.w2_10.mean.is_finite() && e.w2_10.mean > 0.0, "{e:?}");
        assert!(e.w2_100.mean.is_finite() && e.w2_100.mean > 0.0, "{e:?}");
        assert_eq!(e.curve_10.len(), 11);
        // The curve starts at the source draw: W2(N(0, I), moons) is large.
        assert!(e.curve_10[0] > 1.0, "{:?}", e.curve_10);
    }
    assert_eq!(table.entries[0].paper, Some((0.077, 0.067)));
    assert_eq!(table.floor.len(), 1);
    for f in [
        "table1.md",
        "table1.json",
        "paths_moons.png",
        "w2_curve_moons.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let md = std::fs::read_to_string(out.join("table1.md")).unwrap();
    assert!(
        md.contains("| NSGF |") && md.contains("| 2-RF |") && md.contains("floor"),
        "{md}"
    );
    assert!(md.contains("(0.077)"), "{md}");
    let json: Table1 =
        serde_json::from_slice(&std::fs::read(out.join("table1.json")).unwrap()).unwrap();
    assert_eq!(json.entries.len(), 2);
    assert_eq!(json.paired, table.paired);

    // Every model is scored on the same 4 test draws; its W2 is their mean.
    let read_cell = |m: &str, seed: u64| -> Cell {
        serde_json::from_slice(
            &std::fs::read(work.join(format!("moons/{m}/seed{seed}/cell.json"))).unwrap(),
        )
        .unwrap()
    };
    let cells: Vec<[Cell; 2]> = ["nsgf", "2rf"]
        .iter()
        .map(|m| [read_cell(m, 0), read_cell(m, 1)])
        .collect();
    for c in cells.iter().flatten() {
        assert_eq!((c.w2_10_draws.len(), c.w2_100_draws.len()), (4, 4));
        let mean = c.w2_10_draws.iter().sum::<f64>() / 4.0;
        assert!((c.w2_10 - mean).abs() < 1e-12, "{c:?}");
        // Different test draws give different W2.
        assert_ne!(c.w2_10_draws[0], c.w2_10_draws[1]);
    }
    // Paired comparison NSGF − 2-RF, by hand from the cells.
    assert_eq!(table.paired.len(), 2, "{:?}", table.paired);
    for p in &table.paired {
        assert_eq!((p.method.as_str(), p.other.as_str()), ("nsgf", "2rf"));
        let pick = |c: &Cell| {
            if p.steps == 10 {
                c.w2_10_draws.clone()
            } else {
                c.w2_100_draws.clone()
            }
        };
        let diffs: Vec<f64> = (0..2)
            .map(|s| {
                let (a, b) = (pick(&cells[0][s]), pick(&cells[1][s]));
                (a.iter().sum::<f64>() - b.iter().sum::<f64>()) / 4.0
            })
            .collect();
        assert!(
            (p.diff.mean - (diffs[0] + diffs[1]) / 2.0).abs() < 1e-12,
            "{p:?}"
        );
        assert_eq!(p.seeds_lower, diffs.iter().filter(|d| **d < 0.0).count());
        let lower: usize = (0..2)
            .map(|s| {
                let (a, b) = (pick(&cells[0][s]), pick(&cells[1][s]));
                a.iter().zip(&b).filter(|(x, y)| x < y).count()
            })
            .sum();
        assert_eq!((p.pairs_lower, p.pairs, p.seeds), (lower, 8, 2));
    }
    assert!(md.contains("## Paired: NSGF − other at 10 steps"), "{md}");
    assert!(md.contains("| 2-RF | "), "{md}");

    // Scoring on more draws re-scores the cached models without training them again: the first
    // draws keep their values (the draws are shared), loss and training time are kept.
    let model = work.join("moons/nsgf/seed0/model.safetensors");
    let model_stamp = std::fs::metadata(&model).unwrap().modified().unwrap();
    let more = Table1Settings {
        eval_draws: 5,
        methods: vec!["nsgf".into()],
        ..s.clone()
    };
    run_table1::<CpuAutodiff>(&more, &work, &out, &dev, false).unwrap();
    let c = read_cell("nsgf", 0);
    assert_eq!(c.w2_10_draws.len(), 5);
    assert_eq!(c.w2_10_draws[..4], cells[0][0].w2_10_draws[..]);
    assert_eq!(c.train_seconds, cells[0][0].train_seconds);
    assert_eq!(
        std::fs::metadata(&model).unwrap().modified().unwrap(),
        model_stamp
    );
    // Back to 4 draws for what follows.
    run_table1::<CpuAutodiff>(&s, &work, &out, &dev, false).unwrap();

    // Resume: cached cells are read back unchanged (not retrained) ...
    let cell = work.join("moons/2rf/seed1/cell.json");
    let before = std::fs::read(&cell).unwrap();
    let stamp = std::fs::metadata(&cell).unwrap().modified().unwrap();
    let again = run_table1::<CpuAutodiff>(&s, &work, &out, &dev, false).unwrap();
    assert_eq!(std::fs::read(&cell).unwrap(), before);
    assert_eq!(std::fs::metadata(&cell).unwrap().modified().unwrap(), stamp);
    // (JSON keeps 15–17 significant digits.)
    assert!((again.entries[1].w2_10.mean - table.entries[1].w2_10.mean).abs() < 1e-12);
    // ... also cells written before cells recorded their code revision (no `revision` key) ...
    let mut old: serde_json::Value = serde_json::from_slice(&before).unwrap();
    old.as_object_mut().unwrap().remove("revision").unwrap();
    let old = serde_json::to_vec_pretty(&old).unwrap();
    std::fs::write(&cell, &old).unwrap();
    let stamp = std::fs::metadata(&cell).unwrap().modified().unwrap();
    run_table1::<CpuAutodiff>(&s, &work, &out, &dev, false).unwrap();
    assert_eq!(std::fs::read(&cell).unwrap(), old);
    assert_eq!(std::fs::metadata(&cell).unwrap().modified().unwrap(), stamp);
    std::fs::write(&cell, &before).unwrap();
    // ... a cell made with other settings is recomputed (k-RF: every stage) ...
    let longer = Table1Settings {
        steps: 41,
        methods: vec!["2rf".into()],
        ..s.clone()
    };
    run_table1::<CpuAutodiff>(&longer, &work, &out, &dev, false).unwrap();
    assert_ne!(std::fs::read(&cell).unwrap(), before);
    let c: Cell =
        serde_json::from_slice(&std::fs::read(work.join("moons/1rf/seed0/cell.json")).unwrap())
            .unwrap();
    assert!(c.settings.contains("steps=41"), "{}", c.settings);
    // ... editing the NSGF config recomputes the NSGF cells (only those) ...
    let nsgf_cell = work.join("moons/nsgf/seed0/cell.json");
    let nsgf_before = std::fs::read(&nsgf_cell).unwrap();
    let rf_before = std::fs::read(work.join("moons/1rf/seed0/cell.json")).unwrap();
    std::fs::write(
        configs.join("moons.toml"),
        TINY_NSGF.replace("batches = 2", "batches = 3"),
    )
    .unwrap();
    let only_nsgf = Table1Settings {
        methods: vec!["nsgf".into()],
        ..s.clone()
    };
    run_table1::<CpuAutodiff>(&only_nsgf, &work, &out, &dev, false).unwrap();
    assert_ne!(std::fs::read(&nsgf_cell).unwrap(), nsgf_before);
    assert_eq!(
        std::fs::read(work.join("moons/1rf/seed0/cell.json")).unwrap(),
        rf_before
    );
    // ... a cell trained by another revision of its method's code is retrained from scratch
    // (its folder emptied first) ...
    let nsgf_dir = work.join("moons/nsgf/seed0");
    let mut c: Cell = serde_json::from_slice(&std::fs::read(&nsgf_cell).unwrap()).unwrap();
    assert_eq!(c.revision, Method::Nsgf.revision());
    c.revision += 7;
    std::fs::write(&nsgf_cell, serde_json::to_vec(&c).unwrap()).unwrap();
    std::fs::write(nsgf_dir.join("stale-marker"), b"old").unwrap();
    run_table1::<CpuAutodiff>(&only_nsgf, &work, &out, &dev, false).unwrap();
    let c: Cell = serde_json::from_slice(&std::fs::read(&nsgf_cell).unwrap()).unwrap();
    assert_eq!(c.revision, Method::Nsgf.revision());
    assert!(!nsgf_dir.join("stale-marker").exists());
    // ... and a removed cell is recomputed.
    std::fs::remove_file(&cell).unwrap();
    run_table1::<CpuAutodiff>(&s, &work, &out, &dev, false).unwrap();
    assert!(cell.exists());
}

#[test]
fn bad_settings_are_clear_errors() {
    let s = Table1Settings {
        methods: vec!["nsgf".into(), "ddpm".into()],
        ..Table1Settings::default()
    };
    let e = s.parse().unwrap_err().to_string();
    assert!(e.contains("ddpm") && e.contains("otcfm"), "{e}");
    let s = Table1Settings {
        problems: vec!["spirals".into()],
        ..Table1Settings::default()
    };
    let e = s.parse().unwrap_err().to_string();
    assert!(e.contains("spirals") && e.contains("checkerboard"), "{e}");
    let s = Table1Settings {
        problems: vec!["moons".into(), "scurve".into(), "moons".into()],
        ..Table1Settings::default()
    };
    let e = s.parse().unwrap_err().to_string();
    assert!(e.contains("moons is listed twice"), "{e}");
    let s = Table1Settings {
        methods: vec!["1rf".into(), "1-rf".into()],
        ..Table1Settings::default()
    };
    assert!(s.parse().unwrap_err().to_string().contains("listed twice"));
    let s = Table1Settings {
        seeds: 0,
        ..Table1Settings::default()
    };
    assert!(s.parse().unwrap_err().to_string().contains("seeds"));
    let s = Table1Settings {
        sigma: -0.1,
        ..Table1Settings::default()
    };
    assert!(s.parse().unwrap_err().to_string().contains("sigma"));
    // A missing NSGF config names the file.
    let dir = tempfile::tempdir().unwrap();
    let s = Table1Settings {
        problems: vec!["moons".into()],
        methods: vec!["nsgf".into()],
        seeds: 1,
        steps: 2,
        configs: dir.path().join("nowhere"),
        ..Table1Settings::default()
    };
    let e = run_table1::<CpuAutodiff>(
        &s,
        &dir.path().join("w"),
        &dir.path().join("o"),
        &Default::default(),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("moons.toml"), "{e}");
}

#[test]
fn method_names_round_trip() {
    for m in Method::ALL {
        assert_eq!(m.key().parse::<Method>().unwrap(), m);
        assert_eq!(m.label().parse::<Method>().unwrap(), m);
    }
    assert_eq!("OT-CFM".parse::<Method>().unwrap(), Method::OtCfm);
    assert!("0rf".parse::<Method>().is_err());
}

const TINY_NSGFPP: &str = r#"
method = "nsgfpp"
problem = "moons"
[nsgf]
steps = 3
eta = 0.3
batch = 64
[nsgf.sinkhorn]
blur = 0.1
scaling = 0.7
[pool]
batches = 2
"#;

#[test]
fn nsgfpp_is_a_table_method_at_equal_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(configs.join("nsgfpp")).unwrap();
    std::fs::write(configs.join("nsgfpp/moons.toml"), TINY_NSGFPP).unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let s = Table1Settings {
        methods: vec!["nsgfpp".into()],
        seeds: 1,
        ..settings(&configs)
    };
    let dev = Default::default();
    let table = run_table1::<CpuAutodiff>(&s, &work, &out, &dev, false).unwrap();
    let e = &table.entries[0];
    assert_eq!((e.method.as_str(), e.label.as_str()), ("nsgfpp", "NSGF++"));
    assert_eq!(e.paper, None);
    // 11 states: the start, 3 NSGF steps, t_phi (state unchanged), 6 NSF steps.
    assert_eq!(e.curve_10.len(), 11);
    assert_eq!(e.curve_10[4], e.curve_10[3]);
    // The phases lower W2: after the last phase well below after the first (the tiny networks'
    // initialisation, drawn from the backend's global RNG that parallel tests reseed, decides
    // where phase 0 lands, sometimes above the source).
    assert!(e.curve_10[10] < 0.9 * e.curve_10[1], "{:?}", e.curve_10);
    assert!(e.w2_100.mean.is_finite());
    for f in ["nsgf", "nsf", "time"] {
        assert!(work
            .join(format!("moons/nsgfpp/seed0/{f}/model.safetensors"))
            .exists());
    }
    assert!(out.join("paths_moons.png").exists());
    assert_eq!("nsgf++".parse::<Method>().unwrap(), Method::Nsgfpp);
}

#[test]
fn jko_flow_and_ept_are_table_methods_with_a_run_per_step_count() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    for m in ["jko", "ept"] {
        std::fs::create_dir_all(configs.join(m)).unwrap();
        std::fs::write(
            configs.join(m).join("moons.toml"),
            format!(
                "method = \"{m}\"\nproblem = \"moons\"\nsteps = 10\nparticles = 256\nbatch = 64\n\
                 [jko]\na = 2.0\nhidden = 16\nlayers = 1\n[ept]\neta = 0.5\nmax_step = 0.5\nhidden = 16\nlayers = 1\n"
            ),
        )
        .unwrap();
    }
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let s = Table1Settings {
        methods: vec!["jko".into(), "ept".into()],
        seeds: 1,
        steps: 1000,
        ..settings(&configs)
    };
    let dev = Default::default();
    let table = run_table1::<CpuAutodiff>(&s, &work, &out, &dev, false).unwrap();
    for (e, (key, label)) in table
        .entries
        .iter()
        .zip([("jko", "JKO-Flow"), ("ept", "EPT")])
    {
        assert_eq!((e.method.as_str(), e.label.as_str()), (key, label));
        assert_eq!(
            e.paper,
            Method::from_str(key).unwrap().paper(Problem::Moons)
        );
        // The 10-step run's 11 states; it moves towards the data.
        assert_eq!(e.curve_10.len(), 11);
        assert!(e.curve_10[10] < e.curve_10[0], "{key}: {:?}", e.curve_10);
        assert!(e.w2_100.mean.is_finite());
        for k in ["k10/steps/0009.safetensors", "k100/steps/0099.safetensors"] {
            assert!(work.join(format!("moons/{key}/seed0/{k}")).exists());
        }
    }
}

#[test]
fn sjko_is_a_table_method_with_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(configs.join("sjko")).unwrap();
    std::fs::write(
        configs.join("sjko/moons.toml"),
        "method = \"sjko\"\nproblem = \"moons\"\nphases = 10\nbatch = 64\nhidden = 16\nblocks = 1\nlr_g = 1e-3\nlr_d = 1e-3\n",
    )
    .unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let s = Table1Settings {
        methods: vec!["sjko".into()],
        seeds: 1,
        steps: 200,
        ..settings(&configs)
    };
    let table = run_table1::<CpuAutodiff>(&s, &work, &out, &Default::default(), false).unwrap();
    let e = &table.entries[0];
    assert_eq!((e.method.as_str(), e.label.as_str()), ("sjko", "S-JKO"));
    assert_eq!(e.paper, None);
    // One generator call: the same model and draws in both columns; the path is the source
    // and the generator at the end of each of the 10 phases (20 iterations each).
    assert_eq!(e.w2_10.mean, e.w2_100.mean);
    assert_eq!(e.curve_10.len(), 11);
    // The phases lower W2: after the last phase well below after the first (the tiny networks'
    // initialisation, drawn from the backend's global RNG that parallel tests reseed, decides
    // where phase 0 lands, sometimes above the source).
    assert!(e.curve_10[10] < 0.9 * e.curve_10[1], "{:?}", e.curve_10);
    let cfg = std::fs::read_to_string(work.join("moons/sjko/seed0/config.toml")).unwrap();
    assert!(cfg.contains("iterations = 20"), "{cfg}");
    let md = std::fs::read_to_string(out.join("table1.md")).unwrap();
    assert!(md.contains("| S-JKO |") && md.contains("NFE = 1"), "{md}");

    // A cell whose folder holds a run of the same config resumes it instead of training again
    // (here: finished, so nothing is trained); the weights and the scores are the same.
    let cell = work.join("moons/sjko/seed0");
    let model = std::fs::read(cell.join("generator/model.safetensors")).unwrap();
    let metrics = std::fs::read(cell.join("metrics.jsonl")).unwrap();
    std::fs::remove_file(cell.join("cell.json")).unwrap();
    let again = run_table1::<CpuAutodiff>(&s, &work, &out, &Default::default(), false).unwrap();
    assert_eq!(again.entries[0].w2_10.mean, e.w2_10.mean);
    assert!(std::fs::read(cell.join("generator/model.safetensors")).unwrap() == model);
    assert!(std::fs::read(cell.join("metrics.jsonl")).unwrap() == metrics);
}

/// `--jobs 2` trains the problems by two child processes; the table equals one process's
/// (every cell seeds itself), apart from the training seconds.
#[test]
fn the_cli_trains_problems_in_parallel_processes_to_the_same_table() {
    let dir = tempfile::tempdir().unwrap();
    let run = |jobs: &str| {
        // The children get the paths as they are: the work folder's name is not UTF-8.
        #[cfg(unix)]
        let name: std::ffi::OsString = {
            use std::os::unix::ffi::OsStringExt;
            std::ffi::OsString::from_vec([b"work-\xff".as_slice(), jobs.as_bytes()].concat())
        };
        #[cfg(not(unix))]
        let name = std::ffi::OsString::from(format!("work{jobs}"));
        let (out, work) = (dir.path().join(format!("out{jobs}")), dir.path().join(name));
        let args: Vec<std::ffi::OsString> = [
            "bench",
            "table1",
            "--methods",
            "otcfm,2rf",
            "--problems",
            "moons,scurve",
            "--seeds",
            "1",
            "--draws",
            "2",
            "--steps",
            "20",
            "--n",
            "128",
            "--reflow-pairs",
            "256",
            "--jobs",
            jobs,
        ]
        .iter()
        .map(Into::into)
        .chain(["--out".into(), out.clone().into_os_string()])
        .chain(["--work".into(), work.clone().into_os_string()])
        .collect();
        let err = common::nsgf_ok(args);
        let table: Table1 =
            serde_json::from_slice(&std::fs::read(out.join("table1.json")).unwrap()).unwrap();
        (table, work, err)
    };
    let (one, _, _) = run("1");
    let (two, work, err) = run("2");
    assert!(
        err.contains("moons: done") && err.contains("scurve: done"),
        "{err}"
    );
    assert!(work.join("jobs/moons.log").exists() && work.join("jobs/scurve.log").exists());
    // Nothing went anywhere but the folders named (a mangled work path would be a fifth).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    // The children only train cells (`--cells-only`): no per-problem tables or figures of
    // theirs; the parent drew every figure once.
    assert!(!work.join("jobs/moons").exists() && !work.join("jobs/scurve").exists());
    let out2 = dir.path().join("out2");
    for f in ["paths_moons.png", "paths_scurve.png", "w2_curve_scurve.png"] {
        assert!(out2.join(f).exists(), "{f}");
    }
    assert_eq!(one.entries.len(), 4);
    for (a, b) in one.entries.iter().zip(&two.entries) {
        assert_eq!((&a.problem, &a.method), (&b.problem, &b.method));
        assert_eq!(
            a.w2_10.mean.to_bits(),
            b.w2_10.mean.to_bits(),
            "{} {}",
            a.problem,
            a.method
        );
        assert_eq!(a.w2_100.mean.to_bits(), b.w2_100.mean.to_bits());
        assert_eq!(a.curve_10, b.curve_10);
    }
    let zero = common::nsgf(["bench", "table1", "--jobs", "0", "--out", "x"]);
    assert!(!zero.status.success());
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--jobs"));
}

/// A parent killed outright (SIGKILL) cannot pass a stop on: its children get SIGTERM from the
/// kernel (PR_SET_PDEATHSIG), checkpoint and exit instead of training on as orphans.
#[cfg(target_os = "linux")]
#[test]
fn children_stop_when_the_parent_is_killed() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let mut parent = Command::new(env!("CARGO_BIN_EXE_nsgf"))
        .args([
            "bench",
            "table1",
            "--methods",
            "otcfm",
            "--problems",
            "moons,scurve",
        ])
        .args([
            "--seeds", "1", "--draws", "1", "--steps", "1000000", "--jobs", "2",
        ])
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--work")
        .arg(&work)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let children_of = |pid: u32| -> Vec<u32> {
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            if fields[1] == pid.to_string() && fields[0] != "Z" {
                found.push(child);
            }
        }
        found
    };
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
            .unwrap_or(false)
    };
    // Both children started and train (their cells' folders exist: past the signal handler).
    let t0 = Instant::now();
    let children = loop {
        let c = children_of(parent.id());
        let training = ["moons", "scurve"]
            .iter()
            .all(|p| work.join(p).join("otcfm/seed0").exists());
        if c.len() == 2 && training {
            break c;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "children not started: {c:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    parent.kill().unwrap(); // SIGKILL
    parent.wait().unwrap();
    let t1 = Instant::now();
    while children.iter().any(|&c| alive(c)) {
        if t1.elapsed() > Duration::from_secs(60) {
            for c in &children {
                let _ = Command::new("kill").args(["-9", &c.to_string()]).status();
            }
            panic!("children still training 60 s after the parent was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in ["moons", "scurve"] {
        let log = std::fs::read_to_string(work.join(format!("jobs/{p}.log"))).unwrap();
        assert!(
            log.contains("interrupt: finishing the current step"),
            "{p}: {log}"
        );
    }
}
