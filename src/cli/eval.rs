//! `nsgf eval ...`: evaluation metrics.

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Exact 2-Wasserstein distance between two point clouds (uniform weights, squared
    /// Euclidean cost), as POT's `sqrt(ot.emd2(...))`.
    W2(W2Args),
    /// Evaluate a trained 2-D run: W2 to fresh test samples at several step counts, over seeds,
    /// beside the two-sample floor and the raw Sinkhorn flow.
    Toy(super::train::EvalToyArgs),
    /// Fréchet Inception Distance (pytorch-fid conventions) between two image sets or
    /// statistics files; `--save-stats` writes the statistics of one image set.
    Fid(super::fid::FidArgs),
    /// Inception Score; needs Inception weights with a classifier head (the standard FID
    /// weights have none, and the command then says so).
    Is(super::fid::IsArgs),
    /// Nearest training images of generated ones (the paper's Fig. 8): a grid of the first
    /// `--n` samples above their nearest neighbours in pixel space, row for row, and the
    /// distances as JSON.
    Neighbours(NeighboursArgs),
    /// FID against NFE (the figure of an image experiment): reads the `fid.json` table that
    /// `scripts/image-experiment.sh table` writes (`[{"method", "nfe", "fid"}, ...]`) and draws
    /// one line per method, log-scale FID.
    FidCurve(FidCurveArgs),
}

#[derive(Args, Debug)]
pub struct FidCurveArgs {
    /// The FID table: a JSON list of objects with `method` (string), `nfe` and `fid` (numbers).
    table: PathBuf,
    /// The figure (PNG).
    #[arg(long)]
    out: PathBuf,
    /// The figure's title.
    #[arg(long, default_value = "FID against NFE")]
    title: String,
}

#[derive(Args, Debug)]
pub struct NeighboursArgs {
    /// Generated images: uint8 `.npy` (N, H, W[, 3]), e.g. from `nsgf sample`.
    samples: PathBuf,
    /// The pool to search: uint8 `.npy` of the same image size (e.g. `nsgf data export --split train`).
    reference: PathBuf,
    /// Samples to look up.
    #[arg(long, default_value_t = 32)]
    n: usize,
    /// Images per grid line.
    #[arg(long, default_value_t = 8)]
    cols: usize,
    /// The grid (PNG).
    #[arg(long)]
    out: PathBuf,
    /// Also write the neighbours (index and RMS distance per sample) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct W2Args {
    /// First point cloud, `.npy` of shape (n, d), float32 or float64.
    a: PathBuf,
    /// Second point cloud, `.npy` of shape (m, d).
    b: PathBuf,
    /// Print `{"w2": value}` instead of the bare number.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::W2(args) => w2(args),
        EvalCommand::Toy(args) => super::train::eval_toy(args),
        EvalCommand::Fid(args) => super::fid::run_fid(args),
        EvalCommand::Is(args) => super::fid::run_is(args),
        EvalCommand::Neighbours(args) => neighbours(args),
        EvalCommand::FidCurve(args) => fid_curve(args),
    }
}

/// One FID measurement of the table that `fid-curve` reads.
#[derive(serde::Deserialize)]
struct FidEntry {
    method: String,
    nfe: usize,
    fid: f64,
}

fn fid_curve(args: FidCurveArgs) -> Result<()> {
    use anyhow::Context;
    let text = std::fs::read_to_string(&args.table)
        .with_context(|| format!("reading {}", args.table.display()))?;
    let entries: Vec<FidEntry> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected a JSON list of {{\"method\", \"nfe\", \"fid\"}} objects",
            args.table.display()
        )
    })?;
    if let Some(e) = entries.iter().find(|e| !(e.fid.is_finite() && e.fid > 0.0)) {
        anyhow::bail!(
            "{}: the FID of {} at NFE {} is {}, not a positive number",
            args.table.display(),
            e.method,
            e.nfe,
            e.fid
        );
    }
    let series =
        nsgf::metrics::plots::group_series(entries.into_iter().map(|e| (e.method, e.nfe, e.fid)));
    if series.is_empty() {
        anyhow::bail!("{}: no FID entries to plot", args.table.display());
    }
    nsgf::metrics::plots::curve_plot(&args.out, &series, None, ("NFE", "FID"), &args.title)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

fn neighbours(args: NeighboursArgs) -> Result<()> {
    use nsgf::data::images::{image_grid, read_image_npy};
    use nsgf::metrics::neighbours::{nearest_neighbours, select};
    if args.n == 0 || args.cols == 0 {
        anyhow::bail!("--n and --cols must be at least 1");
    }
    let samples = read_image_npy(&args.samples)?;
    let pool = read_image_npy(&args.reference)?;
    let queries = select(&samples, &(0..args.n.min(samples.n)).collect::<Vec<_>>())?;
    let nn = nearest_neighbours(&queries, &pool)?;
    let found = select(&pool, &nn.iter().map(|x| x.index).collect::<Vec<_>>())?;
    // Row for row: a line of samples, then the line of their neighbours.
    let mut blocks = Vec::new();
    for start in (0..queries.n).step_by(args.cols) {
        let idx: Vec<usize> = (start..(start + args.cols).min(queries.n)).collect();
        blocks.push(select(&queries, &idx)?);
        blocks.push(select(&found, &idx)?);
    }
    let grid = image_grid(&blocks, args.cols, 2)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        nsgf::io::create_dir_all(dir)?;
    }
    grid.save(&args.out)?;
    let mean = nn.iter().map(|x| x.rms).sum::<f64>() / nn.len() as f64;
    if let Some(path) = &args.json {
        let v = serde_json::json!({ "mean_rms": mean, "neighbours": nn });
        nsgf::io::npy::write_atomic(path, serde_json::to_string_pretty(&v)?.as_bytes())?;
    }
    eprintln!(
        "{} samples: nearest of {} reference images at mean RMS distance {mean:.4} (0 = copies); grid {}",
        queries.n,
        pool.n,
        args.out.display()
    );
    Ok(())
}

fn w2(args: W2Args) -> Result<()> {
    let a = nsgf::io::npy::read_points(&args.a)?;
    let b = nsgf::io::npy::read_points(&args.b)?;
    let w2 = nsgf::ot::emd::w2(&a, &b)?;
    if args.json {
        println!("{}", serde_json::json!({ "w2": w2 }));
    } else {
        println!("{w2}");
    }
    Ok(())
}
