"""PyTorch golden files for the Swift engine's layer, loss, optimizer and ResNet-20 tests.

Regenerate (from the repository root, with Debian's python3-torch 1.13, CPU):

    /usr/bin/python3 scripts/make_golden.py

Writes
    Tests/NNTests/Golden/{conv2d,batchnorm,linear,pool,activation,loss,optim,pool_ceil,channel}.safetensors
    Tests/ModelsTests/Golden/resnet20_state.safetensors   (input, labels, state dict before the step)
    Tests/ModelsTests/Golden/resnet20_result.safetensors  (logits, loss, gradients, running stats after)

Every tensor is float32 except labels and `num_batches_tracked` (int64). Keys are `<case>.<tensor>`,
e.g. `s2p1_bias.dw`; ResNet-20 keys are PyTorch state-dict names, gradients are `grad.<param name>`.
Each file's `__metadata__` records the settings of every case (also hard-coded in the Swift tests).
The safetensors format is written by hand (no `safetensors` package): 8-byte little-endian header
length, a JSON header {name: {dtype, shape, data_offsets}} padded with spaces to a multiple of 8, then
the raw little-endian data in sorted key order.

Naming legend: x input, y output, dy upstream gradient (dL/dy), dx/dw/db gradients of the input,
weight and bias, for the loss L = sum(y * dy).
"""

import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import resnet_cifar  # noqa: E402  (helper script next to this one)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NN_DIR = os.path.join(ROOT, "Tests", "NNTests", "Golden")
MODELS_DIR = os.path.join(ROOT, "Tests", "ModelsTests", "Golden")

