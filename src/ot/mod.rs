//! Entropic optimal transport (paper Sec. 3.2 and 4.1–4.2, appendix A).
//!
//! * [`cost`] — the ground cost C(x, y) = |x − y|² / 2.
//! * [`softmin`] — the log-domain soft c-transform (the "softmin" of GeomLoss).
//! * [`softmin_cpu`] — a fused CPU softmin kernel on host data (used on the CPU backend).
//! * [`sinkhorn`] — debiased Sinkhorn with ε-scaling, potentials and the Sinkhorn divergence.
//! * [`velocity`] — the Sinkhorn gradient-flow velocity (paper eq. 13) in closed form.
//! * [`emd`] — exact W2 for evaluation.

pub mod cost;
pub mod emd;
pub mod sinkhorn;
pub mod softmin;
pub mod softmin_cpu;
pub mod velocity;
