//! Reading `.safetensors` files into host arrays ([`NpyArray`]).

use super::npy::{NpyArray, NpyData};
use crate::error::{NsgfError, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads every tensor of a `.safetensors` file (dtypes F32, F64, U8, I64, I32) by name.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<BTreeMap<String, NpyArray>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| NsgfError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| NsgfError::format(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F32 => NpyData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::F64 => NpyData::F64(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            Dtype::U8 => NpyData::U8(raw.to_vec()),
            Dtype::I64 => NpyData::I64(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            Dtype::I32 => NpyData::I64(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect(),
            ),
            other => {
                return Err(NsgfError::format(
                    path,
                    format!(
                        "tensor `{name}` has element type {other:?}; supported: F32, F64, U8, \
                         I32, I64"
                    ),
                ))
            }
        };
        out.insert(
            name.clone(),
            NpyArray {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}
