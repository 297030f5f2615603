//! See the crate docs for this layer's role.
//!
//! * [`toy2d`] — the 2-D toy problems (8gaussians, moons, 8gaussians->moons, scurve,
//!   checkerboard).

pub mod toy2d;
