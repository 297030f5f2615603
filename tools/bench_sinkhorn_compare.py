#!/usr/bin/env python3
"""Run the nsgf Sinkhorn benchmark (benches/sinkhorn.rs, criterion) and the GeomLoss one
(tools/bench_geomloss.py) side by side, cell by cell, and write a markdown table.

GeomLoss is timed with 2 torch threads (the machine's cores) and with 1: on a loaded 2-core
machine torch's OpenMP threads often run much slower with 2 threads than with 1, so the ratio
column compares against the faster of the two.

For every (n, d, blur/scaling) cell: `cargo bench --bench sinkhorn -- --exact sinkhorn/<cell>`
(criterion median, CRITERION_HOME in a temporary folder), then
`python3 tools/bench_geomloss.py` on the same cell (median), alternating so that both see the
same machine load. The 1-minute load average is recorded before and after each cell.

Usage (from the repository root; CARGO_TARGET_DIR is honoured):
    python3 tools/bench_sinkhorn_compare.py [--n 256,1024,4096] [--d 2,784,3072]
        [--cfg 0.05/0.9,1.0/0.8] [--skip 4096x3072] [--time 5] [--out table.md]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cell_name(n, d, blur, scaling):
    # Rust's `{}` formatting of f64: 1.0 -> "1", 0.05 -> "0.05".
    fmt = lambda v: repr(v) if v != int(v) else str(int(v))
    return f"n{n}_d{d}_blur{fmt(blur)}_scal{fmt(scaling)}"


def run_ours(name, crit_home, secs):
    env = dict(os.environ, CRITERION_HOME=crit_home, NSGF_BENCH_TIME=str(secs))
    cmd = ["cargo", "bench", "--bench", "sinkhorn", "--", "--exact", f"sinkhorn/{name}"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    loss = None
    for line in p.stdout.splitlines():
        if line.startswith(f"nsgf-bench-loss {name} "):
            loss = float(line.split()[-1])
    est = glob.glob(os.path.join(crit_home, "sinkhorn", "*", "new", "estimates.json"))
    est = [e for e in est if os.path.basename(os.path.dirname(os.path.dirname(e))) == name]
    if len(est) != 1:
        sys.exit(f"no criterion estimates for {name} under {crit_home}:\n{p.stdout}")
    with open(est[0]) as f:
        e = json.load(f)
    with open(os.path.join(os.path.dirname(est[0]), "sample.json")) as f:
        s = json.load(f)
    runs = int(sum(s["iters"]))
    return dict(median_ms=e["median"]["point_estimate"] / 1e6, runs=runs, loss=loss, wall_s=wall)


def run_geomloss(n, d, blur, scaling, threads, repeats, min_time):
    cmd = [sys.executable, os.path.join(ROOT, "tools", "bench_geomloss.py"), "--n", str(n),
           "--d", str(d), "--cfg", f"{blur}/{scaling}", "--threads", str(threads),
           "--repeats", str(repeats), "--min-time", str(min_time)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    out = json.loads(p.stdout)
    return out, out["results"][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="256,1024,4096")
    ap.add_argument("--d", default="2,784,3072")
    ap.add_argument("--cfg", default="0.05/0.9,1.0/0.8")
    ap.add_argument("--skip", default="", help="comma-separated nxd cells to skip, e.g. 4096x3072")
    ap.add_argument("--time", type=float, default=5.0, help="criterion measurement time (s)")
    ap.add_argument("--threads", default="2,1", help="torch thread counts to time GeomLoss with")
    ap.add_argument("--repeats", type=int, default=5, help="GeomLoss: minimum timed runs")
    ap.add_argument("--big-repeats", type=int, default=3, help="GeomLoss: minimum runs for n >= 4096")
    ap.add_argument("--min-time", type=float, default=3.0, help="GeomLoss: minimum timed seconds")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()

    ns = [int(v) for v in args.n.split(",") if v]
    ds = [int(v) for v in args.d.split(",") if v]
    cfgs = [tuple(float(v) for v in c.split("/")) for c in args.cfg.split(",") if c]
    threads = [int(t) for t in args.threads.split(",") if t]
    skip = {tuple(int(v) for v in c.split("x")) for c in args.skip.split(",") if c}

    print("building the bench ...", file=sys.stderr, flush=True)
    subprocess.run(["cargo", "bench", "--bench", "sinkhorn", "--no-run"], cwd=ROOT, check=True)

    load_start = load1()
    rows, versions = [], None
    with tempfile.TemporaryDirectory(prefix="nsgf-criterion-") as crit_home:
        for n in ns:
            for d in ds:
                if (n, d) in skip:
                    continue
                for blur, scaling in cfgs:
                    name = cell_name(n, d, blur, scaling)
                    l0 = load1()
                    ours = run_ours(name, crit_home, args.time)
                    geo = {}
                    for t in threads:
                        big = n >= 4096
                        versions, geo[t] = run_geomloss(
                            n, d, blur, scaling, t,
                            args.big_repeats if big else args.repeats, 0.0 if big else args.min_time)
                    l1 = load1()
                    row = dict(n=n, d=d, blur=blur, scaling=scaling, ours=ours, geo=geo, load=(l0, l1))
                    rows.append(row)
                    geo_s = ", ".join(f"GeomLoss/{t}thr {g['median_ms']:.1f} ms ({g['runs']} runs)"
                                      for t, g in geo.items())
                    print(f"{name}: ours {ours['median_ms']:.1f} ms ({ours['runs']} runs), {geo_s}, "
                          f"loss {ours['loss']} / {geo[threads[0]]['loss']}, load {l0:.2f} -> {l1:.2f}",
                          file=sys.stderr, flush=True)
    load_end = load1()

    geo_cols = " | ".join(f"GeomLoss {t} thr (ms)" for t in threads)
    lines = [
        f"GeomLoss {versions['geomloss']}, torch {versions['torch']}; "
        f"1-min load average {load_start:.2f} at start, {load_end:.2f} at end.",
        "",
        f"| n = m | d | blur / scaling | ε steps | ours (ms) | {geo_cols} | GeomLoss (best) / ours | loss ours | loss GeomLoss | load before → after |",
        "|---:|---:|:---:|---:|---:|" + "---:|" * len(threads) + "---:|---:|---:|:---:|",
    ]
    for r in rows:
        o, g = r["ours"], r["geo"]
        g0 = g[threads[0]]
        best = min(v["median_ms"] for v in g.values())
        geo_vals = " | ".join(f"{g[t]['median_ms']:.1f}" for t in threads)
        lines.append(
            f"| {r['n']} | {r['d']} | {r['blur']:g} / {r['scaling']:g} | {g0['eps_steps']} | "
            f"{o['median_ms']:.1f} | {geo_vals} | {best / o['median_ms']:.2f} | "
            f"{o['loss']:.6g} | {g0['loss']:.6g} | {r['load'][0]:.1f} → {r['load'][1]:.1f} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
