//! Data sets.
//!
//! * [`toy2d`] — the 2-D toy problems (8gaussians, moons, 8gaussians->moons, scurve,
//!   checkerboard).
//! * [`images`] — folders / arrays of images (PNG, `.npy` uint8) for FID.

pub mod images;
pub mod toy2d;
