//! Image training sets held in memory, and their conversion to network input.
//!
//! An [`ImageDataset`] keeps a whole data set as uint8 NHWC ([`ImageBatch`], 1 or 3 channels)
//! with optional labels (MNIST: 47 MB, CIFAR-10: 150 MB). [`ImageDataset::batch`] turns the
//! images at given indices into a [`FloatBatch`]: `f32`, **NCHW**, scaled to `[-1, 1]` by
//! `x / 127.5 - 1` (0 ↦ -1 and 255 ↦ 1 exactly), optionally flipped left-right image by image.
//! [`DatasetSpec`] names where a set comes from (MNIST IDX, CIFAR-10 binary batches or PNG class
//! folders, class folders, any folder of same-size PNGs or a uint8 `.npy` array) and loads it.

use super::cifar::load_cifar10;
use super::images::{ClassFolders, ImageBatch, ImageSource};
use super::mnist::load_mnist;
use crate::error::{NsgfError, Result};
use rand::rngs::StdRng;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Which part of a data set with a fixed train/test split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training images (MNIST `train-*`, CIFAR-10 `data_batch_1..5` / `train/`).
    #[default]
    Train,
    /// The test images (MNIST `t10k-*`, CIFAR-10 `test_batch` / `test/`).
    Test,
}

impl Split {
    /// `"train"` or `"test"`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = NsgfError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            other => Err(NsgfError::Param(format!(
                "unknown split {other:?}; valid: train, test"
            ))),
        }
    }
}

/// Maps a uint8 sample to `[-1, 1]`: `v / 127.5 - 1` (exact at 0 ↦ -1, 255 ↦ 1).
#[inline]
pub fn u8_to_unit(v: u8) -> f32 {
    v as f32 / 127.5 - 1.0
}

