//! Neural networks.
//!
//! * [`mlp`] — the time-conditioned MLP velocity field of the 2-D experiments (paper E.1).
//! * [`inception`] — the FID Inception-v3 (pool3 features).

pub mod inception;
pub mod mlp;
