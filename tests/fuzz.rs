//! Byte-mutation fuzzing of every parser of untrusted files: `.npy` (and image `.npy`), `.npz`,
//! safetensors (single file and the sharded index), the TOML configs of every method, checkpoints
//! (`state.json`, the optimizer record, the weights), PNG folders, MNIST IDX (plain and gzip)
//! and CIFAR-10 binary batches.
//!
//! Each target starts from a corpus of real files (written by our own writers, the NumPy-written
//! fixtures, the repository's configs), applies 1-5 random mutations (bit flips, byte sets,
//! truncation, insertion, "interesting" integers such as 0, 2³¹ − 1, 2⁶⁴ − 1 written little- or
//! big-endian over length and shape fields) and calls the parser: it must return `Ok` or a clean
//! `Err`, never panic (proptest catches the panic and shrinks the input to a minimal one). The
//! test binary's allocator refuses any single allocation above 256 MiB (the process aborts), so
//! a header that claims 10¹² elements must be an error before anything is allocated.
//!
//! `NSGF_FUZZ_CASES` sets the cases per target (default 2,000: 10-20 s in all in CI; run
//! `NSGF_FUZZ_CASES=20000 cargo test --release --test fuzz` for a longer local campaign);
//! `NSGF_FUZZ_SEED` changes the mutation stream.

use burn::optim::AdamConfig;
use nsgf::backend::CpuAutodiff;
use nsgf::io::npy::{npy_bytes, parse_npy, NpyArray};
use nsgf::models::mlp::{MlpConfig, VelocityMlp};
use nsgf::train::checkpoint::{load_checkpoint, save_checkpoint, save_model, TrainState};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};

/// The system allocator, refusing single allocations above [`CAP`] (the process then aborts).
struct Capped;
const CAP: usize = 256 << 20;

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Capped = Capped;

/// Integers that break length and shape arithmetic.
const INTERESTING: [u64; 12] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// One mutation: (kind, position, value).
type Mutation = (u8, usize, u64);

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec((0u8..7, any::<usize>(), any::<u64>()), 1..6)
}

fn mutate(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(kind, pos, val) in muts {
        let p = if b.is_empty() { 0 } else { pos % b.len() };
        match kind {
            0 if !b.is_empty() => b[p] ^= 1 << (val % 8),
            1 if !b.is_empty() => b[p] = val as u8,
            2 => b.truncate(pos % (b.len() + 1)),
            3 => {
                let k = (val % 8 + 1) as usize;
                let bytes = val.to_le_bytes();
                b.splice(p..p, bytes[..k].iter().copied());
            }
            4 | 5 => {
                let v = INTERESTING[(val % INTERESTING.len() as u64) as usize];
                let width = if val & 0x100 == 0 { 4 } else { 8 };
                let bytes: Vec<u8> = if kind == 4 {
                    v.to_le_bytes()[..width].to_vec()
                } else {
                    v.to_be_bytes()[8 - width..].to_vec()
                };
                for (i, x) in bytes.into_iter().enumerate() {
                    if let Some(slot) = b.get_mut(p + i) {
                        *slot = x;
                    }
                }
            }
            6 => {
                // An ASCII digit run (text formats: shapes, lengths, numbers in headers).
                let digits = format!("{}", INTERESTING[(val % INTERESTING.len() as u64) as usize]);
                b.splice(p..p, digits.into_bytes());
            }
            _ => {}
        }
    }
    b
}

