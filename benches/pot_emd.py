"""POT reference timing for benches/emd.rs: ot.emd2 on n x n squared-Euclidean costs, d = 2.

Same recipe as the Rust bench (x ~ N(0, I), y ~ 0.5 N(0, I) + (1, -0.5)), NumPy draws. M is
built outside the timing; wall and process CPU time are reported (ot.emd2 is single-threaded).
Usage: OMP_NUM_THREADS=1 python3 benches/pot_emd.py [--save DIR]   (DIR receives M{n}.npy)
"""
import sys
import time

import numpy as np
import ot

save = sys.argv[sys.argv.index("--save") + 1] if "--save" in sys.argv else None
for n in [1024, 4096]:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 2))
    y = 0.5 * rng.standard_normal((n, 2)) + np.array([1.0, -0.5])
    M = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    if save:
        np.save(f"{save}/M{n}.npy", M)
    a = ot.unif(n)
    walls, cpus = [], []
    for _ in range(5 if n == 1024 else 3):
        t, c = time.perf_counter(), time.process_time()
        w2sq = ot.emd2(a, a, M, numItermax=int(1e7))
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    print(
        f"n={n}: ot.emd2 wall min {min(walls):.4f} s median {np.median(walls):.4f} s, "
        f"cpu min {min(cpus):.4f} s median {np.median(cpus):.4f} s, W2^2 = {w2sq:.15f}",
        flush=True,
    )