torch.set_default_dtype(torch.float32)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (float32, float16 or int64, any shape) as a safetensors file with sorted keys."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype == torch.float32:
            dtype, fmt = "F32", "f"
        elif t.dtype == torch.int64:
            dtype, fmt = "I64", "q"
        elif t.dtype == torch.float16:
            dtype, fmt = "F16", "e"
        else:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        values = t.reshape(-1).tolist()
        blob = struct.pack("<%d%s" % (len(values), fmt), *values)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in sorted(metadata.items())}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    print(f"wrote {os.path.relpath(path, ROOT)}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def randn(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def grads_of(y, dy, *leaves):
    """Gradients of L = sum(y * dy) with respect to `leaves`."""
    return torch.autograd.grad(y, leaves, grad_outputs=dy)


# ----------------------------------------------------------------------------------------------------
# Conv2d


def make_conv():
    # name: (N, Cin, Cout, H, W, k, stride, padding, groups, bias)
    cases = {
        "s1p0_bias": (2, 4, 6, 7, 7, 3, 1, 0, 1, True),
        "s1p1_nobias": (2, 4, 6, 8, 8, 3, 1, 1, 1, False),
        "s2p1_bias": (2, 6, 8, 9, 9, 3, 2, 1, 1, True),
        "s2p0_nobias": (2, 5, 4, 8, 8, 3, 2, 0, 1, False),
        "g2_s1p1_bias": (2, 8, 6, 7, 7, 3, 1, 1, 2, True),
        "dw_s2p1_nobias": (2, 8, 8, 9, 9, 3, 2, 1, 8, False),
        "dw_s1p1_bias": (2, 6, 6, 7, 7, 3, 1, 1, 6, True),
        "k1_s2_nobias": (2, 4, 8, 8, 8, 1, 2, 0, 1, False),
        # MobileNet-V2 / ShuffleNet-V2 depthwise 3x3 at a width tested in nChw16c too.
        "dw32_s1p1_nobias": (2, 32, 32, 7, 7, 3, 1, 1, 32, False),
        "dw32_s2p1_nobias": (2, 32, 32, 8, 8, 3, 2, 1, 32, False),
    }
    out, meta = {}, {}
    for name, (n, cin, cout, h, w, k, s, p, g, bias) in cases.items():
        x = randn(n, cin, h, w).requires_grad_()
        wt = randn(cout, cin // g, k, k, scale=(2.0 / (cin // g * k * k)) ** 0.5).requires_grad_()
        b = randn(cout, scale=0.1).requires_grad_() if bias else None
        y = F.conv2d(x, wt, b, stride=s, padding=p, groups=g)
        dy = randn(*y.shape)
        leaves = (x, wt, b) if bias else (x, wt)
        grads = grads_of(y, dy, *leaves)
        out.update({f"{name}.x": x, f"{name}.w": wt, f"{name}.y": y, f"{name}.dy": dy,
                    f"{name}.dx": grads[0], f"{name}.dw": grads[1]})
        if bias:
            out.update({f"{name}.b": b, f"{name}.db": grads[2]})
        meta[name] = json.dumps({"N": n, "in": cin, "out": cout, "H": h, "W": w, "kernel": k, "stride": s,
                                 "padding": p, "groups": g, "bias": bias})
    write_safetensors(os.path.join(NN_DIR, "conv2d.safetensors"), out, meta)


# ----------------------------------------------------------------------------------------------------
# BatchNorm (eps 1e-5, momentum 0.1, PyTorch defaults; running_var uses the unbiased batch variance)


def bn_case(out, name, bn, x):
    with torch.no_grad():
        bn.weight.copy_(1 + randn(*bn.weight.shape, scale=0.2))
        bn.bias.copy_(randn(*bn.bias.shape, scale=0.2))
        bn.running_mean.copy_(randn(*bn.running_mean.shape, scale=0.5))
        bn.running_var.copy_(0.5 + torch.rand(*bn.running_var.shape))
        bn.num_batches_tracked.fill_(3)
    out.update({f"{name}.running_mean_before": bn.running_mean.clone(),
                f"{name}.running_var_before": bn.running_var.clone(),
                f"{name}.num_batches_tracked_before": bn.num_batches_tracked.clone()})
    x = x.clone().requires_grad_()
    y = bn(x)
    dy = randn(*y.shape)
    dx, dweight, dbias = grads_of(y, dy, x, bn.weight, bn.bias)
    out.update({f"{name}.x": x, f"{name}.weight": bn.weight, f"{name}.bias": bn.bias, f"{name}.y": y,
                f"{name}.dy": dy, f"{name}.dx": dx, f"{name}.dweight": dweight, f"{name}.dbias": dbias,
                f"{name}.running_mean": bn.running_mean.clone(), f"{name}.running_var": bn.running_var.clone(),
                f"{name}.num_batches_tracked": bn.num_batches_tracked.clone()})


def make_batchnorm():
    out, meta = {}, {}
    bn = nn.BatchNorm2d(6).train()
    bn_case(out, "bn2d_train", bn, randn(4, 6, 5, 5, scale=2.0) + 0.7)
    meta["bn2d_train"] = "BatchNorm2d(6), train mode, x [4, 6, 5, 5]"
    bn = nn.BatchNorm2d(6).eval()
    bn_case(out, "bn2d_eval", bn, randn(4, 6, 5, 5, scale=2.0) + 0.7)
    meta["bn2d_eval"] = "BatchNorm2d(6), eval mode (running stats used and left unchanged), x [4, 6, 5, 5]"
    bn = nn.BatchNorm2d(16).train()
    bn_case(out, "bn2d_train16", bn, randn(2, 16, 4, 4, scale=1.5) - 0.3)
    meta["bn2d_train16"] = "BatchNorm2d(16), train mode, x [2, 16, 4, 4] (16 channels: one full block)"
    bn = nn.BatchNorm1d(5).train()
    bn_case(out, "bn1d_train", bn, randn(6, 5, scale=2.0) + 0.5)
    meta["bn1d_train"] = "BatchNorm1d(5), train mode, x [6, 5]"
    bn = nn.BatchNorm1d(5).eval()
    bn_case(out, "bn1d_eval", bn, randn(6, 5, scale=2.0) + 0.5)
    meta["bn1d_eval"] = "BatchNorm1d(5), eval mode, x [6, 5]"
    write_safetensors(os.path.join(NN_DIR, "batchnorm.safetensors"), out, meta)


# ----------------------------------------------------------------------------------------------------
# Linear


def make_linear():
    out, meta = {}, {}
    for name, (n, fin, fout) in {"linear_7x5": (3, 7, 5), "linear_64x10": (4, 64, 10)}.items():
        x = randn(n, fin).requires_grad_()
        w = randn(fout, fin, scale=fin ** -0.5).requires_grad_()
        b = randn(fout, scale=0.1).requires_grad_()
        y = F.linear(x, w, b)
        dy = randn(*y.shape)
        dx, dw, db = grads_of(y, dy, x, w, b)
        out.update({f"{name}.x": x, f"{name}.w": w, f"{name}.b": b, f"{name}.y": y, f"{name}.dy": dy,
                    f"{name}.dx": dx, f"{name}.dw": dw, f"{name}.db": db})
        meta[name] = f"Linear({fin}, {fout}), x [{n}, {fin}]"
    write_safetensors(os.path.join(NN_DIR, "linear.safetensors"), out, meta)


# ----------------------------------------------------------------------------------------------------
# Pools and activations


def unary_case(out, name, fn, x):
    x = x.clone().requires_grad_()
    y = fn(x)
    dy = randn(*y.shape)
    (dx,) = grads_of(y, dy, x)
    out.update({f"{name}.x": x, f"{name}.y": y, f"{name}.dy": dy, f"{name}.dx": dx})


def make_pool():
    out, meta = {}, {}
    cases = {
        "maxpool_k2s2": (lambda x: F.max_pool2d(x, 2, 2), (2, 3, 8, 8), "MaxPool2d(kernel 2, stride 2)"),
        "maxpool_k3s2p1": (lambda x: F.max_pool2d(x, 3, 2, 1), (2, 3, 9, 9), "MaxPool2d(kernel 3, stride 2, padding 1)"),
        "maxpool_k3s2p1_even": (lambda x: F.max_pool2d(x, 3, 2, 1), (2, 16, 8, 8),
                                "MaxPool2d(kernel 3, stride 2, padding 1), 16 channels"),
        "avgpool_k2s2": (lambda x: F.avg_pool2d(x, 2, 2), (2, 3, 8, 8), "AvgPool2d(kernel 2, stride 2)"),
        "avgpool_k8": (lambda x: F.avg_pool2d(x, 8), (2, 16, 8, 8), "AvgPool2d(kernel 8) over the 8x8 map"),
        "adaptive_1": (lambda x: F.adaptive_avg_pool2d(x, 1), (2, 3, 7, 7), "AdaptiveAvgPool2d(1)"),
        "adaptive_7to3": (lambda x: F.adaptive_avg_pool2d(x, 3), (2, 3, 7, 7), "AdaptiveAvgPool2d(3) on 7x7"),
    }
    for name, (fn, shape, desc) in cases.items():
        unary_case(out, name, fn, randn(*shape))
        meta[name] = desc
    write_safetensors(os.path.join(NN_DIR, "pool.safetensors"), out, meta)


def make_activation():
    out, meta = {}, {}
    unary_case(out, "relu", F.relu, randn(2, 3, 5, 5, scale=3.0))
    meta["relu"] = "ReLU on [2, 3, 5, 5]"
    unary_case(out, "relu6", F.relu6, randn(2, 3, 5, 5, scale=5.0))
    meta["relu6"] = "ReLU6 on [2, 3, 5, 5], x ~ N(0, 25) so both clips are hit"
    write_safetensors(os.path.join(NN_DIR, "activation.safetensors"), out, meta)


def distinct(*shape):
    """A random permutation of 0.05 * (0..n), centred: distinct values (no max-pool ties)."""
    n = 1
    for d in shape:
        n *= d
    return (torch.randperm(n).float() * 0.05 - n * 0.025).reshape(shape)


def make_pool_ceil():
    """3x3 stride-2 ceil-mode max pooling at SqueezeNet 1.0's sizes: 109, 54, 27 (224 input), 29, 14, 7 (64)."""
    out, meta = {}, {}
    for size, n, c in [(109, 1, 1), (54, 1, 2), (27, 1, 2), (29, 1, 8), (14, 1, 16), (7, 2, 16)]:
        name = f"maxpool_ceil_{size}"
        unary_case(out, name, lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True), distinct(n, c, size, size))
        meta[name] = f"MaxPool2d(kernel 3, stride 2, ceil_mode=True) on [{n}, {c}, {size}, {size}]"
    write_safetensors(os.path.join(NN_DIR, "pool_ceil.safetensors"), out, meta)


def make_channel():
    """Channel concatenation (3 inputs), chunk in 2 and shuffle (ShuffleNet-V2's view/transpose/view)."""
    out, meta = {}, {}
    xs = [randn(2, c, 3, 3).requires_grad_() for c in (8, 16, 24)]
    y = torch.cat(xs, 1)
    dy = randn(*y.shape)
    dxs = grads_of(y, dy, *xs)
    for i in range(3):
        out[f"cat.x{i}"], out[f"cat.dx{i}"] = xs[i], dxs[i]
    out["cat.y"], out["cat.dy"] = y, dy
    meta["cat"] = "torch.cat([x0 [2,8,3,3], x1 [2,16,3,3], x2 [2,24,3,3]], 1)"

    x = randn(2, 48, 3, 3).requires_grad_()
    y0, y1 = x.chunk(2, dim=1)
    dy0, dy1 = randn(*y0.shape), randn(*y1.shape)
    (dx,) = torch.autograd.grad([y0, y1], [x], grad_outputs=[dy0, dy1])
    out.update({"chunk.x": x, "chunk.y0": y0, "chunk.y1": y1, "chunk.dy0": dy0, "chunk.dy1": dy1, "chunk.dx": dx})
    meta["chunk"] = "x [2,48,3,3].chunk(2, dim=1)"

    def shuffle(x, groups):
        n, c, h, w = x.shape
        return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)

    for name, c, groups in [("shuffle2", 48, 2), ("shuffle3", 24, 3)]:
        unary_case(out, name, lambda x: shuffle(x, groups), randn(2, c, 3, 3))
        meta[name] = f"torchvision channel_shuffle(x [2,{c},3,3], {groups})"
    write_safetensors(os.path.join(NN_DIR, "channel.safetensors"), out, meta)


