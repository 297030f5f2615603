//! Exact W2 (placeholder API; implemented in the exact-OT change).

use crate::error::Result;
use crate::io::npy::Points;

/// Exact 2-Wasserstein distance between the uniform empirical measures on `x` and `y`.
pub fn w2(x: &Points, y: &Points) -> Result<f64> {
    let _ = (x, y);
    Err(crate::NsgfError::Other("exact W2 is not implemented yet".into()))
}
