//! CIFAR-10, from the canonical binary batches or from PNG class folders. Both give RGB 32x32
//! uint8 images, NHWC ([`ImageBatch`] with 3 channels), and labels 0..9 in the order of
//! [`CIFAR10_CLASSES`] (alphabetical, which is also the official label order).
//!
//! * Binary version (`cifar-10-binary.tar.gz`): `data_batch_1.bin` .. `data_batch_5.bin` (train)
//!   and `test_batch.bin` (test), each a sequence of 3073-byte records: 1 label byte, then the
//!   image as 3 planes of 32x32 bytes (R, G, B; rows top to bottom). The files are read in that
//!   order and the records kept in file order. A file whose length is not a positive multiple of
//!   3073, or a label byte above 9, is an error naming the file.
//! * PNG class folders (`shared/data/cifar10/`): `dir/{train,test}/<class>/*.png`, read with
//!   [`ClassFolders`] (classes sorted, files sorted by name within a class); the class folders
//!   must be exactly the ten CIFAR-10 classes and the images 32x32.

use super::dataset::{ImageDataset, Split};
use super::images::{ClassFolders, ImageBatch};
use crate::error::{NsgfError, Result};
use std::path::{Path, PathBuf};

/// The CIFAR-10 class names; label `i` is `CIFAR10_CLASSES[i]`.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// Image side of CIFAR-10.
pub const CIFAR_SIDE: usize = 32;
/// Bytes of one binary record: 1 label byte + 3 x 32 x 32 pixel bytes (CHW).
pub const CIFAR_RECORD: usize = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE;

fn classes() -> Vec<String> {
    CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect()
}