/// Inverse of [`u8_to_unit`] for generated samples: `round((x + 1) * 127.5)` clamped to
/// `0..=255` (NaN ↦ 0). `unit_to_u8(u8_to_unit(v)) == v` for every `v`.
#[inline]
pub fn unit_to_u8(x: f32) -> u8 {
    ((x + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

/// Converts `[-1, 1]` float images, NCHW with `shape = [n, c, h, w]`, to a uint8 NHWC
/// [`ImageBatch`] through [`unit_to_u8`] (e.g. generated samples, for FID or PNG output).
pub fn unit_nchw_to_images(data: &[f32], shape: [usize; 4]) -> Result<ImageBatch> {
    let [n, c, h, w] = shape;
    if c != 1 && c != 3 {
        return Err(NsgfError::Shape(format!(
            "images need 1 or 3 channels, got shape {shape:?} (NCHW)"
        )));
    }
    if data.len() != n * c * h * w {
        return Err(NsgfError::Shape(format!(
            "{} values do not form images of shape {shape:?} (NCHW)",
            data.len()
        )));
    }
    let mut out = vec![0u8; data.len()];
    let plane = h * w;
    for i in 0..n {
        for ch in 0..c {
            let src = &data[(i * c + ch) * plane..(i * c + ch + 1) * plane];
            for (p, &x) in src.iter().enumerate() {
                out[(i * plane + p) * c + ch] = unit_to_u8(x);
            }
        }
    }
    ImageBatch::new(n, h, w, c, out)
}

/// Network input made from images of an [`ImageDataset`].
#[derive(Clone, Debug, PartialEq)]
pub struct FloatBatch {
    /// `n * c * h * w` values in `[-1, 1]`, NCHW.
    pub data: Vec<f32>,
    /// `[n, c, h, w]`.
    pub shape: [usize; 4],
    /// The data-set index of every image, in batch order.
    pub indices: Vec<usize>,
    /// Whether each image was flipped left-right.
    pub flipped: Vec<bool>,
    /// The labels of the images, when the data set has labels.
    pub labels: Option<Vec<u8>>,
}

/// A whole uint8 image data set in memory, with optional class labels.
///
/// Invariants (checked by [`ImageDataset::new`]): at least one image; labels, when present,
/// one per image and each below `classes.len()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDataset {
    images: ImageBatch,
    labels: Option<Vec<u8>>,
    classes: Vec<String>,
}

impl ImageDataset {
    /// Wraps images (NHWC uint8) and optional labels; `classes` names the label values (empty
    /// when there are no labels).
    pub fn new(images: ImageBatch, labels: Option<Vec<u8>>, classes: Vec<String>) -> Result<Self> {
        if images.n == 0 {
            return Err(NsgfError::Shape(
                "a data set needs at least one image".into(),
            ));
        }
        if let Some(l) = &labels {
            if l.len() != images.n {
                return Err(NsgfError::Shape(format!(
                    "{} labels for {} images",
                    l.len(),
                    images.n
                )));
            }
            if let Some(i) = l.iter().position(|&v| v as usize >= classes.len()) {
                return Err(NsgfError::Shape(format!(
                    "label {i} is {} but there are {} classes",
                    l[i],
                    classes.len()
                )));
            }
        }
        Ok(Self {
            images,
            labels,
            classes,
        })
    }

    /// Reads every image of an [`ImageSource`] (a PNG folder or a `.npy` array), unlabelled.
    pub fn from_source(source: &ImageSource) -> Result<Self> {
        Self::new(source.batch(0, source.len())?, None, Vec::new())
    }

    /// Reads every image of a [`ClassFolders`] tree, labelled by sorted class index.
    pub fn from_class_folders(folders: &ClassFolders) -> Result<Self> {
        let (images, labels) = folders.read_all()?;
        Self::new(images, Some(labels), folders.classes.clone())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.n
    }

    /// Always false (a data set holds at least one image).
    pub fn is_empty(&self) -> bool {
        self.images.n == 0
    }

    /// `(height, width, channels)`.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.images.height, self.images.width, self.images.channels)
    }

    /// `[c, h, w]`: the shape of one image in a [`FloatBatch`].
    pub fn chw(&self) -> [usize; 3] {
        [self.images.channels, self.images.height, self.images.width]
    }

    /// The uint8 images, NHWC.
    pub fn images(&self) -> &ImageBatch {
        &self.images
    }

    /// The labels, one per image, when the data set has them.
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// Class names, indexed by label (empty without labels).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Number of images per class (empty without labels).
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in self.labels.iter().flatten() {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The images at `indices` as `[-1, 1]` floats, NCHW (`x / 127.5 - 1`).
    ///
    /// With `flip = Some(rng)`, each image is flipped left-right with probability 1/2, drawing
    /// exactly one `rng.random_bool(0.5)` per image in batch order (so the same seeded RNG gives
    /// the same flips); with `None` no image is flipped and no randomness is used. An index
    /// `>= len()` is an error.
    pub fn batch(&self, indices: &[usize], flip: Option<&mut StdRng>) -> Result<FloatBatch> {
        let flipped: Vec<bool> = match flip {
            Some(rng) => indices.iter().map(|_| rng.random_bool(0.5)).collect(),
            None => vec![false; indices.len()],
        };
        self.batch_with_flips(indices, &flipped)
    }

    /// [`Self::batch`] with the flips given explicitly (`flipped[i]` for `indices[i]`).
    pub fn batch_with_flips(&self, indices: &[usize], flipped: &[bool]) -> Result<FloatBatch> {
        if flipped.len() != indices.len() {
            return Err(NsgfError::Shape(format!(
                "{} flip flags for {} indices",
                flipped.len(),
                indices.len()
            )));
        }
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(NsgfError::Param(format!(
                "image index {i} is out of range for a data set of {} images",
                self.len()
            )));
        }
        let (h, w, c) = self.dims();
        let per = h * w * c;
        let plane = h * w;
        let lut: [f32; 256] = std::array::from_fn(|v| u8_to_unit(v as u8));
        let mut data = vec![0f32; indices.len() * per];
        for ((&idx, &flip), out) in indices.iter().zip(flipped).zip(data.chunks_exact_mut(per)) {
            let img = &self.images.data[idx * per..(idx + 1) * per];
            for y in 0..h {
                let row = &img[y * w * c..(y + 1) * w * c];
                for x in 0..w {
                    let sx = if flip { w - 1 - x } else { x };
                    let px = &row[sx * c..(sx + 1) * c];
                    for (ch, &v) in px.iter().enumerate() {
                        out[ch * plane + y * w + x] = lut[v as usize];
                    }
                }
            }
        }
        let labels = self
            .labels
            .as_ref()
            .map(|l| indices.iter().map(|&i| l[i]).collect());
        Ok(FloatBatch {
            data,
            shape: [indices.len(), c, h, w],
            indices: indices.to_vec(),
            flipped: flipped.to_vec(),
            labels,
        })
    }
}

/// Where a training set comes from (serialisable, e.g. in a training config:
/// `{ kind = "mnist", dir = "../shared/data/mnist", split = "train" }`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DatasetSpec {
    /// MNIST IDX files in `dir` ([`load_mnist`]): 1 channel, 28x28, labels 0..9.
    Mnist {
        dir: PathBuf,
        #[serde(default)]
        split: Split,
    },
    /// CIFAR-10 in `dir` ([`load_cifar10`]): the binary batches (`data_batch_*.bin`,
    /// `test_batch.bin`, in `dir` or `dir/cifar-10-batches-bin`) or PNG class folders
    /// `dir/{train,test}/<class>/*.png`; RGB 32x32, labels 0..9.
    Cifar10 {
        dir: PathBuf,
        #[serde(default)]
        split: Split,
    },
    /// One subfolder of same-size PNGs per class ([`ClassFolders`]); labels by sorted folder name.
    ClassFolders { dir: PathBuf },
    /// A folder of same-size PNGs or a uint8 `.npy` array ([`ImageSource::open`]), unlabelled.
    Images { path: PathBuf },
}