# ----------------------------------------------------------------------------------------------------
# Losses


class DistillKL(nn.Module):
    """The reference's DistillKL (CIFAR/distiller_zoo/KD.py)."""

    def __init__(self, T):
        super().__init__()
        self.T = T

    def forward(self, y_s, y_t):
        p_s = F.log_softmax(y_s / self.T, dim=1)
        p_t = F.softmax(y_t / self.T, dim=1)
        return F.kl_div(p_s, p_t, size_average=False) * (self.T ** 2) / y_s.shape[0]


def make_loss():
    out, meta = {}, {}
    for name, smoothing in {"ce": 0.0, "ce_ls": 0.1}.items():
        logits = randn(5, 10, scale=2.0).requires_grad_()
        labels = torch.randint(0, 10, (5,), dtype=torch.int64)
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        (dlogits,) = torch.autograd.grad(loss, logits)
        out.update({f"{name}.logits": logits, f"{name}.labels": labels, f"{name}.loss": loss.reshape(1),
                    f"{name}.dlogits": dlogits})
        meta[name] = f"cross_entropy(reduction mean, label_smoothing {smoothing}), logits [5, 10]"
    student = randn(4, 10, scale=3.0).requires_grad_()
    teacher = randn(4, 10, scale=3.0)
    loss = DistillKL(4.0)(student, teacher)
    (dstudent,) = torch.autograd.grad(loss, student)
    out.update({"kl_t4.student": student, "kl_t4.teacher": teacher, "kl_t4.loss": loss.reshape(1),
                "kl_t4.dstudent": dstudent})
    meta["kl_t4"] = "DistillKL(T=4): kl_div(log_softmax(s/T), softmax(t/T), sum) * T^2 / B, logits [4, 10]"
    write_safetensors(os.path.join(NN_DIR, "loss.safetensors"), out, meta)


