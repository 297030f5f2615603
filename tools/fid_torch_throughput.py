"""PyTorch reference for the FID Inception throughput (BENCHMARKS-fid.md).

A plain eager-PyTorch version of the FID Inception-v3 built from the same safetensors shards,
with pytorch-fid's structure and ops (conv without bias + eval batch norm eps 1e-3 + ReLU, the
same pools, F.interpolate bilinear resize), so its speed is what pytorch-fid gets on the same
machine. It first checks itself against the golden features, then times preprocessing + forward
on random 32x32 RGB uint8 batches.

    python3 tools/fid_torch_throughput.py [--batch 50] [--batches 3] [--device cpu|cuda]
        [--weights ../shared/data/fid] [--golden tests/fixtures/fid/fid_golden.safetensors]
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def load_weights(folder):
    index = json.load(open(os.path.join(folder, "inception-fid.safetensors.index.json")))
    w = {}
    for shard in sorted(set(index["weight_map"].values())):
        w.update(load_file(os.path.join(folder, shard)))
    return w


class Net:
    def __init__(self, w, device):
        self.w = {k: v.to(device) for k, v in w.items()}

    def c(self, name, x, stride=1, pad=None):
        wt = self.w[name + ".weight"]
        if pad is None:
            pad = (wt.shape[2] // 2, wt.shape[3] // 2) if stride == 1 else (0, 0)
        y = F.conv2d(x, wt, None, stride, pad)
        y = F.batch_norm(y, self.w[name + ".mean"], self.w[name + ".var"], None,
                         self.w[name + ".beta"], False, 0.1, 1e-3)
        return F.relu(y)

    def seq(self, names, x):
        for n in names:
            x = self.c(n, x)
        return x

    def block_a(self, p, x):
        return torch.cat([
            self.c(f"{p}.conv", x),
            self.seq([f"{p}.tower.conv", f"{p}.tower.conv_1"], x),
            self.seq([f"{p}.tower_1.conv", f"{p}.tower_1.conv_1", f"{p}.tower_1.conv_2"], x),
            self.c(f"{p}.tower_2.conv", F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)),
        ], 1)

    def block_c(self, p, x):
        return torch.cat([
            self.c(f"{p}.conv", x),
            self.seq([f"{p}.tower.conv{s}" for s in ["", "_1", "_2"]], x),
            self.seq([f"{p}.tower_1.conv{s}" for s in ["", "_1", "_2", "_3", "_4"]], x),
            self.c(f"{p}.tower_2.conv", F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)),
        ], 1)

    def block_e(self, p, x, pool):
        a = self.c(f"{p}.tower_conv", x)
        b = self.c(f"{p}.tower_1_conv_1", self.c(f"{p}.tower_1_conv", x))
        pooled = (F.avg_pool2d(x, 3, 1, 1, count_include_pad=False) if pool == "avg"
                  else F.max_pool2d(x, 3, 1, 1))
        return torch.cat([
            self.c(f"{p}.conv", x),
            self.c(f"{p}.tower_mixed_conv", a), self.c(f"{p}.tower_mixed_conv_1", a),
            self.c(f"{p}.tower_1_mixed_conv", b), self.c(f"{p}.tower_1_mixed_conv_1", b),
            self.c(f"{p}.tower_2_conv", pooled),
        ], 1)

    def __call__(self, x):
        x = self.c("conv", x, 2, (0, 0))
        x = self.c("conv_1", x, 1, (0, 0))
        x = self.c("conv_2", x, 1, (1, 1))
        x = F.max_pool2d(x, 3, 2)
        x = self.c("conv_3", x, 1, (0, 0))
        x = self.c("conv_4", x, 1, (0, 0))
        x = F.max_pool2d(x, 3, 2)
        for p in ["mixed", "mixed_1", "mixed_2"]:
            x = self.block_a(p, x)
        x = torch.cat([
            self.c("mixed_3.conv", x, 2),
            self.c("mixed_3.tower.conv_2", self.seq(["mixed_3.tower.conv", "mixed_3.tower.conv_1"], x), 2),
            F.max_pool2d(x, 3, 2),
        ], 1)
        for p in ["mixed_4", "mixed_5", "mixed_6", "mixed_7"]:
            x = self.block_c(p, x)
        x = torch.cat([
            self.c("mixed_8.tower.conv_1", self.c("mixed_8.tower.conv", x), 2),
            self.c("mixed_8.tower_1.conv_3",
                   self.seq([f"mixed_8.tower_1.conv{s}" for s in ["", "_1", "_2"]], x), 2),
            F.max_pool2d(x, 3, 2),
        ], 1)
        x = self.block_e("mixed_9", x, "avg")
        x = self.block_e("mixed_10", x, "max")
        return F.avg_pool2d(x, 8).reshape(-1, 2048)


def preprocess(u8_nhwc, device):
    x = u8_nhwc.to(device).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return x * 2 - 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--weights", default="../shared/data/fid")
    ap.add_argument("--golden", default="tests/fixtures/fid/fid_golden.safetensors")
    a = ap.parse_args()
    net = Net(load_weights(a.weights), a.device)
    g = load_file(a.golden)
    with torch.no_grad():
        x = torch.cat([preprocess(g["mnist_u8"][..., None], a.device),
                       preprocess(g["cifar_u8"], a.device)])
        f = net(x).cpu()
        ref = torch.cat([g["feat_mnist"], g["feat_cifar"]])
        print(f"check vs golden features: max |diff| = {(f - ref).abs().max().item():.3e}")
        imgs = torch.randint(0, 256, (a.batch, 32, 32, 3), dtype=torch.uint8)
        net(preprocess(imgs, a.device))  # warm-up
        if a.device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(a.batches):
            net(preprocess(imgs, a.device)).cpu()
        s = time.perf_counter() - t
    n = a.batch * a.batches
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}: "
          f"{n} images in {s:.2f} s: {n / s:.2f} images/s (batch {a.batch})")


if __name__ == "__main__":
    main()
