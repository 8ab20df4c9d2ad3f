#!/usr/bin/python3
"""PyTorch twin of the CIFAR EWGS quantized convolution (reference-implementation.md §2.2), for the
speed comparison of the QAT+SQAKD step and for cross-checks.

Written from the specification (the authors' CIFAR/models/custom_modules.py QConv): learnable
intervals [lW, uW] and [lA, uA], weights to [-1, 1], activations to [0, 1], |output_scale| on the conv
output, EWGS backward g·(1 + δ·sign(g)·(x_in − x_out)) with δ = 0 as released, initialisation from the
first batch (uW = 3·std(W), lW = −uW, uA = 3·std(x)/sqrt(1 − 2/π), lA = min(x),
output_scale = mean|conv(x, W)| / mean|conv(X_q, W_q)|).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class EWGSDiscretizer(torch.autograd.Function):
    """round(x·(L−1))/(L−1) forward (half to even); backward g·(1 + δ·sign(g)·(x_in − x_out))."""

    @staticmethod
    def forward(ctx, x, levels, delta):
        out = torch.round(x * (levels - 1)) / (levels - 1)
        ctx.save_for_backward(x - out, delta)
        return out

    @staticmethod
    def backward(ctx, g):
        diff, delta = ctx.saved_tensors
        return g * (1 + delta * torch.sign(g) * diff), None, None


class QConv(nn.Conv2d):
    def __init__(self, *args, bits=2, **kwargs):
        super().__init__(*args, **kwargs)
        self.levels = 2 ** bits
        for name in ("uW", "lW", "uA", "lA", "uA_t", "lA_t"):
            setattr(self, name, nn.Parameter(torch.tensor(0.0)))
        self.output_scale = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("bkwd_scaling_factorW", torch.tensor(0.0))
        self.register_buffer("bkwd_scaling_factorA", torch.tensor(0.0))
        self.register_buffer("init", torch.tensor(0.0))

    def quantize_weight(self, w):
        n = torch.clamp((w - self.lW) / (self.uW - self.lW), 0, 1)
        return 2 * (EWGSDiscretizer.apply(n, self.levels, self.bkwd_scaling_factorW) - 0.5)

    def quantize_act(self, x):
        n = torch.clamp((x - self.lA) / (self.uA - self.lA), 0, 1)
        return EWGSDiscretizer.apply(n, self.levels, self.bkwd_scaling_factorA)

    def initialize(self, x):
        with torch.no_grad():
            self.uW.data.fill_(3 * self.weight.std().item())
            self.lW.data.fill_(-3 * self.weight.std().item())
            self.uA.data.fill_(3 * x.std().item() / math.sqrt(1 - 2 / math.pi))
            self.lA.data.fill_(x.min().item())
            self.uA_t.data.copy_(self.uA.data)
            self.lA_t.data.copy_(self.lA.data)
            fp = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
            q = F.conv2d(self.quantize_act(x), self.quantize_weight(self.weight), self.bias, self.stride, self.padding)
            self.output_scale.data.fill_(fp.abs().mean().item() / q.abs().mean().item())

    def forward(self, x):
        if self.init.item() == 1:
            self.initialize(x)
        y = F.conv2d(self.quantize_act(x), self.quantize_weight(self.weight), self.bias, self.stride, self.padding)
        return y * torch.abs(self.output_scale)


def quantize_resnet(model, bits):
    """Replaces both 3×3 convs of every residual block by QConv (the stem and the classifier stay FP)."""
    for stage in (model.layer1, model.layer2, model.layer3):
        for block in stage:
            for name in ("conv1", "conv2"):
                conv = getattr(block, name)
                q = QConv(conv.in_channels, conv.out_channels, 3, stride=conv.stride, padding=1, bias=False, bits=bits)
                q.weight.data.copy_(conv.weight.data)
                setattr(block, name, q)
    return model


def initialize_quantizers(model, images):
    """Reference init_quant_model: one train-mode forward of the first batch with init = 1."""
    for m in model.modules():
        if isinstance(m, QConv):
            m.init.fill_(1)
    model.train()
    model(images)
    for m in model.modules():
        if isinstance(m, QConv):
            m.init.fill_(0)


def split_parameters(model):
    """train_quant.py's split: weights/biases (conv, linear, BN) vs the quantizer parameters."""
    model_params, quant_params = [], []
    for name, p in model.named_parameters():
        (model_params if name.endswith(("weight", "bias")) else quant_params).append(p)
    return model_params, quant_params