# ----------------------------------------------------------------------------------------------------
# Optimizers: 3 steps on one [4, 5] parameter with fixed gradients


def make_optim():
    out, meta = {}, {}
    cases = {
        "sgd": (lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-4),
                "SGD(lr 0.1, momentum 0.9, dampening 0, weight_decay 1e-4)"),
        "sgd_nesterov": (lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
                         "SGD(lr 0.1, momentum 0.9, dampening 0, weight_decay 1e-4, nesterov)"),
        "adam": (lambda p: torch.optim.Adam([p], lr=1e-3, weight_decay=5e-4),
                 "Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 5e-4 coupled L2)"),
    }
    for name, (make, desc) in cases.items():
        p = nn.Parameter(randn(4, 5))
        opt = make(p)
        out[f"{name}.param0"] = p.detach().clone()
        for step in range(1, 4):
            g = randn(4, 5)
            p.grad = g.clone()
            opt.step()
            out[f"{name}.grad{step}"] = g
            out[f"{name}.param{step}"] = p.detach().clone()
        meta[name] = desc
    write_safetensors(os.path.join(NN_DIR, "optim.safetensors"), out, meta)


# ----------------------------------------------------------------------------------------------------
# ResNet-20 (CIFAR, EWGS variant; reference-implementation.md section 3.1; model from reference_models.py)


