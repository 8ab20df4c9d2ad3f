"""Forward/backward goldens of the Tiny-ImageNet models against torchvision (reference-implementation.md 3.3).

Regenerate (from the repository root, Debian's python3-torch 1.13 and python3-torchvision 0.14, CPU):

    /usr/bin/python3 scripts/make_shufflenet_squeezenet_golden.py [--models shufflenet_v2_x0_5,squeezenet1_0]

Writes one file per model, Tests/ModelsTests/Golden/<model>_golden.safetensors (well under 1 MB each).
No weights are stored: every parameter and BN buffer is set from the closed-form pattern of `pattern`,
which the Swift test (Tests/ModelsTests/ImageNetModelGoldenTests.swift) computes too:

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

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import write_safetensors  # noqa: E402  (helper script next to this one)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(ROOT, "Tests", "ModelsTests", "Golden")
CLASSES = 10

torch.set_default_dtype(torch.float32)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def pattern(n, t):
    """u_0 ... u_{n-1} of tensor number t, as float64 (math.sin: the C library's sin, as Swift's)."""
    return [math.sin(0.1 * ((i * i + 7919 * i + 104729 * t) % 65521) + 0.3) for i in range(n)]


def set_pattern(model, gain):
    """Sets every parameter and BN buffer of `model` from `pattern` (see the module docstring)."""
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
            u = torch.tensor(pattern(tensor.numel(), order.index(key)), dtype=torch.float64).reshape(tensor.shape)
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


def run(model, name, gain, full_gradients, extra=None, description=""):
    """Pattern weights, eval forward, train forward + backward; writes <name>_golden.safetensors."""
    set_pattern(model, gain)
    keys = list(model.state_dict().keys())
    modules = [p for p, _ in model.named_modules() if p]
    x = torch.randn(2, 3, 64, 64)
    labels = torch.tensor([3, 7], dtype=torch.int64)

    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
        loss_eval = F.cross_entropy(logits_eval, labels)

    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    out = {"input": x, "labels": labels, "logits_eval": logits_eval, "loss_eval": loss_eval.reshape(1),
           "logits": logits.detach(), "loss": loss.detach().reshape(1)}
    params = [(n, p) for n, p in model.named_parameters()]
    out["grad_sum"] = torch.tensor([p.grad.double().sum().item() for _, p in params], dtype=torch.float32)
    out["grad_norm"] = torch.tensor([p.grad.double().norm().item() for _, p in params], dtype=torch.float32)
    for n in full_gradients:
        out["grad." + n] = dict(params)[n].grad
    buffers = [(n, b) for n, b in model.named_buffers() if "running_" in n]
    if buffers:
        out["buffer_sum"] = torch.tensor([b.double().sum().item() for _, b in buffers], dtype=torch.float32)
        out["buffer_norm"] = torch.tensor([b.double().norm().item() for _, b in buffers], dtype=torch.float32)
    out.update(extra or {})
    meta = {"model": description, "classes": CLASSES, "gain": gain, "input": "2 x 3 x 64 x 64, torch.randn",
            "keys": json.dumps(keys), "modules": json.dumps(modules),
            "parameters": json.dumps([n for n, _ in params]), "buffers": json.dumps([n for n, _ in buffers]),
            "parameter_count": sum(p.numel() for _, p in params)}
    print(f"{name}: logits train {logits.detach().abs().max():.3g} eval {logits_eval.abs().max():.3g}, "
          f"loss {loss.item():.5f} / {loss_eval.item():.5f}, grad norms {out['grad_norm'].min():.3g}..{out['grad_norm'].max():.3g}")
    for (n, _), g in zip(params, out["grad_norm"].tolist()):
        if g < 1e-4:
            print(f"  small gradient: {n} norm {g:.3g}")
    write_safetensors(os.path.join(MODELS_DIR, f"{name}_golden.safetensors"), out, meta)


def make_shufflenet_v2_x0_5():
    torch.manual_seed(3001)
    model = torchvision.models.shufflenet_v2_x0_5(num_classes=CLASSES)
    run(model, "shufflenet_v2_x0_5", 1,
        ["conv1.0.weight", "stage2.0.branch1.0.weight", "stage2.0.branch2.3.weight", "stage3.3.branch2.3.weight",
         "stage4.3.branch2.5.weight", "conv5.1.weight", "conv5.1.bias", "fc.weight", "fc.bias"],
        description="torchvision shufflenet_v2_x0_5, 10 classes")


def make_squeezenet1_0():
    torch.manual_seed(3002)
    model = torchvision.models.squeezenet1_0(num_classes=CLASSES)
    mask = torch.bernoulli(torch.full((2, 512, 3, 3), 0.5)) * 2
    model.classifier[0] = FixedMask(mask)
    run(model, "squeezenet1_0", 2,
        ["features.0.weight", "features.0.bias", "features.3.expand3x3.weight", "features.12.squeeze.bias",
         "features.12.expand1x1.bias", "classifier.1.weight", "classifier.1.bias"],
        extra={"dropout_mask": mask},
        description="torchvision squeezenet1_0, 10 classes, classifier.0 dropout replaced by dropout_mask")


# One function per model; the registry's keys are the zoo names.
MODELS = {
    "shufflenet_v2_x0_5": make_shufflenet_v2_x0_5,
    "squeezenet1_0": make_squeezenet1_0,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from: " + ", ".join(MODELS))
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(MODELS)}")
    os.makedirs(MODELS_DIR, exist_ok=True)
    # Each function seeds torch itself, so adding or merging a model changes no other file.
    for name in names:
        MODELS[name]()


if __name__ == "__main__":
    sys.exit(main())
