//! `nsgf eval neighbours` (Fig. 8): copies of reference images are found at distance 0, and the
//! grid and the JSON are written.

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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nsgf"))
        .args(["eval", "neighbours"])
        .args([&s, &r])
        .args(["--n", "8", "--out"])
        .arg(&png)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
