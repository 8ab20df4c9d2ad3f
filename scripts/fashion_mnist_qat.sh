#!/usr/bin/env bash
# The Fashion-MNIST QAT experiment of issue 3, until the sweep runner (issue 4) takes over: an FP ResNet-20
# teacher (4 epochs, SGD 0.1, batch 128) and 2-epoch students at batch 128 with the authors' CIFAR-10 QAT
# settings (Adam lr_m 1e-3 with wd 1e-4, Adam lr_q 1e-5, per-epoch cosine): EWGS W2A2 with and without
# SQAKD over 3 seeds, PACT / LSQ / DoReFa W4A4 with and without SQAKD over 1 seed.
# Usage: scripts/fashion_mnist_qat.sh [RUNS_DIR]   (default runs/fashion-mnist-qat; resumable: rerun it)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/fashion-mnist-qat}
bin=${SQAKD_BIN:-.build/release/sqakd}
common=(--dataset fashion-mnist --model resnet20 --batch 128 --threads 2)
teacher=$out/teacher
"$bin" train "${common[@]}" --epochs 4 --lr 0.1 --seed 0 --output "$teacher"
student() {  # quantizer bits seed method
  local extra=()
  [ "$4" = sqakd ] && extra=(--distill sqakd --teacher "$teacher")
  [ "$4" = baseline ] && extra=(--init "$teacher")
  "$bin" train "${common[@]}" --epochs 2 --quantizer "$1" --bits "$2" --seed "$3" "${extra[@]}" \
    --output "$out/$1-w$2a$2-$4-seed$3"
}
for m in baseline sqakd; do student ewgs 2 0 $m; done
for q in pact lsq dorefa; do for m in baseline sqakd; do student $q 4 0 $m; done; done
for s in 1 2; do for m in baseline sqakd; do student ewgs 2 $s $m; done; done
