"""PyTorch golden files for the five Tiny-ImageNet models: forward, loss and backward of the torchvision (or the
authors') model with weights from a closed-form pattern, so no weights are stored.

Regenerate (from the repository root, with Debian's python3-torch 1.13 and python3-torchvision 0.14, CPU):

    /usr/bin/python3 scripts/make_imagenet_golden.py                 # every model in BUILDERS
    /usr/bin/python3 scripts/make_imagenet_golden.py --models resnet18 squeezenet1_0

`BUILDERS` maps each zoo name to a function building the PyTorch module. The files come in two formats, each
with its own weight pattern (both predate this script; changing either would change the committed files):

Hash format, Tests/ModelsTests/Golden/imagenet_<model>.safetensors (resnet18, mobilenetv2, vgg11_bn; the Swift
test is Tests/ModelsTests/ImageNetGoldenTests.swift, `HashPattern`). For tensor number j (its position in
`state_dict()` order) and flat element i,

    h = i * 0x9E3779B97F4A7C15 + (j + 1) * 0xD1B54A32D192ED03            (mod 2^64)
    h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9; h = (h ^ (h >> 29)) * 0x94D049BB133111EB; h ^= h >> 32
    u = ((h >> 40) - 2^23) / 2^23                                          (exact, in [-1, 1))

and the value, computed in float64 and rounded once to float32, is by the owning module's kind:
conv weight sqrt(6 / fan_in) * u (fan_in = C_in/groups * k * k: He-scaled, std sqrt(2 / fan_in)); linear
weight sqrt(3 / fan_in) * u (std 1/sqrt(fan_in)); conv and linear bias 0.1 * u; BN weight 1 + 0.25 * u,
BN bias 0.1 * u, running_mean 0.1 * u, running_var 1 + 0.5 * u; num_batches_tracked 0.
200 classes. The input [B, 3, 64, 64] (B = 2, or BATCH[model]) is the pattern u of j = 1,000,000; labels are
the first B of [3, 117, 50, 199]. Contents (float32 unless said):
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

Sine format, Tests/ModelsTests/Golden/<model>_golden.safetensors (shufflenet_v2_x0_5, squeezenet1_0; the Swift
test is Tests/ModelsTests/ShuffleSqueezeGoldenTests.swift, `SinePattern`):

    t   = position of the state-dict key in the sorted list of all keys
    k_i = (i*i + 7919*i + 104729*t) mod 65521                      (i = flat index, integers)
    u_i = sin(0.1*k_i + 0.3)                                       (float64, rounded to float32 at the end)
    conv / linear weight  u_i * sqrt(2 g / fan_in)  (variance g/fan_in)   fan_in = numel / shape[0], gain g per model
                          (metadata `gain`: 1 for ShuffleNet, whose eval-mode activations grow with 2; 2 = kaiming
                          for SqueezeNet, which has no BN)
    conv / linear bias    0.1 u_i
    BN weight 1 + 0.2 u_i, bias 0.1 u_i, running_mean 0.1 u_i, running_var 1 + 0.5 u_i, num_batches_tracked 0

Each model runs, at 10 classes, on 2 images of 64x64 (`input`, from torch.randn, and `labels`):
  1. eval mode: `logits_eval`, `loss_eval` (mean cross-entropy);
  2. train mode: `logits`, `loss`, then backward of the loss: `grad.<name>` in full for a few parameters,
     `grad_sum` / `grad_norm` (sum and L2 norm of every parameter's gradient, in the order of the metadata
     `parameters`), `buffer_sum` / `buffer_norm` of every BN running statistic after the forward (order:
     metadata `buffers`).
SqueezeNet's dropout cannot be replayed, so train mode multiplies by a stored mask instead
(`dropout_mask`, values 0 or 2 = Bernoulli(0.5)/0.5), which the Swift test puts in `classifier.0`'s place.
Metadata: `keys` (the state-dict keys in torchvision's order), `modules` (named_modules paths),
`parameters`, `buffers` (JSON lists), `parameter_count`.
"""

