//! Image training data: MNIST IDX and CIFAR-10 readers on hand-made valid and corrupt files, the
//! `[-1, 1]` conversion, and the shuffling / resuming / prefetching loader. The tests on the real
//! data sets read `../shared/data/{mnist,cifar10}` (relative to the crate root) and skip with a
//! message when it is absent.

use nsgf::data::cifar::{
    load_cifar10, load_cifar10_bin, load_cifar10_png, read_cifar10_bin, CIFAR10_CLASSES,
    CIFAR_RECORD,
};
use nsgf::data::dataset::{u8_to_unit, DatasetSpec, ImageDataset, Split};
use nsgf::data::images::ImageBatch;
use nsgf::data::loader::{BatchStream, Loader, LoaderConfig, LoaderState, PrefetchLoader};
use nsgf::data::mnist::{
    load_mnist, read_idx_images, read_idx_labels, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// ---------------------------------------------------------------- helpers

fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The error message of `r`, which must be an error naming `file`.
fn err_naming<T: std::fmt::Debug>(r: nsgf::Result<T>, file: &str) -> String {
    let e = r.expect_err("expected an error").to_string();
    assert!(e.contains(file), "error does not name {file}: {e}");
    e
}

/// A tiny MNIST-layout directory: `n` images of 3x2 and labels `i % 10`.
fn tiny_mnist(dir: &Path, n: usize, gzip: bool) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..n * 6).map(|v| (v * 13 % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let img = idx(IDX_IMAGES_MAGIC, &[n as u32, 3, 2], &pixels);
    let lab = idx(IDX_LABELS_MAGIC, &[n as u32], &labels);
    for prefix in ["train", "t10k"] {
        if gzip {
            write(dir, &format!("{prefix}-images-idx3-ubyte.gz"), &gz(&img));
            write(dir, &format!("{prefix}-labels-idx1-ubyte.gz"), &gz(&lab));
        } else {
            write(dir, &format!("{prefix}-images-idx3-ubyte"), &img);
            write(dir, &format!("{prefix}-labels-idx1-ubyte"), &lab);
        }
    }
    (pixels, labels)
}

/// One CIFAR binary record: label, then R, G, B planes with values derived from `seed`.
fn cifar_record(label: u8, seed: u8) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3u8 {
        r.extend((0..1024u32).map(|p| (p as u8).wrapping_mul(3).wrapping_add(seed + c * 50)));
    }
    r
}

fn shared_data(sub: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(sub);
    if p.is_dir() {
        Some(p)
    } else {
        println!("skipping: {} is absent", p.display());
        None
    }
}

// ---------------------------------------------------------------- MNIST IDX

#[test]
fn mnist_directory_round_trips_plain_and_gzip() {
    for gzip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (pixels, labels) = tiny_mnist(dir.path(), 7, gzip);
        for split in [Split::Train, Split::Test] {
            let d = load_mnist(dir.path(), split).unwrap();
            assert_eq!(d.len(), 7);
            assert_eq!(d.dims(), (3, 2, 1));
            assert_eq!(d.images().data, pixels);
            assert_eq!(d.labels().unwrap(), &labels[..]);
            assert_eq!(d.classes().len(), 10);
        }
        let spec = DatasetSpec::Mnist {
            dir: dir.path().into(),
            split: Split::Test,
        };
        assert_eq!(spec.load().unwrap().len(), 7);
    }
}

#[test]
fn idx_bad_magic_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let labels = write(dir.path(), "labels", &idx(IDX_LABELS_MAGIC, &[2], &[1, 2]));
    let e = err_naming(read_idx_images(&labels), "labels");
    assert!(e.contains("0x00000801") && e.contains("0x00000803"), "{e}");
    let images = write(
        dir.path(),
        "images",
        &idx(IDX_IMAGES_MAGIC, &[1, 1, 1], &[0]),
    );
    err_naming(read_idx_labels(&images), "images");
    let junk = write(dir.path(), "junk", b"PNG\x00 some other file format");
    let e = err_naming(read_idx_images(&junk), "junk");
    assert!(e.contains("not an IDX file"), "{e}");
    let floats = write(
        dir.path(),
        "floats",
        &idx(0x0000_0d03, &[1, 1, 1], &[0, 0, 0, 0]),
    );
    let e = err_naming(read_idx_images(&floats), "floats");
    assert!(e.contains("unsigned byte"), "{e}");
    let zero = write(
        dir.path(),
        "zero",
        &idx(IDX_IMAGES_MAGIC, &[0, 28, 28], &[]),
    );
    err_naming(read_idx_images(&zero), "zero");
    for (name, bytes) in [("empty", &[][..]), ("short", &[0, 0, 8][..])] {
        let p = write(dir.path(), name, bytes);
        err_naming(read_idx_images(&p), name);
    }
}