fn cases() -> u32 {
    std::env::var("NSGF_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Runs `target` on mutations of every corpus entry; any panic fails with the shrunk input.
fn fuzz(name: &str, corpus: &[Vec<u8>], target: impl Fn(&[u8])) {
    assert!(!corpus.is_empty(), "{name}: empty corpus");
    let seed = std::env::var("NSGF_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..8 + name.len().min(24)].copy_from_slice(&name.as_bytes()[..name.len().min(24)]);
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    // Every corpus entry unmutated first: the parser accepts its own seeds without panicking.
    for c in corpus {
        target(c);
    }
    let t0 = std::time::Instant::now();
    let result = runner.run(&(0..corpus.len(), mutations()), |(i, muts)| {
        target(&mutate(&corpus[i], &muts));
        Ok(())
    });
    eprintln!(
        "fuzz {name}: {} cases in {:.2} s",
        cases(),
        t0.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("fuzz target {name}: {e}");
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn npy_corpus() -> Vec<Vec<u8>> {
    let mut v = vec![
        npy_bytes(&NpyArray::f32(
            vec![3, 2],
            vec![0.5, -1.0, 2.0, 3.5, 1e-3, 7.0],
        )),
        npy_bytes(&NpyArray::f64(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])),
        npy_bytes(&NpyArray::u8(vec![2, 4, 4], (0..32).collect())),
    ];
    // Arrays written by NumPy itself: C and Fortran order, big-endian, 0-d, empty.
    let dir = manifest().join("tests/fixtures/npy");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .collect();
    names.sort();
    v.extend(names.iter().take(24).map(|p| std::fs::read(p).unwrap()));
    v
}

#[test]
fn fuzz_npy() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("x.npy");
    fuzz("npy", &npy_corpus(), |b| {
        let _ = parse_npy(b, Path::new("fuzz.npy"));
        // The image reader on the same bytes (uint8 (N, H, W[, 3]) checks on top).
        write(&img, b);
        let _ = nsgf::data::images::read_image_npy(&img);
        let _ = nsgf::io::read_points(&img);
    });
}

#[test]
fn fuzz_npz() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.npz");
    nsgf::io::write_npz(
        &seed,
        &[
            ("mu", NpyArray::f64(vec![3], vec![1.0, 2.0, 3.0])),
            (
                "sigma",
                NpyArray::f64(vec![3, 3], (0..9).map(f64::from).collect()),
            ),
        ],
    )
    .unwrap();
    let corpus = vec![std::fs::read(&seed).unwrap()];
    let path = dir.path().join("x.npz");
    fuzz("npz", &corpus, |b| {
        write(&path, b);
        let _ = nsgf::io::read_npz(&path);
    });
}

fn small_model() -> VelocityMlp<CpuAutodiff> {
    MlpConfig::new(2)
        .with_hidden(4)
        .with_layers(2)
        .init(&Default::default())
}

#[test]
fn fuzz_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.safetensors");
    save_model(&small_model(), &seed).unwrap();
    let corpus = vec![
        std::fs::read(&seed).unwrap(),
        std::fs::read(manifest().join("tests/fixtures/fid/fid_golden.safetensors"))
            .unwrap_or_default(),
    ];
    let corpus: Vec<Vec<u8>> = corpus.into_iter().filter(|c| !c.is_empty()).collect();
    let path = dir.path().join("x.safetensors");
    fuzz("safetensors", &corpus, |b| {
        write(&path, b);
        let _ = nsgf::io::read_safetensors(&path);
        let _ = nsgf::io::SafetensorsStore::open_single(&path);
        let _ = nsgf::train::checkpoint::load_model(
            MlpConfig::new(2)
                .with_hidden(4)
                .with_layers(2)
                .init::<nsgf::backend::Cpu>(&Default::default()),
            &path,
        );
    });
}

#[test]
fn fuzz_safetensors_index() {
    let dir = tempfile::tempdir().unwrap();
    save_model(
        &small_model(),
        &dir.path().join("model-00001-of-00001.safetensors"),
    )
    .unwrap();
    let names = nsgf::io::read_safetensors(dir.path().join("model-00001-of-00001.safetensors"))
        .unwrap()
        .into_keys()
        .collect::<Vec<_>>();
    let map: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|n| (n.clone(), "model-00001-of-00001.safetensors".into()))
        .collect();
    let index = serde_json::json!({ "metadata": { "total_size": 1234 }, "weight_map": map });
    let corpus = vec![serde_json::to_vec_pretty(&index).unwrap()];
    let path = dir.path().join("model.safetensors.index.json");
    fuzz("safetensors-index", &corpus, |b| {
        write(&path, b);
        let _ = nsgf::io::SafetensorsStore::open_index(&path);
    });
}

#[test]
fn fuzz_configs() {
    let mut corpus = Vec::new();
    for sub in ["", "nsgfpp", "mnist", "jko", "ept", "sjko"] {
        let dir = manifest().join("configs").join(sub);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        corpus.extend(files.iter().take(3).map(|p| std::fs::read(p).unwrap()));
    }
    let origin = Path::new("fuzz.toml");
    fuzz("configs", &corpus, |b| {
        let text = String::from_utf8_lossy(b);
        let _ = nsgf::train::config::ToyConfig::from_toml(&text, origin);
        let _ = nsgf::train::nsgfpp::NsgfppConfig::from_toml(&text, origin);
        let _ = nsgf::train::cfm::CfmConfig::from_toml(&text, origin);
        let _ = nsgf::train::wgf::WgfConfig::from_toml(&text, origin);
        let _ = nsgf::train::sjko::SjkoConfig::from_toml(&text, origin);
        let _ = nsgf::train::nsgfpp::config_method(&text);
    });
}

#[test]
fn fuzz_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    let model = small_model();
    // An optimizer with moments: one step on a loss.
    let mut optim = AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>();
    let x = burn::tensor::Tensor::<CpuAutodiff, 2>::ones([3, 2], &Default::default());
    let t = burn::tensor::Tensor::<CpuAutodiff, 2>::ones([3, 1], &Default::default());
    let loss = model.forward(x, t).powi_scalar(2).mean();
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
    let model = burn::optim::Optimizer::step(&mut optim, 1e-3, model, grads);
    save_checkpoint(&seed, &model, &optim, &TrainState { step: 3 }).unwrap();
    let files = ["state.json", "optim.mpk", "model.safetensors"];
    let originals: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(seed.join(f)).unwrap())
        .collect();
    // state.json without the file hashes (the older format) lets mutated optimizer records and
    // weights reach their parsers.
    let mut state: serde_json::Value = serde_json::from_slice(&originals[0]).unwrap();
    state.as_object_mut().unwrap().remove("files");
    let bare_state = serde_json::to_vec_pretty(&state).unwrap();
    // Target k mutates file k % 3 (k ≥ 3: with the bare state.json beside it).
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    for k in 0..6 {
        let name = format!(
            "checkpoint-{}{}",
            files[k % 3],
            if k >= 3 { "-bare" } else { "" }
        );
        fuzz(&name, &[originals[k % 3].clone()], |b| {
            for (i, f) in files.iter().enumerate() {
                let bytes = if i == k % 3 {
                    b
                } else if i == 0 && k >= 3 {
                    &bare_state[..]
                } else {
                    &originals[i][..]
                };
                write(&work.join(f), bytes);
            }
            let _ = load_checkpoint(
                &work,
                small_model(),
                AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>(),
                &Default::default(),
            );
            let _ = nsgf::train::checkpoint::saved_step(&work);
        });
    }
}