/// Reads one CIFAR-10 binary batch file: RGB 32x32 images (NHWC) and their labels.
pub fn read_cifar10_bin(path: impl AsRef<Path>) -> Result<(ImageBatch, Vec<u8>)> {
    let path = path.as_ref();
    let len = std::fs::metadata(path)
        .map_err(|e| NsgfError::io(path, e))?
        .len();
    if len == 0 || len % CIFAR_RECORD as u64 != 0 {
        return Err(NsgfError::format(
            path,
            format!(
                "{len} bytes is not a whole number of CIFAR-10 records ({CIFAR_RECORD} bytes each: \
                 1 label + 3x32x32 pixels){}",
                if len > 0 {
                    format!(
                        "; {} bytes left over after {} records",
                        len % CIFAR_RECORD as u64,
                        len / CIFAR_RECORD as u64
                    )
                } else {
                    String::new()
                }
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| NsgfError::io(path, e))?;
    if bytes.len() as u64 != len {
        return Err(NsgfError::format(
            path,
            "file changed size while being read",
        ));
    }
    decode_records(&bytes, path)
}

/// Splits binary records into labels and NHWC images.
fn decode_records(bytes: &[u8], path: &Path) -> Result<(ImageBatch, Vec<u8>)> {
    let plane = CIFAR_SIDE * CIFAR_SIDE;
    let n = bytes.len() / CIFAR_RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut data = vec![0u8; n * 3 * plane];
    for (i, (rec, out)) in bytes
        .chunks_exact(CIFAR_RECORD)
        .zip(data.chunks_exact_mut(3 * plane))
        .enumerate()
    {
        let label = rec[0];
        if label as usize >= CIFAR10_CLASSES.len() {
            return Err(NsgfError::format(
                path,
                format!("record {i} has label {label}; CIFAR-10 labels are 0..9"),
            ));
        }
        labels.push(label);
        let chw = &rec[1..];
        for p in 0..plane {
            for c in 0..3 {
                out[p * 3 + c] = chw[c * plane + p];
            }
        }
    }
    Ok((ImageBatch::new(n, CIFAR_SIDE, CIFAR_SIDE, 3, data)?, labels))
}

/// The binary batch files of `split` in `dir` or in `dir/cifar-10-batches-bin` (the folder the
/// official archive unpacks to): `data_batch_1.bin` .. `data_batch_5.bin` or `test_batch.bin`.
/// All must exist.
pub fn cifar10_bin_files(dir: impl AsRef<Path>, split: Split) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let names: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".into()],
    };
    let base = [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
        .into_iter()
        .find(|d| d.join(&names[0]).is_file())
        .ok_or_else(|| {
            NsgfError::format(
                dir,
                format!(
                    "no CIFAR-10 binary batch {} here or in cifar-10-batches-bin/",
                    names[0]
                ),
            )
        })?;
    names
        .iter()
        .map(|n| {
            let p = base.join(n);
            if p.is_file() {
                Ok(p)
            } else {
                Err(NsgfError::format(
                    &p,
                    format!("missing CIFAR-10 {split} batch"),
                ))
            }
        })
        .collect()
}

/// Reads a CIFAR-10 split from the binary batches (see [`cifar10_bin_files`]), records in file
/// order.
pub fn load_cifar10_bin(dir: impl AsRef<Path>, split: Split) -> Result<ImageDataset> {
    let files = cifar10_bin_files(dir, split)?;
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for f in &files {
        let (b, l) = read_cifar10_bin(f)?;
        data.extend_from_slice(&b.data);
        labels.extend_from_slice(&l);
    }
    let images = ImageBatch::new(labels.len(), CIFAR_SIDE, CIFAR_SIDE, 3, data)?;
    ImageDataset::new(images, Some(labels), classes())
}

/// Reads a CIFAR-10 split from PNG class folders `dir/<split>/<class>/*.png`: the classes must
/// be the ten of [`CIFAR10_CLASSES`], the images 32x32 (grey PNGs are expanded to RGB).
pub fn load_cifar10_png(dir: impl AsRef<Path>, split: Split) -> Result<ImageDataset> {
    let root = dir.as_ref().join(split.name());
    let mut tree = ClassFolders::open(&root)?;
    if tree.classes != CIFAR10_CLASSES {
        return Err(NsgfError::format(
            &root,
            format!(
                "class folders are {:?}; CIFAR-10 needs exactly {:?}",
                tree.classes, CIFAR10_CLASSES
            ),
        ));
    }
    if (tree.height, tree.width) != (CIFAR_SIDE, CIFAR_SIDE) {
        return Err(NsgfError::format(
            &tree.folders[0].files[0],
            format!(
                "image is {}x{}; CIFAR-10 images are 32x32",
                tree.height, tree.width
            ),
        ));
    }
    tree.channels = 3;
    for f in &mut tree.folders {
        f.channels = 3;
    }
    let (images, labels) = tree.read_all()?;
    ImageDataset::new(images, Some(labels), classes())
}

/// Reads a CIFAR-10 split from `dir`, in whichever form it holds: binary batches (in `dir` or
/// `dir/cifar-10-batches-bin`) if present, else PNG class folders `dir/<split>/<class>/*.png`.
pub fn load_cifar10(dir: impl AsRef<Path>, split: Split) -> Result<ImageDataset> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(NsgfError::format(dir, "CIFAR-10 directory does not exist"));
    }
    let has_bin = ["data_batch_1.bin", "test_batch.bin"]
        .iter()
        .any(|n| dir.join(n).is_file() || dir.join("cifar-10-batches-bin").join(n).is_file());
    if has_bin {
        load_cifar10_bin(dir, split)
    } else if dir.join(split.name()).is_dir() {
        load_cifar10_png(dir, split)
    } else {
        Err(NsgfError::format(
            dir,
            format!(
                "neither CIFAR-10 binary batches (data_batch_*.bin, test_batch.bin) nor a PNG class \
                 tree {split}/<class>/*.png"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_is_chw_to_hwc() {
        let mut rec = vec![7u8];
        for c in 0..3u8 {
            rec.extend((0..1024).map(|p| (p % 250) as u8 + c));
        }
        let (b, l) = decode_records(&rec, Path::new("x")).unwrap();
        assert_eq!(l, vec![7]);
        // Pixel 5 (row 0, col 5): R, G, B.
        assert_eq!(&b.data[15..18], &[5, 6, 7]);
        rec[0] = 10;
        let e = decode_records(&rec, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 10"), "{e}");
    }
}
