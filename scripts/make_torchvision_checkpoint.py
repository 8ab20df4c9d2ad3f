"""A torchvision-trained ShuffleNet-V2 x0.5 checkpoint and its evaluation, for the strict-loading test.

Regenerate (from the repository root; Debian's python3-torch 1.13, python3-torchvision 0.14 and
dataset-fashion-mnist; about a minute on 2 cores):

    /usr/bin/python3 scripts/make_torchvision_checkpoint.py

Trains torchvision's `shufflenet_v2_x0_5(num_classes=10)` for STEPS steps of SGD (batch 32, lr 0.02,
momentum 0.9) on Fashion-MNIST training images made 64x64 RGB: the 28x28 uint8 image resized bilinearly
(`F.interpolate`, align_corners=False), rounded to uint8 and replicated to 3 channels, then
(v/255 - mean)/std with the ImageNet mean/std (reference 3.4), in float32 as `Normalization.lookupTable`.
Writes, under Tests/TrainingTests/Golden/:
  shufflenet_v2_x0_5_fmnist.safetensors       the state dict exactly as torch holds it (torch's names,
                                              float32, num_batches_tracked int64 0-d), ~1.4 MB
  shufflenet_v2_x0_5_fmnist_eval.safetensors  the first EVAL Fashion-MNIST test images after resizing
                                              (`images` [EVAL, 64, 64] gray levels 0..255 as F16, exact),
                                              `labels` (int64), and torch's eval-mode `logits` [EVAL, 10],
                                              `top1` (correct count, int64) and `loss` (mean cross-entropy);
                                              metadata: mean, std, steps, train loss.
"""

import gzip
import os
import struct
import sys

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import write_safetensors  # noqa: E402  (helper script next to this one)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "Tests", "TrainingTests", "Golden")
FASHION = "/usr/share/datasets/fashion-mnist"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
STEPS, BATCH, EVAL, SIZE = 60, 32, 64, 64


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(count, rows, cols)
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).to(torch.int64)


def resized(gray):
    """uint8 [N, 28, 28] -> uint8 [N, 64, 64]: bilinear, rounded, clamped."""
    x = F.interpolate(gray.float().unsqueeze(1), size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).squeeze(1)


def normalized(gray64):
    """uint8 [N, 64, 64] -> float32 [N, 3, 64, 64]: (v/255 - mean[c]) / std[c] per replicated channel."""
    x = gray64.float().div(255).unsqueeze(1).repeat(1, 3, 1, 1)
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub(mean).div(std)


def main():
    torch.manual_seed(4000)
    torch.set_num_threads(2)
    train_images, train_labels = idx(f"{FASHION}/train-images-idx3-ubyte.gz"), idx(f"{FASHION}/train-labels-idx1-ubyte.gz")
    test_images, test_labels = idx(f"{FASHION}/t10k-images-idx3-ubyte.gz"), idx(f"{FASHION}/t10k-labels-idx1-ubyte.gz")

    model = torchvision.models.shufflenet_v2_x0_5(num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    model.train()
    order = torch.randperm(len(train_labels))
    for step in range(STEPS):
        pick = order[step * BATCH:(step + 1) * BATCH]
        x, y = normalized(resized(train_images[pick])), train_labels[pick]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == STEPS - 1:
            print(f"step {step}: loss {loss.item():.4f}")

    gray = resized(test_images[:EVAL])
    labels = test_labels[:EVAL]
    model.eval()
    with torch.no_grad():
        logits = model(normalized(gray))
        eval_loss = F.cross_entropy(logits, labels)
    top1 = int((logits.argmax(1) == labels).sum())
    print(f"eval on {EVAL} test images: top-1 {top1}/{EVAL}, loss {eval_loss.item():.6f}")

    os.makedirs(OUT_DIR, exist_ok=True)
    write_safetensors(os.path.join(OUT_DIR, "shufflenet_v2_x0_5_fmnist.safetensors"), dict(model.state_dict()))
    write_safetensors(os.path.join(OUT_DIR, "shufflenet_v2_x0_5_fmnist_eval.safetensors"),
                      {"images": gray.to(torch.float16), "labels": labels, "logits": logits,
                       "top1": torch.tensor(top1, dtype=torch.int64), "loss": eval_loss.reshape(1)},
                      {"mean": MEAN, "std": STD, "steps": STEPS, "batch": BATCH, "train_loss": f"{loss.item():.6f}",
                       "images": "Fashion-MNIST t10k images 0..63, 28x28 resized bilinearly to 64x64, rounded; "
                                 "the model sees them replicated to 3 channels and normalised"})


if __name__ == "__main__":
    sys.exit(main())