#[test]
fn fuzz_png_folder() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    let grey = nsgf::data::images::ImageBatch::new(2, 5, 4, 1, (0..40).collect()).unwrap();
    let rgb = nsgf::data::images::ImageBatch::new(1, 3, 3, 3, (0..27).collect()).unwrap();
    nsgf::data::images::write_png_folder(seed.join("grey"), &grey).unwrap();
    nsgf::data::images::write_png_folder(seed.join("rgb"), &rgb).unwrap();
    let first = |d: &str| {
        let mut f: Vec<PathBuf> = std::fs::read_dir(seed.join(d))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        f.sort();
        f
    };
    let grey_files = first("grey");
    let corpus = vec![
        std::fs::read(&grey_files[0]).unwrap(),
        std::fs::read(&first("rgb")[0]).unwrap(),
    ];
    let folder = dir.path().join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(&grey_files[1], folder.join("b.png")).unwrap();
    fuzz("png-folder", &corpus, |b| {
        write(&folder.join("a.png"), b);
        if let Ok(f) = nsgf::data::images::ImageFolder::open(&folder) {
            let _ = f.read(0, 2);
        }
    });
}

fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

#[test]
fn fuzz_mnist_idx() {
    use std::io::Write;
    let images = idx(0x0803, &[2, 3, 4], &(0..24).collect::<Vec<u8>>());
    let labels = idx(0x0801, &[2], &[3, 7]);
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let corpus = vec![images.clone(), labels.clone(), gz(&images), gz(&labels)];
    let dir = tempfile::tempdir().unwrap();
    let (plain, zipped) = (dir.path().join("x-ubyte"), dir.path().join("x-ubyte.gz"));
    fuzz("mnist-idx", &corpus, |b| {
        for path in [&plain, &zipped] {
            write(path, b);
            let _ = nsgf::data::mnist::read_idx_images(path);
            let _ = nsgf::data::mnist::read_idx_labels(path);
        }
    });
}

#[test]
fn fuzz_cifar_bin() {
    let record: Vec<u8> = std::iter::once(4u8)
        .chain((0..3072).map(|i| (i % 251) as u8))
        .collect();
    let corpus = vec![record.repeat(2)];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    fuzz("cifar-bin", &corpus, |b| {
        write(&path, b);
        let _ = nsgf::data::cifar::read_cifar10_bin(&path);
    });
}

/// The allocation guard itself: a header claiming 10¹² elements is refused before allocating.
#[test]
fn huge_headers_are_errors_before_allocation() {
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }";
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 64 - (10 + header.len() + 1) % 64;
    let h = format!("{header}{}\n", " ".repeat(pad));
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    let e = parse_npy(&b, Path::new("huge.npy"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("huge.npy"), "{e}");
    let images = idx(0x0803, &[1_000_000, 100_000, 100_000], &[]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge-ubyte");
    write(&p, &images);
    assert!(nsgf::data::mnist::read_idx_images(&p).is_err());
}

/// Finding of `fuzz_checkpoints` (burn's `ParamId::deserialize` panics on a malformed id in the
/// optimizer record): now a clear error naming the file.
#[test]
fn regression_a_malformed_parameter_id_in_the_optimizer_state_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model();
    let optim = AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>();
    save_checkpoint(dir.path(), &model, &optim, &TrainState { step: 1 }).unwrap();
    // Replace the optimizer record by one with an item map keyed by ids burn cannot parse, and
    // drop the hashes from state.json so that the record reaches its parser.
    for bad in ["zz", "0000000000000000000001"] {
        let item = rmpv::Value::Map(vec![(rmpv::Value::from(bad), rmpv::Value::Nil)]);
        let record = rmpv::Value::Map(vec![
            (rmpv::Value::from("metadata"), rmpv::Value::Nil),
            (rmpv::Value::from("item"), item),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &record).unwrap();
        std::fs::write(dir.path().join("optim.mpk"), bytes).unwrap();
        let state = dir.path().join("state.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("files");
        std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
        let Err(e) = load_checkpoint(
            dir.path(),
            small_model(),
            AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>(),
            &Default::default(),
        ) else {
            panic!("a record with the id {bad:?} loaded");
        };
        let e = e.to_string();
        assert!(
            e.contains("optim.mpk") && e.contains("invalid parameter id"),
            "{e}"
        );
    }
}