import argparse
import json
import math
import os
import sys
from collections import namedtuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import MODELS_DIR, write_safetensors  # noqa: E402  (helper script next to this one)

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


def shufflenet_v2_x0_5(classes):
    """torchvision ShuffleNet-V2 x0.5 (0.14; the authors' torchvision 0.11 definition is the same)."""
    return torchvision.models.shufflenet_v2_x0_5(num_classes=classes)


def squeezenet1_0(classes):
    """torchvision SqueezeNet 1.0 (0.14; the authors' torchvision 0.11 definition is the same)."""
    return torchvision.models.squeezenet1_0(num_classes=classes)


BUILDERS = {"resnet18": resnet18, "mobilenetv2": mobilenetv2, "vgg11_bn": vgg11_bn,
            "shufflenet_v2_x0_5": shufflenet_v2_x0_5, "squeezenet1_0": squeezenet1_0}


# ----------------------------------------------------------------------------------------------------
# Shared: the forward/backward both formats record, and per-tensor summaries.


def forward_backward(model, x, labels):
    """Eval forward and loss; train forward (every nn.Dropout at p = 0), mean cross-entropy and backward."""
    model.eval()
    with torch.no_grad():
        eval_logits = model(x)
    eval_loss = F.cross_entropy(eval_logits, labels)
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    return eval_logits, eval_loss, logits.detach(), loss.detach()


def summaries(tensors, dot_base=None):
    """Sum and L2 norm per tensor (float64, then float32); with `dot_base`, also the dot product with the
    hash pattern u of j = dot_base + k for tensor k."""
    sums, norms, dots = [], [], []
    for k, t in enumerate(tensors):
        v = t.detach().double().reshape(-1)
        sums.append(v.sum().item())
        norms.append(v.norm().item())
        if dot_base is not None:
            dots.append((v * torch.from_numpy(hash_pattern(v.numel(), dot_base + k))).sum().item())
    return [torch.tensor(x, dtype=torch.float32) for x in ((sums, norms, dots) if dot_base is not None else (sums, norms))]


def float_buffers(model):
    """(name, buffer) of every float32 buffer (BN running statistics), in named_buffers() order."""
    return [(n, b) for n, b in model.named_buffers() if b.dtype == torch.float32]


# ----------------------------------------------------------------------------------------------------
# Hash format: imagenet_<model>.safetensors


HASH_CLASSES = 200
HASH_SIZE = 64
HASH_LABELS = [3, 117, 50, 199]
# Images per golden batch: 2, except where a train-mode backward on 2 images is ill-conditioned in float32.
# MobileNetV2's last stages at 64x64 are 2x2, so each BN there normalises 8 values; PyTorch's own float32
# gradients then differ from its float64 ones by 2e-2 (features.14's depthwise BN); with 4 images, 3e-5.
BATCH = {"mobilenetv2": 4}
INPUT_INDEX, GRAD_INDEX, BUFFER_INDEX = 1_000_000, 2_000_000, 3_000_000


