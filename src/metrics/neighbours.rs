//! Nearest training neighbours of generated images (the paper's Fig. 8: a generative model that
//! memorised its training set would reproduce its images; its samples' nearest neighbours show
//! whether it does).
//!
//! Exact brute force in pixel space: for every query image `q` the pool image `p` minimising
//! `‖q − p‖²` over the `H·W·C` uint8 values, with the root-mean-square distance per value in
//! `[0, 1]` units reported (0: an exact copy).

use crate::data::images::ImageBatch;
use crate::error::{NsgfError, Result};
use rayon::prelude::*;

/// One query's nearest pool image: its index and the RMS distance per value (pixel values
/// scaled to `[0, 1]`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Neighbour {
    pub index: usize,
    pub rms: f64,
}

/// The nearest pool image of every query (ties: the lowest index). Both batches must hold
/// images of the same size.
pub fn nearest_neighbours(queries: &ImageBatch, pool: &ImageBatch) -> Result<Vec<Neighbour>> {
    let shape = |b: &ImageBatch| (b.height, b.width, b.channels);
    if shape(queries) != shape(pool) {
        return Err(NsgfError::Shape(format!(
            "nearest neighbours: queries of {:?} (H, W, C) against a pool of {:?}",
            shape(queries),
            shape(pool)
        )));
    }
    if pool.n == 0 {
        return Err(NsgfError::Param(
            "nearest neighbours: the pool is empty".into(),
        ));
    }
    let d = queries.height * queries.width * queries.channels;
    Ok(queries
        .data
        .par_chunks(d)
        .map(|q| {
            let (index, sq) = pool
                .data
                .chunks(d)
                .map(|p| {
                    q.iter()
                        .zip(p)
                        .map(|(&a, &b)| {
                            let e = a as i64 - b as i64;
                            (e * e) as u64
                        })
                        .sum::<u64>()
                })
                .enumerate()
                .min_by_key(|&(i, s)| (s, i))
                .expect("the pool is not empty");
            Neighbour {
                index,
                rms: (sq as f64 / d as f64).sqrt() / 255.0,
            }
        })
        .collect())
}

/// The images of `batch` at `indices`, in that order.
pub fn select(batch: &ImageBatch, indices: &[usize]) -> Result<ImageBatch> {
    let d = batch.height * batch.width * batch.channels;
    let mut data = Vec::with_capacity(indices.len() * d);
    for &i in indices {
        if i >= batch.n {
            return Err(NsgfError::Param(format!(
                "image {i} of a batch of {}",
                batch.n
            )));
        }
        data.extend_from_slice(&batch.data[i * d..(i + 1) * d]);
    }
    ImageBatch::new(
        indices.len(),
        batch.height,
        batch.width,
        batch.channels,
        data,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_found_at_distance_zero_and_noisy_copies_nearby() {
        let pool = ImageBatch::new(
            3,
            2,
            2,
            1,
            vec![0, 0, 0, 0, 255, 255, 255, 255, 0, 255, 0, 255],
        )
        .unwrap();
        let queries =
            ImageBatch::new(2, 2, 2, 1, vec![255, 255, 255, 255, 10, 250, 0, 240]).unwrap();
        let nn = nearest_neighbours(&queries, &pool).unwrap();
        assert_eq!(nn[0], Neighbour { index: 1, rms: 0.0 });
        assert_eq!(nn[1].index, 2);
        // Squared errors 100 + 25 + 0 + 225 over 4 values.
        let want = (350.0f64 / 4.0).sqrt() / 255.0;
        assert!((nn[1].rms - want).abs() < 1e-12);
        let picked = select(&pool, &[2, 0]).unwrap();
        assert_eq!(picked.data, vec![0, 255, 0, 255, 0, 0, 0, 0]);
        let other = ImageBatch::new(1, 1, 4, 1, vec![0; 4]).unwrap();
        assert!(nearest_neighbours(&other, &pool).is_err());
        assert!(select(&pool, &[3]).is_err());
    }
}
