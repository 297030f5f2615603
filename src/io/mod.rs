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

use crate::error::{NsgfError, Result};
use std::path::Path;

/// `std::fs::create_dir_all` with a clear error where a file stands in the way (the OS says only
/// "File exists" or "Not a directory"): names the file that is not a folder.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        match dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
            Some(file) => NsgfError::io(
                dir,
                std::io::Error::new(
                    e.kind(),
                    format!("cannot create this folder: {} is a file", file.display()),
                ),
            ),
            None => NsgfError::io(dir, e),
        }
    })
}
