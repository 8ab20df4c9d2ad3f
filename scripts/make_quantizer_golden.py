"""PyTorch golden file for the Swift quantizers (EWGS, PACT, LSQ, DoReFa).

Regenerate (from the repository root, with Debian's python3-torch 1.13, CPU):

    /usr/bin/python3 scripts/make_quantizer_golden.py

Writes Tests/QuantizationTests/Golden/quantizers.safetensors (float32 tensors; keys `<case>.<tensor>`;
`__metadata__` records every case's settings, which Tests/QuantizationTests/QuantizerGoldenTests.swift
mirrors).

Reference formulas (../shared/spec/reference-implementation.md):
* pact / lsq / dorefa (§2.3): MQBench's academic-backend fake quantizers, re-stated here with PyTorch's own
  ops exactly as MQBench calls them: the MinMax observer's symmetric scale, `torch.fake_quantize_per_tensor_affine`
  (PACT, DoReFa), `torch._fake_quantize_learnable_per_tensor_affine` with LSQ's grad factor, DoReFa's
  tanh / max normalisation under autograd (the max is not detached). Signed symmetric grids
  [-2^(b-1), 2^(b-1)-1]; "32-bit" = [-2^31, 2^31-1].
* ewgs (§2.2.1-§2.2.3): clamp((x-l)/(u-l), 0, 1), round to L-1 levels with the EWGS custom autograd
  function (g * (1 + delta*sign(g)*(x_in - x_out))), weights 2(q-0.5); l, u from the initialisation formulas.

Every case calibrates on `calib` (for weights and for EWGS: the tensor itself) and then runs one training
forward on `x` and one backward with upstream gradient `dy` (loss L = sum(y * dy)).

Tensors per case:
  calib      calibration input                       scale / l, u   calibrated parameters ([1] / [1])
  calib_out  output of MQBench's calibration pass (pact: the alpha clip; dorefa: tanh-normalised)
  x, y, dy, dx                                        normalised    dorefa only: tanh(x)/(max|tanh x|+1e-5)
  dscale, dzero_point (lsq)                           dl, du (ewgs)
Inputs include values that sit exactly on rounding ties (x * (1/s) = k + 0.5 in float32) and on / just
outside the grid ends (q = qmin, qmax, qmax + 1, ...).
"""

import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import write_safetensors  # noqa: E402  (the one safetensors writer of the golden scripts)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "QuantizationTests", "Golden", "quantizers.safetensors")

torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)
torch.manual_seed(20240605)

EPS = torch.tensor([torch.finfo(torch.float32).eps])
SHAPE = (2, 3, 4, 5)  # 120 elements


def signed_grid(bits):
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def minmax_symmetric_scale(min_val, max_val, qmin, qmax):
    """MQBench ObserverBase._calculate_qparams, symmetric branch (float32 tensors)."""
    min_val_neg = torch.min(min_val, torch.zeros_like(min_val))
    max_val_pos = torch.max(max_val, torch.zeros_like(max_val))
    max_val_pos = torch.max(-min_val_neg, max_val_pos)
    scale = max_val_pos / (float(qmax - qmin) / 2)
    return torch.max(scale, EPS).reshape(1)


def x_with_product(target, inv):
    """A float32 x with float32(x * inv) == target exactly (ties and grid ends); None if no float32 x
    within 64 ulps of target/inv hits it (x -> x*inv can skip values when inv < 1)."""
    inv32 = np.float32(inv)
    x0 = np.float32(np.float64(target) / np.float64(inv32))
    up, down = x0, x0
    for _ in range(64):
        for x in (up, down):
            if np.float32(x * inv32) == np.float32(target):
                return float(x)
        up = np.nextafter(up, np.float32(np.inf), dtype=np.float32)
        down = np.nextafter(down, np.float32(-np.inf), dtype=np.float32)
    return None


