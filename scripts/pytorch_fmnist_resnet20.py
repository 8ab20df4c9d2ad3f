#!/usr/bin/python3
"""Train the reference ResNet-20 on Fashion-MNIST with PyTorch, save it as safetensors, evaluate it.

The cross-check for `sqakd eval` (a PyTorch-trained checkpoint must give the same top-1 and mean loss in
our engine) and the PyTorch side of the real-data accuracy comparison. Same data encoding as our
`fashion-mnist` dataset: 28×28 zero-padded to 32×32, grey replicated to 3 channels, normalised with
mean 0.2190 / std 0.3318 (Sources/Datasets/Dataset.swift); the reference's training recipe (train_fp.py):
SGD lr 0.1, momentum 0.9, weight decay 1e-4, cosine annealing stepped per epoch, RandomCrop(32, pad 4)
+ horizontal flip, cross-entropy; evaluation in eval mode at batch 100.

    /usr/bin/python3 scripts/pytorch_fmnist_resnet20.py --epochs 1 --out /tmp/pt_resnet20.safetensors
    .build/release/sqakd eval --checkpoint /tmp/pt_resnet20.safetensors --dataset fashion-mnist

and the other direction, a checkpoint written by `sqakd train` evaluated by PyTorch (strict load):

    /usr/bin/python3 scripts/pytorch_fmnist_resnet20.py --eval-only runs/<run>/best.safetensors
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import make  # noqa: E402

MEAN, STD = 0.2190, 0.3318


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


def encode(images):
    """uint8 [N, 28, 28] → uint8 [N, 3, 32, 32] (zero pad 2, grey → 3 channels)."""
    x = np.zeros((images.shape[0], 3, 32, 32), np.uint8)
    x[:, :, 2:30, 2:30] = images[:, None]
    return x


def normalise(x_uint8):
    return (torch.from_numpy(x_uint8).float() / 255.0 - MEAN) / STD


def augment(batch_uint8, rng):
    """RandomCrop(32, padding=4) with zero padding of the raw image, then a horizontal flip with p = 0.5."""
    n = batch_uint8.shape[0]
    padded = np.zeros((n, 3, 40, 40), np.uint8)
    padded[:, :, 4:36, 4:36] = batch_uint8
    out = np.empty_like(batch_uint8)
    for i in range(n):
        t, l = rng.integers(0, 9, 2)
        img = padded[i, :, t:t + 32, l:l + 32]
        out[i] = img[:, :, ::-1] if rng.random() < 0.5 else img
    return out


def save_safetensors(path, state):
    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        blob = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype=dtypes[h["dtype"]]).reshape(h["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def evaluate(model, x, y):
    model.eval()
    loss_sum, c1, c5 = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(y), 100):
            logits = model(normalise(x[i:i + 100]))
            target = torch.from_numpy(y[i:i + 100])
            loss_sum += F.cross_entropy(logits, target).item() * len(target)
            top5 = logits.topk(5, 1).indices
            c1 += (top5[:, 0] == target).sum().item()
            c5 += (top5 == target[:, None]).any(1).sum().item()
    return 100 * c1 / len(y), 100 * c5 / len(y), loss_sum / len(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="safetensors file for the final model")
    ap.add_argument("--eval-only", metavar="CHECKPOINT", help="only evaluate this safetensors state dict")
    args = ap.parse_args()
    if not args.out and not args.eval_only:
        ap.error("give --out (train) or --eval-only CHECKPOINT")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    xtr = encode(read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz")))
    ytr = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"))
    xte = encode(read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")))
    yte = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"))
    if args.train_limit:
        xtr, ytr = xtr[:args.train_limit], ytr[:args.train_limit]

    model = make("resnet20", 10)
    if args.eval_only:
        model.load_state_dict(load_safetensors(args.eval_only), strict=True)
        top1, top5, loss = evaluate(model, xte, yte)
        print(f"PyTorch eval of {args.eval_only}: top-1 {top1:.2f}%  top-5 {top5:.2f}%  loss {loss:.6f}")
        return
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs, eta_min=0)
    for epoch in range(args.epochs):
        model.train()
        t0 = time.time()
        order = rng.permutation(len(ytr))
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            x = normalise(augment(xtr[idx], rng))
            loss = F.cross_entropy(model(x), torch.from_numpy(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        top1, top5, loss = evaluate(model, xte, yte)
        print(f"epoch {epoch + 1}/{args.epochs}: test top-1 {top1:.2f}%  top-5 {top5:.2f}%  loss {loss:.6f}  "
              f"({len(ytr) / (time.time() - t0):.0f} img/s incl. eval)", flush=True)
    save_safetensors(args.out, model.state_dict())
    top1, top5, loss = evaluate(model, xte, yte)
    print(f"PyTorch eval of {args.out}: top-1 {top1:.2f}%  top-5 {top5:.2f}%  loss {loss:.6f}")


if __name__ == "__main__":
    main()
