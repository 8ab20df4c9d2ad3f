#!/usr/bin/env bash
# Writes Tests/TrainingTests/Golden/records.json: the per-epoch numbers of three short Fashion-MNIST runs
# (FP ResNet-20, EWGS W2A2 baseline, EWGS W2A2 SQAKD; 512 training / 256 test images, 2 epochs, batch 64,
# seed 0, 2 threads) as the given sqakd binary trains them. The committed file was made by the engine before
# the issue-9 refactor (commit 77e76a1); GoldenRecordTests checks that today's engine still gives them.
# Usage: scripts/make_record_golden.sh [SQAKD_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-.build/release/sqakd}
O=$(mktemp -d)
trap 'rm -rf "$O"' EXIT
common="--dataset fashion-mnist --model resnet20 --epochs 2 --batch 64 --train-limit 512 --test-limit 256 --seed 0 --threads 2"
"$B" train $common --output "$O/fp" > /dev/null
"$B" train $common --quantizer ewgs --bits 2 --init "$O/fp" --output "$O/ewgs" > /dev/null
"$B" train $common --quantizer ewgs --bits 2 --init "$O/fp" --distill sqakd --teacher "$O/fp" --output "$O/sqakd" > /dev/null
/usr/bin/python3 - "$O" "$(git rev-parse --short HEAD)" <<'PY'
import json, sys
root, rev = sys.argv[1], sys.argv[2]
camel = {"trainLoss": "train_loss", "trainTop1": "train_top1", "testLoss": "test_loss", "testTop1": "test_top1", "testTop5": "test_top5"}
keys = ["epoch", "lr", "train_loss", "train_top1", "test_loss", "test_top1", "test_top5"]
out = {"made_by": f"sqakd at commit {rev}, 2 threads: sqakd train --dataset fashion-mnist --model resnet20 --epochs 2 "
       "--batch 64 --train-limit 512 --test-limit 256 --seed 0 [--quantizer ewgs --bits 2 --init FP_RUN "
       "[--distill sqakd --teacher FP_RUN]] (scripts/make_record_golden.sh)", "runs": {}}
for run in ["fp", "ewgs", "sqakd"]:
    epochs = json.load(open(f"{root}/{run}/record.json"))["epochs"]
    out["runs"][run] = [{k: {camel.get(a, a): b for a, b in e.items()}[k] for k in keys} for e in epochs]
json.dump(out, open("Tests/TrainingTests/Golden/records.json", "w"), indent=1, sort_keys=True)
PY
echo "wrote Tests/TrainingTests/Golden/records.json"
