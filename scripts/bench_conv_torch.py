#!/usr/bin/python3
"""PyTorch side of the convolution benchmark (compare with `sqakd bench conv`, Benchmarks.convBenchmarkResNet20).

Times F.conv2d forward, backward-data and backward-weights (aten.convolution_backward with one output
mask each) on the ResNet-20 CIFAR convolutions, batch 128, plain NCHW float32 as PyTorch trains them.

    /usr/bin/python3 scripts/bench_conv_torch.py [--threads 2] [--iterations 20]
    ONEDNN_VERBOSE=1 /usr/bin/python3 scripts/bench_conv_torch.py --iterations 1   # which oneDNN kernels run
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_timing import step_seconds  # noqa: E402

SHAPES = [  # name, C, HW, K, stride
    ("stem 3->16 32x32", 3, 32, 16, 1),
    ("16->16 32x32", 16, 32, 16, 1),
    ("16->32 s2 32x32", 16, 32, 32, 2),
    ("32->32 16x16", 32, 16, 32, 1),
    ("32->64 s2 16x16", 32, 16, 64, 2),
    ("64->64 8x8", 64, 8, 64, 1),
]


def median_ms(fn, iterations):
    """(upper median, minimum) in ms of `iterations` calls after 2 untimed ones."""
    times = sorted(t * 1e3 for t in step_seconds(fn, 2, iterations))
    return times[len(times) // 2], times[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, mkldnn {torch.backends.mkldnn.is_available()}, "
          f"median (min) of {args.iterations} calls, ms")
    totals = [0.0, 0.0, 0.0]
    min_totals = [0.0, 0.0, 0.0]
    g = torch.Generator().manual_seed(0)
    for name, c, hw, k, s in SHAPES:
        x = torch.randn(args.batch, c, hw, hw, generator=g)
        w = torch.randn(k, c, 3, 3, generator=g) * 0.1
        y = F.conv2d(x, w, None, s, 1)
        dy = torch.randn(y.shape, generator=g)
        conv_bwd = torch.ops.aten.convolution_backward

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, None, s, 1)

        def bwd_data():
            conv_bwd(dy, x, w, None, [s, s], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False])

        def bwd_weights():
            conv_bwd(dy, x, w, None, [s, s], [1, 1], [1, 1], False, [0, 0], 1, [False, True, False])

        (f, fmin), (bd, bdmin), (bw, bwmin) = (median_ms(fn, args.iterations) for fn in (fwd, bwd_data, bwd_weights))
        totals = [totals[0] + f, totals[1] + bd, totals[2] + bw]
        min_totals = [min_totals[0] + fmin, min_totals[1] + bdmin, min_totals[2] + bwmin]
        print(f"{name}: fwd {f:.2f} ({fmin:.2f})  bwd-data {bd:.2f} ({bdmin:.2f})  "
              f"bwd-weights {bw:.2f} ({bwmin:.2f})  total {f + bd + bw:.2f} ({fmin + bdmin + bwmin:.2f})")
    print(f"sum: fwd {totals[0]:.2f} ({min_totals[0]:.2f})  bwd-data {totals[1]:.2f} ({min_totals[1]:.2f})  "
          f"bwd-weights {totals[2]:.2f} ({min_totals[2]:.2f})  total {sum(totals):.2f} ({sum(min_totals):.2f})")


if __name__ == "__main__":
    main()
