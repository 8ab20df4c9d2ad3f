#!/usr/bin/env python3
"""Markdown table of the run records under a directory (until `sqakd report`, issue 4, replaces it).

Groups runs by (quantizer, bits, method) and prints best-epoch test top-1 (the paper's convention: chosen
on the test set) and last-epoch top-1 as mean ± sample std (n) over seeds.

    python3 scripts/summarize_runs.py runs/fashion-mnist-qat
"""
import json
import os
import statistics
import sys


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "runs"
    groups = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "record.json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        if r["status"] != "finished":
            continue
        c = r["config"]
        method = "fp" if c.get("quantizer", "fp") == "fp" else (c.get("distill", "none") == "sqakd" and "sqakd" or "baseline")
        key = (c.get("quantizer", "fp"), c.get("bits", 32), method)
        groups.setdefault(key, []).append((r["bestTop1"], r["lastTop1"], c["seed"], r["wallSeconds"]))

    def fmt(values):
        if len(values) == 1:
            return f"{values[0]:.2f} (n=1)"
        return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"

    print("| quantizer | W/A bits | method | best top-1 % | last top-1 % | seeds | wall per run |")
    print("|---|---|---|---|---|---|---|")
    for (q, b, m), runs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "fp", kv[0][0], kv[0][1], kv[0][2])):
        bits = "32" if q == "fp" else f"{b}/{b}"
        wall = statistics.mean(r[3] for r in runs)
        print(f"| {q} | {bits} | {m} | {fmt([r[0] for r in runs])} | {fmt([r[1] for r in runs])} | "
              f"{','.join(str(r[2]) for r in runs)} | {wall / 60:.1f} min |")


if __name__ == "__main__":
    main()