def hash_pattern(count, j):
    """u in [-1, 1) for flat elements 0..<count of tensor j (float64, exact; see the module docstring)."""
    i = np.arange(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = i * np.uint64(0x9E3779B97F4A7C15) + np.uint64(((j + 1) * 0xD1B54A32D192ED03) & MASK)
        h = (h ^ (h >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(29))) * np.uint64(0x94D049BB133111EB)
        h = h ^ (h >> np.uint64(32))
    return ((h >> np.uint64(40)).astype(np.float64) - 2.0 ** 23) / 2.0 ** 23


def hash_pattern_tensor(shape, j, scale=1.0, offset=0.0):
    count = int(np.prod(shape)) if len(shape) else 1
    v = offset + scale * hash_pattern(count, j)
    return torch.from_numpy(v.astype(np.float32)).reshape(shape)


def set_hash_pattern(model):
    """Overwrites every parameter and buffer of `model` with the hash pattern, by the owning module's kind."""
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
            t.copy_(hash_pattern_tensor(shape, j, scale, offset))


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


def write_hash_golden(name):
    torch.manual_seed(0)
    model = BUILDERS[name](HASH_CLASSES)
    set_hash_pattern(model)
    state = model.state_dict()
    keys = [[k, list(t.shape), "int64" if t.dtype == torch.int64 else
             ("param" if k in dict(model.named_parameters()) else "buffer")] for k, t in state.items()]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    meta = {"model": name, "state_dict": json.dumps(keys, separators=(",", ":")),
            "parameters": sum(p.numel() for p in model.parameters()),
            "macs_64": count_macs(model, 64), "macs_224": count_macs(model, 224),
            "first_conv": convs[0], "classifier": linears[-1]}
    set_hash_pattern(model)  # count_macs ran eval forwards only, but start from the pattern regardless

    batch = BATCH.get(name, 2)
    x = hash_pattern_tensor((batch, 3, HASH_SIZE, HASH_SIZE), INPUT_INDEX)
    labels = torch.tensor(HASH_LABELS[:batch], dtype=torch.int64)
    eval_logits, eval_loss, logits, loss = forward_backward(model, x, labels)
    out = {"input": x, "labels": labels, "eval_logits": eval_logits, "eval_loss": eval_loss.reshape(1),
           "train_logits": logits, "train_loss": loss.reshape(1)}
    params = dict(model.named_parameters())
    for key in (meta["first_conv"] + ".weight", meta["classifier"] + ".bias"):
        out["grad." + key] = params[key].grad
    out["grad_sum"], out["grad_norm"], out["grad_dot"] = summaries([p.grad for p in params.values()], GRAD_INDEX)
    buffers = [b for _, b in float_buffers(model)]
    out["buffer_sum"], out["buffer_norm"], out["buffer_dot"] = summaries(buffers, BUFFER_INDEX)
    print(f"{name}: eval loss {out['eval_loss'].item():.4f}, train loss {loss.item():.4f}, "
          f"|eval logits| max {out['eval_logits'].abs().max().item():.3g}")
    write_safetensors(os.path.join(MODELS_DIR, f"imagenet_{name}.safetensors"), out, meta)


# ----------------------------------------------------------------------------------------------------
# Sine format: <model>_golden.safetensors


SINE_CLASSES = 10

# seed: torch.manual_seed before building (each model seeds itself, so adding one changes no other file);
# gain: the weight pattern's g; grads: parameters stored in full; mask: (dropout module path, mask shape) or None.
SineGolden = namedtuple("SineGolden", "seed gain grads mask description")
SINE_GOLDENS = {
    "shufflenet_v2_x0_5": SineGolden(
        3001, 1,
        ["conv1.0.weight", "stage2.0.branch1.0.weight", "stage2.0.branch2.3.weight", "stage3.3.branch2.3.weight",
         "stage4.3.branch2.5.weight", "conv5.1.weight", "conv5.1.bias", "fc.weight", "fc.bias"],
        None, "torchvision shufflenet_v2_x0_5, 10 classes"),
    "squeezenet1_0": SineGolden(
        3002, 2,
        ["features.0.weight", "features.0.bias", "features.3.expand3x3.weight", "features.12.squeeze.bias",
         "features.12.expand1x1.bias", "classifier.1.weight", "classifier.1.bias"],
        ("classifier.0", (2, 512, 3, 3)),
        "torchvision squeezenet1_0, 10 classes, classifier.0 dropout replaced by dropout_mask"),
}


def sine_pattern(n, t):
    """u_0 ... u_{n-1} of tensor number t, as float64 (math.sin: the C library's sin, as Swift's)."""
    return [math.sin(0.1 * ((i * i + 7919 * i + 104729 * t) % 65521) + 0.3) for i in range(n)]


def set_sine_pattern(model, gain):
    """Sets every parameter and BN buffer of `model` from `sine_pattern` (see the module docstring)."""
    kinds = {}
    for path, m in model.named_modules():
        for name, _ in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
            kinds[f"{path}.{name}" if path else name] = (type(m), name)
    state = model.state_dict()
    order = sorted(state)
    with torch.no_grad():
        for key, tensor in state.items():
            module_type, name = kinds[key]
            if name == "num_batches_tracked":
                tensor.zero_()
                continue
            u = torch.tensor(sine_pattern(tensor.numel(), order.index(key)), dtype=torch.float64).reshape(tensor.shape)
            if module_type is nn.BatchNorm2d:
                value = {"weight": 1 + 0.2 * u, "bias": 0.1 * u, "running_mean": 0.1 * u, "running_var": 1 + 0.5 * u}[name]
            elif name == "weight":
                value = u * math.sqrt(2 * gain / (tensor.numel() / tensor.shape[0]))
            else:
                value = 0.1 * u
            tensor.copy_(value.to(torch.float32))


class FixedMask(nn.Module):
    """Dropout with a given mask: y = x * mask in train mode, y = x in eval mode."""

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def forward(self, x):
        return x * self.mask if self.training else x


def write_sine_golden(name):
    """Pattern weights, eval forward, train forward + backward; writes <name>_golden.safetensors."""
    spec = SINE_GOLDENS[name]
    torch.manual_seed(spec.seed)
    model = BUILDERS[name](SINE_CLASSES)
    extra = {}
    if spec.mask:
        path, shape = spec.mask
        mask = torch.bernoulli(torch.full(shape, 0.5)) * 2
        parent, _, leaf = path.rpartition(".")
        setattr(model.get_submodule(parent), leaf, FixedMask(mask))
        extra["dropout_mask"] = mask
    set_sine_pattern(model, spec.gain)
    keys = list(model.state_dict().keys())
    modules = [p for p, _ in model.named_modules() if p]
    x = torch.randn(2, 3, 64, 64)
    labels = torch.tensor([3, 7], dtype=torch.int64)
    logits_eval, loss_eval, logits, loss = forward_backward(model, x, labels)

    out = {"input": x, "labels": labels, "logits_eval": logits_eval, "loss_eval": loss_eval.reshape(1),
           "logits": logits, "loss": loss.reshape(1)}
    params = list(model.named_parameters())
    out["grad_sum"], out["grad_norm"] = summaries([p.grad for _, p in params])
    for n in spec.grads:
        out["grad." + n] = dict(params)[n].grad
    buffers = float_buffers(model)
    if buffers:
        out["buffer_sum"], out["buffer_norm"] = summaries([b for _, b in buffers])
    out.update(extra)
    meta = {"model": spec.description, "classes": SINE_CLASSES, "gain": spec.gain, "input": "2 x 3 x 64 x 64, torch.randn",
            "keys": json.dumps(keys), "modules": json.dumps(modules),
            "parameters": json.dumps([n for n, _ in params]), "buffers": json.dumps([n for n, _ in buffers]),
            "parameter_count": sum(p.numel() for _, p in params)}
    print(f"{name}: logits train {logits.abs().max():.3g} eval {logits_eval.abs().max():.3g}, "
          f"loss {loss.item():.5f} / {loss_eval.item():.5f}, grad norms {out['grad_norm'].min():.3g}..{out['grad_norm'].max():.3g}")
    for (n, _), g in zip(params, out["grad_norm"].tolist()):
        if g < 1e-4:
            print(f"  small gradient: {n} norm {g:.3g}")
    write_safetensors(os.path.join(MODELS_DIR, f"{name}_golden.safetensors"), out, meta)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(BUILDERS), default=list(BUILDERS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.makedirs(MODELS_DIR, exist_ok=True)
    for name in args.models:
        (write_sine_golden if name in SINE_GOLDENS else write_hash_golden)(name)


if __name__ == "__main__":
    sys.exit(main())