def special_inputs(scale, qmin, qmax, nonnegative=False):
    """x values on ties and grid ends for the fake-quant with step `scale` (a float32 value)."""
    inv = float(np.float32(1) / np.float32(scale))
    targets = [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5]
    if qmax < 2 ** 24:
        targets += [qmax, qmax + 0.5, qmax + 1, qmax - 0.5, qmin, qmin - 0.5, qmin + 0.5, qmin - 1, qmin - 1.5]
    else:  # 32 bits: float32 integers around 2^31
        big = float(np.nextafter(np.float32(2 ** 31), np.float32(0)))  # 2^31 - 128, the last in range
        targets += [big, 2.0 ** 31, -(2.0 ** 31), -float(np.nextafter(np.float32(2 ** 31), np.float32(np.inf)))]
    xs = [v for v in (x_with_product(t, inv) for t in targets) if v is not None]
    # One ulp below the ties qmax + 0.5 (the tie rounds to even qmax + 1, out; below it: qmax, in) and
    # qmin - 0.5 (the tie rounds to even qmin, in; below it: qmin - 1, out).
    if qmax < 2 ** 24:
        for t in (qmax + 0.5, qmin - 0.5):
            v = x_with_product(t, inv)
            if v is not None:
                xs.append(float(np.nextafter(np.float32(v), np.float32(-np.inf))))
    if nonnegative:
        xs = [v for v in xs if v >= 0]
    products = sorted(float(np.float32(np.float32(v) * np.float32(inv))) for v in xs)
    print(f"  s={scale!r}: x*(1/s) = {products}")
    return xs


def fill(values, base):
    """`base` (a SHAPE tensor) with its first elements replaced by `values`, then shuffled."""
    flat = base.reshape(-1).clone()
    flat[: len(values)] = torch.tensor(values, dtype=torch.float32)
    return flat[torch.randperm(flat.numel())].reshape(SHAPE)


cases, meta = {}, {}


def store(name, **tensors):
    for k, v in tensors.items():
        cases[f"{name}.{k}"] = v.detach().clone().float()


# ---------------------------------------------------------------------------------------------- PACT


def pact_case(name, bits, signed_calib):
    qmin, qmax = signed_grid(bits)
    alpha = torch.tensor([6.0])
    calib = torch.randn(SHAPE) * 3
    if not signed_calib:
        calib = calib.relu()
    # Observer branch (pact.py:26-50).
    X = torch.where(calib > alpha, alpha, calib)
    if X.min() < 0:
        X = torch.where(X < -alpha, -alpha, X)
        min_val = -alpha[0]
    else:
        min_val = torch.tensor(0.0)
    max_val = alpha[0]
    scale = minmax_symmetric_scale(min_val, max_val, qmin, qmax)
    specials = special_inputs(scale.item(), qmin, qmax) + [6.0, -6.0, 7.0, -7.0, 0.0]
    x = fill(specials, torch.randn(SHAPE) * 4).requires_grad_(True)
    y = torch.fake_quantize_per_tensor_affine(x, scale.item(), 0, qmin, qmax)
    dy = torch.randn(SHAPE)
    (dx,) = torch.autograd.grad(y, x, dy)
    store(name, calib=calib, calib_out=X, scale=scale, x=x, y=y, dy=dy, dx=dx)
    meta[name] = f"pact bits={bits} qmin={qmin} qmax={qmax} alpha=6 calib={'signed' if signed_calib else 'unsigned'}"


# ---------------------------------------------------------------------------------------------- DoReFa


def dorefa_normalise(X):
    X = torch.tanh(X)
    return X.div(X.abs().max() + 1e-5)


def dorefa_case(name, bits, saturated=False):
    qmin, qmax = signed_grid(bits)
    calib = torch.randn(SHAPE)
    calib.view(-1)[7] = 3.0  # calibration max |tanh| larger than x's: the largest x stays in range
    Yc = dorefa_normalise(calib)
    min_val, max_val = torch.aminmax(Yc)
    scale = minmax_symmetric_scale(min_val, max_val, qmin, qmax)
    base = torch.randn(SHAPE)
    if saturated:
        # Several |tanh x| == 1.0 exactly: PyTorch's max() shares the gradient among all of them.
        values = [12.0, -15.0, 20.0, 9.5, -11.0, 0.0]
    else:
        # A tied maximum of opposite signs (tanh is odd), away from everything else.
        base = base.clamp(-1.8, 1.8)
        values = [2.25, -2.25, 0.0]
    x = fill(values, base).requires_grad_(True)
    Y = dorefa_normalise(x)
    y = torch.fake_quantize_per_tensor_affine(Y, scale.item(), 0, qmin, qmax)
    dy = torch.randn(SHAPE)
    (dx,) = torch.autograd.grad(y, x, dy)
    store(name, calib=calib, calib_out=Yc, scale=scale, x=x, normalised=Y, y=y, dy=dy, dx=dx)
    meta[name] = f"dorefa bits={bits} qmin={qmin} qmax={qmax} saturated={saturated}"


# ---------------------------------------------------------------------------------------------- LSQ


