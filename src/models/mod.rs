//! Neural networks.
//!
//! * [`mlp`] — the time-conditioned MLP velocity field of the 2-D experiments (paper E.1).
//! * [`inception`] — the FID Inception-v3 (pool3 features).
//! * [`unet`] — the ADM UNet of the image experiments (torchcfm's `UNetModelWrapper`).
//! * [`time_predictor`] — the NSGF++ phase-transition time predictor (MLP for 2-D, CNN for images).
//! * [`wgf`] — the maps, critics and density-ratio network of JKO-Flow and EPT.
//! * [`sjko`] — the S-JKO toy generator `T(x, z)` and potential (ResNet_FC trunks).
//! * [`ops`] — fast image-network ops (convolution, GroupNorm + SiLU, attention) with custom
//!   backward passes, behind burn's custom-op API.

pub mod inception;
pub mod mlp;
pub mod ops;
pub mod sjko;
pub mod time_predictor;
pub mod unet;
pub mod wgf;

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

/// A network trained by least squares on rows `(x, τ, u)` of a regression batch (the shared
/// training loop, `train::fit`): velocity fields regress `u_θ(x, τ)` on `u` (paper eq. 12 and
/// the flow-matching objectives), the NSGF++ time predictor regresses `t_φ(x)` on `τ`
/// (Algorithm 3). Rows are flat: images are `C·H·W` values per row and the network reshapes them.
pub trait Regressor<B: Backend>: Module<B> {
    /// Mean squared error over the batch and the output coordinates. `x: (b, d)`,
    /// `tau: (b, 1)`, `u: (b, d)` (unused, and may be `None`, for a time predictor).
    fn regression_loss(
        &self,
        x: Tensor<B, 2>,
        tau: Tensor<B, 2>,
        u: Option<Tensor<B, 2>>,
    ) -> crate::Result<Tensor<B, 1>>;
}

/// `mean((pred − target)²)`, or a shape error naming `what` when the target is missing or of
/// another shape.
pub(crate) fn mse<B: Backend>(
    pred: Tensor<B, 2>,
    target: Option<Tensor<B, 2>>,
    what: &str,
) -> crate::Result<Tensor<B, 1>> {
    let Some(target) = target else {
        return Err(crate::NsgfError::Shape(format!(
            "{what}: the batch has no targets u"
        )));
    };
    if pred.dims() != target.dims() {
        return Err(crate::NsgfError::Shape(format!(
            "{what}: prediction {:?} against target {:?}",
            pred.dims(),
            target.dims()
        )));
    }
    Ok((pred - target).powi_scalar(2).mean())
}

/// Casts every float parameter of a CPU module to f64 (finite-difference tests need the
/// precision).
#[cfg(test)]
pub(crate) struct ToF64;

#[cfg(test)]
impl burn::module::ModuleMapper<crate::backend::Cpu> for ToF64 {
    fn map_float<const D: usize>(
        &mut self,
        p: burn::module::Param<Tensor<crate::backend::Cpu, D>>,
    ) -> burn::module::Param<Tensor<crate::backend::Cpu, D>> {
        let (id, t, m) = p.consume();
        burn::module::Param::from_mapped_value(id, t.cast(burn::tensor::DType::F64), m)
    }
}
