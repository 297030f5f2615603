#!/usr/bin/env python3
"""PyTorch + GeomLoss implementation of the NSGF 2-D recipe, for throughput comparison with
`nsgf train` (issue 3). Same recipe as configs/<problem>.toml:

* pool: `--flows` minibatch Sinkhorn flows, n = 256 source N(0, I) vs 256 target samples, T = 20
  Euler steps of eta = 0.25 with the NSGF velocity v = -n dS/dx (GeomLoss
  SamplesLoss("sinkhorn", p=2, blur=0.1, scaling=0.7, debias=True, backend="tensorized"), the
  authors' way), each step stored as (x_k, tau_k = k/T, u_k = eta*T*v_k);
* training: MLP (x, tau) -> u with 3 hidden layers of 256 SELU units, Adam lr 1e-3, batch 256,
  segment sampling (x_k + s*u_k/T, tau_k + s/T, u_k) with s ~ U[0, 1).

Only the timings are the point (pool flows per second, training steps per second); the target
is torchcfm's moons (make_moons(noise=0.2) * 3 - 1, as in src/data/toy2d.rs).

Usage: python3 tools/nsgf_torch_reference.py [--flows 30] [--train-steps 2000] [--threads 2]
Prints one JSON line: {"pool_seconds", "flows_per_s", "train_seconds", "steps_per_s", ...}.
"""
import argparse
import json
import math
import time

import torch
from geomloss import SamplesLoss


def moons(n, g):
    t = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    outer = torch.rand(n, generator=g) < 0.5
    u = 0.2 * torch.rand(n, generator=g, dtype=torch.float64)
    x = torch.where(outer, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(outer, torch.sin(t), 0.5 - torch.sin(t))
    return (torch.stack([3 * (x + u) - 1, 3 * (y + u) - 1], 1)).float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=30)
    ap.add_argument("--train-steps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--eta", type=float, default=0.25)
    ap.add_argument("--n", type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    loss_fn = SamplesLoss("sinkhorn", p=2, blur=0.1, scaling=0.7, debias=True, backend="tensorized")
    T, eta, n = a.steps, a.eta, a.n

    t0 = time.perf_counter()
    xs, taus, us = [], [], []
    for _ in range(a.flows):
        x = torch.randn(n, 2, generator=g)
        y = moons(n, g)
        for k in range(T):
            xr = x.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss_fn(xr, y), [xr])
            v = -n * grad
            xs.append(x)
            taus.append(torch.full((n, 1), k / T))
            us.append(eta * T * v)
            x = x + eta * v
    pool_x, pool_t, pool_u = torch.cat(xs), torch.cat(taus), torch.cat(us)
    pool_seconds = time.perf_counter() - t0

    net = torch.nn.Sequential(
        torch.nn.Linear(3, 256), torch.nn.SELU(),
        torch.nn.Linear(256, 256), torch.nn.SELU(),
        torch.nn.Linear(256, 256), torch.nn.SELU(),
        torch.nn.Linear(256, 2),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t1 = time.perf_counter()
    for _ in range(a.train_steps):
        i = torch.randint(0, pool_x.shape[0], (256,), generator=g)
        s = torch.rand(256, 1, generator=g) / T
        xb = pool_x[i] + s * pool_u[i]
        tb = pool_t[i] + s
        loss = ((net(torch.cat([xb, tb], 1)) - pool_u[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
    train_seconds = time.perf_counter() - t1
    print(json.dumps({
        "torch": torch.__version__, "threads": a.threads, "flows": a.flows,
        "pool_seconds": pool_seconds, "flows_per_s": a.flows / pool_seconds,
        "train_steps": a.train_steps, "train_seconds": train_seconds,
        "steps_per_s": a.train_steps / train_seconds, "final_loss": loss.item(),
    }))


if __name__ == "__main__":
    main()
