//! Training: configs, checkpoints and the explicit training loops.
//!
//! * [`config`] — the TOML config of a 2-D NSGF run.
//! * [`checkpoint`] — atomic safetensors checkpoints with optimizer state, and resume.
//! * [`nsgf`] — Algorithm 1 end to end (trajectory pool + velocity-field matching) and sampling.

pub mod checkpoint;
pub mod config;
pub mod nsgf;
pub mod toy_eval;
