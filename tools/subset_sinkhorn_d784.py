"""Make the reduced copy of the 784-d GeomLoss fixture kept in tests/fixtures/sinkhorn.

The shared fixture ../shared/fixtures/sinkhorn/sinkhorn_n64_m64_d784.safetensors (6.7 MB) stores
x_u8/y_u8 and 12 cases; we keep the inputs, three cases and the blur-0.5 converged reference (every tensor of those).
Usage: python3 tools/subset_sinkhorn_d784.py ../shared/fixtures/sinkhorn tests/fixtures/sinkhorn
"""
import sys
from safetensors.numpy import load_file, save_file

src, dst = sys.argv[1], sys.argv[2]
t = load_file(f"{src}/sinkhorn_n64_m64_d784.safetensors")
keep_cases = ["ref_blur0.5", "blur0.5_scal0.9_debias", "blur1.0_scal0.5_raw", "blur0.05_scal0.9_debias"]
out = {k: v for k, v in t.items() if k in ("x_u8", "y_u8", "x", "y") or k.rsplit(".", 1)[0] in keep_cases}
# x, y are exactly x_u8/255, y_u8/255; drop the f64 copies to save space.
out.pop("x", None)
out.pop("y", None)
save_file(out, f"{dst}/sinkhorn_n64_m64_d784_subset.safetensors")
print(sorted(out))
