"""PyTorch golden file for the Swift distillation objectives (Sources/Distillation): the authors' modules
from kaiqi123/SQAKD `CIFAR/distiller_zoo/{AT,NST,SP,RKD,FitNet,CC,VID,FSP,FT}.py` and `CIFAR/models/util.py`
(ConvReg, LinearEmbed, Paraphraser, Translator), copied below verbatim up to formatting, on fixed random tensors.

Regenerate (from the repository root, with Debian's python3-torch 1.13, CPU):

    /usr/bin/python3 scripts/make_kd_golden.py

Writes Tests/DistillationTests/Golden/kd.safetensors (format and writer as scripts/make_golden.py), and
Tests/DistillationTests/Golden/crd.safetensors for CRD and CKTF (`crd_main`, below). Keys are
`<case>.<tensor>`: `fs`, `ft` the student and teacher features (`fs0`, `ft0`, ... for multi-layer cases),
`loss` (0-d), `dfs` (`dfs0`, ...) = dL/df_s, and for modules their parameters under the authors' names with
`grad.<name>` for dL/dparam (FitNet: `module_list.1.*`; CC: `module_list.1.*`, `module_list.2.*`; VID:
`criterion_kd.<i>.*`; FT: `module_list.1.*` the Translator, `module_list.2.*` the Paraphraser; `ft_init` is the
Paraphraser's reconstruction loss of the initialisation stage, `utils_distill.py:320-323`). `__metadata__` records each case's settings.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "DistillationTests", "Golden", "kd.safetensors")
OUT_CRD = os.path.join(ROOT, "Tests", "DistillationTests", "Golden", "crd.safetensors")

torch.set_default_dtype(torch.float32)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


# ---- the authors' modules ------------------------------------------------------------------------------

class Attention(nn.Module):  # AT.py:7-29
    def __init__(self, p=2):
        super().__init__()
        self.p = p

    def forward(self, g_s, g_t):
        return [self.at_loss(f_s, f_t) for f_s, f_t in zip(g_s, g_t)]

    def at_loss(self, f_s, f_t):
        s_H, t_H = f_s.shape[2], f_t.shape[2]
        if s_H > t_H:
            f_s = F.adaptive_avg_pool2d(f_s, (t_H, t_H))
        elif s_H < t_H:
            f_t = F.adaptive_avg_pool2d(f_t, (s_H, s_H))
        return (self.at(f_s) - self.at(f_t)).pow(2).mean()

    def at(self, f):
        return F.normalize(f.pow(self.p).mean(1).view(f.size(0), -1))


class NSTLoss(nn.Module):  # NST.py:7-42
    def forward(self, g_s, g_t):
        return [self.nst_loss(f_s, f_t) for f_s, f_t in zip(g_s, g_t)]

    def nst_loss(self, f_s, f_t):
        s_H, t_H = f_s.shape[2], f_t.shape[2]
        if s_H > t_H:
            f_s = F.adaptive_avg_pool2d(f_s, (t_H, t_H))
        elif s_H < t_H:
            f_t = F.adaptive_avg_pool2d(f_t, (s_H, s_H))
        f_s = f_s.view(f_s.shape[0], f_s.shape[1], -1)
        f_s = F.normalize(f_s, dim=2)
        f_t = f_t.view(f_t.shape[0], f_t.shape[1], -1)
        f_t = F.normalize(f_t, dim=2)
        return (self.poly_kernel(f_t, f_t).mean().detach() + self.poly_kernel(f_s, f_s).mean()
                - 2 * self.poly_kernel(f_s, f_t).mean())

    def poly_kernel(self, a, b):
        a = a.unsqueeze(1)
        b = b.unsqueeze(2)
        return (a * b).sum(-1).pow(2)


class Similarity(nn.Module):  # SP.py:8-28
    def forward(self, g_s, g_t):
        return [self.similarity_loss(f_s, f_t) for f_s, f_t in zip(g_s, g_t)]

    def similarity_loss(self, f_s, f_t):
        bsz = f_s.shape[0]
        f_s = f_s.view(bsz, -1)
        f_t = f_t.view(bsz, -1)
        G_s = torch.nn.functional.normalize(torch.mm(f_s, torch.t(f_s)))
        G_t = torch.nn.functional.normalize(torch.mm(f_t, torch.t(f_t)))
        G_diff = G_t - G_s
        return (G_diff * G_diff).view(-1, 1).sum(0) / (bsz * bsz)


class RKDLoss(nn.Module):  # RKD.py:8-58
    def __init__(self, w_d=25, w_a=50):
        super().__init__()
        self.w_d = w_d
        self.w_a = w_a

    def forward(self, f_s, f_t):
        student = f_s.view(f_s.shape[0], -1)
        teacher = f_t.view(f_t.shape[0], -1)
        with torch.no_grad():
            t_d = self.pdist(teacher, squared=False)
            mean_td = t_d[t_d > 0].mean()
            t_d = t_d / mean_td
        d = self.pdist(student, squared=False)
        mean_d = d[d > 0].mean()
        d = d / mean_d
        loss_d = F.smooth_l1_loss(d, t_d)
        with torch.no_grad():
            td = (teacher.unsqueeze(0) - teacher.unsqueeze(1))
            norm_td = F.normalize(td, p=2, dim=2)
            t_angle = torch.bmm(norm_td, norm_td.transpose(1, 2)).view(-1)
        sd = (student.unsqueeze(0) - student.unsqueeze(1))
        norm_sd = F.normalize(sd, p=2, dim=2)
        s_angle = torch.bmm(norm_sd, norm_sd.transpose(1, 2)).view(-1)
        loss_a = F.smooth_l1_loss(s_angle, t_angle)
        return self.w_d * loss_d + self.w_a * loss_a

    @staticmethod
    def pdist(e, squared=False, eps=1e-12):
        e_square = e.pow(2).sum(dim=1)
        prod = e @ e.t()
        res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps)
        if not squared:
            res = res.sqrt()
        res = res.clone()
        res[range(len(e)), range(len(e))] = 0
        return res


class HintLoss(nn.Module):  # FitNet.py:6-14
    def __init__(self):
        super().__init__()
        self.crit = nn.MSELoss()

    def forward(self, f_s, f_t):
        return self.crit(f_s, f_t)


class ConvReg(nn.Module):  # models/util.py:131-154 (the ConvTranspose2d branch omitted: unsupported)
    def __init__(self, s_shape, t_shape, use_relu=True):
        super().__init__()
        self.use_relu = use_relu
        s_N, s_C, s_H, s_W = s_shape
        t_N, t_C, t_H, t_W = t_shape
        if s_H == 2 * t_H:
            self.conv = nn.Conv2d(s_C, t_C, kernel_size=3, stride=2, padding=1)
        elif s_H >= t_H:
            self.conv = nn.Conv2d(s_C, t_C, kernel_size=(1 + s_H - t_H, 1 + s_W - t_W))
        else:
            raise NotImplementedError
        self.bn = nn.BatchNorm2d(t_C)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.conv(x)
        return self.relu(self.bn(x)) if self.use_relu else self.bn(x)


class Correlation(nn.Module):  # CC.py:7-17
    def forward(self, f_s, f_t):
        delta = torch.abs(f_s - f_t)
        return torch.mean((delta[:-1] * delta[1:]).sum(1))


class LinearEmbed(nn.Module):  # models/util.py:185-194
    def __init__(self, dim_in=1024, dim_out=128):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return self.linear(x.view(x.shape[0], -1))


class VIDLoss(nn.Module):  # VID.py:9-54
    def __init__(self, num_input_channels, num_mid_channel, num_target_channels, init_pred_var=5.0, eps=1e-5):
        super().__init__()

        def conv1x1(in_channels, out_channels, stride=1):
            return nn.Conv2d(in_channels, out_channels, kernel_size=1, padding=0, bias=False, stride=stride)

        self.regressor = nn.Sequential(
            conv1x1(num_input_channels, num_mid_channel), nn.ReLU(),
            conv1x1(num_mid_channel, num_mid_channel), nn.ReLU(),
            conv1x1(num_mid_channel, num_target_channels))
        self.log_scale = torch.nn.Parameter(np.log(np.exp(init_pred_var - eps) - 1.0) * torch.ones(num_target_channels))
        self.eps = eps

    def forward(self, input, target):
        s_H, t_H = input.shape[2], target.shape[2]
        if s_H > t_H:
            input = F.adaptive_avg_pool2d(input, (t_H, t_H))
        elif s_H < t_H:
            target = F.adaptive_avg_pool2d(target, (s_H, s_H))
        pred_mean = self.regressor(input)
        pred_var = torch.log(1.0 + torch.exp(self.log_scale)) + self.eps
        pred_var = pred_var.view(1, -1, 1, 1)
        neg_log_prob = 0.5 * ((pred_mean - target) ** 2 / pred_var + torch.log(pred_var))
        return torch.mean(neg_log_prob)


class FSP(nn.Module):  # FSP.py:8-48
    def forward(self, g_s, g_t):
        s_fsp = self.compute_fsp(g_s)
        t_fsp = self.compute_fsp(g_t)
        return [(s - t).pow(2).mean() for s, t in zip(s_fsp, t_fsp)]

    @staticmethod
    def compute_fsp(g):
        fsp_list = []
        for i in range(len(g) - 1):
            bot, top = g[i], g[i + 1]
            b_H, t_H = bot.shape[2], top.shape[2]
            if b_H > t_H:
                bot = F.adaptive_avg_pool2d(bot, (t_H, t_H))
            elif b_H < t_H:
                top = F.adaptive_avg_pool2d(top, (b_H, b_H))
            bot = bot.unsqueeze(1)
            top = top.unsqueeze(2)
            bot = bot.view(bot.shape[0], bot.shape[1], bot.shape[2], -1)
            top = top.view(top.shape[0], top.shape[1], top.shape[2], -1)
            fsp_list.append((bot * top).mean(-1))
        return fsp_list


class FactorTransfer(nn.Module):  # FT.py:7-31, p1 = 2, p2 = 1
    def forward(self, f_s, f_t):
        return (self.factor(f_s) - self.factor(f_t)).abs().mean()

    def factor(self, f):
        return F.normalize(f.pow(2).mean(1).view(f.size(0), -1))


class Paraphraser(nn.Module):  # models/util.py:7-41, k = 0.5, use_bn = False
    def __init__(self, t_shape, k=0.5):
        super().__init__()
        c, o = t_shape[1], int(t_shape[1] * k)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1), nn.Sequential(), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(c, o, 3, 1, 1), nn.Sequential(), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(o, o, 3, 1, 1), nn.Sequential(), nn.LeakyReLU(0.1, inplace=True))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(o, o, 3, 1, 1), nn.Sequential(), nn.LeakyReLU(0.1, inplace=True),
            nn.ConvTranspose2d(o, c, 3, 1, 1), nn.Sequential(), nn.LeakyReLU(0.1, inplace=True),
            nn.ConvTranspose2d(c, c, 3, 1, 1), nn.Sequential(), nn.LeakyReLU(0.1, inplace=True))

    def forward(self, f_s, is_factor=False):
        factor = self.encoder(f_s)
        if is_factor:
            return factor
        return factor, self.decoder(factor)


class Translator(nn.Module):  # models/util.py:44-62, k = 0.5, use_bn = True
    def __init__(self, s_shape, t_shape, k=0.5):
        super().__init__()
        c, o = s_shape[1], int(t_shape[1] * k)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(c, o, 3, 1, 1), nn.BatchNorm2d(o), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(o, o, 3, 1, 1), nn.BatchNorm2d(o), nn.LeakyReLU(0.1, inplace=True))

    def forward(self, f_s):
        return self.encoder(f_s)


# ---- cases ------------------------------------------------------------------------------------------------

def feature(*shape, relu=True, dead_channel=None):
    """Post-ReLU-like features (non-negative), optionally with one all-zero channel (as a dead ReLU)."""
    f = torch.randn(*shape)
    if relu:
        f = f.clamp(min=0)
    if dead_channel is not None:
        f[:, dead_channel] = 0
    return f


def multi_layer(out, meta, name, module, s_shapes, t_shapes, dead=None):
    fs = [feature(*s, dead_channel=(dead if i == 0 else None)).requires_grad_() for i, s in enumerate(s_shapes)]
    ft = [feature(*t) for t in t_shapes]
    loss = sum(module(fs, ft))
    loss = loss.reshape(())
    grads = torch.autograd.grad(loss, fs)
    out[f"{name}.loss"] = loss
    for i in range(len(fs)):
        out[f"{name}.fs{i}"], out[f"{name}.ft{i}"], out[f"{name}.dfs{i}"] = fs[i], ft[i], grads[i]
    meta[name] = json.dumps({"student": s_shapes, "teacher": t_shapes, "dead_student_channel": dead})


def with_params(out, meta, name, loss, fs, params, extra):
    grads = torch.autograd.grad(loss, [fs] + [p for _, p in params])
    out[f"{name}.loss"] = loss.reshape(())
    out[f"{name}.dfs"] = grads[0]
    for (pname, p), g in zip(params, grads[1:]):
        out[f"{name}.{pname}"] = p.detach().clone()
        out[f"{name}.grad.{pname}"] = g
    meta[name] = json.dumps(extra)


def main():
    torch.manual_seed(0)
    out, meta = {}, {}
    multi_layer(out, meta, "at", Attention(), [[4, 3, 6, 6], [4, 5, 3, 3], [4, 6, 2, 2]],
                [[4, 4, 6, 6], [4, 5, 3, 3], [4, 2, 2, 2]], dead=1)
    multi_layer(out, meta, "nst", NSTLoss(), [[3, 4, 5, 5], [3, 6, 2, 2]], [[3, 6, 5, 5], [3, 3, 2, 2]], dead=2)
    multi_layer(out, meta, "sp", Similarity(), [[6, 4, 3, 3]], [[6, 5, 3, 3]])

    # RKD on pooled features (non-negative, [B, D]); the second case has two identical student rows.
    for name, (b, ds, dt, dup) in {"rkd": (6, 5, 7, False), "rkd_dup": (5, 4, 4, True)}.items():
        fs = feature(b, ds)
        if dup:
            fs[3] = fs[1]
        fs.requires_grad_()
        ft = feature(b, dt)
        loss = RKDLoss()(fs, ft)
        (g,) = torch.autograd.grad(loss, [fs])
        out.update({f"{name}.fs": fs, f"{name}.ft": ft, f"{name}.loss": loss.reshape(()), f"{name}.dfs": g})
        meta[name] = json.dumps({"student": [b, ds], "teacher": [b, dt], "w_d": 25, "w_a": 50, "duplicate_rows": dup})

    # FitNet: ConvReg (train mode: batch statistics) then MSE. 1x1 for equal maps, 3x3/s2 for a 2x larger one.
    for name, (s_shape, t_shape) in {"fitnet": ([4, 3, 6, 6], [4, 5, 6, 6]),
                                     "fitnet_s2": ([4, 3, 8, 8], [4, 5, 4, 4])}.items():
        reg = ConvReg(s_shape, t_shape)
        with torch.no_grad():
            reg.bn.weight.copy_(1 + 0.2 * torch.randn(t_shape[1]))
            reg.bn.bias.copy_(0.2 * torch.randn(t_shape[1]))
        reg.train()
        fs = feature(*s_shape).requires_grad_()
        ft = feature(*t_shape)
        params = [(f"module_list.1.{n}", p) for n, p in reg.named_parameters()]
        loss = HintLoss()(reg(fs), ft)
        out.update({f"{name}.fs": fs, f"{name}.ft": ft})
        with_params(out, meta, name, loss, fs, params, {"student": s_shape, "teacher": t_shape})
        out[f"{name}.module_list.1.bn.running_mean_after"] = reg.bn.running_mean.clone()
        out[f"{name}.module_list.1.bn.running_var_after"] = reg.bn.running_var.clone()

    # CC: both embeddings train; feat_dim 8 here (128 in the runs).
    b, ds, dt, e = 6, 5, 7, 8
    embed_s, embed_t = LinearEmbed(ds, e), LinearEmbed(dt, e)
    fs = feature(b, ds).requires_grad_()
    ft = feature(b, dt)
    loss = Correlation()(embed_s(fs), embed_t(ft))
    params = ([(f"module_list.1.{n}", p) for n, p in embed_s.named_parameters()]
              + [(f"module_list.2.{n}", p) for n, p in embed_t.named_parameters()])
    out.update({"cc.fs": fs, "cc.ft": ft})
    with_params(out, meta, "cc", loss, fs, params, {"student": [b, ds], "teacher": [b, dt], "feat_dim": e})

    # VID: two layers, VIDLoss(C_s, C_t, C_t) each; log_scale moved off its constant start so that its
    # gradient differs per channel.
    s_shapes, t_shapes = [[3, 4, 4, 4], [3, 2, 2, 2]], [[3, 6, 4, 4], [3, 3, 2, 2]]
    vids = nn.ModuleList([VIDLoss(s[1], t[1], t[1]) for s, t in zip(s_shapes, t_shapes)])
    out["vid.initial_log_scale"] = vids[0].log_scale.detach().clone()
    with torch.no_grad():
        for v in vids:
            v.log_scale.add_(0.5 * torch.randn(v.log_scale.shape))
    fs = [feature(*s).requires_grad_() for s in s_shapes]
    ft = [feature(*t) for t in t_shapes]
    loss = sum(c(f_s, f_t) for f_s, f_t, c in zip(fs, ft, vids))
    params = [(f"criterion_kd.{n}", p) for n, p in vids.named_parameters()]
    grads = torch.autograd.grad(loss, fs + [p for _, p in params])
    out["vid.loss"] = loss.reshape(())
    for i in range(len(fs)):
        out[f"vid.fs{i}"], out[f"vid.ft{i}"], out[f"vid.dfs{i}"] = fs[i], ft[i], grads[i]
    for (pname, p), g in zip(params, grads[len(fs):]):
        out[f"vid.{pname}"] = p.detach().clone()
        out[f"vid.grad.{pname}"] = g
    meta["vid"] = json.dumps({"student": s_shapes, "teacher": t_shapes, "init_pred_var": 5.0, "eps": 1e-5})

    # FSP on four features: equal sizes, a 2x larger bottom (pooled), and a 2x larger top (pooled, the
    # `b_H < t_H` branch); the teacher has the same channels (FSP.py:13-17).
    for name, shapes in {"fsp": [[3, 3, 8, 8], [3, 4, 8, 8], [3, 5, 4, 4], [3, 6, 2, 2]],
                         "fsp_up": [[3, 4, 2, 2], [3, 3, 4, 4], [3, 5, 4, 4]]}.items():
        fs = [feature(*sh).requires_grad_() for sh in shapes]
        ft = [feature(*sh) for sh in shapes]
        loss = sum(FSP()(fs, ft)).reshape(())
        grads = torch.autograd.grad(loss, fs)
        out[f"{name}.loss"] = loss
        for i in range(len(fs)):
            out[f"{name}.fs{i}"], out[f"{name}.ft{i}"], out[f"{name}.dfs{i}"] = fs[i], ft[i], grads[i]
        meta[name] = json.dumps({"shapes": shapes})

    # FT main stage: Translator (train mode) on the student's feat[-2], the Paraphraser's encoder (eval) on
    # the teacher's; BN affine moved off 1/0.
    s_shape, t_shape = [4, 6, 4, 4], [4, 8, 4, 4]
    paraphraser, translator = Paraphraser(t_shape), Translator(s_shape, t_shape)
    with torch.no_grad():
        for m in translator.encoder:
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features))
                m.bias.copy_(0.2 * torch.randn(m.num_features))
    translator.train()
    paraphraser.eval()
    fs = feature(*s_shape).requires_grad_()
    ft = feature(*t_shape)
    loss = FactorTransfer()(translator(fs), paraphraser(ft, is_factor=True))
    params = [(f"module_list.1.{n}", p) for n, p in translator.named_parameters()]
    out.update({"ft.fs": fs, "ft.ft": ft})
    for n, p in paraphraser.named_parameters():
        out[f"ft.module_list.2.{n}"] = p.detach().clone()
    with_params(out, meta, "ft", loss, fs, params, {"student": s_shape, "teacher": t_shape, "p1": 2, "p2": 1})

    # FT initialisation stage: the Paraphraser reconstructs the teacher's feature, nn.MSELoss().
    paraphraser.train()
    _, rec = paraphraser(ft)
    loss = nn.MSELoss()(rec, ft)
    params = [(f"module_list.2.{n}", p) for n, p in paraphraser.named_parameters()]
    grads = torch.autograd.grad(loss, [p for _, p in params])
    out["ft_init.ft"] = ft
    out["ft_init.loss"] = loss.reshape(())
    for (pname, p), g in zip(params, grads):
        out[f"ft_init.{pname}"] = p.detach().clone()
        out[f"ft_init.grad.{pname}"] = g
    meta["ft_init"] = json.dumps({"teacher": t_shape})

    write_safetensors(OUT, out, meta)


# ---- CRD and CKTF (kaiqi123/SQAKD CIFAR/crd/{memory,criterion}.py, distiller_zoo/ST.py, dataset/cifar10.py) -------

class ContrastMemory(nn.Module):  # crd/memory.py:6-98 (the AliasMethod sampler, unused in "exact" mode, and its .cuda() left out)
    def __init__(self, inputSize, outputSize, K, T=0.07, momentum=0.5):
        super().__init__()
        self.nLem = outputSize
        self.K = K
        self.register_buffer('params', torch.tensor([K, T, -1, -1, momentum]))
        stdv = 1. / math.sqrt(inputSize / 3)
        self.register_buffer('memory_v1', torch.rand(outputSize, inputSize).mul_(2 * stdv).add_(-stdv))
        self.register_buffer('memory_v2', torch.rand(outputSize, inputSize).mul_(2 * stdv).add_(-stdv))

    def forward(self, v1, v2, y, idx=None):
        K = int(self.params[0].item())
        T = self.params[1].item()
        Z_v1 = self.params[2].item()
        Z_v2 = self.params[3].item()
        momentum = self.params[4].item()
        batchSize = v1.size(0)
        outputSize = self.memory_v1.size(0)
        inputSize = self.memory_v1.size(1)
        weight_v1 = torch.index_select(self.memory_v1, 0, idx.view(-1)).detach()
        weight_v1 = weight_v1.view(batchSize, K + 1, inputSize)
        out_v2 = torch.bmm(weight_v1, v2.view(batchSize, inputSize, 1))
        out_v2 = torch.exp(torch.div(out_v2, T))
        weight_v2 = torch.index_select(self.memory_v2, 0, idx.view(-1)).detach()
        weight_v2 = weight_v2.view(batchSize, K + 1, inputSize)
        out_v1 = torch.bmm(weight_v2, v1.view(batchSize, inputSize, 1))
        out_v1 = torch.exp(torch.div(out_v1, T))
        if Z_v1 < 0:
            self.params[2] = out_v1.mean() * outputSize
            Z_v1 = self.params[2].clone().detach().item()
        if Z_v2 < 0:
            self.params[3] = out_v2.mean() * outputSize
            Z_v2 = self.params[3].clone().detach().item()
        out_v1 = torch.div(out_v1, Z_v1).contiguous()
        out_v2 = torch.div(out_v2, Z_v2).contiguous()
        with torch.no_grad():
            l_pos = torch.index_select(self.memory_v1, 0, y.view(-1))
            l_pos.mul_(momentum)
            l_pos.add_(torch.mul(v1, 1 - momentum))
            l_norm = l_pos.pow(2).sum(1, keepdim=True).pow(0.5)
            updated_v1 = l_pos.div(l_norm)
            self.memory_v1.index_copy_(0, y, updated_v1)
            ab_pos = torch.index_select(self.memory_v2, 0, y.view(-1))
            ab_pos.mul_(momentum)
            ab_pos.add_(torch.mul(v2, 1 - momentum))
            ab_norm = ab_pos.pow(2).sum(1, keepdim=True).pow(0.5)
            updated_v2 = ab_pos.div(ab_norm)
            self.memory_v2.index_copy_(0, y, updated_v2)
        return out_v1, out_v2


class ContrastLoss(nn.Module):  # crd/criterion.py:61-91
    def __init__(self, n_data):
        super().__init__()
        self.n_data = n_data

    def forward(self, x):
        eps = 1e-7
        bsz = x.shape[0]
        m = x.size(1) - 1
        Pn = 1 / float(self.n_data)
        P_pos = x.select(1, 0)
        log_D1 = torch.div(P_pos, P_pos.add(m * Pn + eps)).log_()
        P_neg = x.narrow(1, 1, m)
        log_D0 = torch.div(P_neg.clone().fill_(m * Pn), P_neg.add(m * Pn + eps)).log_()
        loss = - (log_D1.sum(0) + log_D0.view(-1, 1).sum(0)) / bsz
        return loss


class Normalize(nn.Module):  # crd/criterion.py:146-155
    def __init__(self, power=2):
        super().__init__()
        self.power = power

    def forward(self, x):
        norm = x.pow(self.power).sum(1, keepdim=True).pow(1. / self.power)
        return x.div(norm)


class Embed(nn.Module):  # crd/criterion.py:94-105
    def __init__(self, dim_in=1024, dim_out=128):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.l2norm = Normalize(2)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        x = self.linear(x)
        return self.l2norm(x)


class CRDLoss(nn.Module):  # crd/criterion.py:9-58, head "linear"
    def __init__(self, s_dim, t_dim, feat_dim, n_data, nce_k, nce_t, nce_m):
        super().__init__()
        self.embed_s = Embed(s_dim, feat_dim)
        self.embed_t = Embed(t_dim, feat_dim)
        self.contrast = ContrastMemory(feat_dim, n_data, nce_k, nce_t, nce_m)
        self.criterion_t = ContrastLoss(n_data)
        self.criterion_s = ContrastLoss(n_data)

    def forward(self, f_s, f_t, idx, contrast_idx=None):
        f_s = self.embed_s(f_s)
        f_t = self.embed_t(f_t)
        out_s, out_t = self.contrast(f_s, f_t, idx, contrast_idx)
        return self.criterion_s(out_s) + self.criterion_t(out_t)


def st_pair(s_blocks, t_blocks, avgpool):  # distiller_zoo/ST.py:43-75, method "Last" (equal shapes)
    s_norm = F.normalize(s_blocks[-1], p=2, dim=0)
    t_norm_mapped = F.normalize(t_blocks[len(t_blocks) - 1], p=2, dim=0)
    s_norm = avgpool(s_norm)
    t_norm_mapped = avgpool(t_norm_mapped)
    return s_norm.view(s_norm.size(0), -1), t_norm_mapped.view(t_norm_mapped.size(0), -1)


def instance_sample(labels, index, k, rng):  # dataset/cifar10.py:30-103, mode "exact"
    num_classes = int(max(labels)) + 1
    cls_positive = [[] for _ in range(num_classes)]
    for i, y in enumerate(labels):
        cls_positive[y].append(i)
    cls_negative = [[] for _ in range(num_classes)]
    for i in range(num_classes):
        for j in range(num_classes):
            if j != i:
                cls_negative[i].extend(cls_positive[j])
    target = labels[index]
    replace = k > len(cls_negative[target])
    neg_idx = rng.choice(np.asarray(cls_negative[target]), k, replace=replace)
    return np.hstack((np.asarray([index]), neg_idx))


def contrast_indices(labels, samples, k, rng):
    return torch.tensor(np.stack([instance_sample(labels, i, k, rng) for i in samples]), dtype=torch.int64)


def crd_state(out, prefix, module):
    for n, t in module.state_dict().items():
        out[f"{prefix}.{n}"] = t.detach().clone()


def crd_main():
    """CRD: two calls of one criterion (N 40 samples of 4 classes, B 4, K 6, feat_dim 8, T 0.1, momentum 0.5):
    the first sets Z and moves the memory, the second runs on the moved memory. Keys `crd.<t>1`, `crd.<t>2` per
    call: fs, ft, idx (the batch's samples), contrast_idx [B, K+1], loss, dfs, `grad.criterion_kd.*` (gradients
    of that call alone), `after.criterion_kd.*` (state after it); `crd.criterion_kd.*` is the initial state.
    CKTF (`cktf`: ResNet-style AvgPool2d(8); `cktf_vgg`: global pooling): β·CRD_4(f_last) + θ·[CRD_1(pool(f0)) +
    CRD_2, CRD_3 on two groups' last blocks, batch-normalised and pooled], β 1, θ 0.8, one call; keys fs_<f>, ft_<f>
    (f in f0, g1, g2, last), dfs_<f>, idx, contrast_idx, loss, `criterion_kd.<i>.*`, `grad.criterion_kd.<i>.*`.
    """
    torch.manual_seed(7)
    rng = np.random.RandomState(7)
    out, meta = {}, {}
    n_data, k, e, b = 40, 6, 8, 4
    labels = [i % 4 for i in range(n_data)]
    out["labels"] = torch.tensor(labels, dtype=torch.int64)

    ds, dt = 5, 7
    crd = CRDLoss(ds, dt, e, n_data, k, 0.1, 0.5)
    crd_state(out, "crd.criterion_kd", crd)
    for call, samples in ((1, [3, 17, 22, 8]), (2, [17, 5, 30, 3])):
        fs = feature(b, ds).requires_grad_()
        ft = feature(b, dt)
        idx = torch.tensor(samples, dtype=torch.int64)
        cidx = contrast_indices(labels, samples, k, rng)
        loss = crd(fs, ft, idx, cidx).reshape(())
        params = list(crd.named_parameters())
        grads = torch.autograd.grad(loss, [fs] + [p for _, p in params])
        out.update({f"crd.fs{call}": fs.detach(), f"crd.ft{call}": ft, f"crd.idx{call}": idx, f"crd.contrast_idx{call}": cidx,
                    f"crd.loss{call}": loss.detach(), f"crd.dfs{call}": grads[0]})
        for (n, _), g in zip(params, grads[1:]):
            out[f"crd.grad{call}.criterion_kd.{n}"] = g
        crd_state(out, f"crd.after{call}.criterion_kd", crd)
    meta["crd"] = json.dumps({"n_data": n_data, "nce_k": k, "feat_dim": e, "nce_t": 0.1, "nce_m": 0.5, "s_dim": ds, "t_dim": dt})

    for name, avgpool in (("cktf", nn.AvgPool2d(8)), ("cktf_vgg", nn.AdaptiveAvgPool2d((1, 1)))):
        shapes = {"f0": [b, 2, 16, 16], "g1": [b, 2, 16, 16], "g2": [b, 3, 8, 8], "last": [b, 5]}
        fs = {f: feature(*s).requires_grad_() for f, s in shapes.items()}
        ft = {f: feature(*s) for f, s in shapes.items()}
        decoy = {f: feature(*shapes[f]) for f in ("g1", "g2")}
        samples = [11, 2, 39, 20]
        idx = torch.tensor(samples, dtype=torch.int64)
        cidx = contrast_indices(labels, samples, k, rng)

        def flat(f):
            t = avgpool(f)
            return t.view(t.size(0), -1)
        pairs = [st_pair([decoy[g], fs[g]], [decoy[g], ft[g]], avgpool) for g in ("g1", "g2")]
        inputs = [(flat(fs["f0"]), flat(ft["f0"]))] + pairs + [(fs["last"], ft["last"])]
        criteria = nn.ModuleList([CRDLoss(s.shape[1], t.shape[1], e, n_data, k, 0.1, 0.5) for s, t in inputs])
        for i, c in enumerate(criteria):
            crd_state(out, f"{name}.criterion_kd.{i + 1}", c)
        losses = [c(s, t, idx, cidx) for c, (s, t) in zip(criteria, inputs)]
        loss = (1.0 * losses[-1] + 0.8 * sum(losses[:-1])).reshape(())
        params = [(f"criterion_kd.{n}", p) for n, p in criteria.named_parameters()]
        # ModuleList names start at 0; the authors' criterion_kd.0 is the SimilarityTransfer: shift by one.
        params = [(f"criterion_kd.{int(n.split('.')[1]) + 1}.{'.'.join(n.split('.')[2:])}", p) for n, p in params]
        grads = torch.autograd.grad(loss, [fs[f] for f in shapes] + [p for _, p in params])
        out.update({f"{name}.idx": idx, f"{name}.contrast_idx": cidx, f"{name}.loss": loss.detach()})
        for i, f in enumerate(shapes):
            out[f"{name}.fs_{f}"], out[f"{name}.ft_{f}"], out[f"{name}.dfs_{f}"] = fs[f].detach(), ft[f], grads[i]
        for (n, _), g in zip(params, grads[len(shapes):]):
            out[f"{name}.grad.{n}"] = g
        for i, c in enumerate(criteria):
            crd_state(out, f"{name}.after.criterion_kd.{i + 1}", c)
        meta[name] = json.dumps({"beta": 1.0, "theta": 0.8, "shapes": shapes, "pool": str(avgpool)})

    write_safetensors(OUT_CRD, out, meta)


if __name__ == "__main__":
    main()
    crd_main()
