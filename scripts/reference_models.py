#!/usr/bin/python3
"""PyTorch twins of the CIFAR models in Sources/Models, for golden files.

Written from the description in ../shared/spec/reference-implementation.md (§3.1, §3.2); module names
equal the authors' (kaiqi123/SQAKD CIFAR/models/custom_models_{resnet,vgg}.py), so state-dict keys match:

* ResNet-20/32 (EWGS variant): conv1, bn1, layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}, bn2 (BatchNorm1d), linear.
  Option-A shortcut: x[:, :, ::2, ::2] zero-padded by planes//4 channels on each side; no parameters.
* VGG (CRD style, no FC stack): layer{0..4}.{i}.{conv2d,bn}, classifier.

Usage (torch lives in the system python, not the pyenv one on PATH):
    /usr/bin/python3 scripts/reference_models.py keys Tests/ModelsTests/Golden
writes <model>_<classes>_keys.txt: one line per tensor, "name<TAB>shape<TAB>kind", named_parameters()
first, then named_buffers(), in PyTorch order; kind is param or buffer. Other helpers import this module
(`from reference_models import resnet_cifar, vgg_cifar, make`) for their golden files.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class OptionA(nn.Module):
    """Parameter-free shortcut: stride-2 subsample, then zero channels planes//4 on each side."""

    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0.0)


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = OptionA(planes) if (stride != 1 or in_planes != planes) else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCIFAR(nn.Module):
    def __init__(self, n, classes, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        planes_in = 16
        stages = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(BasicBlock(planes_in, planes, s))
                planes_in = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn2 = nn.BatchNorm1d(64)
        self.linear = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size(3)).flatten(1)
        return self.linear(self.bn2(out))


VGG_CFG = {
    "S": [[64], [128], [256], [512], [512]],
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
}


class VGGBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv2d = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv2d(x)))


class VGGCIFAR(nn.Module):
    def __init__(self, cfg, classes, in_channels=3):
        super().__init__()
        groups = []
        cin = in_channels
        for widths in cfg:
            blocks = []
            for w in widths:
                blocks.append(VGGBlock(cin, w))
                cin = w
            groups.append(nn.Sequential(*blocks))
        self.layer0, self.layer1, self.layer2, self.layer3, self.layer4 = groups
        self.classifier = nn.Linear(512, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
                m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.data.normal_(0, 0.01)
                m.bias.data.zero_()

    def forward(self, x):
        h = x.shape[2]
        x = F.max_pool2d(self.layer0(x), 2)
        x = F.max_pool2d(self.layer1(x), 2)
        x = F.max_pool2d(self.layer2(x), 2)
        x = self.layer3(x)
        if h == 64:
            x = F.max_pool2d(x, 2)
        x = self.layer4(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def resnet_cifar(n, classes, in_channels=3):
    return ResNetCIFAR(n, classes, in_channels)


def vgg_cifar(cfg, classes, in_channels=3):
    return VGGCIFAR(VGG_CFG[cfg], classes, in_channels)


def make(name, classes, in_channels=3):
    """The model of ModelZoo.make(name, classes:, inputChannels:) (weights differ: different RNGs)."""
    builders = {
        "resnet20": lambda: resnet_cifar(3, classes, in_channels),
        "resnet32": lambda: resnet_cifar(5, classes, in_channels),
        "vgg8": lambda: vgg_cifar("S", classes, in_channels),
        "vgg11": lambda: vgg_cifar("A", classes, in_channels),
        "vgg13": lambda: vgg_cifar("B", classes, in_channels),
    }
    return builders[name]()


def write_keys(folder):
    for name, classes in (("resnet20", 10), ("resnet32", 100), ("vgg8", 10), ("vgg13", 100)):
        model = make(name, classes)
        lines = [f"{k}\t{list(p.shape)}\tparam" for k, p in model.named_parameters()]
        lines += [f"{k}\t{list(b.shape)}\tbuffer" for k, b in model.named_buffers()]
        path = os.path.join(folder, f"{name}_{classes}_keys.txt")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        count = sum(p.numel() for p in model.parameters())
        print(f"{path}: {len(lines)} tensors, {count} parameters")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "keys":
        write_keys(sys.argv[2])
    else:
        sys.exit(__doc__)
