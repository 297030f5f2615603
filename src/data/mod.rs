//! Data sets.
//!
//! * [`toy2d`] — the 2-D toy problems (8gaussians, moons, 8gaussians->moons, scurve,
//!   checkerboard).
//! * [`images`] — folders / arrays of images (PNG, `.npy` uint8) for FID, and PNG class-folder
//!   trees.
//! * [`mnist`] — MNIST IDX files (plain or gzip), validated against their headers.
//! * [`cifar`] — CIFAR-10 from the binary batches or from PNG class folders.
//! * [`dataset`] — an image training set in memory ([`dataset::ImageDataset`]), its conversion
//!   to `[-1, 1]` NCHW float batches, and [`dataset::DatasetSpec`] naming where a set comes from.
//! * [`loader`] — seeded, resumable shuffled batches with optional flips and background prefetch.
//! * [`pairs`] — `(source, target)` minibatches of a run, 2-D or images, keyed by `(seed, stream,
//!   index)` so that resumed runs draw the same data.

pub mod cifar;
pub mod dataset;
pub mod images;
pub mod loader;
pub mod mnist;
pub mod pairs;
pub mod toy2d;
