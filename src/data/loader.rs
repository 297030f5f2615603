//! Shuffled mini-batches over an [`ImageDataset`], resumable, with optional background prefetch.
//!
//! A [`Loader`] walks the data set epoch after epoch, endlessly. Epoch `e` visits the images in a
//! random permutation drawn from an RNG keyed by `(seed, e)`, `batch_size` at a time; with
//! `drop_last` (the default) a final partial batch is skipped, otherwise it is returned shorter.
//! With `hflip`, the images of the batch starting at permutation position `p` of epoch `e` are
//! flipped from an RNG keyed by `(seed, e, p)`. Every random draw is therefore a function of the
//! seed and the position, and a [`LoaderState`] (configuration, data-set size, epoch, position of
//! the next batch) is all a training run must save to resume at exactly the same batch: there is
//! no RNG state to carry. The RNGs are [`StdRng`] (ChaCha12) seeded with the 32-byte key
//! `seed ‖ stream ‖ epoch ‖ position` (little-endian u64s; stream 0 = permutation, 1 = flips),
//! so the streams are independent of each other.
//!
//! A [`PrefetchLoader`] runs a [`Loader`] on a background thread, converting the next batches
//! while the caller trains; it returns the same batches in the same order and reports the same
//! states as the synchronous loader. Both implement [`BatchStream`].

use super::dataset::{FloatBatch, ImageDataset};
use crate::error::{NsgfError, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

const STREAM_PERMUTATION: u64 = 0;
const STREAM_FLIP: u64 = 1;

fn default_drop_last() -> bool {
    true
}

/// How a [`Loader`] draws batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Images per batch (≥ 1; with `drop_last`, at most the data-set size).
    pub batch_size: usize,
    /// Seed of the permutations and flips.
    pub seed: u64,
    /// Flip each image left-right with probability 1/2 (default false).
    #[serde(default)]
    pub hflip: bool,
    /// Skip the last, partial batch of an epoch (default true).
    #[serde(default = "default_drop_last")]
    pub drop_last: bool,
}

impl LoaderConfig {
    /// `batch_size` images, seed `seed`, no flips, partial batches dropped.
    pub fn new(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            seed,
            hflip: false,
            drop_last: true,
        }
    }
}

/// Everything needed to resume a [`Loader`] at the same batch (serialise it with the
/// checkpoint; [`Loader::resume`] checks it against the data set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderState {
    /// The loader's configuration (seed included).
    pub config: LoaderConfig,
    /// Size of the data set the state belongs to.
    pub len: usize,
    /// Epoch of the next batch (0-based).
    pub epoch: u64,
    /// Position in the epoch's permutation of the next batch's first image.
    pub position: usize,
}

impl LoaderState {
    /// True when a batch can start at `position` of an epoch.
    fn batch_starts_at(&self, position: usize) -> bool {
        if self.config.drop_last {
            position + self.config.batch_size <= self.len
        } else {
            position < self.len
        }
    }

    /// Moves to the start of the next epoch when no batch starts at the current position.
    fn normalise(&mut self) {
        if !self.batch_starts_at(self.position) {
            self.epoch += 1;
            self.position = 0;
        }
    }
}

/// An RNG of the given stream, keyed by the seed and two counters.
pub(crate) fn keyed_rng(seed: u64, stream: u64, a: u64, b: u64) -> StdRng {
    let mut key = [0u8; 32];
    for (chunk, v) in key.chunks_exact_mut(8).zip([seed, stream, a, b]) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    StdRng::from_seed(key)
}

/// The permutation of `0..len` that epoch `epoch` of a loader seeded with `seed` visits.
pub fn epoch_permutation(seed: u64, epoch: u64, len: usize) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..len).collect();
    perm.shuffle(&mut keyed_rng(seed, STREAM_PERMUTATION, epoch, 0));
    perm
}

/// A source of training batches that can report where it stands.
pub trait BatchStream {
    /// The next batch.
    fn next_batch(&mut self) -> Result<FloatBatch>;
    /// The state after the batches returned so far: a loader resumed from it returns the batch
    /// that this one returns next.
    fn state(&self) -> LoaderState;
}

/// Endless shuffled batches over an in-memory data set (see the module docs).
#[derive(Clone, Debug)]
pub struct Loader {
    data: Arc<ImageDataset>,
    state: LoaderState,
    /// The permutation of `perm_epoch` (recomputed when the epoch changes).
    perm: Vec<usize>,
    perm_epoch: u64,
}

