//! Source and target minibatches of a generative run, for 2-D problems and image data sets alike.
//!
//! Every trainer of the project (NSGF's trajectory pool, NSGF++'s straight-flow parts, the
//! flow-matching baselines) draws `(x₀, y)` pairs of `n` rows of dimension `d` from a
//! [`PairData`]: the source `μ₀` (the problem's source distribution in 2-D, `N(0, I_d)` with
//! `d = C·H·W` for images) and the target `μ*` (the problem's target, or images of the data set
//! scaled to `[-1, 1]`). Draw number `index` of stream `stream` is a pure function of
//! `(seed, stream, index)`, so a resumed run sees exactly the batches an uninterrupted one would:
//!
//! * source rows from a [`StdRng`] keyed by `(seed, stream, index)` (see
//!   [`super::loader`] for the keying);
//! * 2-D target rows from the same RNG, after the source rows;
//! * image target rows: batch `index` of a shuffled epoch [`Loader`] seeded by `seed ⊕ stream`
//!   (epoch `index / batches_per_epoch`; full batches, optional horizontal flips).

use super::dataset::{DatasetSpec, ImageDataset};
use super::loader::{keyed_rng, BatchStream, Loader, LoaderConfig, LoaderState};
use super::toy2d::Problem;
use crate::error::{NsgfError, Result};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An image training set in a run config:
/// `[data] dataset = { kind = "mnist", dir = "../shared/data/mnist" }`, `hflip = false`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDataConfig {
    /// Where the images come from (relative paths: from the working directory).
    pub dataset: DatasetSpec,
    /// Flip each target image left-right with probability 1/2 (CIFAR-10; not for MNIST).
    #[serde(default)]
    pub hflip: bool,
}

/// The data of a run: a 2-D problem or an image set in memory.
#[derive(Clone, Debug)]
pub enum PairData {
    /// A 2-D problem (source and target distributions).
    Toy(Problem),
    /// Images (target) against `N(0, I)` (source).
    Images {
        data: Arc<ImageDataset>,
        hflip: bool,
    },
}

impl PairData {
    /// Loads the image set of a config.
    pub fn images(cfg: &ImageDataConfig) -> Result<Self> {
        Ok(Self::Images {
            data: Arc::new(cfg.dataset.load()?),
            hflip: cfg.hflip,
        })
    }

    /// Row dimension `d` (2, or `C·H·W`).
    pub fn dim(&self) -> usize {
        match self {
            Self::Toy(_) => 2,
            Self::Images { data, .. } => data.chw().iter().product(),
        }
    }

    /// `[C, H, W]` of image data, `None` in 2-D.
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        match self {
            Self::Toy(_) => None,
            Self::Images { data, .. } => Some(data.chw()),
        }
    }

    /// `n` source rows `(n, d)` of draw `index` of stream `stream`.
    pub fn source(&self, n: usize, seed: u64, stream: u64, index: u64) -> Vec<f32> {
        let mut rng = keyed_rng(seed, stream, index, 0);
        match self {
            Self::Toy(p) => p.source().sample(n, &mut rng),
            Self::Images { .. } => (0..n * self.dim())
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect(),
        }
    }

    /// Draw `index` of stream `stream`: `n` source rows and `n` target rows, both `(n, d)`
    /// row-major (see the module docs).
    pub fn pairs(
        &self,
        n: usize,
        seed: u64,
        stream: u64,
        index: u64,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        if n == 0 {
            return Err(NsgfError::Param("a batch needs at least one row".into()));
        }
        match self {
            Self::Toy(p) => {
                let mut rng = keyed_rng(seed, stream, index, 0);
                let x0 = p.source().sample(n, &mut rng);
                let y = p.target().sample(n, &mut rng);
                Ok((x0, y))
            }
            Self::Images { data, hflip } => {
                let x0 = self.source(n, seed, stream, index);
                let config = LoaderConfig {
                    hflip: *hflip,
                    ..LoaderConfig::new(n, seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                };
                let per_epoch = (data.len() / n.max(1)).max(1) as u64;
                let state = LoaderState {
                    config,
                    len: data.len(),
                    epoch: index / per_epoch,
                    position: (index % per_epoch) as usize * n,
                };
                let y = Loader::resume(Arc::clone(data), state)?.next_batch()?.data;
                Ok((x0, y))
            }
        }
    }
}

