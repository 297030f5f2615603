//! FID / IS against pytorch-fid golden values (`tests/fixtures/fid`, see its README) and
//! bad-input handling. Tests that need the FID Inception weights look for them in
//! `$NSGF_FID_WEIGHTS` or `../shared/data/fid` (relative to the crate root) and are skipped with
//! a message when absent.

use burn::tensor::Tensor;
use nsgf::backend::Cpu;
use nsgf::data::images::{ImageBatch, ImageSource};
use nsgf::io::{NpyArray, NpyData, SafetensorsStore};
use nsgf::metrics::fid::{self, FeatureStats};
use nsgf::models::inception::FidInception;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fid")
}

fn golden() -> SafetensorsStore {
    SafetensorsStore::open(fixture_dir().join("fid_golden.safetensors")).unwrap()
}

fn golden_json() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_dir().join("fid_golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn u8s(store: &SafetensorsStore, name: &str) -> (Vec<usize>, Vec<u8>) {
    let a = store.get(name).unwrap();
    match &a.data {
        NpyData::U8(v) => (a.shape.clone(), v.clone()),
        _ => panic!("{name} is not u8"),
    }
}

fn f32s(store: &SafetensorsStore, name: &str) -> Vec<f32> {
    store.get(name).unwrap().to_f32()
}

/// The FID weights, or `None` (with a message) when they are not available.
fn weights() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("NSGF_FID_WEIGHTS").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fid")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.exists());
    if found.is_none() {
        eprintln!(
            "SKIPPED: FID Inception weights not found (set NSGF_FID_WEIGHTS or provide \
             ../shared/data/fid)"
        );
    }
    found
}

fn mnist_batch(g: &SafetensorsStore) -> ImageBatch {
    let (shape, data) = u8s(g, "mnist_u8");
    ImageBatch::new(shape[0], shape[1], shape[2], 1, data).unwrap()
}