impl Loader {
    /// A loader at the start of epoch 0.
    pub fn new(data: Arc<ImageDataset>, config: LoaderConfig) -> Result<Self> {
        let len = data.len();
        Self::resume(
            data,
            LoaderState {
                config,
                len,
                epoch: 0,
                position: 0,
            },
        )
    }

    /// A loader that continues from a saved state; the data set must have the state's size.
    /// The state's own configuration is used (compare `state.config` with the run's settings
    /// to detect a changed batch size, seed or flip setting).
    pub fn resume(data: Arc<ImageDataset>, state: LoaderState) -> Result<Self> {
        let bs = state.config.batch_size;
        if bs == 0 {
            return Err(NsgfError::Param("batch size must be at least 1".into()));
        }
        if state.len != data.len() {
            return Err(NsgfError::Param(format!(
                "loader state was saved for a data set of {} images but this one has {}",
                state.len,
                data.len()
            )));
        }
        if state.config.drop_last && bs > state.len {
            return Err(NsgfError::Param(format!(
                "batch size {bs} exceeds the data set's {} images and partial batches are dropped",
                state.len
            )));
        }
        if state.position > state.len {
            return Err(NsgfError::Param(format!(
                "loader state position {} is past the data set's {} images",
                state.position, state.len
            )));
        }
        let mut state = state;
        state.normalise();
        let perm = epoch_permutation(state.config.seed, state.epoch, state.len);
        Ok(Self {
            perm_epoch: state.epoch,
            data,
            state,
            perm,
        })
    }

    /// The data set.
    pub fn data(&self) -> &Arc<ImageDataset> {
        &self.data
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let (len, bs) = (self.state.len, self.state.config.batch_size);
        if self.state.config.drop_last {
            len / bs
        } else {
            len.div_ceil(bs)
        }
    }

    /// The data-set indices of the next batch and whether each is flipped, advancing the state.
    pub fn next_plan(&mut self) -> (Vec<usize>, Vec<bool>) {
        let LoaderState {
            config,
            len,
            epoch,
            position,
        } = self.state;
        if self.perm_epoch != epoch {
            self.perm = epoch_permutation(config.seed, epoch, len);
            self.perm_epoch = epoch;
        }
        let end = (position + config.batch_size).min(len);
        let indices = self.perm[position..end].to_vec();
        let flipped = if config.hflip {
            use rand::RngExt;
            let mut rng = keyed_rng(config.seed, STREAM_FLIP, epoch, position as u64);
            indices.iter().map(|_| rng.random_bool(0.5)).collect()
        } else {
            vec![false; indices.len()]
        };
        self.state.position = end;
        self.state.normalise();
        (indices, flipped)
    }
}

impl BatchStream for Loader {
    fn next_batch(&mut self) -> Result<FloatBatch> {
        let (indices, flipped) = self.next_plan();
        self.data.batch_with_flips(&indices, &flipped)
    }

    fn state(&self) -> LoaderState {
        self.state
    }
}

impl Iterator for Loader {
    type Item = Result<FloatBatch>;
    /// Never `None`: the loader runs over epochs endlessly.
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_batch())
    }
}

type Prefetched = Result<(FloatBatch, LoaderState)>;

/// A [`Loader`] running on a background thread that keeps up to `depth` converted batches ready
/// (same batches, same order, same states as the loader itself). Dropping it stops the thread.
#[derive(Debug)]
pub struct PrefetchLoader {
    rx: Option<Receiver<Prefetched>>,
    worker: Option<JoinHandle<()>>,
    state: LoaderState,
}

