"""Golden fixtures for the Rust port of torchcfm's ADM U-Net (`UNetModelWrapper`).

Builds `torchcfm.models.unet.UNetModelWrapper` (torchcfm 1.0.x, itself a copy of OpenAI's
guided-diffusion `unet.py`) for three configurations and

* prints the parameter count of each (`mnist`, `cifar`, `tiny`);
* for `tiny` and `mnist`: seeds torch, builds the model, overwrites EVERY parameter with small
  random values (including the zero-initialised `out_layers.3`, `proj_out` and `out.2` convs and
  the GroupNorm affine parameters, so that no branch of the network is trivially zero), draws
  `x ~ N(0, 1)` of shape (B, C, H, W) and `t ~ U[0, 1)` of shape (B,), and evaluates
  `model(t, x)` in float32 and in float64; the weights, inputs and both outputs are saved to a
  safetensors file under the torchcfm `state_dict` names;
* for `tiny` only: the gradients of `loss = sum(model(t, x) * r)` (float32, fixed random `r`) with
  respect to every parameter and to `x`, in a second safetensors file;
* writes `README.md` (provenance, configurations, parameter names and shapes) and
  `unet_configs.json` (constructor arguments and parameter counts) next to them.

Run from the repository root (CPU only, about 10 s on 2 cores):

    python3 tools/unet_torchcfm_fixture.py [--out tests/fixtures/unet]

Float64 caveat: torchcfm's U-Net is not dtype-generic. `UNetModel.forward` casts the input to
`self.dtype` (float32), `timestep_embedding` builds its table in float32, `GroupNorm32` normalises
in float32 and `QKVAttentionLegacy` takes its softmax in float32. For the float64 reference these
four spots are patched (see `float64_mode`) so that the whole forward runs in float64; the patched
code is checked to reproduce the unpatched float32 output before it is used.
"""
import argparse
import contextlib
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

import torchcfm.models.unet.nn as tcfm_nn
import torchcfm.models.unet.unet as tcfm_unet
from torchcfm.models.unet.unet import UNetModelWrapper

# Constructor arguments of `UNetModelWrapper`, exactly as passed. Defaults of the wrapper that are
# not listed: learn_sigma=False, class_cond=False, use_checkpoint=False, num_heads_upsample=-1,
# use_scale_shift_norm=False, resblock_updown=False, use_fp16=False,
# use_new_attention_order=False (-> QKVAttentionLegacy).
CONFIGS = {
    # torchcfm's MNIST examples: UNetModel(dim=(1, 28, 28), num_channels=32, num_res_blocks=1)
    # (the class-conditional notebook adds num_classes=10, class_cond=True: +1,280 parameters).
    # "16" -> attention_ds = 28 // 16 = 1: attention at 28x28 (784 tokens) and in the 7x7 middle.
    "mnist": dict(
        dim=(1, 28, 28),
        num_channels=32,
        num_res_blocks=1,
        channel_mult=[1, 2, 2],
        num_heads=1,
        num_head_channels=-1,
        attention_resolutions="16",
        dropout=0.0,
    ),
    # torchcfm examples/images/cifar10/train_cifar10.py. "16" -> attention_ds = 32 // 16 = 2.
    "cifar": dict(
        dim=(3, 32, 32),
        num_channels=128,
        num_res_blocks=2,
        channel_mult=[1, 2, 2, 2],
        num_heads=4,
        num_head_channels=64,
        attention_resolutions="16",
        dropout=0.0,
    ),
    # Small test network that exercises every op and code path of the real configs: a channel
    # change 32 -> 64 (1x1-conv and identity skips), conv Downsample/Upsample, skip concat,
    # multi-head attention (num_head_channels=16 -> 2 heads at 32 channels, 4 at 64) at BOTH
    # levels ("16,8" -> attention_ds = (16 // 16, 16 // 8) = (1, 2)) plus the middle block, and
    # 3 in/out channels. At least one level must have >= 64 channels: with GroupNorm(32, 32)
    # every group is a single channel, which cancels the per-channel time-embedding shift, so a
    # network with only 32-channel ResBlocks does not depend on t at all. num_res_blocks=1 keeps
    # it at 715k parameters (num_res_blocks=2 would be 1.02M, i.e. 4.1 MB per file).
    "tiny": dict(
        dim=(3, 16, 16),
        num_channels=32,
        num_res_blocks=1,
        channel_mult=[1, 2],
        num_heads=1,
        num_head_channels=16,
        attention_resolutions="16,8",
        dropout=0.0,
    ),
}