def make_resnet20():
    model = resnet_cifar(3, 10).train()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("bn1.weight") or name.endswith("bn2.weight"):
                t.copy_(1 + randn(*t.shape, scale=0.1))
            elif name.endswith(".bias") and "bn" in name:
                t.copy_(randn(*t.shape, scale=0.1))
            elif name.endswith("running_mean"):
                t.copy_(randn(*t.shape, scale=0.1))
            elif name.endswith("running_var"):
                t.copy_(0.8 + 0.4 * torch.rand(*t.shape))
            if t.dtype == torch.float32:
                # Round to bfloat16 precision: exact in float32 and compresses well in git.
                t.copy_(t.to(torch.bfloat16).to(torch.float32))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = randn(4, 3, 32, 32)
    labels = torch.randint(0, 10, (4,), dtype=torch.int64)
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    before = dict(state)
    before["input"] = x
    before["labels"] = labels
    write_safetensors(os.path.join(MODELS_DIR, "resnet20_state.safetensors"), before,
                      {"model": "resnet20 CIFAR EWGS variant (option-A shortcut, BatchNorm1d before linear), 10 classes",
                       "mode": "train", "loss": "cross_entropy mean",
                       "parameters": str(sum(p.numel() for p in model.parameters()))})
    after = {"logits": logits, "loss": loss.reshape(1)}
    for name, p in model.named_parameters():
        after["grad." + name] = p.grad
    for name, t in model.state_dict().items():
        if "running_" in name or "num_batches_tracked" in name:
            after[name] = t
    write_safetensors(os.path.join(MODELS_DIR, "resnet20_result.safetensors"), after,
                      {"contents": "logits, loss, grad.<param> of the mean CE loss, BN running stats after the forward"})


def main():
    os.makedirs(NN_DIR, exist_ok=True)
    os.makedirs(MODELS_DIR, exist_ok=True)
    # One seed per file, so adding a case to one file leaves the others unchanged.
    for seed, make in enumerate([make_conv, make_batchnorm, make_linear, make_pool, make_activation,
                                 make_loss, make_optim, make_resnet20], start=1000):
        torch.manual_seed(seed)
        make()
    # Fixed seeds of their own, whatever is added to the list above.
    for seed, make in [(2000, make_pool_ceil), (2001, make_channel)]:
        torch.manual_seed(seed)
        make()


if __name__ == "__main__":
    sys.exit(main())