impl DatasetSpec {
    /// Reads the whole data set into memory.
    pub fn load(&self) -> Result<ImageDataset> {
        match self {
            DatasetSpec::Mnist { dir, split } => load_mnist(dir, *split),
            DatasetSpec::Cifar10 { dir, split } => load_cifar10(dir, *split),
            DatasetSpec::ClassFolders { dir } => {
                ImageDataset::from_class_folders(&ClassFolders::open(dir)?)
            }
            DatasetSpec::Images { path } => ImageDataset::from_source(&ImageSource::open(path)?),
        }
    }

    /// The directory or file the data set is read from.
    pub fn path(&self) -> &Path {
        match self {
            DatasetSpec::Mnist { dir, .. }
            | DatasetSpec::Cifar10 { dir, .. }
            | DatasetSpec::ClassFolders { dir } => dir,
            DatasetSpec::Images { path } => path,
        }
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::Mnist { dir, split } => write!(f, "mnist {split} ({})", dir.display()),
            DatasetSpec::Cifar10 { dir, split } => {
                write!(f, "cifar10 {split} ({})", dir.display())
            }
            DatasetSpec::ClassFolders { dir } => write!(f, "class folders {}", dir.display()),
            DatasetSpec::Images { path } => write!(f, "images {}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// 2 images 2x3 RGB with distinct values.
    fn tiny() -> ImageDataset {
        let data: Vec<u8> = (0..2 * 2 * 3 * 3).map(|v| (v * 7) as u8).collect();
        let b = ImageBatch::new(2, 2, 3, 3, data).unwrap();
        ImageDataset::new(b, Some(vec![1, 0]), vec!["a".into(), "b".into()]).unwrap()
    }

    #[test]
    fn scaling_is_exact_at_the_ends_and_inverts() {
        assert_eq!(u8_to_unit(0), -1.0);
        assert_eq!(u8_to_unit(255), 1.0);
        for v in 0..=255u8 {
            assert_eq!(unit_to_u8(u8_to_unit(v)), v);
        }
        assert_eq!(unit_to_u8(f32::NAN), 0);
        assert_eq!((unit_to_u8(-3.0), unit_to_u8(7.0)), (0, 255));
    }

    #[test]
    fn batch_is_nchw_and_flip_mirrors_columns() {
        let d = tiny();
        let (h, w, c) = d.dims();
        let plain = d.batch(&[1, 0], None).unwrap();
        assert_eq!(plain.shape, [2, 3, 2, 3]);
        assert_eq!(plain.labels, Some(vec![0, 1]));
        let img = &d.images().data;
        for (b, &i) in [1usize, 0].iter().enumerate() {
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let v = img[((i * h + y) * w + x) * c + ch];
                        assert_eq!(plain.data[((b * c + ch) * h + y) * w + x], u8_to_unit(v));
                    }
                }
            }
        }
        let fl = d.batch_with_flips(&[1, 0], &[true, false]).unwrap();
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let at = |b: usize, x: usize| ((b * c + ch) * h + y) * w + x;
                    assert_eq!(fl.data[at(0, x)], plain.data[at(0, w - 1 - x)]);
                    assert_eq!(fl.data[at(1, x)], plain.data[at(1, x)]);
                }
            }
        }
        // Back to uint8 NHWC.
        let back = unit_nchw_to_images(&plain.data, plain.shape).unwrap();
        assert_eq!(back.data[..18], img[18..]);
    }

    #[test]
    fn seeded_flips_repeat_and_bad_indices_fail() {
        let d = tiny();
        let idx = [0, 1, 1, 0, 1, 0, 0, 1];
        let a = d.batch(&idx, Some(&mut StdRng::seed_from_u64(4))).unwrap();
        let b = d.batch(&idx, Some(&mut StdRng::seed_from_u64(4))).unwrap();
        assert_eq!(a, b);
        let e = d.batch(&[0, 2], None).unwrap_err().to_string();
        assert!(e.contains("index 2"), "{e}");
        assert!(d.batch_with_flips(&[0], &[]).is_err());
    }

    #[test]
    fn dataset_checks_labels() {
        let b = ImageBatch::new(1, 1, 1, 1, vec![0]).unwrap();
        assert!(ImageDataset::new(b.clone(), Some(vec![0, 1]), vec!["a".into()]).is_err());
        assert!(ImageDataset::new(b.clone(), Some(vec![1]), vec!["a".into()]).is_err());
        let e = ImageBatch::new(0, 1, 1, 1, vec![]).unwrap();
        assert!(ImageDataset::new(e, None, vec![]).is_err());
        assert_eq!(
            ImageDataset::new(b, Some(vec![0]), vec!["a".into()])
                .unwrap()
                .label_counts(),
            vec![1]
        );
    }

    #[test]
    fn spec_parses_from_toml() {
        let s: DatasetSpec = toml::from_str("kind = \"mnist\"\ndir = \"m\"\n").unwrap();
        assert_eq!(
            s,
            DatasetSpec::Mnist {
                dir: "m".into(),
                split: Split::Train
            }
        );
        let s: DatasetSpec =
            toml::from_str("kind = \"cifar10\"\ndir = \"c\"\nsplit = \"test\"\n").unwrap();
        assert_eq!(s.to_string(), "cifar10 test (c)");
        assert!(toml::from_str::<DatasetSpec>("kind = \"mnist\"\ndir = \"m\"\nx = 1\n").is_err());
        assert!(toml::from_str::<DatasetSpec>("kind = \"svhn\"\ndir = \"m\"\n").is_err());
        assert!("val".parse::<Split>().is_err());
    }
}
