"""Diagnostic for results/mnist: sets the near-black pixels of uint8 MNIST-like samples to 0.

The flow models' samples keep a faint background haze (30-40 % of pixels at grey 1-5, the
test images 0.4 %). Flooring the pixels at or below a threshold and scoring the result with
`nsgf eval fid` measures how much of a method's FID that haze costs. A diagnostic only: the
table's numbers are of the unmodified samples (torchcfm and the paper post-process nothing).

    python3 tools/floor_background.py IN.npy OUT.npy [--at 5]

Prints the share of pixels it changed. Needs numpy.
"""

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--at", type=int, default=5, help="pixels <= this grey level become 0")
    a = ap.parse_args()
    x = np.load(a.src)
    if x.dtype != np.uint8:
        raise SystemExit(f"{a.src}: expected uint8 images, got {x.dtype}")
    low = (x > 0) & (x <= a.at)
    y = np.where(low, 0, x).astype(np.uint8)
    np.save(a.dst, y)
    print(f"{a.src}: {100 * low.mean():.2f} % of pixels floored (<= {a.at}) -> {a.dst}")


if __name__ == "__main__":
    main()