fn cifar_batch(g: &SafetensorsStore) -> ImageBatch {
    let (shape, data) = u8s(g, "cifar_u8");
    ImageBatch::new(shape[0], shape[1], shape[2], shape[3], data).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn resize_matches_pytorch_interpolate() {
    let g = golden();
    let dev = Default::default();
    for (batch, name) in [
        (mnist_batch(&g), "pre_mnist0"),
        (cifar_batch(&g), "pre_cifar0"),
    ] {
        let x = fid::preprocess::<Cpu>(&batch.slice(0, 1), &dev).unwrap();
        assert_eq!(x.dims(), [1, 3, 299, 299]);
        let ours = x.into_data().into_vec::<f32>().unwrap();
        // The repository copy stores one channel of the grey MNIST input (its three channels are
        // identical in the shared fixture), to stay small; expand it back.
        let want = f32s(&g, name);
        let want = if want.len() == 299 * 299 {
            want.repeat(3)
        } else {
            want
        };
        let diff = max_abs_diff(&ours, &want);
        eprintln!("{name}: max |diff| = {diff:e}");
        assert!(diff < 1e-5, "{name}: max |diff| = {diff}");
    }
}

#[test]
fn golden_frechet_distance_from_golden_features() {
    let g = golden();
    let j = golden_json();
    let f = &j["frechet"];
    let a = FeatureStats::from_features(&f32s(&g, "feat_mnist"), 16, 2048).unwrap();
    let b = FeatureStats::from_features(&f32s(&g, "feat_cifar"), 16, 2048).unwrap();
    let mu_m = g.get("mu_mnist").unwrap().to_f64();
    assert!(a.mu.iter().zip(&mu_m).all(|(x, y)| (x - y).abs() < 1e-12));
    let d = fid::frechet_distance(&a, &b).unwrap();
    eprintln!("{d:?}");
    let want = f["fid"].as_f64().unwrap();
    assert!(rel(d.fid, want) < 1e-6, "FID {} vs {want}", d.fid);
    assert!(rel(d.mean_term, f["mean_term"].as_f64().unwrap()) < 1e-12);
    assert!(rel(d.trace_sigma1, f["trace_sigma1"].as_f64().unwrap()) < 1e-12);
    assert!(rel(d.trace_sigma2, f["trace_sigma2"].as_f64().unwrap()) < 1e-12);
    assert!(rel(d.trace_sqrt, f["trace_sqrt_term"].as_f64().unwrap()) < 1e-5);
    assert!(!d.offset_used);

    // Symmetric, and ~0 against itself; on the first 256 feature dimensions (a 2048-d distance
    // costs seconds in the unoptimised test build; the unit tests cover the algebra).
    let sub = |name: &str| -> FeatureStats {
        let f = f32s(&g, name);
        let x: Vec<f32> = f.chunks(2048).flat_map(|r| r[..256].to_vec()).collect();
        FeatureStats::from_features(&x, 16, 256).unwrap()
    };
    let (a, b) = (sub("feat_mnist"), sub("feat_cifar"));
    let ab = fid::frechet_distance(&a, &b).unwrap();
    let ba = fid::frechet_distance(&b, &a).unwrap();
    assert!(rel(ab.fid, ba.fid) < 1e-9, "{} vs {}", ab.fid, ba.fid);
    let aa = fid::frechet_distance(&a, &a).unwrap();
    assert!(
        aa.fid.abs() < 1e-9 * a.sigma.iter().step_by(257).sum::<f64>(),
        "self FID {}",
        aa.fid
    );
}

/// A `sigma` that is not a covariance (asymmetric, or a negative variance) is refused: it gave
/// a negative FID, or 0 for `-I`, without a word.
#[test]
fn statistics_that_are_not_covariances_are_refused() {
    let ok = FeatureStats::new(vec![0.0; 2], vec![2.0, 0.5, 0.5 + 1e-12, 1.0], 0);
    assert!(ok.is_ok());
    let e = FeatureStats::new(vec![0.0; 2], vec![2.0, 0.5, -0.3, 1.0], 0).unwrap_err();
    assert!(e.to_string().contains("not symmetric"), "{e}");
    let e = FeatureStats::new(vec![0.0; 2], vec![-1.0, 0.0, 0.0, -1.0], 0).unwrap_err();
    assert!(e.to_string().contains("diagonal"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.npz");
    nsgf::io::write_npz(
        &p,
        &[
            ("mu", NpyArray::f64(vec![2], vec![0.0; 2])),
            ("sigma", NpyArray::f64(vec![2, 2], vec![1.0, 2.0, 0.0, 1.0])),
        ],
    )
    .unwrap();
    let e = FeatureStats::load_npz(&p).unwrap_err().to_string();
    assert!(e.contains("bad.npz") && e.contains("not symmetric"), "{e}");
}

#[test]
fn stats_npz_round_trip_gives_same_distance() {
    let g = golden();
    let a = FeatureStats::from_features(&f32s(&g, "feat_mnist"), 16, 2048).unwrap();
    let b = FeatureStats::from_features(&f32s(&g, "feat_cifar"), 16, 2048).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npz");
    a.save_npz(&p).unwrap();
    let a2 = FeatureStats::load_npz(&p).unwrap();
    assert_eq!(a2.mu, a.mu);
    assert_eq!(a2.sigma, a.sigma);
    assert_eq!(a.n, 16);
    assert_ne!(a.mu, b.mu);
}

#[test]
fn features_match_pytorch_fid() {
    let Some(w) = weights() else { return };
    let g = golden();
    let dev = Default::default();
    let model = FidInception::<Cpu>::load(&w, &dev).unwrap();
    assert_eq!(model.num_classes(), None);
    // One batch of 32, [mnist 0..15, cifar 0..15], as the fixtures were made.
    let x = Tensor::cat(
        vec![
            fid::preprocess::<Cpu>(&mnist_batch(&g), &dev).unwrap(),
            fid::preprocess::<Cpu>(&cifar_batch(&g), &dev).unwrap(),
        ],
        0,
    );
    let feats = model
        .pool3(x)
        .unwrap()
        .into_data()
        .into_vec::<f32>()
        .unwrap();
    assert_eq!(feats.len(), 32 * 2048);
    let (fm, fc) = feats.split_at(16 * 2048);
    let (gm, gc) = (f32s(&g, "feat_mnist"), f32s(&g, "feat_cifar"));
    for (ours, theirs, name) in [(fm, &gm, "mnist"), (fc, &gc, "cifar")] {
        let diff = max_abs_diff(ours, theirs);
        let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        eprintln!("feat_{name}: max |diff| = {diff:e} (max |feature| {scale})");
        assert!(
            diff <= 1e-4 * scale,
            "feat_{name}: max |diff| {diff} > 1e-4 * {scale}"
        );
    }
    // FID from our features vs the golden value (README: expect ~1e-2 from feature differences).
    let a = FeatureStats::from_features(fm, 16, 2048).unwrap();
    let b = FeatureStats::from_features(fc, 16, 2048).unwrap();
    let d = fid::frechet_distance(&a, &b).unwrap().fid;
    let want = golden_json()["frechet"]["fid"].as_f64().unwrap();
    eprintln!("FID from our features: {d} (golden {want})");
    assert!((d - want).abs() < 1e-2, "{d} vs {want}");

    // Batch size does not matter (compute_features in batches of 2: 2 + 1).
    let src = ImageSource::from(cifar_batch(&g).slice(0, 3));
    let f3 = fid::compute_features(&model, &src, 2, &dev, &mut |_| {}).unwrap();
    assert!(max_abs_diff(&f3, &fc[..3 * 2048]) < 1e-4);
}

#[test]
fn weights_errors_name_the_tensor() {
    let Some(w) = weights() else { return };
    let dev = Default::default();
    let mut store = SafetensorsStore::open(&w).unwrap();
    assert_eq!(store.len(), 376);

    let name = "mixed_5.tower.conv_1.weight";
    let good = store.remove(name).unwrap();
    let e = FidInception::<Cpu>::from_store(&store, &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains(name), "{e}");

    store.insert(
        name,
        NpyArray::f32(vec![160, 160, 7, 1], vec![0.0; 160 * 160 * 7]),
    );
    let e = FidInception::<Cpu>::from_store(&store, &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains(name) && e.contains("[160, 160, 7, 1]"), "{e}");
    store.insert(name, good);

    // A classifier head with an unusual class count is refused, naming the tensor.
    store.insert("fc.weight", NpyArray::f32(vec![10, 2048], vec![0.0; 20480]));
    store.insert("fc.bias", NpyArray::f32(vec![10], vec![0.0; 10]));
    let e = FidInception::<Cpu>::from_store(&store, &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fc.weight"), "{e}");
}

#[cfg(unix)]
#[test]
fn missing_or_mismatched_shards_are_reported() {
    let Some(w) = weights() else { return };
    let index = w.join("inception-fid.safetensors.index.json");
    if !index.is_file() {
        eprintln!("SKIPPED: {} is not the sharded checkpoint", w.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        &index,
        dir.path().join("inception-fid.safetensors.index.json"),
    )
    .unwrap();
    let shard1 = "inception-fid-00001-of-00002.safetensors";
    let shard2 = "inception-fid-00002-of-00002.safetensors";
    std::os::unix::fs::symlink(w.join(shard1), dir.path().join(shard1)).unwrap();
    let e = FidInception::<Cpu>::load(dir.path(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains(shard2) && e.contains("missing"), "{e}");

    // Shard 2 replaced by shard 1: tensors of shard 2 are not found where the index says.
    std::os::unix::fs::symlink(w.join(shard1), dir.path().join(shard2)).unwrap();
    let e = SafetensorsStore::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("tensor `") && e.contains(shard2), "{e}");
}

#[test]
fn inception_score_needs_a_classifier_and_uses_one_when_present() {
    let Some(w) = weights() else { return };
    let g = golden();
    let dev = Default::default();
    let mut store = SafetensorsStore::open(&w).unwrap();
    let model = FidInception::<Cpu>::from_store(&store, &dev).unwrap();
    let src = ImageSource::from(cifar_batch(&g).slice(0, 4));
    let e = fid::compute_inception_score(&model, &src, 4, 2, &dev, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no classifier head"), "{e}");

    // A 1008-class head with zero weights: every image gets the same p(y|x), so IS = 1.
    let bias: Vec<f32> = (0..1008).map(|i| (i % 7) as f32 * 0.1).collect();
    store.insert(
        "fc.weight",
        NpyArray::f32(vec![1008, 2048], vec![0.0; 1008 * 2048]),
    );
    store.insert("fc.bias", NpyArray::f32(vec![1008], bias));
    let model = FidInception::<Cpu>::from_store(&store, &dev).unwrap();
    assert_eq!(model.num_classes(), Some(1008));
    let s = fid::compute_inception_score(&model, &src, 4, 2, &dev, &mut |_| {}).unwrap();
    assert_eq!((s.n, s.splits), (4, 2));
    assert!((s.mean - 1.0).abs() < 1e-9 && s.std < 1e-9, "{s:?}");
}

fn write_pngs(dir: &Path, batch: &ImageBatch) {
    std::fs::create_dir_all(dir).unwrap();
    let per = batch.height * batch.width * batch.channels;
    for i in 0..batch.n {
        let px = batch.data[i * per..(i + 1) * per].to_vec();
        let (w, h) = (batch.width as u32, batch.height as u32);
        let path = dir.join(format!("{i:03}.png"));
        if batch.channels == 1 {
            image::GrayImage::from_raw(w, h, px)
                .unwrap()
                .save(path)
                .unwrap();
        } else {
            image::RgbImage::from_raw(w, h, px)
                .unwrap()
                .save(path)
                .unwrap();
        }
    }
}

/// Runs `nsgf` with the given arguments; returns (success, stdout, stderr).
fn run_cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nsgf"))
        .args(args)
        .env_remove("NSGF_FID_WEIGHTS")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_fid_on_folders_npy_and_stats_files() {
    let Some(w) = weights() else { return };
    let g = golden();
    let k = 3; // images per set (small: the point is the wiring; parity is tested above)
    let dir = tempfile::tempdir().unwrap();
    let (da, db) = (dir.path().join("mnist"), dir.path().join("cifar"));
    write_pngs(&da, &mnist_batch(&g).slice(0, k));
    let cifar = cifar_batch(&g).slice(0, k);
    write_pngs(&db, &cifar);
    let npy = dir.path().join("cifar.npy");
    nsgf::io::write_npy(&npy, &NpyArray::u8(vec![k, 32, 32, 3], cifar.data.clone())).unwrap();
    let (sa, sb) = (dir.path().join("mnist.npz"), dir.path().join("cifar.npz"));
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let w = p(&w);

    // --save-stats on a grey folder and on an RGB folder.
    for (src, out) in [(&da, &sa), (&db, &sb)] {
        let (ok, _, err) = run_cli(&[
            "eval",
            "fid",
            "--save-stats",
            &p(src),
            &p(out),
            "--weights",
            &w,
        ]);
        assert!(ok, "{err}");
    }
    let golden_stats =
        |name: &str| FeatureStats::from_features(&f32s(&g, name)[..k * 2048], k, 2048).unwrap();
    let (ga, gb) = (golden_stats("feat_mnist"), golden_stats("feat_cifar"));
    let (ra, rb) = (
        FeatureStats::load_npz(&sa).unwrap(),
        FeatureStats::load_npz(&sb).unwrap(),
    );
    for (ours, theirs) in [(&ra, &ga), (&rb, &gb)] {
        let diff = ours
            .mu
            .iter()
            .zip(&theirs.mu)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-4, "mu differs by {diff}");
    }

    // Stats file vs .npy array (the model runs on the .npy), JSON output, odd batch size.
    let (ok, out, err) = run_cli(&[
        "eval",
        "fid",
        &p(&sa),
        &p(&npy),
        "--json",
        "--batch-size",
        "2",
        "--weights",
        &w,
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let want = fid::frechet_distance(&ga, &gb).unwrap().fid;
    let got = v["fid"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-2, "{got} vs {want}");
    assert_eq!(v["n_b"].as_u64(), Some(k as u64));

    // An .npy's features go through resumable parts (`<npy>.fid-parts/`, removed at the end;
    // a stale folder of another key is not reused): the statistics equal the one-pass ones of
    // the same images as a PNG folder, bit for bit.
    let parts = dir.path().join("cifar.npy.fid-parts");
    assert!(!parts.exists());
    std::fs::create_dir(&parts).unwrap();
    std::fs::write(parts.join("key.txt"), "another computation").unwrap();
    nsgf::io::write_npz(
        parts.join("part-00000.npz"),
        &[("x", NpyArray::f32(vec![k, 2048], vec![0.0; k * 2048]))],
    )
    .unwrap();
    let sn = dir.path().join("cifar-npy.npz");
    let (ok, _, err) = run_cli(&[
        "eval",
        "fid",
        "--save-stats",
        &p(&npy),
        &p(&sn),
        "--weights",
        &w,
    ]);
    assert!(ok, "{err}");
    assert!(!parts.exists());
    let rn = FeatureStats::load_npz(&sn).unwrap();
    assert!(rn.mu == rb.mu && rn.sigma == rb.sigma);

    // IS with the FID weights: a clear error.
    let (ok, _, err) = run_cli(&["eval", "is", &p(&db), "--weights", &w]);
    assert!(!ok && err.contains("no classifier head"), "{err}");
}

#[test]
fn cli_bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("no-weights");
    let run = |a: &Path, b: &Path| {
        run_cli(&[
            "eval".as_ref(),
            "fid".as_ref(),
            a.as_os_str(),
            b.as_os_str(),
            "--weights".as_ref(),
            w.as_os_str(),
        ] as &[&std::ffi::OsStr])
    };
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, _, err) = run(&empty, &empty);
    assert!(!ok && err.contains("no .png"), "{err}");

    let one = dir.path().join("one");
    std::fs::create_dir(&one).unwrap();
    image::GrayImage::new(4, 4).save(one.join("a.png")).unwrap();
    let (ok, _, err) = run(&one, &one);
    assert!(!ok && err.contains("at least 2 images"), "{err}");

    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    image::GrayImage::new(4, 4)
        .save(mixed.join("a.png"))
        .unwrap();
    image::GrayImage::new(4, 5)
        .save(mixed.join("b.png"))
        .unwrap();
    let (ok, _, err) = run(&mixed, &mixed);
    assert!(
        !ok && err.contains("same size") && err.contains("b.png"),
        "{err}"
    );

    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    image::GrayImage::new(4, 4)
        .save(junk.join("a.png"))
        .unwrap();
    std::fs::write(junk.join("labels.csv"), "0\n").unwrap();
    let (ok, _, err) = run(&junk, &junk);
    assert!(
        !ok && err.contains("labels.csv") && err.contains("not an image"),
        "{err}"
    );

    let txt = dir.path().join("x.txt");
    std::fs::write(&txt, "hi").unwrap();
    let (ok, _, err) = run(&txt, &txt);
    assert!(!ok && err.contains("x.txt"), "{err}");

    // Two valid images but no weights: the error says how to point at them.
    let two = dir.path().join("two");
    std::fs::create_dir(&two).unwrap();
    image::GrayImage::new(4, 4).save(two.join("a.png")).unwrap();
    image::GrayImage::new(4, 4).save(two.join("b.png")).unwrap();
    let (ok, _, err) = run(&two, &two);
    assert!(!ok && err.contains("no-weights"), "{err}");

    // Statistics of different dimensions.
    let s1 = dir.path().join("s1.npz");
    let s2 = dir.path().join("s2.npz");
    FeatureStats::new(vec![0.0; 2], vec![1.0, 0.0, 0.0, 1.0], 2)
        .unwrap()
        .save_npz(&s1)
        .unwrap();
    FeatureStats::new(vec![0.0; 1], vec![1.0], 2)
        .unwrap()
        .save_npz(&s2)
        .unwrap();
    let (ok, _, err) = run(&s1, &s2);
    assert!(!ok && err.contains("do not match"), "{err}");
}
