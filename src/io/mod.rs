//! File formats: NumPy `.npy` / `.npz` arrays, point-cloud helpers, safetensors checkpoints
//! (single-file or Hugging Face sharded).

pub mod hash;
pub mod npy;
pub mod parts;
pub mod safetensors_shards;
pub mod tensors;

pub use hash::{fnv1a, fnv1a_hex, Fnv1a};
pub use npy::{read_npy, read_npz, read_points, write_npy, write_npz, NpyArray, NpyData, Points};
pub use safetensors_shards::SafetensorsStore;
pub use tensors::{canonical_safetensors, read_safetensors};
