//! `nsgf data ...`: image data sets as files other tools read.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use nsgf::data::dataset::{DatasetSpec, Split};
use nsgf::data::images::write_image_npy;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Write a data set's images as one uint8 `.npy` array, (N, H, W) grey or (N, H, W, 3)
    /// RGB: the reference set of `nsgf eval fid` (e.g. the MNIST test images).
    Export(ExportArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Mnist,
    Cifar10,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The data set.
    #[arg(long, value_enum)]
    dataset: Kind,
    /// Its folder (MNIST IDX files; CIFAR-10 binary batches or PNG class folders).
    #[arg(long)]
    dir: PathBuf,
    /// Which split.
    #[arg(long, default_value = "test")]
    split: Split,
    /// Output `.npy`.
    #[arg(long)]
    out: PathBuf,
    /// Export only this many images, evenly spaced over the set (image ⌊i·N/limit⌋): a smaller
    /// FID reference that keeps the class mix of a set stored class by class.
    #[arg(long)]
    limit: Option<usize>,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Export(args) => {
            let spec = match args.dataset {
                Kind::Mnist => DatasetSpec::Mnist {
                    dir: args.dir.clone(),
                    split: args.split,
                },
                Kind::Cifar10 => DatasetSpec::Cifar10 {
                    dir: args.dir.clone(),
                    split: args.split,
                },
            };
            let data = spec.load().with_context(|| format!("reading {spec}"))?;
            let images = match args.limit {
                Some(0) => anyhow::bail!("--limit must be at least 1"),
                Some(k) => data.images().evenly_spaced(k),
                None => data.images().clone(),
            };
            write_image_npy(&args.out, &images)?;
            let (h, w, c) = data.dims();
            eprintln!(
                "wrote {} of {} images of {c}x{h}x{w} from {spec} to {}",
                images.n,
                data.len(),
                args.out.display()
            );
            Ok(())
        }
    }
}
