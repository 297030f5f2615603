//! Feature-extraction throughput of the FID Inception (preprocessing + forward + readback).
//!
//! ```text
//! cargo run --release --example fid_throughput -- [BATCH] [BATCHES] [cpu|cuda] [WEIGHTS]
//! ```
//!
//! Defaults: batch 50, 3 timed batches (after one warm-up batch), cpu, weights from
//! `$NSGF_FID_WEIGHTS` or `../shared/data/fid`. Inputs are random 32x32 RGB uint8 images (the
//! cost does not depend on the content; every image is resized to 299x299).

use nsgf::backend::DeviceKind;
use nsgf::data::images::ImageBatch;
use nsgf::metrics::fid::{extract_batch, resolve_weights};
use nsgf::models::inception::FidInception;
use std::path::PathBuf;
use std::time::Instant;

fn measure<B: nsgf::models::ops::NnBackend>(
    dev: &B::Device,
    weights: &std::path::Path,
    batch: usize,
    batches: usize,
) -> nsgf::Result<()> {
    let t = Instant::now();
    let model = FidInception::<B>::load(weights, dev)?;
    println!("weights loaded in {:.2} s", t.elapsed().as_secs_f64());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..batch * 32 * 32 * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let images = ImageBatch::new(batch, 32, 32, 3, data)?;
    let t = Instant::now();
    extract_batch(&model, &images, dev)?;
    println!(
        "warm-up batch of {batch}: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for _ in 0..batches {
        extract_batch(&model, &images, dev)?;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} images in {s:.2} s: {:.2} images/s (batch {batch})",
        batch * batches,
        (batch * batches) as f64 / s
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let batch = args.first().map_or(Ok(50), |s| s.parse())?;
    let batches = args.get(1).map_or(Ok(3), |s| s.parse())?;
    let device = match args.get(2).map(String::as_str) {
        None | Some("cpu") => DeviceKind::Cpu,
        Some("cuda") => DeviceKind::Cuda,
        Some(other) => anyhow::bail!("unknown device {other} (cpu|cuda)"),
    };
    let weights = resolve_weights(args.get(3).map(PathBuf::from).as_deref())?;
    nsgf::with_backend!(device, |B, dev| measure::<B>(
        &dev, &weights, batch, batches
    ))?;
    Ok(())
}
