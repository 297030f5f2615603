#!/usr/bin/env python3
"""GeomLoss side of the Sinkhorn benchmark (the Rust side is benches/sinkhorn.rs).

Times, on the CPU in float32, what `benches/sinkhorn.rs` times for nsgf:

    loss = SamplesLoss("sinkhorn", p=2, blur, scaling, debias=True, backend="tensorized")(x, y)
    (grad,) = torch.autograd.grad(loss, [x]);  v = -n * grad     # the NSGF velocity
    loss.item()

on the same grid and the same data (the counter-based SplitMix64 generator of the bench,
re-implemented below in numpy; see `bench_data`). Each cell is run once to warm up, then
`--repeats` times (at least; more while the total stays under `--min-time` seconds), and the
median wall time is reported. Prints one JSON document:
    {"torch": ..., "geomloss": ..., "threads": ..., "results": [{n, d, blur, scaling,
     median_ms, min_ms, runs, eps_steps, loss}, ...]}

Usage:
    python3 tools/bench_geomloss.py [--n 256,1024,4096] [--d 2,784,3072]
        [--cfg 0.05/0.9,1.0/0.8] [--threads 2] [--repeats 5] [--min-time 3]
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch
import geomloss
from geomloss import SamplesLoss
from geomloss._legacy.sinkhorn_divergence import epsilon_schedule, max_diameter

GAMMA = np.uint64(0x9E3779B97F4A7C15)
SEED_X, SEED_Y = 12345, 67890


def splitmix(seed, k):
    """Word k of SplitMix64(seed): mix(seed + (k + 1)·γ) mod 2^64 (k: uint64 array)."""
    z = np.uint64(seed) + (k + np.uint64(1)) * GAMMA
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(seed, k):
    return ((splitmix(seed, k) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def normal(seed, k):
    u1, u2 = uniform(seed, 2 * k), uniform(seed, 2 * k + np.uint64(1))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def bench_data(n, d):
    """Same clouds as benches/sinkhorn.rs: d = 2: x = N(0, I), y = 0.6 N(0, I) + 1;
    d >= 784 (image-like): x = U(0, 1), y = U'(0, 1)^2. Row-major, element k = i*d + j."""
    with np.errstate(over="ignore"):
        k = np.arange(n * d, dtype=np.uint64)
        if d == 2:
            x, y = normal(SEED_X, k), 0.6 * normal(SEED_Y, k) + 1.0
        else:
            x, y = uniform(SEED_X, k), uniform(SEED_Y, k) ** 2
    return (x.astype(np.float32).reshape(n, d), y.astype(np.float32).reshape(n, d))


def parse_list(s, conv):
    return [conv(t) for t in s.split(",") if t.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="256,1024,4096")
    ap.add_argument("--d", default="2,784,3072")
    ap.add_argument("--cfg", default="0.05/0.9,1.0/0.8", help="blur/scaling pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="minimum timed runs per cell")
    ap.add_argument("--min-time", type=float, default=3.0, help="keep repeating until this many seconds")
    ap.add_argument("--max-repeats", type=int, default=50)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfgs = [tuple(float(v) for v in c.split("/")) for c in parse_list(args.cfg, str)]
    results = []
    for n in parse_list(args.n, int):
        for d in parse_list(args.d, int):
            xn, yn = bench_data(n, d)
            x0, y = torch.from_numpy(xn), torch.from_numpy(yn)
            for blur, scaling in cfgs:
                loss_fn = SamplesLoss(
                    "sinkhorn", p=2, blur=blur, scaling=scaling, debias=True, backend="tensorized"
                )

                def run():
                    x = x0.clone().requires_grad_(True)
                    loss = loss_fn(x, y)
                    (grad,) = torch.autograd.grad(loss, [x])
                    v = -n * grad
                    return loss.item(), v

                loss_val, _ = run()  # warm-up
                times = []
                t_start = time.perf_counter()
                while len(times) < args.max_repeats and (
                    len(times) < args.repeats or time.perf_counter() - t_start < args.min_time
                ):
                    t0 = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - t0)
                steps = len(epsilon_schedule(2, max_diameter(x0, y), blur, scaling))
                rec = dict(
                    n=n, d=d, blur=blur, scaling=scaling,
                    median_ms=1e3 * statistics.median(times), min_ms=1e3 * min(times),
                    runs=len(times), eps_steps=steps, loss=loss_val,
                )
                print(json.dumps(rec), file=sys.stderr, flush=True)
                results.append(rec)
    print(json.dumps(dict(torch=torch.__version__, geomloss=geomloss.__version__,
                          threads=torch.get_num_threads(), results=results), indent=1))


if __name__ == "__main__":
    main()
