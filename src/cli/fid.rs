//! `nsgf eval fid` and `nsgf eval is`: Fréchet Inception Distance and Inception Score with the
//! standard FID Inception-v3 (pytorch-fid conventions).

use anyhow::{bail, Context, Result};
use clap::Args;
use nsgf::backend::DeviceKind;
use nsgf::data::images::ImageSource;
use nsgf::io::parts::{part_f32, Parts};
use nsgf::io::NpyArray;
use nsgf::metrics::fid::{self, FeatureStats};
use nsgf::models::inception::{FidInception, FEATURE_DIM};
use nsgf::progress::Progress;
use std::path::{Path, PathBuf};

/// Arguments of `nsgf eval fid`.
#[derive(Args, Debug)]
pub struct FidArgs {
    /// First input: a folder of PNG images, an `.npz` of statistics (`mu`, `sigma`), or an `.npy`
    /// uint8 image array (N,H,W) or (N,H,W,3).
    path_a: PathBuf,
    /// Second input (same kinds); with --save-stats, the output `.npz`.
    path_b: PathBuf,
    /// Write the statistics (`mu`, `sigma`, and the sample count `n`) of PATH_A to the `.npz`
    /// PATH_B instead of computing a distance.
    #[arg(long)]
    save_stats: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 50, value_parser = super::count)]
    batch_size: usize,
    /// Device for the Inception network.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
    /// FID Inception weights: a folder holding `*.safetensors.index.json` and its shards, the
    /// index itself, or one `.safetensors` file. Default: $NSGF_FID_WEIGHTS, else
    /// ../shared/data/fid.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Print a JSON object with the distance and its terms instead of the bare number.
    #[arg(long)]
    json: bool,
}

/// Arguments of `nsgf eval is`.
#[derive(Args, Debug)]
pub struct IsArgs {
    /// A folder of PNG images or an `.npy` uint8 image array.
    path: PathBuf,
    /// Number of splits.
    #[arg(long, default_value_t = fid::IS_SPLITS, value_parser = super::count)]
    splits: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 50, value_parser = super::count)]
    batch_size: usize,
    /// Device for the Inception network.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
    /// Inception weights, which must include a classifier head (`fc.weight`, `fc.bias`); the
    /// standard FID weights have none, so with them this command reports an error.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Print a JSON object instead of "mean std".
    #[arg(long)]
    json: bool,
}

fn is_stats_file(p: &Path) -> bool {
    !p.is_dir() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

fn open_images(p: &Path) -> Result<ImageSource> {
    let is_npy = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if !p.is_dir() && !is_npy {
        bail!(
            "{}: expected a folder of PNG images, an .npz of statistics (mu, sigma) or an .npy \
             uint8 image array",
            p.display()
        );
    }
    Ok(ImageSource::open(p)?)
}

fn progress_bar(n: usize, what: &Path) -> Progress {
    Progress::new(
        n as u64,
        true,
        "{msg} {bar:30} {pos}/{len} images [{elapsed} < {eta}]",
        format!("Inception features of {}", what.display()),
    )
}

/// Statistics of one input: read from `.npz`, or computed from images with the model
/// (loaded on first use into `model`).
fn statistics<B: nsgf::models::ops::NnBackend>(
    path: &Path,
    model: &mut Option<FidInception<B>>,
    weights: Option<&Path>,
    batch_size: usize,
    device: &B::Device,
) -> Result<FeatureStats> {
    if is_stats_file(path) {
        return Ok(FeatureStats::load_npz(path)?);
    }
    let images = open_images(path)?;
    if images.len() < 2 {
        bail!(
            "{}: FID statistics need at least 2 images, found {}",
            path.display(),
            images.len()
        );
    }
    if model.is_none() {
        let w = fid::resolve_weights(weights)?;
        *model = Some(
            FidInception::<B>::load(&w, device)
                .with_context(|| format!("loading the FID Inception weights {}", w.display()))?,
        );
    }
    let Some(net) = model.as_ref() else {
        bail!("internal error: FID network not loaded");
    };
    let bar = progress_bar(images.len(), path);
    let Some(parts) = feature_parts::<B>(path, weights, batch_size) else {
        let stats = fid::compute_statistics(net, &images, batch_size, device, &mut |done| {
            bar.set_position(done as u64)
        });
        bar.finish_and_clear();
        return stats.with_context(|| format!("computing the statistics of {}", path.display()));
    };
    // In parts of ~1,000 images (whole batches): the features of each part are kept until the
    // statistics are done, so an interrupted run resumes; accumulated batch by batch in order,
    // the statistics equal those of one pass bit for bit.
    let size = batch_size * 1000usize.div_ceil(batch_size.max(1));
    let mut acc = fid::StatsAccumulator::new(FEATURE_DIM);
    let dir = Parts::beside(path, FID_PARTS);
    parts
        .draw(
            images.len(),
            size,
            &[],
            |rows| {
                let (start, m) = (rows.start, rows.len());
                let f =
                    fid::compute_features_rows(net, &images, rows, batch_size, device, &mut |d| {
                        bar.set_position((start + d) as u64)
                    })?;
                Ok(vec![("x", NpyArray::f32(vec![m, FEATURE_DIM], f))])
            },
            |rows, part| {
                for batch in part_f32(&part, "x", &dir)?.chunks(batch_size * FEATURE_DIM) {
                    acc.push(batch)?;
                }
                bar.set_position(rows.end as u64);
                Ok(())
            },
        )
        .with_context(|| format!("computing the features of {}", path.display()))?;
    bar.finish_and_clear();
    let stats = acc
        .finish()
        .with_context(|| format!("computing the statistics of {}", path.display()))?;
    parts.finish()?;
    Ok(stats)
}

/// The parts folder of the Inception features of `X.npy`: `X.npy.fid-parts`.
const FID_PARTS: &str = ".fid-parts";

/// The parts folder for the features of an `.npy` image array (not for PNG folders, which may
/// be read-only data sets), keyed by the file's contents, the weights, the batch size and the
/// backend; `None` (features in one pass, with a warning) for other inputs or when the folder
/// cannot be made or is in use by another process.
fn feature_parts<B: nsgf::models::ops::NnBackend>(
    path: &Path,
    weights: Option<&Path>,
    batch_size: usize,
) -> Option<Parts> {
    if !path.is_file()
        || path
            .extension()
            .is_none_or(|e| !e.eq_ignore_ascii_case("npy"))
    {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let hash = nsgf::io::fnv1a(&bytes);
    let weights = fid::resolve_weights(weights).ok()?;
    // The weights by their files' names, sizes and modification times.
    let mut files: Vec<PathBuf> = if weights.is_dir() {
        std::fs::read_dir(&weights)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .collect()
    } else {
        vec![weights.clone()]
    };
    files.sort();
    let mut stamp = String::new();
    for f in files.iter().filter(|f| f.is_file()) {
        let (len, mtime) = nsgf::io::parts::file_stamp(f).ok()?;
        stamp += &format!("\n  {} {len} {mtime}", f.display());
    }
    let key = format!(
        "nsgf eval fid: Inception pool3 features, nsgf {}\nimages = {} ({} bytes, fnv \
         {hash:016x})\nweights = {}{stamp}\nbatch_size = {batch_size}\nbackend = {}\n",
        env!("CARGO_PKG_VERSION"),
        path.display(),
        bytes.len(),
        weights.display(),
        std::any::type_name::<B>()
    );
    match Parts::open(Parts::beside(path, FID_PARTS), &key) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("{e}: the features are computed in one pass (no resume)");
            None
        }
    }
}