#[test]
fn idx_truncated_and_trailing_payloads_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let full = idx(IDX_IMAGES_MAGIC, &[3, 4, 4], &[9; 48]);
    for (name, bytes) in [
        ("short.idx", full[..full.len() - 1].to_vec()),
        ("long.idx", [&full[..], &[0]].concat()),
        ("short.gz", gz(&full[..full.len() - 5])),
        ("long.gz", gz(&[&full[..], &[1, 2, 3]].concat())),
    ] {
        let p = write(dir.path(), name, &bytes);
        let e = err_naming(read_idx_images(&p), name);
        if name.starts_with("short") {
            assert!(e.contains("truncated"), "{e}");
        } else {
            assert!(e.contains("trailing"), "{e}");
        }
    }
    // A gzip stream cut short (not a complete gzip member).
    let cut = gz(&full);
    let p = write(dir.path(), "cut.gz", &cut[..cut.len() - 12]);
    err_naming(read_idx_images(&p), "cut.gz");
    // Corrupt deflate data.
    let mut bad = gz(&idx(IDX_LABELS_MAGIC, &[4000], &vec![3; 4000]));
    let mid = bad.len() / 2;
    for b in &mut bad[12..mid] {
        *b ^= 0x5a;
    }
    let p = write(dir.path(), "bad.gz", &bad);
    err_naming(read_idx_labels(&p), "bad.gz");
}

#[test]
fn idx_header_claiming_too_much_is_refused_without_allocating() {
    // u32::MAX images of 28x28 (3.4e12 bytes; the count is a u32, so 10^12 images cannot be
    // written) and 10^9 images of 1000x784 (7.8e14 bytes), in tiny plain and gzip files: refused
    // from the header and the file size alone (an attempt to allocate would abort the test).
    let dir = tempfile::tempdir().unwrap();
    for dims in [[u32::MAX, 28, 28], [1_000_000_000, 1000, 784]] {
        let raw = idx(IDX_IMAGES_MAGIC, &dims, &[7; 100]);
        let p = write(dir.path(), "huge.idx", &raw);
        let e = err_naming(read_idx_images(&p), "huge.idx");
        assert!(e.contains("truncated"), "{e}");
        let p = write(dir.path(), "huge.gz", &gz(&raw));
        let e = err_naming(read_idx_images(&p), "huge.gz");
        assert!(e.contains("cannot decompress"), "{e}");
    }
    // A claim within the gzip bound but beyond the data: read incrementally, reported truncated.
    // (Random pixels, so that the file is not small enough to be refused from its size.)
    let mut rng = StdRng::seed_from_u64(1);
    let pixels: Vec<u8> = (0..500 * 784).map(|_| rng.random()).collect();
    let raw = idx(IDX_IMAGES_MAGIC, &[1000, 28, 28], &pixels);
    let p = write(dir.path(), "half.gz", &gz(&raw));
    let e = err_naming(read_idx_images(&p), "half.gz");
    assert!(e.contains("truncated"), "{e}");
    // Labels claiming u32::MAX entries.
    let p = write(
        dir.path(),
        "lab",
        &idx(IDX_LABELS_MAGIC, &[u32::MAX], &[1; 10]),
    );
    err_naming(read_idx_labels(&p), "lab");
}

