//! Fréchet Inception Distance and Inception Score, computed the standard way: pytorch-fid's
//! preprocessing, the TF FID Inception-v3 ([`crate::models::inception`]), f64 statistics and a
//! careful matrix square root.
//!
//! * [`preprocess`] — uint8 -> [0,1] -> bilinear 299x299 (align_corners = false) -> [-1,1].
//! * [`stats`] — mean / unbiased covariance of the 2048-d features, `.npz` I/O.
//! * [`frechet`] — `|mu1-mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)`.
//! * [`inception_score`] — `exp(E KL(p(y|x) || p(y)))` over 10 splits (needs a classifier head,
//!   which the standard FID weights do not have).
//! * [`extract`] — batched feature extraction over an [`ImageSource`](crate::data::images::ImageSource).
//! * [`weights`] — where the weights are looked for.

pub mod extract;
pub mod frechet;
pub mod inception_score;
pub mod preprocess;
pub mod stats;
pub mod weights;

pub use extract::{
    compute_features, compute_features_rows, compute_inception_score, compute_statistics,
    extract_batch,
};
pub use frechet::{frechet_distance, FrechetDistance};
pub use inception_score::{inception_score, InceptionScore, IS_SPLITS, NO_CLASSIFIER};
pub use preprocess::preprocess;
pub use stats::{FeatureStats, StatsAccumulator};
pub use weights::resolve_weights;
