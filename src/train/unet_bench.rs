//! `nsgf bench unet`: the speed of one UNet training step and of its ops.
//!
//! One train step, as the PyTorch reference `tools/bench_unet_torch.py` does it: `x ~ N(0, 1)`
//! `[B, C, H, W]`, `t ~ U[0, 1]` per image, a random target, forward, MSE, backward, one Adam step
//! (lr 1e-4). Reported: parameters, the median step time, images per second, the peak resident
//! memory of the process; and per op (forward + backward of `sum(op(x))`, gradients for the input
//! and all weights) the median time of the cases of the reference's `--ops` mode.

use crate::error::Result;
use crate::models::ops::NnAutodiffBackend;
use crate::models::unet::{AttnBlock, Conv, Norm, ResBlock, UNetConfig};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Distribution, Tensor};
use serde::Serialize;
use std::time::Instant;

/// What `bench unet` measured.
#[derive(Clone, Debug, Serialize)]
pub struct UnetBench {
    /// Config name.
    pub config: String,
    /// Batch size.
    pub batch: usize,
    /// Timed steps.
    pub steps: usize,
    /// Trainable parameters.
    pub params: usize,
    /// Median train-step time, ms.
    pub step_ms: f64,
    /// Images per second at the median step time.
    pub images_per_s: f64,
    /// Peak resident memory of the process, MB (`VmHWM`; `None` off Linux).
    pub peak_rss_mb: Option<f64>,
    /// rayon threads.
    pub threads: usize,
    /// Per-op forward + backward medians, ms (`None` unless asked for).
    pub ops: Option<Vec<OpTiming>>,
}

/// One op case.
#[derive(Clone, Debug, Serialize)]
pub struct OpTiming {
    /// Case name, as the PyTorch reference names it.
    pub name: String,
    /// Median forward + backward time, ms.
    pub ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Peak resident set size in MB, from `/proc/self/status`.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Times `steps` train steps (after one warm-up step) of the named UNet config at `batch`.
pub fn bench_unet<B: NnAutodiffBackend>(
    name: &str,
    batch: usize,
    steps: usize,
    with_ops: bool,
    device: &B::Device,
) -> Result<UnetBench> {
    let cfg = UNetConfig::named(name)?;
    let mut model = cfg.init::<B>(device)?;
    let params = model.num_params();
    let mut optim = AdamConfig::new().init::<B, crate::models::unet::UNet<B>>();
    let shape = [batch, cfg.in_channels, cfg.image_size, cfg.image_size];
    let mut times = Vec::with_capacity(steps);
    for i in 0..=steps {
        let x = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), device);
        let t = Tensor::<B, 1>::random([batch], Distribution::Uniform(0.0, 1.0), device);
        let target = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), device);
        let t0 = Instant::now();
        let loss = (model.forward(x, t) - target).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, grads);
        // Reading the loss back waits for the device (a no-op on the CPU).
        let _ = loss.into_data();
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let step_ms = median(times);
    let ops = with_ops.then(|| bench_ops::<B>(batch, 3, device));
    Ok(UnetBench {
        config: name.to_owned(),
        batch,
        steps,
        params,
        step_ms,
        images_per_s: batch as f64 / (step_ms / 1e3),
        peak_rss_mb: peak_rss_mb(),
        threads: rayon::current_num_threads(),
        ops,
    })
}

/// Median of `reps` (after one warm-up) forward + backward passes of `f` on a fresh
/// `[batch, c, s, s]` input that requires a gradient.
fn time_case<B: NnAutodiffBackend>(
    batch: usize,
    c: usize,
    s: usize,
    reps: usize,
    device: &B::Device,
    f: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
) -> f64 {
    let mut v = Vec::with_capacity(reps);
    for i in 0..=reps {
        let x = Tensor::<B, 4>::random([batch, c, s, s], Distribution::Normal(0.0, 1.0), device)
            .require_grad();
        let t0 = Instant::now();
        let g = f(x.clone()).sum().backward();
        let dx = x.grad(&g);
        let _ = dx.map(|d| d.into_data());
        if i > 0 {
            v.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    median(v)
}

/// The per-op cases of the PyTorch reference (`tools/bench_unet_torch.py --ops`).
pub fn bench_ops<B: NnAutodiffBackend>(
    batch: usize,
    reps: usize,
    device: &B::Device,
) -> Vec<OpTiming> {
    let mut out = Vec::new();
    let mut push = |name: &str, ms: f64| {
        out.push(OpTiming {
            name: name.to_owned(),
            ms,
        })
    };
    for (name, c, s, stride) in [
        ("conv3x3_32_28", 32, 28, 1),
        ("conv3x3_64_14", 64, 14, 1),
        ("conv3x3_64_7", 64, 7, 1),
        ("conv3x3s2_32_28", 32, 28, 2),
    ] {
        let conv = Conv::<B>::new(c, c, 3, stride, false, device);
        push(
            name,
            time_case::<B>(batch, c, s, reps, device, |x| conv.forward(x)),
        );
    }
    for (name, c, s) in [("gn_silu_64_14", 64, 14), ("gn_silu_32_28", 32, 28)] {
        let norm = Norm::<B>::new(c, device);
        push(
            name,
            time_case::<B>(batch, c, s, reps, device, |x| norm.forward(x, None, true)),
        );
    }
    let res = ResBlock::<B>::new(32, 32, 128, device);
    let emb = Tensor::<B, 2>::random([batch, 128], Distribution::Normal(0.0, 1.0), device);
    push(
        "resblock_32_28",
        time_case::<B>(batch, 32, 28, reps, device, |x| res.forward(x, &emb)),
    );
    for (name, c, s) in [("attn_32_784", 32, 28), ("attn_64_49", 64, 7)] {
        let attn = AttnBlock::<B>::new(c, 1, device);
        push(
            name,
            time_case::<B>(batch, c, s, reps, device, |x| attn.forward(x)),
        );
    }
    out
}
