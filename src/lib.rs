//! # nsgf — Neural Sinkhorn Gradient Flow
//!
//! Layers, lowest first (a layer never imports a higher one):
//!
//! * [`ot`] — entropic optimal transport: cost, log-domain Sinkhorn with ε-scaling, the Sinkhorn
//!   divergence, the Sinkhorn gradient-flow velocity (paper eq. 13), exact W2.
//! * [`flows`] — NSGF (trajectory pool, velocity matching, Euler sampling; Algorithms 1–2),
//!   NSGF++ (Algorithms 3–4) and the flow-matching baselines.
//! * [`models`] — neural networks (MLP velocity field, UNet, time predictor, FID Inception-v3).
//! * [`data`] — data sets (2-D problems, MNIST, CIFAR-10).
//! * [`metrics`] — evaluation (W2 tables, FID, Inception Score).
//! * [`train`] — training loops, checkpoints, configs.
//!
//! [`io`], [`error`] and [`backend`] are shared utilities usable from every layer.

pub mod backend;
pub mod convert;
pub mod error;
pub mod io;
pub mod progress;

pub mod ot;

pub mod flows;
pub mod models;

pub mod data;
pub mod metrics;
pub mod train;

pub use error::{NsgfError, Result};
