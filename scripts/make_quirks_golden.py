"""PyTorch golden file for the released-code quirk variants (issue 13): the learned-α PACT quantizer
(`pact-learnable`) and the Hessian-vector products behind the EWGS δ estimator.

Regenerate (from the repository root, with Debian's python3-torch 1.13, CPU):

    /usr/bin/python3 scripts/make_quirks_golden.py

Writes Tests/QuantizationTests/Golden/quirks.safetensors (float32; keys `<case>.<tensor>`), read by
Tests/QuantizationTests/QuirkGoldenTests.swift.

Cases
* pact_learnable (PACT paper, Choi et al. 2018, Eq. 1-3), written the way PyTorch implementations state
  it, with autograd doing the calculus: y = where(x < a, x, a) (gives dL/da = sum dy*[x >= a]), then
  clamp(min=0), then the straight-through rounding y + (round(y/s)*s - y).detach() with s = a/(2^b - 1)
  detached. Tensors: x, alpha, dy, y, dx, dalpha. bits = 3.
* ewgs_hessian: a small network with one EWGS QConv (2 bits; interval and output scale fixed) followed by a
  linear classifier and the labelled cross-entropy (mean over the batch):
      Q_a = disc(clamp((x - lA)/(uA - lA), 0, 1)),  Q_w = disc(clamp((W - lW)/(uW - lW), 0, 1))
      logits = Linear(flatten(conv(Q_a, 2(Q_w - 0.5), pad 1)*|s|))
  The Hessian of L with respect to Q_a and Q_w as autograd's double backward computes it (the authors'
  `hessian_vector_product`, EWGS CIFAR10/utils.py:126-138): H_aa v_a and H_ww v_w for fixed Rademacher
  v's, and the exact traces Tr(H_aa), Tr(H_ww) (sum of the diagonal, one double backward per element).
  Tensors: x, weight, fc_weight, fc_bias, labels (float), v_a, v_w, hv_a, hv_w, trace_a, trace_w, and the
  fixed lW, uW, lA, uA, output_scale.
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "QuantizationTests", "Golden", "quirks.safetensors")

torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)
torch.manual_seed(20261201)
tensors = {}


def pact_learnable():
    bits, n = 3, 7
    a = torch.tensor([2.5], requires_grad=True)
    # Values below 0, inside, at and above alpha; none on a rounding tie of y/s (s = 2.5/7).
    x = torch.cat([torch.tensor([-1.0, -0.01, 0.0, 0.2, 1.3, 2.49, 2.5, 2.51, 4.0]), torch.randn(51) * 2])
    x = x.reshape(6, 10).clone().requires_grad_(True)
    dy = torch.randn(6, 10)
    y = torch.where(x < a, x, a).clamp(min=0)
    s = (a / n).detach()
    yq = y + (torch.round(y / s) * s - y).detach()
    yq.backward(dy)
    tensors.update({
        "pact_learnable.x": x.detach(), "pact_learnable.alpha": a.detach(), "pact_learnable.dy": dy,
        "pact_learnable.y": yq.detach(), "pact_learnable.dx": x.grad, "pact_learnable.dalpha": a.grad,
    })
    return bits


def ewgs_hessian():
    levels = 4
    lW, uW, lA, uA, scale = -0.5, 0.5, 0.0, 2.0, 1.3
    x = torch.randn(2, 2, 4, 4).abs() * 0.8
    weight = torch.randn(3, 2, 3, 3) * 0.3
    fc_w = torch.randn(4, 48) * 0.2
    fc_b = torch.randn(4) * 0.1
    labels = torch.tensor([1, 3])

    def disc(v):
        return torch.round(torch.clamp(v, 0, 1) * (levels - 1)) / (levels - 1)

    qa = disc((x - lA) / (uA - lA)).requires_grad_(True)
    qw = disc((weight - lW) / (uW - lW)).requires_grad_(True)

    def loss_of(qa, qw):
        y = F.conv2d(qa, 2 * (qw - 0.5), None, 1, 1) * abs(scale)
        return F.cross_entropy(F.linear(y.flatten(1), fc_w, fc_b), labels)

    loss = loss_of(qa, qw)
    ga, gw = torch.autograd.grad(loss, [qa, qw], create_graph=True)
    v_a = torch.randint_like(qa, high=2)
    v_a[v_a == 0] = -1
    v_w = torch.randint_like(qw, high=2)
    v_w[v_w == 0] = -1
    hv_a = torch.autograd.grad(ga, qa, grad_outputs=v_a, retain_graph=True)[0]
    hv_w = torch.autograd.grad(gw, qw, grad_outputs=v_w, retain_graph=True)[0]
    flat_a, flat_w = ga.reshape(-1), gw.reshape(-1)
    trace_a = sum(torch.autograd.grad(flat_a[i], qa, retain_graph=True)[0].reshape(-1)[i].item() for i in range(flat_a.numel()))
    trace_w = sum(torch.autograd.grad(flat_w[i], qw, retain_graph=True)[0].reshape(-1)[i].item() for i in range(flat_w.numel()))
    tensors.update({
        "ewgs_hessian.x": x, "ewgs_hessian.weight": weight, "ewgs_hessian.fc_weight": fc_w,
        "ewgs_hessian.fc_bias": fc_b, "ewgs_hessian.labels": labels.float(),
        "ewgs_hessian.v_a": v_a.detach(), "ewgs_hessian.v_w": v_w.detach(),
        "ewgs_hessian.hv_a": hv_a.detach(), "ewgs_hessian.hv_w": hv_w.detach(),
        "ewgs_hessian.trace_a": torch.tensor([trace_a]), "ewgs_hessian.trace_w": torch.tensor([trace_w]),
        "ewgs_hessian.lW": torch.tensor([lW]), "ewgs_hessian.uW": torch.tensor([uW]),
        "ewgs_hessian.lA": torch.tensor([lA]), "ewgs_hessian.uA": torch.tensor([uA]),
        "ewgs_hessian.output_scale": torch.tensor([scale]),
    })
    return trace_a, trace_w


bits = pact_learnable()
trace_a, trace_w = ewgs_hessian()
write_safetensors(OUT, tensors, metadata={"pact_learnable.bits": str(bits), "ewgs_hessian.levels": "4"})
print(f"wrote {OUT}: {len(tensors)} tensors; Tr(H_aa) = {trace_a:.6g}, Tr(H_ww) = {trace_w:.6g}")
