//! `scripts/image-experiment.sh` (the MNIST / CIFAR-10 tables, run over many sessions) against a
//! stand-in `nsgf` that logs its calls and writes placeholder outputs: the order of `all` (each
//! method trained and scored at NFE <= 20 first, then the larger NFEs), that a second run redoes
//! nothing, that a retrained run's samples are drawn and scored again, and the kept sample files.
//! Skipped (with a message) where `bash` or `jq` is missing.

use std::path::Path;
use std::process::Command;

/// The stand-in: `train` writes a checkpoint (`state.json`, kept when there is one: a finished
/// run resumed) and a timing; `sample`, `data export`, `eval fid-curve` / `neighbours` write their `--out`; `eval fid`
/// prints an FID of `10 + NFE` for `<method>-nfe<K>.npy` (so NFE 1 scores best) and 1.5 for other
/// images (the reference), or writes the statistics with `--save-stats`.
const FAKE: &str = r#"#!/usr/bin/env bash
echo "$*" >> "$LOG"
out=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[$i]}" = --out ] && out=${args[$((i + 1))]}
done
case "$1 $2" in
    "train "*)
        mkdir -p "$out"
        [ -f "$out/state.json" ] || echo '{"step": 5}' > "$out/state.json"
        echo '{"step": 5, "seconds": 120}' > "$out/timing.json" ;;
    "eval fid")
        if [[ "$*" == *--save-stats* ]]; then echo stats > "$4"
        elif [[ "$3" == *-nfe* ]]; then
            nfe=${3##*-nfe}
            echo "{\"fid\": $((10 + ${nfe%.npy}))}"
        else echo '{"fid": 1.5}'
        fi ;;
    *) [ -n "$out" ] && echo x > "$out" ;;
esac
"#;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `all` in `dir` with the stand-in; returns the calls it made in this run.
fn run_all(dir: &Path) -> Vec<String> {
    run_stage(dir, "all").1
}

/// Runs a stage in `dir` with the stand-in: its stdout and the calls it made.
fn run_stage(dir: &Path, stage: &str) -> (String, Vec<String>) {
    run_stage_with(dir, stage, &[])
}

/// `run_stage` with extra environment variables.
fn run_stage_with(dir: &Path, stage: &str, env: &[(&str, &str)]) -> (String, Vec<String>) {
    let log = dir.join("calls.log");
    let _ = std::fs::remove_file(&log);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/image-experiment.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(stage)
        .envs(env.iter().copied())
        .env("NSGF", dir.join("fake-nsgf"))
        .env("LOG", &log)
        .env("RUNS", dir.join("runs"))
        .env("OUT", dir.join("out"))
        .env("METHODS", "nsgfpp icfm sjko")
        .env("NFES", "20 10 60")
        .env("KEEP_SAMPLES", "1")
        .env("DATA", dir.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), calls)
}

