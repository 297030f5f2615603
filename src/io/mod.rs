//! File formats: NumPy `.npy` / `.npz` arrays and point-cloud helpers.

pub mod npy;
pub mod tensors;

pub use npy::{read_npy, read_npz, read_points, write_npy, write_npz, NpyArray, NpyData, Points};
pub use tensors::read_safetensors;