def lsq_case(name, bits, negative_scale=False):
    qmin, qmax = signed_grid(bits)
    calib = torch.randn(SHAPE)
    # LSQObserver + LearnableFakeQuantize observer branch.
    tensor_norm = calib.abs().mean()
    scale0 = (2 * tensor_norm / math.sqrt(qmax)).reshape(1)
    scale = torch.nn.Parameter(scale0.clone())
    zero_point = torch.nn.Parameter(torch.zeros(1))
    if negative_scale:  # as SGD may leave it: the next forward takes |s|
        scale.data.neg_()
    # Next forward (observer off, fake-quant on).
    scale.data.abs_()
    scale.data.clamp_(min=EPS.item())
    zero_point.data.zero_()
    specials = special_inputs(scale.item(), qmin, qmax)
    x = fill(specials, torch.randn(SHAPE) * (scale.item() * qmax * 0.7 if bits < 32 else 1.0)).requires_grad_(True)
    grad_factor = 1.0 / (x.numel() * qmax) ** 0.5
    y = torch._fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, qmin, qmax, grad_factor)
    dy = torch.randn(SHAPE)
    dx, dscale, dzero = torch.autograd.grad(y, (x, scale, zero_point), dy)
    store(name, calib=calib, calib_scale=scale0, scale=scale, x=x, y=y, dy=dy, dx=dx, dscale=dscale,
          dzero_point=dzero)
    meta[name] = f"lsq bits={bits} qmin={qmin} qmax={qmax} grad_factor={grad_factor!r} negative_scale={negative_scale}"


# ---------------------------------------------------------------------------------------------- EWGS


class EWGSDiscretizer(torch.autograd.Function):
    """EWGS_discretizer (CIFAR/models/custom_modules.py:43-61): x_out = round(x_in (L-1))/(L-1);
    backward g * (1 + delta * sign(g) * (x_in - x_out))."""

    @staticmethod
    def forward(ctx, x_in, num_levels, delta):
        x = torch.round(x_in * (num_levels - 1))
        x_out = x / (num_levels - 1)
        ctx.delta = delta
        ctx.save_for_backward(x_in - x_out)
        return x_out

    @staticmethod
    def backward(ctx, g):
        (diff,) = ctx.saved_tensors
        scale = 1 + ctx.delta * torch.sign(g) * diff
        return g * scale, None, None


def ewgs_case(name, role, bits, delta):
    levels = 2 ** bits
    if role == "weight":
        calib = torch.randn(SHAPE) * 0.1
        std = calib.std()
        u = (std * 3).reshape(1)
        l = (-std * 3).reshape(1)
        x = calib.clone()
        # values exactly on the interval ends and outside
        flat = x.view(-1)
        flat[0], flat[1], flat[2], flat[3] = u[0], l[0], u[0] * 1.5, l[0] * 1.5
    else:
        calib = (torch.randn(SHAPE) * 1.5 + 0.5).relu()
        u = (calib.std() / math.sqrt(1 - 2 / math.pi) * 3).reshape(1)
        l = calib.min().reshape(1)
        x = calib.clone()
        x.view(-1)[0] = u[0]
        x.view(-1)[1] = u[0] * 1.2
    x = x.clone().requires_grad_(True)
    lp = l.clone().requires_grad_(True)
    up = u.clone().requires_grad_(True)
    n = ((x - lp) / (up - lp)).clamp(min=0, max=1)
    q = EWGSDiscretizer.apply(n, levels, delta)
    y = (q - 0.5) * 2 if role == "weight" else q
    dy = torch.randn(SHAPE)
    dx, dl, du = torch.autograd.grad(y, (x, lp, up), dy)
    store(name, calib=calib, l=l, u=u, x=x, y=y, dy=dy, dx=dx, dl=dl, du=du)
    meta[name] = f"ewgs role={role} bits={bits} levels={levels} delta={delta}"


def main():
    for bits in (3, 4, 8, 32):
        pact_case(f"pact_b{bits}", bits, signed_calib=False)
    pact_case("pact_b4_signed", 4, signed_calib=True)
    for bits in (3, 4, 8, 32):
        lsq_case(f"lsq_b{bits}", bits)
    lsq_case("lsq_b4_negative_scale", 4, negative_scale=True)
    for bits in (3, 4, 8, 32):
        dorefa_case(f"dorefa_b{bits}", bits)
    dorefa_case("dorefa_b4_saturated", 4, saturated=True)
    for role in ("weight", "activation"):
        for bits in (1, 2, 4):
            ewgs_case(f"ewgs_{role}_b{bits}", role, bits, 0.0)
        ewgs_case(f"ewgs_{role}_b2_delta", role, 2, 0.3)
    write_safetensors(OUT, cases, meta)


if __name__ == "__main__":
    main()