#[test]
fn mnist_mismatched_or_missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    tiny_mnist(dir.path(), 5, false);
    write(
        dir.path(),
        "train-labels-idx1-ubyte",
        &idx(IDX_LABELS_MAGIC, &[4], &[0, 1, 2, 3]),
    );
    let e = err_naming(
        load_mnist(dir.path(), Split::Train),
        "train-labels-idx1-ubyte",
    );
    assert!(e.contains("4 labels") && e.contains("5 images"), "{e}");
    write(
        dir.path(),
        "train-labels-idx1-ubyte",
        &idx(IDX_LABELS_MAGIC, &[5], &[0, 1, 2, 3, 12]),
    );
    let e = err_naming(
        load_mnist(dir.path(), Split::Train),
        "train-labels-idx1-ubyte",
    );
    assert!(e.contains("12"), "{e}");
    std::fs::remove_file(dir.path().join("t10k-images-idx3-ubyte")).unwrap();
    let e = load_mnist(dir.path(), Split::Test).unwrap_err().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte.gz"), "{e}");
    assert!(load_mnist(dir.path().join("nowhere"), Split::Train).is_err());
}

#[test]
fn corrupted_files_never_panic() {
    // Random truncations and byte changes of valid files: each read returns Ok or Err.
    let dir = tempfile::tempdir().unwrap();
    let img = idx(IDX_IMAGES_MAGIC, &[4, 5, 5], &[200; 100]);
    let lab = idx(IDX_LABELS_MAGIC, &[4], &[1, 2, 3, 4]);
    let cif = [cifar_record(1, 0), cifar_record(2, 9)].concat();
    let mut rng = StdRng::seed_from_u64(12);
    for round in 0..300 {
        for (k, base) in [img.clone(), gz(&img), lab.clone(), gz(&lab), cif.clone()]
            .into_iter()
            .enumerate()
        {
            let mut b = base;
            if rng.random_bool(0.5) {
                let cut = rng.random_range(0..b.len());
                b.truncate(cut);
            }
            for _ in 0..rng.random_range(0..4) {
                if !b.is_empty() {
                    let i = rng.random_range(0..b.len());
                    b[i] = rng.random();
                }
            }
            let p = write(dir.path(), &format!("f{round}_{k}"), &b);
            let _ = read_idx_images(&p);
            let _ = read_idx_labels(&p);
            let _ = read_cifar10_bin(&p);
        }
    }
}

// ---------------------------------------------------------------- CIFAR-10

#[test]
fn cifar_binary_batches_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&sub).unwrap();
    for i in 1..=5u8 {
        let recs = [cifar_record(i, i), cifar_record(9 - i, 100 + i)].concat();
        write(&sub, &format!("data_batch_{i}.bin"), &recs);
    }
    write(&sub, "test_batch.bin", &cifar_record(3, 42));
    let train = load_cifar10(dir.path(), Split::Train).unwrap();
    assert_eq!(train.len(), 10);
    assert_eq!(train.dims(), (32, 32, 3));
    assert_eq!(train.labels().unwrap(), &[1, 8, 2, 7, 3, 6, 4, 5, 5, 4]);
    assert_eq!(train.classes(), CIFAR10_CLASSES);
    // Image 0, pixel (row 1, col 2) = plane index 34: R, G, B from the CHW record.
    let rec = cifar_record(1, 1);
    let px = &train.images().data[34 * 3..34 * 3 + 3];
    assert_eq!(px, &[rec[1 + 34], rec[1 + 1024 + 34], rec[1 + 2048 + 34]]);
    let test = load_cifar10_bin(&sub, Split::Test).unwrap();
    assert_eq!((test.len(), test.labels().unwrap()), (1, &[3u8][..]));
    let spec = DatasetSpec::Cifar10 {
        dir: dir.path().into(),
        split: Split::Test,
    };
    assert_eq!(spec.load().unwrap(), test);
}

#[test]
fn cifar_binary_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let two = [cifar_record(0, 0), cifar_record(1, 1)].concat();
    let p = write(dir.path(), "odd.bin", &two[..CIFAR_RECORD * 2 - 1]);
    let e = err_naming(read_cifar10_bin(&p), "odd.bin");
    assert!(e.contains("3073"), "{e}");
    let p = write(dir.path(), "extra.bin", &[&two[..], &[0; 5]].concat());
    err_naming(read_cifar10_bin(&p), "extra.bin");
    let p = write(dir.path(), "empty.bin", &[]);
    err_naming(read_cifar10_bin(&p), "empty.bin");
    let p = write(
        dir.path(),
        "label.bin",
        &[cifar_record(0, 0), cifar_record(10, 0)].concat(),
    );
    let e = err_naming(read_cifar10_bin(&p), "label.bin");
    assert!(e.contains("record 1") && e.contains("label 10"), "{e}");
    // A missing batch among the five.
    for i in [1, 2, 4, 5] {
        write(dir.path(), &format!("data_batch_{i}.bin"), &two);
    }
    err_naming(load_cifar10(dir.path(), Split::Train), "data_batch_3.bin");
    err_naming(load_cifar10(dir.path(), Split::Test), "test_batch.bin");
}

