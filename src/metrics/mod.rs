//! Evaluation: figures, FID and Inception Score.
//!
//! * [`plots`] — sample-path and W2-curve figures.
//! * [`fid`] — FID / IS with the standard FID Inception-v3 (pytorch-fid conventions).
//! * [`neighbours`] — nearest training images of generated ones (Fig. 8).

pub mod fid;
pub mod neighbours;
pub mod plots;
