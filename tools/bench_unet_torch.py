"""PyTorch CPU reference timings for the torchcfm ADM U-Net (the Rust U-Net's baseline).

Two modes.

Training step (default): builds torchcfm's `UNetModelWrapper` with the MNIST or CIFAR-10
configuration (the same constructor arguments as `tools/unet_torchcfm_fixture.py`, see
`tests/fixtures/unet/unet_configs.json`) and times flow-matching-shaped training steps on random
data. One step = draw t ~ U[0, 1] per image, x ~ N(0, 1) and target ~ N(0, 1) of the image shape,
`model(t, x)`, MSE loss, backward, Adam(lr 1e-4) step (with `zero_grad(set_to_none=True)`).
One warm-up step, then K timed steps; reports the parameter count, the median step time, images/s
(batch / median step) and the peak RSS of the process (`ru_maxrss`).

    python3 tools/bench_unet_torch.py --config mnist --batch 128 --steps 3 --threads 2 [--json]

Op micro-benchmarks (`--ops`): forward + backward (loss = sum of the output; gradients for the
input(s) and all weights) of the U-Net's building blocks at the MNIST model's shapes, batch 128,
float32; one warm-up run, then the median of `--reps` runs:

    conv3x3_32_28    Conv2d(32, 32, 3, padding=1) on 28x28
    conv3x3_64_14    Conv2d(64, 64, 3, padding=1) on 14x14
    conv3x3_64_7     Conv2d(64, 64, 3, padding=1) on 7x7
    conv3x3s2_32_28  Conv2d(32, 32, 3, stride=2, padding=1) on 28x28 (-> 14x14)
    gn_silu_64_14    GroupNorm32(32, 64) + SiLU on 14x14
    gn_silu_32_28    GroupNorm32(32, 32) + SiLU on 28x28
    resblock_32_28   torchcfm ResBlock(32 -> 32, emb 128) on 28x28 (x and emb get gradients)
    attn_32_784      torchcfm AttentionBlock(32, 1 head) on 28x28 = 784 tokens
    attn_64_49       torchcfm AttentionBlock(64, 1 head) on 7x7 = 49 tokens

    python3 tools/bench_unet_torch.py --ops --threads 2 [--reps 5] [--json]

With --json the human-readable table goes to stderr and stdout holds one JSON object: the run's
fields for a training benchmark, `{case name: median ms}` for --ops.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_torchcfm_fixture import CONFIGS  # noqa: E402  (single source of the configs)
from torchcfm.models.unet.nn import normalization  # noqa: E402
from torchcfm.models.unet.unet import AttentionBlock, ResBlock, UNetModelWrapper  # noqa: E402

OPS_BATCH = 128


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ---------------------------------------------------------------------------------------------
# Training step
# ---------------------------------------------------------------------------------------------
def bench_train(config, batch, steps, log):
    torch.manual_seed(0)
    model = UNetModelWrapper(**CONFIGS[config]).train()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    shape = (batch, *CONFIGS[config]["dim"])

    def step():
        t = torch.rand(batch)
        x = torch.randn(shape)
        target = torch.randn(shape)
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(t, x) - target) ** 2)
        loss.backward()
        opt.step()
        return loss.item()

    t0 = time.perf_counter()
    step()
    warm_ms = 1e3 * (time.perf_counter() - t0)
    log(f"warm-up step: {warm_ms:.1f} ms")
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(1e3 * (time.perf_counter() - t0))
        log(f"step {i + 1}/{steps}: {times[-1]:.1f} ms (loss {loss:.4f})")
    med = statistics.median(times)
    return {
        "config": config,
        "batch": batch,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "params": params,
        "step_ms": med,
        "step_ms_all": times,
        "warmup_ms": warm_ms,
        "images_per_s": batch / (med / 1e3),
        "peak_rss_mb": peak_rss_mb(),
        "torch": torch.__version__,
        "loadavg_1m_at_end": os.getloadavg()[0],
    }


# ---------------------------------------------------------------------------------------------
# Op micro-benchmarks
# ---------------------------------------------------------------------------------------------
class GnSilu(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = normalization(c)  # torchcfm GroupNorm32(32, c)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.norm(x))


class WithEmb(nn.Module):
    """ResBlock with its own embedding input so that the benchmark sees one tensor input."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x, emb):
        return self.block(x, emb)


def op_cases():
    """name -> (module factory, input shapes). Every input gets requires_grad."""
    b = OPS_BATCH
    return {
        "conv3x3_32_28": (lambda: nn.Conv2d(32, 32, 3, padding=1), [(b, 32, 28, 28)]),
        "conv3x3_64_14": (lambda: nn.Conv2d(64, 64, 3, padding=1), [(b, 64, 14, 14)]),
        "conv3x3_64_7": (lambda: nn.Conv2d(64, 64, 3, padding=1), [(b, 64, 7, 7)]),
        "conv3x3s2_32_28": (lambda: nn.Conv2d(32, 32, 3, stride=2, padding=1), [(b, 32, 28, 28)]),
        "gn_silu_64_14": (lambda: GnSilu(64), [(b, 64, 14, 14)]),
        "gn_silu_32_28": (lambda: GnSilu(32), [(b, 32, 28, 28)]),
        "resblock_32_28": (
            lambda: WithEmb(ResBlock(32, 128, 0.0, out_channels=32)),
            [(b, 32, 28, 28), (b, 128)],
        ),
        "attn_32_784": (lambda: AttentionBlock(32, num_heads=1), [(b, 32, 28, 28)]),
        "attn_64_49": (lambda: AttentionBlock(64, num_heads=1), [(b, 64, 7, 7)]),
    }


def bench_op(factory, shapes, reps):
    torch.manual_seed(0)
    mod = factory()
    inputs = [torch.randn(s).requires_grad_(True) for s in shapes]

    def run():
        for p in mod.parameters():
            p.grad = None
        for x in inputs:
            x.grad = None
        mod(*inputs).sum().backward()

    run()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times), times


def bench_ops(reps, log):
    res = {}
    log(f"{'case':18s} {'median ms':>10s}   all runs (ms)   [batch {OPS_BATCH}, fwd+bwd, f32]")
    for name, (factory, shapes) in op_cases().items():
        med, times = bench_op(factory, shapes, reps)
        res[name] = med
        log(f"{name:18s} {med:10.2f}   " + " ".join(f"{t:.1f}" for t in times))
    log(f"threads {torch.get_num_threads()}, torch {torch.__version__}, "
        f"peak RSS {peak_rss_mb():.0f} MB, loadavg(1m) {os.getloadavg()[0]:.2f}")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=["mnist", "cifar"], default="mnist")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3, help="timed training steps (after 1 warm-up)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--ops", action="store_true", help="run the op micro-benchmarks instead")
    ap.add_argument("--reps", type=int, default=5, help="timed runs per op case (--ops)")
    ap.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    out = sys.stderr if args.json else sys.stdout

    def log(msg):
        print(msg, file=out, flush=True)

    log(f"loadavg(1m) at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.ops:
        res = bench_ops(args.reps, log)
    else:
        res = bench_train(args.config, args.batch, args.steps, log)
        log(f"{args.config}: params {res['params']:,}, batch {args.batch}, threads "
            f"{res['threads']}: step {res['step_ms']:.1f} ms (median of {args.steps}), "
            f"{res['images_per_s']:.1f} images/s, peak RSS {res['peak_rss_mb']:.0f} MB")
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
