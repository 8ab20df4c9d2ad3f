"""PyTorch golden files for the Tiny-ImageNet models: forward, loss and backward of the torchvision (or the
authors') model with weights from a closed-form pattern, so no weights are stored.

Regenerate (from the repository root, with Debian's python3-torch 1.13 and python3-torchvision 0.14, CPU):

    /usr/bin/python3 scripts/make_imagenet_golden.py                 # every model in MODELS
    /usr/bin/python3 scripts/make_imagenet_golden.py --models resnet18 vgg11_bn

Writes Tests/ModelsTests/Golden/imagenet_<model>.safetensors (zoo names: resnet18, mobilenetv2, vgg11_bn).
One function per model builds the PyTorch module (`MODELS` maps the zoo name to it); everything else is shared.

The pattern (the Swift test, Tests/ModelsTests/ImageNetGoldenTests.swift, computes the same numbers):
for tensor number j (its position in `state_dict()` order) and flat element i,

    h = i * 0x9E3779B97F4A7C15 + (j + 1) * 0xD1B54A32D192ED03            (mod 2^64)
    h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9; h = (h ^ (h >> 29)) * 0x94D049BB133111EB; h ^= h >> 32
    u = ((h >> 40) - 2^23) / 2^23                                          (exact, in [-1, 1))

and the value, computed in float64 and rounded once to float32, is by the owning module's kind:
conv weight sqrt(6 / fan_in) * u (fan_in = C_in/groups * k * k: He-scaled, std sqrt(2 / fan_in)); linear
weight sqrt(3 / fan_in) * u (std 1/sqrt(fan_in)); conv and linear bias 0.1 * u; BN weight 1 + 0.25 * u,
BN bias 0.1 * u, running_mean 0.1 * u, running_var 1 + 0.5 * u; num_batches_tracked 0.
The input [B, 3, 64, 64] (B = 2, or BATCH[model]) is the pattern u of j = 1,000,000; labels are the first B of
[3, 117, 50, 199].

Contents of each file (float32 unless said):
    input, labels (int64)
    eval_logits [B, classes]     eval mode (running statistics of the pattern)
    eval_loss [1]                mean cross-entropy of eval_logits
    train_logits [B, classes]    train mode (batch statistics), every Dropout at p = 0 (masks cannot match)
    train_loss [1]               mean cross-entropy of train_logits, then backward
    grad.<first conv weight>, grad.<classifier bias>     full gradients
    grad_sum, grad_norm, grad_dot [P]   per parameter, in named_parameters() order: sum, L2 norm and the dot
                                        product with the pattern u of j = 2,000,000 + p
    buffer_sum, buffer_norm, buffer_dot [B]   the same for every float buffer after the train forward
                                        (named_buffers() order, num_batches_tracked left out; j = 3,000,000 + b)
Metadata: `state_dict` (JSON list of [name, shape, "param" | "buffer" | "int64"] in state_dict() order:
the keys a torchvision checkpoint has), `parameters`, `macs_64` and `macs_224` (conv: numel(out) * C_in/g *
k^2; linear: in * out; one image), `first_conv`, `classifier`, `model`.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import MODELS_DIR, write_safetensors  # noqa: E402  (helper script next to this one)

CLASSES = 200
SIZE = 64
LABELS = [3, 117, 50, 199]
# Images per golden batch: 2, except where a train-mode backward on 2 images is ill-conditioned in float32.
# MobileNetV2's last stages at 64x64 are 2x2, so each BN there normalises 8 values; PyTorch's own float32
# gradients then differ from its float64 ones by 2e-2 (features.14's depthwise BN); with 4 images, 3e-5.
BATCH = {"mobilenetv2": 4}
INPUT_INDEX, GRAD_INDEX, BUFFER_INDEX = 1_000_000, 2_000_000, 3_000_000
MASK = (1 << 64) - 1


# ----------------------------------------------------------------------------------------------------
# Models: the zoo name -> a function building the PyTorch module with `classes` outputs.


def resnet18(classes):
    """torchvision ResNet-18 (the authors' resnet18_imagenet, TinyImageNet/models/resnet_imagenet.py:259)."""
    return torchvision.models.resnet18(num_classes=classes)


def mobilenetv2(classes):
    """torchvision MobileNetV2 x1.0 (the authors' mobilenet_v2, TinyImageNet/models/mobilenet_v2.py:185)."""
    return torchvision.models.mobilenet_v2(num_classes=classes)


class AuthorsVGGBlock(nn.Module):
    """TinyImageNet/models/vgg.py:24-38 (batch_norm=True)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv2d = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv2d(x)))


class AuthorsVGG(nn.Module):
    """TinyImageNet/models/vgg.py:41-109: five groups, max-pools after groups 0-2, pool3 built but never
    applied (:57, :97-99), global average pool, one Linear(512, classes)."""

    def __init__(self, cfg, classes):
        super().__init__()
        widths = [3] + [g[-1] for g in cfg]
        for k, group in enumerate(cfg):
            blocks, cin = [], widths[k]
            for v in group:
                blocks.append(AuthorsVGGBlock(cin, v))
                cin = v
            setattr(self, f"block{k}", nn.Sequential(*blocks))
        self.pool0 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool4 = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(512, classes)

    def forward(self, x):
        x = self.pool0(self.block0(x))
        x = self.pool1(self.block1(x))
        x = self.pool2(self.block2(x))
        x = self.block3(x)
        x = self.pool4(self.block4(x))
        return self.classifier(x.view(x.size(0), -1))


def vgg11_bn(classes):
    """The authors' vgg11_bn (TinyImageNet/models/vgg.py:180-183, cfg 'A' :144); not torchvision's VGG."""
    return AuthorsVGG([[64], [128], [256, 256], [512, 512], [512, 512]], classes)


MODELS = {"resnet18": resnet18, "mobilenetv2": mobilenetv2, "vgg11_bn": vgg11_bn}


# ----------------------------------------------------------------------------------------------------
# The pattern and the golden file


def pattern(count, j):
    """u in [-1, 1) for flat elements 0..<count of tensor j (float64, exact; see the module docstring)."""
    i = np.arange(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = i * np.uint64(0x9E3779B97F4A7C15) + np.uint64(((j + 1) * 0xD1B54A32D192ED03) & MASK)
        h = (h ^ (h >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(29))) * np.uint64(0x94D049BB133111EB)
        h = h ^ (h >> np.uint64(32))
    return ((h >> np.uint64(40)).astype(np.float64) - 2.0 ** 23) / 2.0 ** 23


def pattern_tensor(shape, j, scale=1.0, offset=0.0):
    count = int(np.prod(shape)) if len(shape) else 1
    v = offset + scale * pattern(count, j)
    return torch.from_numpy(v.astype(np.float32)).reshape(shape)


def set_pattern(model):
    """Overwrites every parameter and buffer of `model` with the pattern, by the owning module's kind."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for j, (name, t) in enumerate(model.state_dict().items()):
            owner, _, leaf = name.rpartition(".")
            m = modules[owner]
            shape = tuple(t.shape)
            if leaf == "num_batches_tracked":
                t.zero_()
                continue
            if isinstance(m, nn.BatchNorm2d):
                scale, offset = {"weight": (0.25, 1.0), "bias": (0.1, 0.0), "running_mean": (0.1, 0.0),
                                 "running_var": (0.5, 1.0)}[leaf]
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and leaf == "weight":
                fan_in = int(np.prod(shape[1:]))
                scale, offset = math.sqrt((6.0 if isinstance(m, nn.Conv2d) else 3.0) / fan_in), 0.0
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and leaf == "bias":
                scale, offset = 0.1, 0.0
            else:
                raise ValueError(f"no pattern rule for {name} ({type(m).__name__})")
            t.copy_(pattern_tensor(shape, j, scale, offset))


def count_macs(model, size):
    """Multiply-adds of one forward on one size x size image: conv numel(out)*C_in/g*k^2, linear in*out."""
    total = [0]

    def hook(m, inputs, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total[0]


def summaries(tensors, base):
    """Sum, L2 norm and dot product with the pattern of j = base + k, per tensor (float64, then float32)."""
    sums, norms, dots = [], [], []
    for k, t in enumerate(tensors):
        v = t.detach().double().reshape(-1)
        sums.append(v.sum().item())
        norms.append(v.norm().item())
        dots.append((v * torch.from_numpy(pattern(v.numel(), base + k))).sum().item())
    return [torch.tensor(x, dtype=torch.float32) for x in (sums, norms, dots)]


def make(name):
    torch.manual_seed(0)
    model = MODELS[name](CLASSES)
    set_pattern(model)
    state = model.state_dict()
    keys = [[k, list(t.shape), "int64" if t.dtype == torch.int64 else
             ("param" if k in dict(model.named_parameters()) else "buffer")] for k, t in state.items()]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    meta = {"model": name, "state_dict": json.dumps(keys, separators=(",", ":")),
            "parameters": sum(p.numel() for p in model.parameters()),
            "macs_64": count_macs(model, 64), "macs_224": count_macs(model, 224),
            "first_conv": convs[0], "classifier": linears[-1]}
    set_pattern(model)  # count_macs ran eval forwards only, but start from the pattern regardless

    batch = BATCH.get(name, 2)
    x = pattern_tensor((batch, 3, SIZE, SIZE), INPUT_INDEX)
    labels = torch.tensor(LABELS[:batch], dtype=torch.int64)
    out = {"input": x, "labels": labels}

    model.eval()
    with torch.no_grad():
        logits = model(x)
    out["eval_logits"] = logits
    out["eval_loss"] = F.cross_entropy(logits, labels).reshape(1)

    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out["train_logits"] = logits
    out["train_loss"] = loss.reshape(1)
    params = dict(model.named_parameters())
    for key in (meta["first_conv"] + ".weight", meta["classifier"] + ".bias"):
        out["grad." + key] = params[key].grad
    out["grad_sum"], out["grad_norm"], out["grad_dot"] = summaries([p.grad for p in params.values()], GRAD_INDEX)
    buffers = [b for _, b in model.named_buffers() if b.dtype == torch.float32]
    out["buffer_sum"], out["buffer_norm"], out["buffer_dot"] = summaries(buffers, BUFFER_INDEX)
    print(f"{name}: eval loss {out['eval_loss'].item():.4f}, train loss {loss.item():.4f}, "
          f"|eval logits| max {out['eval_logits'].abs().max().item():.3g}")
    write_safetensors(os.path.join(MODELS_DIR, f"imagenet_{name}.safetensors"), out, meta)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.models:
        make(name)


if __name__ == "__main__":
    sys.exit(main())
