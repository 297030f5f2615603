#!/usr/bin/env bash
# Side-by-side CPU benchmark of the UNet train step and its ops: nsgf (release build) against the
# PyTorch reference (torchcfm's UNetModelWrapper, tools/bench_unet_torch.py, 2 threads), in
# alternating rounds, printed as a Markdown table of medians with the ratio PyTorch time / nsgf time
# (> 1: nsgf is faster). Needs `cargo build --release` and `pip install torch torchcfm`.
#
#   bash scripts/bench-unet-vs-torch.sh [ROUNDS=2] [OUTDIR=runs/bench-unet]
set -euo pipefail
rounds=${1:-2}
out=${2:-runs/bench-unet}
mkdir -p "$out"
bin=./target/release/nsgf
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/machine.txt"
for r in $(seq 1 "$rounds"); do
    "$bin" bench unet --config mnist --batch 128 --steps 3 --ops --json > "$out/nsgf-mnist-$r.json"
    python3 tools/bench_unet_torch.py --config mnist --batch 128 --steps 3 --threads 2 --json > "$out/torch-mnist-$r.json" 2>/dev/null
    python3 tools/bench_unet_torch.py --ops --threads 2 --reps 3 --json > "$out/torch-ops-$r.json" 2>/dev/null
    "$bin" bench unet --config cifar10 --batch 32 --steps 2 --json > "$out/nsgf-cifar-$r.json"
    python3 tools/bench_unet_torch.py --config cifar --batch 32 --steps 2 --threads 2 --json > "$out/torch-cifar-$r.json" 2>/dev/null
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
load = lambda f: json.load(open(f"{out}/{f}"))
med = statistics.median
rows = []
for cfg, tcfg, batch in (("mnist", "mnist", 128), ("cifar", "cifar", 32)):
    ours = [load(f"nsgf-{cfg}-{r}.json") for r in range(1, rounds + 1)]
    torch = [load(f"torch-{tcfg}-{r}.json") for r in range(1, rounds + 1)]
    a, b = med(o["step_ms"] for o in ours), med(t["step_ms"] for t in torch)
    rows.append((f"train step, {cfg} UNet, batch {batch} (ms)", a, b))
    rows.append((f"  peak RSS (MB)", med(o["peak_rss_mb"] for o in ours), med(t["peak_rss_mb"] for t in torch)))
ours_ops = [{o["name"]: o["ms"] for o in load(f"nsgf-mnist-{r}.json")["ops"]} for r in range(1, rounds + 1)]
torch_ops = [load(f"torch-ops-{r}.json") for r in range(1, rounds + 1)]
for name in ours_ops[0]:
    rows.append((f"op {name}, batch 128, fwd+bwd (ms)", med(o[name] for o in ours_ops), med(t[name] for t in torch_ops)))
print("| case | nsgf | PyTorch | PyTorch / nsgf |")
print("|---|---:|---:|---:|")
for name, a, b in rows:
    print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
PY