EXPECTED_PARAMS = {"mnist": 1_075_361}
BATCH = 2
SEED = 0


def build(name):
    return UNetModelWrapper(**CONFIGS[name])


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def derived(model, cfg):
    """Values the wrapper derives from its arguments (useful to the Rust side)."""
    image_size = cfg["dim"][-1]
    heads = {}
    for name, m in model.named_modules():
        if isinstance(m, tcfm_unet.AttentionBlock):
            heads[name] = {"channels": m.channels, "num_heads": m.num_heads}
    return {
        "image_size": image_size,
        "in_channels": cfg["dim"][0],
        "out_channels": model.out_channels,
        "attention_ds": list(model.attention_resolutions),
        "time_embed_dim": 4 * cfg["num_channels"],
        "attention_blocks": heads,
    }


# ---------------------------------------------------------------------------------------------
# Parameter randomisation
# ---------------------------------------------------------------------------------------------
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
MASK = (1 << 64) - 1


def fnv1a64(name):
    h = FNV_OFFSET
    for b in name.encode():
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def synthetic_values(name, shape):
    """The fixtures' deterministic weights (mirrored by `SyntheticTorchParams` in
    `src/models/unet.rs`, so that no weight file need be stored): element i of parameter `name`
    is u = 2 * (splitmix64(fnv1a64(name) + i) >> 11) / 2^53 - 1 in [-1, 1), computed in float64
    and rounded to float32 after scaling:

    * rank-1 `*.weight` (GroupNorm): 1 + 0.1 u;  `*.bias`: 0.1 u;
    * other weights (conv / linear, fan_in = numel / shape[0]): u * sqrt(3 / fan_in)
      (unit variance, as N(0, 1) / sqrt(fan_in)).
    """
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53) * 2.0 - 1.0
    if name.endswith(".bias"):
        v = 0.1 * u
    elif len(shape) == 1:
        v = 1.0 + 0.1 * u
    else:
        v = u * math.sqrt(3.0 / (n // shape[0]))
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def randomise_(model, gen):
    """Overwrite every parameter with the synthetic values of `synthetic_values`
    (`gen` is unused: the values depend on the parameter's name only)."""
    del gen
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(synthetic_values(name, tuple(p.shape)))


# ---------------------------------------------------------------------------------------------
# float64 evaluation
# ---------------------------------------------------------------------------------------------
def _timestep_embedding_exact(timesteps, dim, max_period=10000):
    """`torchcfm...nn.timestep_embedding` in the dtype of `timesteps` (float32 ops when the
    input is float32, so it is bitwise the original there)."""
    dt = timesteps.dtype
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(start=0, end=half, dtype=dt) / half
    )
    args = timesteps[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def _groupnorm_nocast(self, x):
    return nn.GroupNorm.forward(self, x)


def _qkv_legacy_nocast(self, qkv):
    # Same as QKVAttentionLegacy.forward without the `.float()` around the softmax.
    bs, width, length = qkv.shape
    ch = width // (3 * self.n_heads)
    q, k, v = qkv.reshape(bs * self.n_heads, ch * 3, length).split(ch, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
    weight = torch.softmax(weight, dim=-1)
    a = torch.einsum("bts,bcs->bct", weight, v)
    return a.reshape(bs, -1, length)


@contextlib.contextmanager
def float64_mode(model):
    """Temporarily make torchcfm's U-Net dtype-generic (see the module docstring)."""
    saved = (
        tcfm_unet.timestep_embedding,
        tcfm_nn.GroupNorm32.forward,
        tcfm_unet.QKVAttentionLegacy.forward,
        model.dtype,
    )
    tcfm_unet.timestep_embedding = _timestep_embedding_exact
    tcfm_nn.GroupNorm32.forward = _groupnorm_nocast
    tcfm_unet.QKVAttentionLegacy.forward = _qkv_legacy_nocast
    try:
        yield
    finally:
        (
            tcfm_unet.timestep_embedding,
            tcfm_nn.GroupNorm32.forward,
            tcfm_unet.QKVAttentionLegacy.forward,
            model.dtype,
        ) = saved


def forward_f64(model, t, x):
    m64 = build_like(model).double()
    with float64_mode(m64):
        m64.dtype = torch.float64
        with torch.no_grad():
            return m64(t.double(), x.double())


def build_like(model):
    """A fresh copy of `model` (same config) with the same weights."""
    m = UNetModelWrapper(**model._fixture_cfg)
    m.load_state_dict(model.state_dict())
    m._fixture_cfg = model._fixture_cfg
    return m.eval()


# ---------------------------------------------------------------------------------------------
# Fixture generation
# ---------------------------------------------------------------------------------------------
def make_case(name, batch, with_grad):
    cfg = CONFIGS[name]
    torch.manual_seed(SEED)
    model = build(name).eval()
    model._fixture_cfg = cfg
    gen = torch.Generator().manual_seed(SEED)
    randomise_(model, gen)
    c, h, w = cfg["dim"]
    x = torch.randn(batch, c, h, w, generator=gen)
    t = torch.rand(batch, generator=gen)

    with torch.no_grad():
        out32 = model(t, x)
        # The float64 patches must be a no-op in float32 (up to op-order rounding).
        m_chk = build_like(model)
        with float64_mode(m_chk):
            out32_patched = m_chk(t, x)
    patch_dev = (out32 - out32_patched).abs().max().item()
    out64 = forward_f64(model, t, x)
    dev = (out32.double() - out64).abs().max().item()
    stats = {
        "batch": batch,
        "output_std_f64": out64.std().item(),
        "output_maxabs_f64": out64.abs().max().item(),
        "max_abs_f32_minus_f64": dev,
        "max_abs_f32_patched_minus_f32": patch_dev,
    }
    assert patch_dev < 1e-5, f"float64 patches changed the float32 output by {patch_dev}"

    assert len(model.state_dict()) == len(list(model.named_parameters())), "unexpected buffers"
    # The weights are not stored: `synthetic_values` regenerates them from their names.
    tensors = {}
    tensors["input.x"] = x
    tensors["input.t"] = t
    tensors["output.f32"] = out32
    tensors["output.f64"] = out64

    grads = None
    if with_grad:
        r = torch.randn(out32.shape, generator=gen)
        xg = x.clone().requires_grad_(True)
        model.zero_grad(set_to_none=True)
        loss = (model(t, xg) * r).sum()
        loss.backward()
        grads = {"grad.r": r, "grad.input.x": xg.grad.detach().contiguous()}
        # Parameter gradients: for the statistics below only (not stored).
        allg = dict(grads)
        for pname, p in model.named_parameters():
            allg[f"grad.{pname}"] = p.grad.detach()
        stats["grad_loss_f32"] = loss.item()
        # Same gradients in float64 (not saved): tolerance guidance, and the parameters whose
        # gradient vanishes identically (32-channel GroupNorm cancels per-channel shifts).
        m64 = build_like(model).double()
        with float64_mode(m64):
            m64.dtype = torch.float64
            x64 = x.double().requires_grad_(True)
            (m64(t.double(), x64) * r.double()).sum().backward()
        g64 = {n: p.grad for n, p in m64.named_parameters()}
        g64["input.x"] = x64.grad
        scale = max(v.abs().max().item() for v in g64.values())
        stats["zero_grad_params"] = [
            n for n, v in g64.items() if v.abs().max().item() < 1e-12 * scale
        ]
        rel = {}
        for n, v in g64.items():
            m = v.abs().max().item()
            if n not in stats["zero_grad_params"]:
                rel[n] = (allg[f"grad.{n}"].double() - v).abs().max().item() / m
        worst = max(rel, key=rel.get)
        stats["grad_max_rel_err_f32"] = rel[worst]
        stats["grad_max_rel_err_f32_at"] = worst
        stats["grad_max_abs_f32_of_zero_params"] = max(
            [allg[f"grad.{n}"].abs().max().item() for n in stats["zero_grad_params"]] or [0.0]
        )
    return model, tensors, grads, stats


def save(tensors, path, cfg):
    save_file(tensors, path, metadata={"config": json.dumps(cfg)})
    os.chmod(path, 0o644)  # save_file creates 0600


def sha256(path):
    hsh = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hsh.update(chunk)
    return hsh.hexdigest()


def fmt_args(cfg):
    return ", ".join(f"{k}={v!r}" for k, v in cfg.items())


def write_readme(out, counts, tiny_model, files, stats, command):
    L = []
    L.append("# `unet/` — torchcfm ADM U-Net parity fixtures\n")
    L.append(
        "Golden forward outputs and gradients of torchcfm's `UNetModelWrapper` "
        "(`torchcfm/models/unet/unet.py`, a copy of OpenAI guided-diffusion's `unet.py`), "
        "used to check the Rust U-Net port.\n"
    )
    L.append("## Provenance\n")
    L.append(f"* Generated by `{command}` (run from the repository root).")
    L.append(
        f"* torch {torch.__version__}, torchcfm {_dist_version('torchcfm')}, "
        f"safetensors {_dist_version('safetensors')}, numpy {np.__version__}, "
        f"Python {sys.version.split()[0]}; CPU."
    )
    L.append(
        f"* `torch.manual_seed({SEED})` before building the model; then a "
        f"`torch.Generator().manual_seed({SEED})` draws, in this order: `input.x`, `input.t` and "
        "(tiny only) `grad.r`. The weights are not random draws and are not stored: see below."
    )
    L.append("")
    L.append("## Configurations (`UNetModelWrapper` constructor arguments)\n")
    L.append(
        "Arguments not listed keep the wrapper defaults: learn_sigma=False, class_cond=False, "
        "use_checkpoint=False, num_heads_upsample=-1, use_scale_shift_norm=False, "
        "resblock_updown=False, use_fp16=False, use_new_attention_order=False "
        "(so attention is `QKVAttentionLegacy`). Also in `unet_configs.json`.\n"
    )
    L.append("| name | arguments | parameters |")
    L.append("|---|---|---:|")
    for name, cfg in CONFIGS.items():
        L.append(f"| {name} | `{fmt_args(cfg)}` | {counts[name]:,} |")
    L.append("")
    L.append(
        "`attention_resolutions` is turned into downsample factors `image_size // int(r)`: MNIST "
        "`\"16\"` -> ds 1 (attention at 28x28, 784 tokens, plus the always-present middle-block "
        "attention at 7x7); CIFAR `\"16\"` -> ds 2 (16x16); tiny `\"16,8\"` -> ds 1 and 2 "
        "(16x16 and 8x8). Heads: `num_head_channels != -1` overrides `num_heads` "
        "(heads = channels // num_head_channels), so tiny has heads of 16 channels (2 heads at 32 "
        "channels, 4 at 64), CIFAR 4 heads of 64 at 256 channels, MNIST 1 head; "
        "`unet_configs.json` lists every attention block with its channels and heads.\n"
    )
    L.append("## Files\n")
    L.append("| file | bytes | sha256 | content |")
    L.append("|---|---:|---|---|")
    for fname, (size, digest, what) in files.items():
        L.append(f"| `{fname}` | {size:,} | `{digest}` | {what} |")
    L.append("")
    L.append("Tensors in `unet_tiny.safetensors` / `unet_mnist.safetensors`:\n")
    L.append(f"* `input.x` float32 (B, C, H, W) ~ N(0, 1), `input.t` float32 (B,) ~ U[0, 1), "
             f"B = {BATCH};")
    L.append("* `output.f32` float32: `model(t, x)` in float32 (CPU, torch defaults);")
    L.append(
        "* `output.f64` float64: the same weights and inputs cast to float64 and the forward run "
        "entirely in float64. torchcfm itself cannot do that (`forward` casts `x` to "
        "`self.dtype` = float32, `timestep_embedding` computes in float32, `GroupNorm32` "
        "normalises in float32, `QKVAttentionLegacy` takes its softmax in float32), so those four "
        "spots are patched for this evaluation (`float64_mode` in the script); the patched code "
        "reproduces the unpatched float32 output."
    )
    L.append("")
    L.append(
        "`unet_tiny.safetensors` also holds (float32 computation) `grad.r` float32, same shape as "
        "the output, ~ N(0, 1), and, with `loss = sum(model(t, x) * r)`, `grad.input.x` = "
        "d loss / d x.\n"
    )
    L.append("Weights (every parameter, including the convs torchcfm zero-initialises: "
             "`*.out_layers.3`, `*.proj_out`, `out.2`) are synthetic and regenerated from their "
             "`state_dict` names by `synthetic_values` in the script and by "
             "`SyntheticTorchParams` in `src/models/unet.rs` (same bits): element i of "
             "parameter `name` is u = 2 (splitmix64(fnv1a64(name) + i) >> 11) / 2^53 - 1; "
             "rank-1 `*.weight` (GroupNorm) 1 + 0.1 u, `*.bias` 0.1 u, other weights "
             "u sqrt(3 / fan_in), rounded to float32. So the fixtures hold no weight file.\n")
    L.append("Observed magnitudes (use them to pick tolerances):\n")
    L.append("| case | B | std(out) | max abs(out) | max abs(f32 - f64) |")
    L.append("|---|---:|---:|---:|---:|")
    for name, s in stats.items():
        L.append(
            f"| {name} | {s['batch']} | {s['output_std_f64']:.4f} | {s['output_maxabs_f64']:.4f} "
            f"| {s['max_abs_f32_minus_f64']:.3e} |"
        )
    L.append("")
    g = stats["tiny"]
    L.append(
        f"Gradients (tiny): the float32 gradients in the file differ from a float64 evaluation of "
        f"the same gradients by at most {g['grad_max_rel_err_f32']:.2e} relative to the largest "
        f"entry of the same tensor (worst: `{g['grad_max_rel_err_f32_at']}`); `sum(out * r)` = "
        f"{g['grad_loss_f32']:.6f}.\n"
    )
    L.append(
        "**Structurally zero gradients.** `GroupNorm(32, 32)` has one channel per group, so it "
        "cancels any per-channel constant added before it. Hence in every ResBlock with 32 output "
        "channels the time-embedding shift (`emb_layers.1.*`) and the `in_layers.2.bias` have no "
        "effect at all (the 32-channel levels of these U-Nets do not depend on t; only >= 64-channel "
        "blocks do), and the per-channel biases of the last output block feed `out.0` = "
        "GroupNorm(32, 32) and vanish too. Their exact gradient is 0; the float32 values in the "
        f"file are rounding noise (max abs {g['grad_max_abs_f32_of_zero_params']:.1e}), so compare "
        "them with an absolute tolerance. For the tiny config these are:\n"
    )
    for n in g["zero_grad_params"]:
        L.append(f"* `{n}`")
    L.append("")
    L.append("## Module and parameter naming\n")
    L.append(NAMING_NOTES)
    L.append("## Tiny config: all parameters\n")
    L.append(f"{len(list(tiny_model.named_parameters()))} tensors, {counts['tiny']:,} values.\n")
    L.append("```")
    for n, p in tiny_model.named_parameters():
        L.append(f"{n:48s} {tuple(p.shape)}")
    L.append("```")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(L) + "\n")


NAMING_NOTES = """\
`state_dict` keys (conv weights are `[out, in, kh, kw]`, 1-D convs `[out, in, 1]`, linear
weights `[out, in]`):

* `time_embed.0` Linear(model_channels, 4 model_channels), `time_embed.2` Linear(4mc, 4mc)
  (`time_embed.1` is SiLU). Input: `timestep_embedding(t, model_channels)` =
  `[cos(t f_0..f_{h-1}), sin(t f_0..f_{h-1})]`, `f_i = exp(-ln(10000) i / h)`, h = mc / 2
  (cos first; t is used as is, no x1000 scaling).
* `input_blocks.0.0` Conv2d(C_in, ch, 3, padding 1).
* `input_blocks.{i}` for i >= 1 is a `TimestepEmbedSequential` of either
  `[ResBlock]`, `[ResBlock, AttentionBlock]` (sub-indices `.0`, `.1`) or `[Downsample]`
  (`input_blocks.{i}.0.op` = Conv2d(ch, ch, 3, stride 2, padding 1)), in the order: per level
  `num_res_blocks` ResBlocks (+ attention when the level's ds is in attention_ds), then a
  Downsample after every level but the last.
* `middle_block.0` ResBlock, `middle_block.1` AttentionBlock (always), `middle_block.2` ResBlock.
* `output_blocks.{j}`: per level from the deepest, `num_res_blocks + 1` blocks
  `[ResBlock(ch + skip_ch -> mult mc), AttentionBlock?, Upsample?]`; the input is
  `cat([h, skip], dim=1)` (h first) with skips popped from the input blocks in reverse order;
  `Upsample` (nearest x2 then `output_blocks.{j}.{k}.conv` Conv2d 3x3 padding 1) ends the last
  block of every level except level 0.
* `out.0` GroupNorm32(32, ch), `out.1` SiLU, `out.2` Conv2d(ch, C_out, 3, padding 1).

ResBlock (`use_scale_shift_norm=False`, no up/down): `in_layers.0` GroupNorm(32, in),
`in_layers.1` SiLU, `in_layers.2` Conv3x3(in -> out); `emb_layers.0` SiLU, `emb_layers.1`
Linear(4mc -> out), added per channel after `in_layers`; `out_layers.0` GroupNorm(32, out),
`.1` SiLU, `.2` Dropout, `.3` Conv3x3(out -> out); `skip_connection` = Identity when in == out
(no parameters), else a 1x1 Conv2d(in -> out). Result `skip(x) + h`.
Note the SiLU is applied to the *shared* embedding inside every ResBlock (`emb_layers.0`), on top
of the `time_embed` output (which ends with a Linear, no activation).

AttentionBlock: `norm` GroupNorm(32, c); `qkv` Conv1d(c, 3c, 1) (weight `[3c, c, 1]`);
`proj_out` Conv1d(c, c, 1); result `x + proj_out(attn(qkv(norm(x))))` on x reshaped to (B, c, T),
T = H W (row-major).

QKVAttentionLegacy layout (`use_new_attention_order=False`): the qkv output (B, 3c, T) is reshaped
to (B * heads, 3 * d, T) with d = c / heads, and split along dim 1 into q, k, v of d channels
each. So the 3c output channels of `qkv` are ordered **head-major**: head h owns channels
`[3 d h, 3 d (h+1))`, of which the first d are its q, the next d its k, the last d its v
(NOT `[all q | all k | all v]`). Scores `softmax_s(sum_c (q_ct / d^(1/4)) (k_cs / d^(1/4)))`
(scale split between q and k), `a_ct = sum_s w_ts v_cs`, and the heads are concatenated back
in head order: output channel `h d + c`.

GroupNorm32: `nn.GroupNorm(32, C)` with eps 1e-5, computed in float32.
"""


def _dist_version(dist):
    from importlib.metadata import version

    return version(dist)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/unet")
    ap.add_argument("--mnist-max-bytes", type=int, default=4_500_000,
                    help="write the MNIST file with batch 1 if batch 2 would exceed this")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(args.out, exist_ok=True)
    command = "python3 tools/unet_torchcfm_fixture.py" + (
        f" --out {args.out}" if args.out != "tests/fixtures/unet" else "")

    counts = {}
    for name in CONFIGS:
        torch.manual_seed(SEED)
        counts[name] = n_params(build(name))
        print(f"{name:6s} params = {counts[name]:,}")
    for name, exp in EXPECTED_PARAMS.items():
        assert counts[name] == exp, f"{name}: {counts[name]} != {exp}"

    files, stats = {}, {}

    tiny, tensors, grads, st = make_case("tiny", BATCH, with_grad=True)
    stats["tiny"] = st
    p = os.path.join(args.out, "unet_tiny.safetensors")
    save({**tensors, **grads}, p, CONFIGS["tiny"])
    files["unet_tiny.safetensors"] = (os.path.getsize(p), sha256(p),
                                      "tiny: input.x/t, output.f32/f64, grad.r, grad.input.x")

    # MNIST: batch 2 unless the file would get too large (weights dominate: 4 B x 1.08M).
    mnist_batch = BATCH
    if mnist_batch * 784 * 4 * 4 > args.mnist_max_bytes:
        mnist_batch = 1
    mnist_model, tensors, _, st = make_case("mnist", mnist_batch, with_grad=False)
    stats["mnist"] = st
    p = os.path.join(args.out, "unet_mnist.safetensors")
    save(tensors, p, CONFIGS["mnist"])
    files["unet_mnist.safetensors"] = (os.path.getsize(p), sha256(p),
                                       f"mnist (B={mnist_batch}): input.x/t, output.f32/f64")

    cfg_json = {}
    for name, cfg in CONFIGS.items():
        m = build(name)
        cfg_json[name] = {
            "class": "torchcfm.models.unet.unet.UNetModelWrapper",
            "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            "params": counts[name],
            "derived": derived(m, cfg),
        }
        if name in stats:
            cfg_json[name]["fixture"] = stats[name]
    cfg_json["_versions"] = {"torch": torch.__version__, "torchcfm": _dist_version("torchcfm")}
    with open(os.path.join(args.out, "unet_configs.json"), "w") as f:
        json.dump(cfg_json, f, indent=2)
        f.write("\n")

    write_readme(args.out, counts, tiny, files, stats, command)

    for name, s in stats.items():
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in s.items()))
    for fname, (size, digest, _) in files.items():
        print(f"{fname}: {size:,} bytes sha256 {digest}")


if __name__ == "__main__":
    main()