/// Where a run's data comes from, as written in its config: a 2-D `problem` or an image `data`
/// set (exactly one).
pub fn resolve(problem: Option<Problem>, data: Option<&ImageDataConfig>) -> Result<PairData> {
    match (problem, data) {
        (Some(p), None) => Ok(PairData::Toy(p)),
        (None, Some(d)) => PairData::images(d),
        (Some(_), Some(_)) => Err(NsgfError::Param(
            "a config names either a 2-D `problem` or an image `[data]` set, not both".into(),
        )),
        (None, None) => Err(NsgfError::Param(
            "a config needs a 2-D `problem = \"...\"` or an image `[data]` table".into(),
        )),
    }
}

/// The image shape a run records: the data's (an error when the config states another), `None`
/// in 2-D.
pub fn checked_image_shape(
    data: &PairData,
    configured: Option<[usize; 3]>,
) -> Result<Option<[usize; 3]>> {
    match (data.image_shape(), configured) {
        (Some(shape), Some(want)) if want != shape => Err(NsgfError::Param(format!(
            "image_shape = {want:?} in the config, but the data's images are {shape:?}"
        ))),
        (shape, _) => Ok(shape),
    }
}

/// `n` source rows of a trained run without its data, draw `index` of stream `stream`: the
/// problem's source in 2-D, `N(0, I)` of the recorded image shape for images.
pub fn source_rows(
    problem: Option<Problem>,
    image_shape: Option<[usize; 3]>,
    n: usize,
    seed: u64,
    stream: u64,
    index: u64,
) -> Result<Vec<f32>> {
    let mut rng = keyed_rng(seed, stream, index, 0);
    match (problem, image_shape) {
        (Some(p), _) => Ok(p.source().sample(n, &mut rng)),
        (None, Some(shape)) => {
            let d: usize = shape.iter().product();
            Ok((0..n * d)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect())
        }
        (None, None) => Err(NsgfError::Param(
            "the run names neither a problem nor an image shape".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::ImageBatch;

    fn tiny_images(n: usize) -> PairData {
        let pixels: Vec<u8> = (0..n * 4 * 4).map(|i| (i % 251) as u8).collect();
        let images = ImageBatch::new(n, 4, 4, 1, pixels).unwrap();
        PairData::Images {
            data: Arc::new(ImageDataset::new(images, None, vec![]).unwrap()),
            hflip: false,
        }
    }

    #[test]
    fn draws_are_pure_functions_of_seed_stream_index() {
        for data in [PairData::Toy(Problem::Moons), tiny_images(10)] {
            let a = data.pairs(4, 3, 1, 7).unwrap();
            assert_eq!(a, data.pairs(4, 3, 1, 7).unwrap());
            assert_ne!(a, data.pairs(4, 3, 1, 8).unwrap());
            assert_ne!(a, data.pairs(4, 3, 2, 7).unwrap());
            assert_ne!(a, data.pairs(4, 4, 1, 7).unwrap());
            assert_eq!(a.0.len(), 4 * data.dim());
            assert_eq!(a.1.len(), 4 * data.dim());
        }
    }

    #[test]
    fn image_targets_walk_shuffled_epochs() {
        // 10 images, batches of 3: 3 batches per epoch cover 9 distinct images.
        let data = tiny_images(10);
        let first_pixel =
            |y: &[f32]| -> Vec<i32> { y.chunks(16).map(|img| (img[0] * 1000.0) as i32).collect() };
        let mut seen = Vec::new();
        for i in 0..3 {
            seen.extend(first_pixel(&data.pairs(3, 5, 0, i).unwrap().1));
        }
        let mut uniq = seen.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 9, "{seen:?}");
        // Targets are scaled to [-1, 1]; sources are standard normal.
        let (x0, y) = data.pairs(3, 5, 0, 4).unwrap();
        assert!(y.iter().all(|v| (-1.0..=1.0).contains(v)));
        let m = x0.iter().map(|v| *v as f64).sum::<f64>() / x0.len() as f64;
        assert!(m.abs() < 0.5, "{m}");
    }

    #[test]
    fn resolve_needs_exactly_one_kind() {
        assert!(resolve(Some(Problem::Moons), None).is_ok());
        assert!(resolve(None, None).is_err());
        let d = ImageDataConfig {
            dataset: DatasetSpec::Images {
                path: "/nonexistent".into(),
            },
            hflip: false,
        };
        assert!(resolve(Some(Problem::Moons), Some(&d)).is_err());
        let e = resolve(None, Some(&d)).unwrap_err().to_string();
        assert!(e.contains("nonexistent"), "{e}");
    }
}
