#!/usr/bin/env python3
"""Paired, per-seed comparison of Table 1 cells (the cached `cell.json` files of a
`nsgf bench table1` work folder): for method A against each method B, per problem, the mean over
seeds of W2_A - W2_B at 10 and at 100 network evaluations, and on how many seeds A is lower.

    python3 tools/paired_table1.py runs/table1-nsgfpp nsgfpp nsgf,otcfm > paired.md
"""
import json
import pathlib
import sys


def cells(work, method):
    out = {}
    for p in sorted(pathlib.Path(work).glob(f"*/{method}/seed*/cell.json")):
        c = json.loads(p.read_text())
        out[(c["problem"], c["seed"])] = c
    return out


def main():
    work, a, bs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    ca = cells(work, a)
    problems = sorted({p for p, _ in ca})
    print(f"| problem | vs | mean ΔW2 at 10 | {a} lower (10) | mean ΔW2 at 100 | {a} lower (100) |")
    print("|---|---|---:|---:|---:|---:|")
    for b in bs:
        cb = cells(work, b)
        for p in problems:
            keys = [k for k in ca if k[0] == p and k in cb]
            if not keys:
                continue
            d10 = [ca[k]["w2_10"] - cb[k]["w2_10"] for k in keys]
            d100 = [ca[k]["w2_100"] - cb[k]["w2_100"] for k in keys]
            n = len(keys)
            print(
                f"| {p} | {b} | {sum(d10) / n:+.3f} | {sum(x < 0 for x in d10)}/{n} "
                f"| {sum(d100) / n:+.3f} | {sum(x < 0 for x in d100)}/{n} |"
            )


if __name__ == "__main__":
    main()