fn fid_on<B: nsgf::models::ops::NnBackend>(args: &FidArgs, device: &B::Device) -> Result<()> {
    let mut model = None;
    let w = args.weights.as_deref();
    if args.save_stats {
        if is_stats_file(&args.path_a) {
            bail!(
                "--save-stats needs images as its first path, got the statistics file {}",
                args.path_a.display()
            );
        }
        if !is_stats_file(&args.path_b) {
            bail!(
                "--save-stats writes an .npz file; got {}",
                args.path_b.display()
            );
        }
        let stats = statistics::<B>(&args.path_a, &mut model, w, args.batch_size, device)?;
        stats.save_npz(&args.path_b)?;
        eprintln!(
            "wrote statistics of {} images of {} to {}",
            stats.n,
            args.path_a.display(),
            args.path_b.display()
        );
        return Ok(());
    }
    let a = statistics::<B>(&args.path_a, &mut model, w, args.batch_size, device)?;
    let b = statistics::<B>(&args.path_b, &mut model, w, args.batch_size, device)?;
    let d = fid::frechet_distance(&a, &b)?;
    if args.json {
        let mut v = serde_json::to_value(&d)?;
        v["n_a"] = a.n.into();
        v["n_b"] = b.n.into();
        println!("{v}");
    } else {
        println!("{}", d.fid);
    }
    Ok(())
}

fn is_on<B: nsgf::models::ops::NnBackend>(args: &IsArgs, device: &B::Device) -> Result<()> {
    let w = fid::resolve_weights(args.weights.as_deref())?;
    let model = FidInception::<B>::load(&w, device)
        .with_context(|| format!("loading the Inception weights {}", w.display()))?;
    if model.num_classes().is_none() {
        bail!("{}: {}", w.display(), fid::NO_CLASSIFIER);
    }
    let images = open_images(&args.path)?;
    let bar = progress_bar(images.len(), &args.path);
    let score = fid::compute_inception_score(
        &model,
        &images,
        args.batch_size,
        args.splits,
        device,
        &mut |done| bar.set_position(done as u64),
    );
    bar.finish_and_clear();
    let score = score?;
    if args.json {
        println!("{}", serde_json::to_value(&score)?);
    } else {
        println!("{} {}", score.mean, score.std);
    }
    Ok(())
}

/// `nsgf eval fid`.
pub fn run_fid(args: FidArgs) -> Result<()> {
    nsgf::with_backend!(args.device, |B, dev| fid_on::<B>(&args, &dev))
}

/// `nsgf eval is`.
pub fn run_is(args: IsArgs) -> Result<()> {
    nsgf::with_backend!(args.device, |B, dev| is_on::<B>(&args, &dev))
}
