//! The figures of the image experiments: `nsgf eval neighbours` (Fig. 8: copies of reference
//! images are found at distance 0, and the grid and the JSON are written) and `nsgf eval
//! fid-curve` (FID against NFE from the experiment's `fid.json`).

mod common;

use nsgf::data::images::{write_image_npy, ImageBatch};

#[test]
fn the_cli_finds_copies_and_draws_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let pool: Vec<u8> = (0..5 * 16).map(|i| (i * 37 % 256) as u8).collect();
    let reference = ImageBatch::new(5, 4, 4, 1, pool.clone()).unwrap();
    // Samples: reference images 3 and 1, exactly.
    let samples = ImageBatch::new(2, 4, 4, 1, [&pool[48..64], &pool[16..32]].concat()).unwrap();
    let (s, r) = (dir.path().join("s.npy"), dir.path().join("r.npy"));
    write_image_npy(&s, &samples).unwrap();
    write_image_npy(&r, &reference).unwrap();
    let (png, json) = (dir.path().join("nn.png"), dir.path().join("nn.json"));
    common::nsgf_ok([
        "eval".as_ref(),
        "neighbours".as_ref(),
        s.as_os_str(),
        r.as_os_str(),
        "--n".as_ref(),
        "8".as_ref(),
        "--out".as_ref(),
        png.as_os_str(),
        "--json".as_ref(),
        json.as_os_str(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["mean_rms"], 0.0);
    let idx: Vec<u64> = v["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, [3, 1]);
    assert!(image::open(&png).is_ok());
}

#[test]
fn the_fid_curve_is_drawn_from_the_table_and_bad_tables_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("fid.json");
    let png = dir.path().join("fid.png");
    let run = |text: &str| {
        std::fs::write(&table, text).unwrap();
        let args = ["eval".as_ref(), "fid-curve".as_ref(), table.as_os_str()];
        common::nsgf(args.into_iter().chain(["--out".as_ref(), png.as_os_str()]))
    };
    let out = run(
        r#"[{"method": "nsgfpp", "nfe": 20, "samples": 10, "fid": 30.5},
        {"method": "nsgfpp", "nfe": 10, "samples": 10, "fid": 41.0},
        {"method": "icfm", "nfe": 10, "samples": 10, "fid": 90.0},
        {"method": "sjko", "nfe": 1, "samples": 10, "fid": 120.0}]"#,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (800, 550));

    for (text, message) in [
        ("[]", "no FID entries"),
        (
            r#"[{"method": "icfm", "nfe": 10, "fid": -1.0}]"#,
            "icfm at NFE 10",
        ),
        (r#"[{"method": "icfm", "nfe": 10}]"#, "expected a JSON list"),
        ("{", "expected a JSON list"),
    ] {
        let out = run(text);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(message),
            "{text}: {err}"
        );
    }
}