impl PrefetchLoader {
    /// Starts the background thread on `loader` (from its current state); `depth ≥ 1` batches
    /// are prepared ahead.
    pub fn new(loader: Loader, depth: usize) -> Result<Self> {
        if depth == 0 {
            return Err(NsgfError::Param("prefetch depth must be at least 1".into()));
        }
        let state = loader.state;
        let (tx, rx) = sync_channel::<Prefetched>(depth);
        let worker = std::thread::Builder::new()
            .name("nsgf-prefetch".into())
            .spawn(move || {
                let mut loader = loader;
                loop {
                    let item = loader.next_batch().map(|b| (b, loader.state));
                    let failed = item.is_err();
                    // A send error means the receiver is gone: stop.
                    if tx.send(item).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(|e| NsgfError::Other(format!("cannot start the prefetch thread: {e}")))?;
        Ok(Self {
            rx: Some(rx),
            worker: Some(worker),
            state,
        })
    }

    /// Why the worker stopped, once its channel is closed.
    fn stopped(&mut self) -> NsgfError {
        let why = match self.worker.take().map(JoinHandle::join) {
            Some(Err(panic)) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .map(|s| format!("it panicked: {s}"))
                .unwrap_or_else(|| "it panicked".into()),
            _ => "after an earlier error".into(),
        };
        NsgfError::Other(format!("the prefetch thread has stopped ({why})"))
    }
}

impl BatchStream for PrefetchLoader {
    fn next_batch(&mut self) -> Result<FloatBatch> {
        let received = match &self.rx {
            Some(rx) => rx.recv().ok(),
            None => None,
        };
        match received {
            Some(Ok((batch, state))) => {
                self.state = state;
                Ok(batch)
            }
            Some(Err(e)) => Err(e),
            None => Err(self.stopped()),
        }
    }

    fn state(&self) -> LoaderState {
        self.state
    }
}

impl Iterator for PrefetchLoader {
    type Item = Result<FloatBatch>;
    /// Never `None`: the loader runs over epochs endlessly.
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_batch())
    }
}

impl Drop for PrefetchLoader {
    fn drop(&mut self) {
        // Closing the channel makes the worker's next (or pending) send fail, so it exits.
        drop(self.rx.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::ImageBatch;

    /// `n` 2x2 grey images; image `i` has pixel values `i, i+1, i+2, i+3` (mod 256).
    fn set(n: usize) -> Arc<ImageDataset> {
        let data = (0..n)
            .flat_map(|i| (0..4).map(move |p| (i + p) as u8))
            .collect();
        let b = ImageBatch::new(n, 2, 2, 1, data).unwrap();
        Arc::new(ImageDataset::new(b, None, vec![]).unwrap())
    }

    fn take(s: &mut impl BatchStream, k: usize) -> Vec<FloatBatch> {
        (0..k).map(|_| s.next_batch().unwrap()).collect()
    }

    #[test]
    fn epochs_are_permutations_and_differ() {
        let d = set(10);
        let mut l = Loader::new(d, LoaderConfig::new(3, 1)).unwrap();
        assert_eq!(l.batches_per_epoch(), 3);
        let mut epochs = Vec::new();
        for _ in 0..2 {
            let mut seen: Vec<usize> = take(&mut l, 3)
                .into_iter()
                .flat_map(|b| b.indices)
                .collect();
            epochs.push(seen.clone());
            seen.sort();
            assert_eq!(seen.len(), 9);
            seen.dedup();
            assert_eq!(seen.len(), 9);
        }
        assert_ne!(epochs[0], epochs[1]);
        assert_eq!(epochs[0], epoch_permutation(1, 0, 10)[..9]);
        assert_eq!(l.state().epoch, 2);

        let mut keep = Loader::new(
            set(10),
            LoaderConfig {
                drop_last: false,
                ..LoaderConfig::new(4, 1)
            },
        )
        .unwrap();
        let sizes: Vec<usize> = take(&mut keep, 4).iter().map(|b| b.shape[0]).collect();
        assert_eq!(sizes, vec![4, 4, 2, 4]);
    }

    #[test]
    fn resume_from_a_serialised_state_repeats_the_batches() {
        let cfg = LoaderConfig {
            hflip: true,
            ..LoaderConfig::new(4, 77)
        };
        let mut a = Loader::new(set(10), cfg).unwrap();
        take(&mut a, 3);
        let saved = serde_json::to_string(&a.state()).unwrap();
        let expected = take(&mut a, 7);
        let state: LoaderState = serde_json::from_str(&saved).unwrap();
        let mut b = Loader::resume(set(10), state).unwrap();
        assert_eq!(take(&mut b, 7), expected);
        assert!(expected.iter().any(|b| b.flipped.iter().any(|&f| f)));
        assert!(expected.iter().any(|b| b.flipped.iter().any(|&f| !f)));

        let bad = LoaderState { len: 11, ..state };
        assert!(Loader::resume(set(10), bad).is_err());
        assert!(Loader::new(set(3), LoaderConfig::new(4, 0)).is_err());
        assert!(Loader::new(set(3), LoaderConfig::new(0, 0)).is_err());
    }

    #[test]
    fn prefetch_matches_the_synchronous_loader() {
        let cfg = LoaderConfig {
            hflip: true,
            ..LoaderConfig::new(3, 5)
        };
        let mut sync = Loader::new(set(11), cfg).unwrap();
        let mut pre = PrefetchLoader::new(Loader::new(set(11), cfg).unwrap(), 2).unwrap();
        for _ in 0..12 {
            assert_eq!(pre.next_batch().unwrap(), sync.next_batch().unwrap());
            assert_eq!(pre.state(), sync.state());
        }
        drop(pre);
        assert!(PrefetchLoader::new(sync, 0).is_err());
    }
}