#[test]
fn cifar_png_class_folders() {
    let dir = tempfile::tempdir().unwrap();
    for (label, class) in CIFAR10_CLASSES.iter().enumerate() {
        let d = dir.path().join("test").join(class);
        std::fs::create_dir_all(&d).unwrap();
        for j in 0..2u8 {
            let v = label as u8 * 10 + j;
            image::RgbImage::from_pixel(32, 32, image::Rgb([v, v + 1, v + 2]))
                .save(d.join(format!("img{j}.png")))
                .unwrap();
        }
    }
    let d = load_cifar10(dir.path(), Split::Test).unwrap();
    assert_eq!(d.len(), 20);
    assert_eq!(d.dims(), (32, 32, 3));
    assert_eq!(d.label_counts(), vec![2; 10]);
    let per = 32 * 32 * 3;
    for i in 0..20 {
        let label = d.labels().unwrap()[i];
        assert_eq!(label as usize, i / 2);
        let v = label * 10 + (i % 2) as u8;
        assert_eq!(&d.images().data[i * per..i * per + 3], &[v, v + 1, v + 2]);
    }
    assert!(load_cifar10(dir.path(), Split::Train).is_err());
    // An eleventh class is not CIFAR-10.
    let extra = dir.path().join("test").join("zebra");
    std::fs::create_dir(&extra).unwrap();
    image::RgbImage::new(32, 32)
        .save(extra.join("z.png"))
        .unwrap();
    let e = err_naming(load_cifar10_png(dir.path(), Split::Test), "test");
    assert!(e.contains("zebra"), "{e}");
    // Generic class folders accept it (labels by sorted name: zebra is 10).
    let any = DatasetSpec::ClassFolders {
        dir: dir.path().join("test"),
    }
    .load()
    .unwrap();
    assert_eq!(any.len(), 21);
    assert_eq!(any.labels().unwrap()[20], 10);
}

#[test]
fn png_folder_is_a_training_set() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5u8 {
        image::GrayImage::from_pixel(4, 3, image::Luma([i * 50]))
            .save(dir.path().join(format!("{i}.png")))
            .unwrap();
    }
    let d = DatasetSpec::Images {
        path: dir.path().into(),
    }
    .load()
    .unwrap();
    assert_eq!((d.len(), d.dims(), d.labels()), (5, (3, 4, 1), None));
    let b = d.batch(&[0, 4], None).unwrap();
    assert_eq!(b.shape, [2, 1, 3, 4]);
    assert_eq!((b.data[0], b.data[12]), (-1.0, u8_to_unit(200)));
    assert!(b.labels.is_none());
}

// ---------------------------------------------------------------- conversion and loader

fn ramp_set(n: usize) -> Arc<ImageDataset> {
    // Image i: 2x3 RGB, every sample distinct within the image, first sample i.
    let data: Vec<u8> = (0..n)
        .flat_map(|i| (0..18).map(move |k| ((i * 37 + k * 14) % 256) as u8))
        .collect();
    let labels = (0..n).map(|i| (i % 3) as u8).collect();
    let b = ImageBatch::new(n, 2, 3, 3, data).unwrap();
    Arc::new(ImageDataset::new(b, Some(labels), vec!["a".into(), "b".into(), "c".into()]).unwrap())
}

#[test]
fn scaling_is_exact_at_0_and_255() {
    let b = ImageBatch::new(1, 1, 2, 1, vec![0, 255]).unwrap();
    let d = ImageDataset::new(b, None, vec![]).unwrap();
    let f = d.batch(&[0], None).unwrap();
    assert_eq!(f.data, vec![-1.0, 1.0]);
    let mid = ImageDataset::new(
        ImageBatch::new(1, 1, 1, 1, vec![128]).unwrap(),
        None,
        vec![],
    )
    .unwrap()
    .batch(&[0], None)
    .unwrap();
    assert!((mid.data[0] - 0.5 / 127.5).abs() < 1e-7);
}

