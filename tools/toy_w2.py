"""Exact W2 (POT) between generated 2-D samples (.npy, (n, 2)) and fresh draws of a target
distribution, re-implemented from the definitions in src/data/toy2d.rs (quick checks of runs that
are not in `nsgf bench table1`, e.g. the S-JKO-only problems 25gaussians and twocircles).

    python3 tools/toy_w2.py SAMPLES.npy PROBLEM [--draws 5] [--seed 0]
"""
import argparse

import numpy as np
import ot


def target(problem, n, rng):
    if problem == "8gaussians":
        s = 1 / np.sqrt(2)
        c = 5 * np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [s, s], [s, -s], [-s, s], [-s, -s]])
        return c[rng.integers(0, 8, n)] + 0.1 ** 0.25 * rng.standard_normal((n, 2))
    if problem in ("moons", "8gaussians-moons"):
        t = np.pi * rng.random(n)
        outer = rng.random(n) < 0.5
        u = 0.2 * rng.random(n)
        x = np.where(outer, np.cos(t), 1 - np.cos(t))
        y = np.where(outer, np.sin(t), 0.5 - np.sin(t))
        return np.stack([3 * (x + u) - 1, 3 * (y + u) - 1], 1)
    if problem == "25gaussians":
        g = np.array([-6.0, -3.0, 0.0, 3.0, 6.0])
        k = rng.integers(0, 25, n)
        return np.stack([g[k // 5], g[k % 5]], 1) + np.sqrt(0.005) * rng.standard_normal((n, 2))
    if problem == "twocircles":
        r = np.where(rng.random(n) < 0.5, 4.0, 8.0)
        t = 2 * np.pi * rng.random(n)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1) + 0.2 * rng.standard_normal((n, 2))
    raise SystemExit(f"unknown problem {problem}")


def w2(a, b):
    return float(np.sqrt(ot.emd2([], [], ot.dist(a, b))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("samples")
    p.add_argument("problem")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    x = np.load(a.samples).astype(np.float64)
    rng = np.random.default_rng(a.seed)
    ws, floor = [], []
    for _ in range(a.draws):
        t = target(a.problem, len(x), rng)
        ws.append(w2(x, t))
        floor.append(w2(target(a.problem, len(x), rng), t))
    print(f"W2 {np.mean(ws):.3f} ± {np.std(ws):.3f} over {a.draws} test draws of {len(x)} "
          f"(two-sample floor {np.mean(floor):.3f})")


if __name__ == "__main__":
    main()
