//! Running the FID Inception over an image set: preprocessing, batched forward passes,
//! streaming statistics, and the Inception Score from the logits.

use super::inception_score::{inception_score, softmax_rows, InceptionScore, NO_CLASSIFIER};
use super::preprocess::preprocess;
use super::stats::{FeatureStats, StatsAccumulator};
use crate::data::images::{ImageBatch, ImageSource};
use crate::error::{NsgfError, Result};
use crate::models::inception::{FidInception, FEATURE_DIM};
use crate::models::ops::NnBackend;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Outputs of the network for a batch, on the host.
#[derive(Clone, Debug)]
pub struct BatchFeatures {
    /// pool3 features, `(n, 2048)` row-major.
    pub pool3: Vec<f32>,
    /// Logits `(n, k)` row-major, when the weights have a classifier.
    pub logits: Option<Vec<f32>>,
}

fn to_host<B: Backend, const D: usize>(t: Tensor<B, D>, what: &str) -> Result<Vec<f32>> {
    t.try_into_data()
        .map_err(|e| NsgfError::Other(format!("reading {what} back from the device: {e:?}")))?
        .into_vec::<f32>()
        .map_err(|e| NsgfError::Other(format!("reading {what} as f32: {e:?}")))
}

/// Preprocesses a batch of uint8 images and runs the network on it.
pub fn extract_batch<B: NnBackend>(
    model: &FidInception<B>,
    images: &ImageBatch,
    device: &B::Device,
) -> Result<BatchFeatures> {
    let x = preprocess::<B>(images, device)?;
    let out = model.forward(x)?;
    let pool3 = to_host(out.pool3, "pool3 features")?;
    let logits = out.logits.map(|l| to_host(l, "logits")).transpose()?;
    Ok(BatchFeatures { pool3, logits })
}

/// Calls `f` on the outputs of every batch of `batch_size` images of `source`, in order;
/// `progress` receives the number of images finished after each batch.
pub fn for_each_batch<B: NnBackend>(
    model: &FidInception<B>,
    source: &ImageSource,
    batch_size: usize,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
    mut f: impl FnMut(BatchFeatures) -> Result<()>,
) -> Result<()> {
    if batch_size == 0 {
        return Err(NsgfError::Param("batch size must be at least 1".into()));
    }
    let n = source.len();
    let mut start = 0;
    while start < n {
        let end = (start + batch_size).min(n);
        let batch = source.batch(start, end)?;
        f(extract_batch(model, &batch, device)?)?;
        progress(end);
        start = end;
    }
    Ok(())
}

/// pool3 features of every image, `(n, 2048)` row-major.
pub fn compute_features<B: NnBackend>(
    model: &FidInception<B>,
    source: &ImageSource,
    batch_size: usize,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<f32>> {
    let mut feats = Vec::with_capacity(source.len() * FEATURE_DIM);
    for_each_batch(model, source, batch_size, device, progress, |b| {
        feats.extend_from_slice(&b.pool3);
        Ok(())
    })?;
    Ok(feats)
}

/// pool3 features of images `rows` of `source`, `(rows.len(), 2048)` row-major, in batches of
/// `batch_size` from `rows.start` (the batches [`compute_statistics`] would run when
/// `rows.start` is a multiple of `batch_size`); `progress` receives the rows finished.
pub fn compute_features_rows<B: NnBackend>(
    model: &FidInception<B>,
    source: &ImageSource,
    rows: std::ops::Range<usize>,
    batch_size: usize,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<f32>> {
    if batch_size == 0 || rows.end > source.len() {
        return Err(NsgfError::Param(format!(
            "images {rows:?} of {} in batches of {batch_size}",
            source.len()
        )));
    }
    let mut feats = Vec::with_capacity(rows.len() * FEATURE_DIM);
    for start in rows.clone().step_by(batch_size) {
        let end = (start + batch_size).min(rows.end);
        let batch = source.batch(start, end)?;
        feats.extend(extract_batch(model, &batch, device)?.pool3);
        progress(end - rows.start);
    }
    Ok(feats)
}

/// FID statistics (mean, covariance of the pool3 features) of an image set; needs at least 2
/// images. Features are accumulated batch by batch, never all held.
pub fn compute_statistics<B: NnBackend>(
    model: &FidInception<B>,
    source: &ImageSource,
    batch_size: usize,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<FeatureStats> {
    if source.len() < 2 {
        return Err(NsgfError::Param(format!(
            "FID statistics need at least 2 images, got {}",
            source.len()
        )));
    }
    let mut acc = StatsAccumulator::new(FEATURE_DIM);
    for_each_batch(model, source, batch_size, device, progress, |b| {
        acc.push(&b.pool3)
    })?;
    acc.finish()
}

/// Inception Score of an image set over `splits` parts. Errors with [`NO_CLASSIFIER`] when the
/// weights carry no classifier head (the standard FID weights), before reading any image.
pub fn compute_inception_score<B: NnBackend>(
    model: &FidInception<B>,
    source: &ImageSource,
    batch_size: usize,
    splits: usize,
    device: &B::Device,
    progress: &mut dyn FnMut(usize),
) -> Result<InceptionScore> {
    let k = model
        .num_classes()
        .ok_or_else(|| NsgfError::Other(NO_CLASSIFIER.into()))?;
    if source.len() < splits {
        return Err(NsgfError::Param(format!(
            "the Inception Score over {splits} splits needs at least {splits} images, got {}",
            source.len()
        )));
    }
    let mut probs = Vec::with_capacity(source.len() * k);
    for_each_batch(model, source, batch_size, device, progress, |b| {
        let logits = b
            .logits
            .ok_or_else(|| NsgfError::Other(NO_CLASSIFIER.into()))?;
        probs.extend(softmax_rows(&logits, k));
        Ok(())
    })?;
    inception_score(&probs, k, splits)
}
