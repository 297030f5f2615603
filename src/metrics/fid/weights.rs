//! Locating the FID Inception weights.

use crate::error::{NsgfError, Result};
use std::path::{Path, PathBuf};

/// Environment variable naming the weights (folder, index file or single `.safetensors`).
pub const WEIGHTS_ENV: &str = "NSGF_FID_WEIGHTS";

/// Default location relative to the current directory (the project's shared data folder).
pub const DEFAULT_WEIGHTS_DIR: &str = "../shared/data/fid";

/// The weights to use: `explicit` when given, else `$NSGF_FID_WEIGHTS`, else
/// `../shared/data/fid` if it exists; otherwise an error explaining how to point at them.
pub fn resolve_weights(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(NsgfError::Param(format!(
                "FID weights {} do not exist",
                p.display()
            )))
        };
    }
    if let Some(p) = std::env::var_os(WEIGHTS_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(p)
        } else {
            Err(NsgfError::Param(format!(
                "{WEIGHTS_ENV}={} does not exist",
                p.display()
            )))
        };
    }
    let default = PathBuf::from(DEFAULT_WEIGHTS_DIR);
    if default.is_dir() {
        return Ok(default);
    }
    Err(NsgfError::Param(format!(
        "FID Inception weights not found: pass --weights DIR (a folder holding \
         inception-fid.safetensors.index.json and its shards, the index itself, or a single \
         .safetensors file) or set {WEIGHTS_ENV}; the default {DEFAULT_WEIGHTS_DIR} (relative to \
         the current directory) does not exist"
    )))
}
