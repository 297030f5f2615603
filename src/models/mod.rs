//! Neural networks.
//!
//! * [`mlp`] — the time-conditioned MLP velocity field of the 2-D experiments (paper E.1).

pub mod mlp;
