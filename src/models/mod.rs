//! Neural networks.
//!
//! * [`mlp`] — the time-conditioned MLP velocity field of the 2-D experiments (paper E.1).
//! * [`inception`] — the FID Inception-v3 (pool3 features).
//! * [`unet`] — the ADM UNet of the image experiments (torchcfm's `UNetModelWrapper`).
//! * [`ops`] — fast image-network ops (convolution, GroupNorm + SiLU, attention) with custom
//!   backward passes, behind burn's custom-op API.

pub mod inception;
pub mod mlp;
pub mod ops;
pub mod unet;