#[test]
fn flip_mirrors_each_row_of_each_channel() {
    let d = ramp_set(4);
    let idx = [2, 0, 3, 1, 2];
    let flips = [true, false, true, true, false];
    let plain = d.batch(&idx, None).unwrap();
    let fl = d.batch_with_flips(&idx, &flips).unwrap();
    let [n, c, h, w] = fl.shape;
    assert_eq!([n, c, h, w], [5, 3, 2, 3]);
    for (b, &flip) in flips.iter().enumerate() {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let src = if flip { w - 1 - x } else { x };
                    assert_eq!(
                        fl.data[((b * c + ch) * h + y) * w + x],
                        plain.data[((b * c + ch) * h + y) * w + src]
                    );
                }
            }
        }
    }
    // A seeded RNG flips about half, reproducibly.
    let many: Vec<usize> = (0..400).map(|i| i % 4).collect();
    let a = d.batch(&many, Some(&mut StdRng::seed_from_u64(3))).unwrap();
    let b = d.batch(&many, Some(&mut StdRng::seed_from_u64(3))).unwrap();
    assert_eq!(a, b);
    let k = a.flipped.iter().filter(|&&f| f).count();
    assert!((150..250).contains(&k), "{k} of 400 flipped");
}

#[test]
fn loader_epochs_are_permutations() {
    let d = ramp_set(23);
    let mut l = Loader::new(d.clone(), LoaderConfig::new(5, 9)).unwrap();
    assert_eq!(l.batches_per_epoch(), 4);
    let mut firsts = Vec::new();
    for epoch in 0..3u64 {
        assert_eq!(l.state().epoch, epoch);
        let mut all = Vec::new();
        for _ in 0..4 {
            let b = l.next_batch().unwrap();
            assert_eq!(b.shape, [5, 3, 2, 3]);
            let labels: Vec<u8> = b.indices.iter().map(|&i| (i % 3) as u8).collect();
            assert_eq!(b.labels.as_deref(), Some(&labels[..]));
            all.extend(b.indices);
        }
        firsts.push(all.clone());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 20, "20 distinct images per epoch");
    }
    assert!(firsts[0] != firsts[1] && firsts[1] != firsts[2]);
    // Without drop_last every image is visited once per epoch.
    let cfg = LoaderConfig {
        drop_last: false,
        ..LoaderConfig::new(5, 9)
    };
    let mut l = Loader::new(d, cfg).unwrap();
    let mut all: Vec<usize> = (0..5)
        .flat_map(|_| l.next_batch().unwrap().indices)
        .collect();
    all.sort();
    assert_eq!(all, (0..23).collect::<Vec<_>>());
    assert_eq!((l.state().epoch, l.state().position), (1, 0));
}

#[test]
fn resuming_from_a_saved_state_gives_the_same_batches() {
    let d = ramp_set(23);
    let cfg = LoaderConfig {
        hflip: true,
        ..LoaderConfig::new(6, 2024)
    };
    let mut reference = Loader::new(d.clone(), cfg).unwrap();
    let all: Vec<_> = (0..20).map(|_| reference.next_batch().unwrap()).collect();
    // Save after k batches (mid-epoch, at an epoch boundary, several epochs in), as JSON and
    // as TOML, and resume on a fresh copy of the data set.
    for k in [0, 1, 3, 6, 11] {
        let mut run = Loader::new(d.clone(), cfg).unwrap();
        for _ in 0..k {
            run.next_batch().unwrap();
        }
        let json = serde_json::to_string(&run.state()).unwrap();
        let toml = toml::to_string(&run.state()).unwrap();
        for state in [
            serde_json::from_str::<LoaderState>(&json).unwrap(),
            toml::from_str::<LoaderState>(&toml).unwrap(),
        ] {
            let mut resumed = Loader::resume(Arc::new((*d).clone()), state).unwrap();
            for expected in &all[k..] {
                assert_eq!(
                    &resumed.next_batch().unwrap(),
                    expected,
                    "resumed after {k}"
                );
            }
        }
    }
    // Resuming through the prefetcher too.
    let mut run = PrefetchLoader::new(Loader::new(d.clone(), cfg).unwrap(), 3).unwrap();
    for _ in 0..7 {
        run.next_batch().unwrap();
    }
    let state = run.state();
    drop(run);
    let mut resumed = Loader::resume(d.clone(), state).unwrap();
    assert_eq!(resumed.next_batch().unwrap(), all[7]);
    // A state from another data set or with a bad position is refused.
    assert!(Loader::resume(ramp_set(22), state).is_err());
    let far = LoaderState {
        position: 24,
        ..state
    };
    assert!(Loader::resume(d, far).is_err());
}

