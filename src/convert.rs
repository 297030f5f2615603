//! Conversions between host arrays and burn tensors.

use crate::error::{NsgfError, Result};
use crate::io::npy::Points;
use burn::tensor::{backend::Backend, DType, Tensor, TensorData};

/// Uploads a point cloud as an `(n, d)` tensor of the given dtype.
pub fn points_to_tensor<B: Backend>(p: &Points, device: &B::Device, dtype: DType) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(p.data.clone(), [p.n, p.d]), (device, dtype))
}

/// Uploads row-major f32 data as an `(n, d)` tensor of the backend's default float dtype.
pub fn rows_to_tensor<B: Backend>(
    data: Vec<f32>,
    n: usize,
    d: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(data, [n, d]), device)
}

/// The unit roundoff `u` of a float dtype (half its machine epsilon: the largest relative
/// rounding error of one operation); f32's for any other dtype.
pub fn unit_roundoff(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::EPSILON / 2.0,
        DType::F16 => 2f64.powi(-11),
        DType::BF16 => 2f64.powi(-8),
        _ => f64::from(f32::EPSILON) / 2.0,
    }
}

/// Downloads a tensor's elements as f64 (row-major).
pub fn to_f64_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f64>> {
    t.into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .map_err(|e| NsgfError::Other(format!("tensor download failed: {e:?}")))
}

/// Downloads a tensor's elements as f32 (row-major).
pub fn to_f32_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| NsgfError::Other(format!("tensor download failed: {e:?}")))
}

/// Downloads a tensor and returns it as a [`Points`] cloud (f64).
pub fn tensor_to_points<B: Backend>(t: Tensor<B, 2>) -> Result<Points> {
    let [n, d] = t.dims();
    Ok(Points {
        n,
        d,
        data: to_f64_vec(t)?,
    })
}

/// Errors when a tensor holds a NaN or an infinity; `what` names it in the message.
pub fn ensure_finite_tensor<B: Backend, const D: usize>(
    t: &Tensor<B, D>,
    what: &str,
) -> Result<()> {
    // 0·x is NaN exactly when x is NaN or ±∞, so one reduction detects both.
    let v = to_f64_vec(t.clone().mul_scalar(0.0).sum())?;
    if v.first().is_some_and(|s| *s == 0.0) {
        Ok(())
    } else {
        Err(NsgfError::NonFinite(format!(
            "{what} contains NaN or infinite values"
        )))
    }
}
