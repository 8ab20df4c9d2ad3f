#!/usr/bin/python3
"""Throughput of the QAT+SQAKD training step, SQAKDBench vs PyTorch, on this machine.

The step, as the reference's train_quant.py runs it for EWGS+SQAKD (§4.2): the FP teacher's forward in
eval mode under no_grad, the quantized student's forward in train mode, loss = α·T²·KL(teacher ‖ student)
with T = 4 (sum over batch and classes / batch size), backward, then two Adam steps (model parameters with
coupled L2 weight decay 1e-4 at lr 1e-3; quantizer parameters at lr 1e-5, no decay). Same synthetic batch
on both sides; median of `--steps` timed steps after `--warmup`.

    /usr/bin/python3 scripts/bench_sqakd_vs_pytorch.py --model resnet20 --bits 2 --batch 128 --threads 2
"""
import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import make  # noqa: E402
from reference_quant import initialize_quantizers, quantize_resnet, split_parameters  # noqa: E402
from torch_timing import median_step_seconds  # noqa: E402


def pytorch_step_time(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher = make(args.model, args.classes).eval()
    student = make(args.model, args.classes)
    student.load_state_dict(teacher.state_dict())
    quantize_resnet(student, args.bits)
    x = torch.randn(args.batch, 3, 32, 32)
    initialize_quantizers(student, x)
    model_params, quant_params = split_parameters(student)
    opt_m = torch.optim.Adam(model_params, lr=1e-3, weight_decay=1e-4)
    opt_q = torch.optim.Adam(quant_params, lr=1e-5)
    T, alpha = 4.0, 1.0

    def step():
        opt_m.zero_grad()
        opt_q.zero_grad()
        logit_s = student(x)
        with torch.no_grad():
            logit_t = teacher(x)
        loss = alpha * F.kl_div(F.log_softmax(logit_s / T, 1), F.softmax(logit_t / T, 1), reduction="sum") * T * T / x.shape[0]
        loss.backward()
        opt_m.step()
        opt_q.step()

    student.train()
    return median_step_seconds(step, args.warmup, args.steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet20", choices=["resnet20", "resnet32"])
    ap.add_argument("--bits", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--sqakd", default=".build/release/sqakd", help="path to the sqakd binary")
    args = ap.parse_args()
    if not os.path.exists(args.sqakd):
        sys.exit(f"error: {args.sqakd} not found; run `make build` first")
    out = subprocess.run([args.sqakd, "bench", "--model", args.model, "--batch", str(args.batch), "--classes", str(args.classes),
                          "--quantizer", "ewgs", "--bits", str(args.bits), "--distill", "sqakd", "--threads", str(args.threads),
                          "--warmup", str(args.warmup), "--steps", str(args.steps), "--json"],
                         check=True, capture_output=True, text=True).stdout
    ours = json.loads(out.strip().splitlines()[-1])["trainImagesPerSecond"]
    theirs = args.batch / pytorch_step_time(args)
    print(f"{args.model} EWGS W{args.bits}A{args.bits} + SQAKD step, batch {args.batch}, {args.threads} threads, torch {torch.__version__}")
    print(f"  PyTorch {theirs:8.1f} img/s   SQAKDBench {ours:8.1f} img/s   ratio {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