#[test]
fn prefetch_equals_the_synchronous_path() {
    let d = ramp_set(50);
    for (cfg, depth) in [
        (LoaderConfig::new(8, 1), 1),
        (
            LoaderConfig {
                hflip: true,
                drop_last: false,
                ..LoaderConfig::new(7, 2)
            },
            4,
        ),
    ] {
        let mut sync = Loader::new(d.clone(), cfg).unwrap();
        let mut pre = PrefetchLoader::new(Loader::new(d.clone(), cfg).unwrap(), depth).unwrap();
        for _ in 0..40 {
            let (a, b) = (sync.next_batch().unwrap(), pre.next_batch().unwrap());
            assert_eq!(a, b);
            assert_eq!(sync.state(), pre.state());
        }
        // Slow consumer: the worker waits on the bounded channel; dropping it mid-stream stops
        // the thread (the test would hang otherwise).
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(pre);
    }
}

// ---------------------------------------------------------------- the real data sets

#[test]
fn real_mnist() {
    let Some(dir) = shared_data("mnist") else {
        return;
    };
    let train = load_mnist(&dir, Split::Train).unwrap();
    let test = load_mnist(&dir, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.dims(), (28, 28, 1));
    // First ten training labels: 5 0 4 1 9 2 1 3 1 4.
    let mut hist = [0usize; 10];
    for &l in &train.labels().unwrap()[..10] {
        hist[l as usize] += 1;
    }
    assert_eq!(hist, [1, 3, 1, 1, 2, 1, 0, 0, 0, 1]);
    assert_eq!(&test.labels().unwrap()[..4], &[7, 2, 1, 0]);
    // Full label counts and pixel sums (shared/data/mnist/README.md, computed from the files).
    assert_eq!(
        train.label_counts(),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        test.label_counts(),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let sum = |d: &ImageDataset| d.images().data.iter().map(|&v| v as u64).sum::<u64>();
    assert_eq!(sum(&train), 1_567_298_545);
    assert_eq!(sum(&test), 264_923_200);
    assert_eq!(
        train.images().data[..784]
            .iter()
            .map(|&v| v as u64)
            .sum::<u64>(),
        27_525
    );

    // A training batch from the loader, prefetched.
    let train = Arc::new(train);
    let mut l =
        PrefetchLoader::new(Loader::new(train, LoaderConfig::new(128, 0)).unwrap(), 2).unwrap();
    let b = l.next_batch().unwrap();
    assert_eq!(b.shape, [128, 1, 28, 28]);
    assert!(b.data.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(b.data.contains(&-1.0) && b.data.contains(&1.0));
}

#[test]
fn real_cifar10_png() {
    let Some(dir) = shared_data("cifar10") else {
        return;
    };
    // Per-channel pixel sums and the first image in (class, file name) order, computed with
    // Pillow from the same files.
    for (split, n, sums, first) in [
        (
            Split::Train,
            50_000,
            [6_415_714_204u64, 6_295_060_180, 5_829_907_619],
            [203u8, 205, 219],
        ),
        (
            Split::Test,
            10_000,
            [1_290_492_328, 1_266_775_083, 1_176_108_223],
            [243, 223, 147],
        ),
    ] {
        let d = load_cifar10(&dir, split).unwrap();
        assert_eq!(d.len(), n);
        assert_eq!(d.dims(), (32, 32, 3));
        assert_eq!(d.classes(), CIFAR10_CLASSES);
        assert_eq!(d.label_counts(), vec![n / 10; 10]);
        let mut s = [0u64; 3];
        for px in d.images().data.chunks_exact(3) {
            for c in 0..3 {
                s[c] += px[c] as u64;
            }
        }
        assert_eq!(s, sums, "{split}");
        assert_eq!(&d.images().data[..3], &first);
        assert_eq!(d.labels().unwrap()[0], 0);
        assert_eq!(d.labels().unwrap()[n - 1], 9);
    }
}
