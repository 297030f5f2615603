//! Training: configs, checkpoints and the explicit training loops.
//!
//! * [`config`] — the TOML config of a 2-D NSGF run.
//! * [`cfm`] — flow-matching runs from a config (the image baselines: FM, I-CFM, OT-CFM, SI, 1-RF).
//! * [`checkpoint`] — atomic safetensors checkpoints with optimizer state, and resume.
//! * [`fit`] — the velocity-regression loop shared by NSGF and the flow-matching baselines.
//! * [`interrupt`] — Ctrl-C / SIGTERM stop training after a checkpoint.
//! * [`metrics_log`] — a run's `metrics.jsonl`, one history across resumes.
//! * [`optim`] — global-norm gradient clipping and the weights' moving average (EMA).
//! * [`nsgf`] — Algorithm 1 end to end (trajectory pool + velocity-field matching) and sampling.
//! * [`nsgfpp`] — NSGF++ on the 2-D problems: Algorithm 3 (three networks) and Algorithm 4.
//! * [`toy_eval`] — the 2-D evaluation protocol (W2, floor, teacher).
//! * [`table1`] — the paper's Table 1 harness (NSGF beside FM, I-CFM, OT-CFM, SI, k-RF).
//! * [`wgf`] — JKO-Flow and EPT runs on the 2-D problems (Table 1's neural WGF baselines).
//! * [`sjko`] — S-JKO runs on the 2-D problems (K JKO phases of one generator, NFE = 1).
//! * [`unet_bench`] — the speed of a UNet training step and of its ops (`nsgf bench unet`).

pub mod cfm;
pub mod checkpoint;
pub mod config;
pub mod fit;
pub mod interrupt;
pub mod metrics_log;
pub mod nsgf;
pub mod nsgfpp;
pub mod optim;
pub mod sjko;
pub mod table1;
pub mod toy_eval;
pub mod unet_bench;
pub mod wgf;