/// `train <method>` / `sample <method> <nfe>` of the calls, in order.
fn steps(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| {
            let w: Vec<&str> = c.split_whitespace().collect();
            let arg = |flag: &str| {
                let i = w.iter().position(|x| *x == flag)?;
                w.get(i + 1).copied()
            };
            let run = |p: &str| p.rsplit('-').next().unwrap_or(p).to_string();
            match *w.first()? {
                "train" => Some(format!("train {}", run(arg("--out")?))),
                "sample" => Some(format!("sample {} {}", run(arg("--run")?), arg("--nfe")?)),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn all_scores_the_head_to_head_first_and_redraws_only_retrained_runs() {
    if !have("bash") || !have("jq") {
        eprintln!("skipped: needs bash and jq");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-nsgf");
    std::fs::write(&fake, FAKE).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let calls = run_all(dir.path());
    let want = [
        "train nsgfpp",
        "sample nsgfpp 20",
        "sample nsgfpp 10",
        "train icfm",
        "sample icfm 20",
        "sample icfm 10",
        "train sjko",
        "sample sjko 1",
        "sample nsgfpp 60",
        "sample icfm 60",
    ];
    assert_eq!(steps(&calls), want);
    let scored = |calls: &[String]| {
        calls
            .iter()
            .filter(|c| c.starts_with("eval fid ") && !c.contains("--save-stats"))
            .count()
    };
    // Seven cells and the reference (training images, evenly spaced, scored last).
    assert_eq!(scored(&calls), 8);
    let reference = calls
        .iter()
        .position(|c| c.starts_with("data export") && c.contains("--split train --out"))
        .expect("the reference's training images exported");
    assert!(
        calls[reference].ends_with("--limit 10000"),
        "{}",
        calls[reference]
    );
    assert!(
        calls[reference + 1].starts_with("eval fid")
            && calls[reference + 1].contains("reference-train.npy")
    );
    let out = dir.path().join("out");
    let table = std::fs::read_to_string(out.join("fid.md")).unwrap();
    assert!(
        table.contains("| method | training (steps, minutes) | NFE 1 | NFE 10 | NFE 20 | NFE 60 |"),
        "{table}"
    );
    assert!(
        table.contains("| nsgfpp | 5 steps, 2 min | – | 20.00 | 30.00 | 70.00 |"),
        "{table}"
    );
    assert!(
        table.contains("| sjko | 5 steps, 2 min | 11.00 | – | – | – |"),
        "{table}"
    );
    assert!(
        table.contains(
            "Reference: 10000 training images (evenly spaced) scored as samples, FID 1.50"
        ),
        "{table}"
    );
    // Each method's best cell kept, the others pruned.
    let mut kept: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("samples-"))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            "samples-icfm-nfe10.npy",
            "samples-nsgfpp-nfe10.npy",
            "samples-sjko-nfe1.npy"
        ]
    );

    // Fig. 8 from each method's samples at its largest NFE.
    assert!(out.join("neighbours-nsgfpp-nfe60.png").exists());
    assert!(out.join("neighbours-sjko-nfe1.png").exists());

    // Again: every run resumes (`train --resume`), nothing is drawn or scored twice.
    let calls = run_all(dir.path());
    assert_eq!(
        steps(&calls),
        ["train nsgfpp", "train icfm", "train sjko"],
        "{calls:?}"
    );
    assert!(calls
        .iter()
        .all(|c| !c.starts_with("train") || c.ends_with("--resume")));
    assert_eq!(scored(&calls), 0);

    // `status` says where each method stands and calls nothing.
    let (status, calls) = run_stage(dir.path(), "status");
    assert!(calls.is_empty(), "{calls:?}");
    assert!(
        status.contains("nsgfpp:\n  checkpoint state.json: step 5\n  NFE 20: FID 30\n"),
        "{status}"
    );
    assert!(status.contains("sjko:\n  checkpoint state.json: step 5\n  NFE 1: FID 11\n"));
    assert!(
        status.ends_with("reference (10000 training images): FID 1.5\n"),
        "{status}"
    );

    // A run whose checkpoint changed (retrained) has its cells drawn and scored again.
    std::fs::write(
        dir.path().join("runs/mnist-icfm/state.json"),
        r#"{"step": 6}"#,
    )
    .unwrap();
    let calls = run_all(dir.path());
    let redrawn: Vec<String> = steps(&calls)
        .into_iter()
        .filter(|s| s.starts_with("sample"))
        .collect();
    assert_eq!(
        redrawn,
        ["sample icfm 20", "sample icfm 10", "sample icfm 60"]
    );
    assert_eq!(scored(&calls), 3);

    // The machine is lost with its run folders: the table keeps their cells (fid.json carries
    // each cell's run, budget and CPU) on rows of their own, and the samples kept for them.
    std::fs::remove_dir_all(dir.path().join("runs")).unwrap();
    let (table, calls) = run_stage(dir.path(), "table");
    assert!(calls.is_empty(), "{calls:?}");
    assert!(
        table.contains("| nsgfpp (earlier run) | 5 steps, 2 min | – | 20.00 | 30.00 | 70.00 |"),
        "{table}"
    );
    assert!(
        table.contains("| sjko (earlier run) | 5 steps, 2 min | 11.00 | – | – | – |"),
        "{table}"
    );
    assert!(table.contains("nsgfpp (earlier run): scored "), "{table}");
    // ... and the reference's score, kept in reference.json like the cells.
    assert!(
        table.contains(
            "Reference: 10000 training images (evenly spaced) scored as samples, FID 1.50: the floor of this FID at 10000 samples (scored "
        ),
        "{table}"
    );
    let (status, _) = run_stage(dir.path(), "status");
    assert!(
        status.ends_with("reference (10000 training images): FID 1.5\n"),
        "{status}"
    );
    assert!(!table.contains("| nsgfpp |"), "{table}");
    let cells = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("fid.json")).unwrap()).unwrap()
    };
    assert_eq!(cells().as_array().unwrap().len(), 7);
    assert!(out.join("samples-nsgfpp-nfe10.npy").exists());
    // Its figures: Fig. 8 from the samples kept for each method's best cell.
    let (_, calls) = run_stage(dir.path(), "figures");
    let neighbours: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("eval neighbours "))
        .collect();
    assert_eq!(neighbours.len(), 3, "{calls:?}");
    assert!(
        neighbours[0].contains("out/samples-nsgfpp-nfe10.npy ")
            && neighbours[0].contains("out/neighbours-nsgfpp-nfe10.png "),
        "{calls:?}"
    );
    assert!(out.join("neighbours-sjko-nfe1.png").exists());

    // On the new machine, in the order ORDER gives (the table keeps METHODS' order): each
    // method trained again replaces its earlier cells as it scores them.
    let (_, calls) = run_stage_with(dir.path(), "all", &[("ORDER", "sjko icfm nsgfpp")]);
    assert_eq!(
        steps(&calls),
        [
            "train sjko",
            "sample sjko 1",
            "train icfm",
            "sample icfm 20",
            "sample icfm 10",
            "train nsgfpp",
            "sample nsgfpp 20",
            "sample nsgfpp 10",
            "sample icfm 60",
            "sample nsgfpp 60",
        ]
    );
    // The kept reference stands: no training images exported or scored again.
    assert!(
        calls.iter().all(|c| !c.contains("reference-train")),
        "{calls:?}"
    );
    let table = std::fs::read_to_string(out.join("fid.md")).unwrap();
    assert!(!table.contains("earlier run"), "{table}");
    assert!(table.contains("FID 1.50: the floor"), "{table}");
    // Another test set (REF_N) is another reference: scored again.
    let (_, calls) = run_stage_with(dir.path(), "reference", &[("REF_N", "5000")]);
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("eval fid") && c.contains("reference-train.npy")),
        "{calls:?}"
    );
    // Against the statistics of those 5,000 test images, made for it (not the whole set's),
    assert!(
        calls.iter().any(|c| c.starts_with("data export")
            && c.contains("--split test")
            && c.ends_with("--limit 5000")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("eval fid") && c.ends_with("--save-stats")),
        "{calls:?}"
    );
    // and a score against another test set is no score: `fid` scores every sample file again,
    // once; back on the whole test set, its statistics and the scores are made again.
    let scores = |env: &[(&str, &str)]| {
        let (_, calls) = run_stage_with(dir.path(), "fid", env);
        let stats = calls.iter().filter(|c| c.ends_with("--save-stats")).count();
        let cells = calls
            .iter()
            .filter(|c| c.starts_with("eval fid") && c.contains("-nfe"))
            .count();
        (stats, cells)
    };
    assert_eq!(scores(&[("REF_N", "5000")]), (0, 7));
    assert_eq!(scores(&[("REF_N", "5000")]), (0, 0));
    let (status, _) = run_stage(dir.path(), "status");
    assert!(status.contains("NFE 20: drawn, not scored"), "{status}");
    assert_eq!(scores(&[]), (1, 7));
    let (status, _) = run_stage(dir.path(), "status");
    assert!(status.contains("NFE 20: FID 30"), "{status}");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(
        rows[1].starts_with("| nsgfpp |") && rows[3].starts_with("| sjko |"),
        "{table}"
    );
    assert_eq!(cells().as_array().unwrap().len(), 7);
    assert!(cells()
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["steps"] == 5 && c["cpu"].is_string() && c["run"] != "none"));
}
