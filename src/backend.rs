//! Backend selection. All numerical code is generic over `B: burn::tensor::backend::Backend`;
//! this module names the concrete backends and lets the CLI pick one at run time.
//!
//! * CPU: burn's `flex` backend (pure Rust, default).
//! * CUDA: burn's `cuda` backend, behind the `cuda` cargo feature (kernels are JIT-compiled
//!   through NVRTC at run time, so no CUDA toolkit is needed to build).

use crate::error::{NsgfError, Result};
use serde::{Deserialize, Serialize};

/// CPU backend.
pub type Cpu = burn::backend::Flex;
/// CPU backend with autodiff (training).
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;

/// CUDA backend.
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
/// CUDA backend with autodiff (training).
#[cfg(feature = "cuda")]
pub type CudaAutodiff = burn::backend::Autodiff<Cuda>;

/// Which device a command runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU (`flex` backend).
    #[default]
    Cpu,
    /// The first NVIDIA GPU (`cuda` backend; needs the `cuda` cargo feature).
    Cuda,
}

impl DeviceKind {
    /// Errors when the device was not compiled in.
    pub fn check_available(self) -> Result<()> {
        match self {
            DeviceKind::Cpu => Ok(()),
            DeviceKind::Cuda => {
                if cfg!(feature = "cuda") {
                    Ok(())
                } else {
                    Err(NsgfError::Param(
                        "--device cuda needs a build with the `cuda` feature \
                         (cargo build --release --features cuda)"
                            .into(),
                    ))
                }
            }
        }
    }
}

/// Runs a generic expression with the backend type `$B` bound to the backend chosen by `$kind`
/// (a [`DeviceKind`]) and `$dev` bound to its default device.
///
/// ```ignore
/// let out = with_backend!(kind, |B, dev| my_generic::<B>(&dev, args))?;
/// ```
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, |$B:ident, $dev:ident| $body:expr) => {{
        match $kind {
            $crate::backend::DeviceKind::Cpu => {
                type $B = $crate::backend::Cpu;
                let $dev = <$B as burn::tensor::backend::BackendTypes>::Device::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceKind::Cuda => {
                type $B = $crate::backend::Cuda;
                let $dev = <$B as burn::tensor::backend::BackendTypes>::Device::default();
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceKind::Cuda => {
                return Err($crate::backend::DeviceKind::Cuda
                    .check_available()
                    .unwrap_err()
                    .into());
            }
        }
    }};
}

/// Same as [`with_backend!`] but binds the autodiff backend (for training).
#[macro_export]
macro_rules! with_autodiff_backend {
    ($kind:expr, |$B:ident, $dev:ident| $body:expr) => {{
        match $kind {
            $crate::backend::DeviceKind::Cpu => {
                type $B = $crate::backend::CpuAutodiff;
                let $dev = <$B as burn::tensor::backend::BackendTypes>::Device::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceKind::Cuda => {
                type $B = $crate::backend::CudaAutodiff;
                let $dev = <$B as burn::tensor::backend::BackendTypes>::Device::default();
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceKind::Cuda => {
                return Err($crate::backend::DeviceKind::Cuda
                    .check_available()
                    .unwrap_err()
                    .into());
            }
        }
    }};
}
