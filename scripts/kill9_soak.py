#!/usr/bin/python3
"""Kill -9 soak of `sqakd train`: one tiny run trained uninterrupted, then the same config killed with SIGKILL
at random moments and resumed each time; the final record (numbers, not timing) and every checkpoint's bytes
must equal the uninterrupted run's.

After every kill the run directory is checked too: its record.json parses, its epochs equal the uninterrupted
run's first epochs, and the committed epoch's model and state files are present and name that epoch (the
epoch unit of RunDirectory.swift). The kill moments are uniform over the run's training time (one in ten in
the start-up instead), so they fall in every epoch, in training, evaluation and the epoch-end writes alike.

    scripts/kill9_soak.py [--sqakd .build/release/sqakd] [--kills 20] [--seed 1] [--threads 1]

Prints one line per kill and a summary; exits 0 only when every kill left a consistent directory and the final
run is bit-identical. `make soak` runs it (about 2 minutes on 2 cores). Needs Debian's dataset-fashion-mnist.
"""
import argparse
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

TIMING_KEYS = {"seconds", "images_per_second"}
RECORD_VOLATILE = {"wall_seconds", "started_at", "updated_at", "system"}


def train_args(sqakd, out, threads, epochs):
    return [sqakd, "train", "--output", out, "--threads", str(threads), "--model", "resnet20",
            "--dataset", "fashion-mnist", "--epochs", str(epochs), "--batch-size", "64",
            "--train-limit", "128", "--test-limit", "128", "--seed", "5"]


def read_record(d):
    with open(os.path.join(d, "record.json")) as f:
        return json.load(f)


def numbers(record):
    """The record without timing: what two runs of one config, seed and thread count share."""
    r = {k: v for k, v in record.items() if k not in RECORD_VOLATILE}
    r["epochs"] = [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in record["epochs"]]
    return r


def safetensors_metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def checkpoints(d):
    return {name: open(os.path.join(d, name), "rb").read() for name in sorted(os.listdir(d)) if name.endswith(".safetensors")}


def consistent(d, reference):
    """'' when the directory holds a committed epoch that can resume, else what is wrong."""
    if not os.path.exists(os.path.join(d, "record.json")):
        return ""  # killed before the first record: a fresh start
    try:
        record = read_record(d)
    except Exception as e:  # noqa: BLE001 - any unreadable record is the finding
        return f"record.json unreadable: {e}"
    n = len(record["epochs"])
    if numbers(record)["epochs"] != numbers(reference)["epochs"][:n]:
        return f"record.json's {n} epoch(s) differ from the uninterrupted run's"
    if n == 0:
        return ""
    model = os.path.join(d, "epoch-%04d.safetensors" % n)
    state = os.path.join(d, "epoch-%04d.state.safetensors" % n)
    for p in (model, state):
        if not os.path.exists(p):
            return f"record.json has {n} epoch(s) but {os.path.basename(p)} is missing"
    if safetensors_metadata(model).get("epoch") != str(n) or safetensors_metadata(state).get("next_epoch") != str(n):
        return f"{os.path.basename(model)} / {os.path.basename(state)} do not hold epoch {n}"
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sqakd", default=".build/release/sqakd")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1, help="seed of the kill moments")
    ap.add_argument("--keep", help="keep the run directories here instead of a temporary folder")
    a = ap.parse_args()
    sqakd = os.path.abspath(a.sqakd)
    if not os.access(sqakd, os.X_OK):
        sys.exit(f"kill9_soak: {sqakd} is not an executable; build with `swift build -c release` or pass --sqakd")
    rng = random.Random(a.seed)
    root = a.keep or tempfile.mkdtemp(prefix="sqakd-kill9-")
    os.makedirs(root, exist_ok=True)
    ref, soak = os.path.join(root, "uninterrupted"), os.path.join(root, "killed")
    for d in (ref, soak):
        shutil.rmtree(d, ignore_errors=True)

    started = time.time()
    p = subprocess.Popen(train_args(sqakd, ref, a.threads, a.epochs), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    startup = None
    while p.poll() is None:
        if startup is None and os.path.exists(os.path.join(ref, "record.json")):
            startup = time.time() - started
        time.sleep(0.005)
    total = time.time() - started
    if p.returncode != 0:
        sys.exit(f"kill9_soak: the uninterrupted run failed: {p.stderr.read().decode().strip()}")
    reference = read_record(ref)
    startup = startup or 0.5
    epoch = (total - startup) / a.epochs
    print(f"uninterrupted: {a.epochs} epochs in {total:.1f} s (startup {startup:.2f} s, {epoch:.2f} s per epoch); "
          f"{a.kills} kills at random moments of the run")

    # Kill moments on the run's own timeline (seconds of training, 0 to epochs × epoch), sorted; an attempt
    # resumes at its committed epoch c and is killed when it reaches the next moment, or somewhere in its
    # first epoch when that moment is behind it already. One kill in ten falls in the start-up instead.
    moments = sorted(rng.uniform(0, a.epochs * epoch) for _ in range(a.kills))
    kills, good, attempts = 0, 0, 0
    problems = []
    finished = False
    while not finished:
        attempts += 1
        committed = len(read_record(soak)["epochs"]) if os.path.exists(os.path.join(soak, "record.json")) else 0
        p = subprocess.Popen(train_args(sqakd, soak, a.threads, a.epochs), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        if kills < a.kills:
            if rng.random() < 0.1:
                delay = rng.uniform(0.3, startup)
            else:
                ahead = moments[kills] - committed * epoch
                delay = startup + (ahead if ahead > 0 else rng.uniform(0, epoch))
            deadline = time.time() + delay
            while p.poll() is None and time.time() < deadline:
                time.sleep(0.002)
            if p.poll() is None:
                before = len(read_record(soak)["epochs"]) if os.path.exists(os.path.join(soak, "record.json")) else 0
                p.send_signal(signal.SIGKILL)
                p.wait()
                kills += 1
                problem = consistent(soak, reference)
                after = len(read_record(soak)["epochs"]) if os.path.exists(os.path.join(soak, "record.json")) else 0
                print(f"kill {kills:2d} at {delay:5.2f} s: epochs {before} -> {after} committed; "
                      + ("consistent" if not problem else f"INCONSISTENT: {problem}"))
                if problem:
                    problems.append(f"kill {kills}: {problem}")
                else:
                    good += 1
                continue
        p.wait()
        if p.returncode != 0:
            problems.append(f"attempt {attempts} exited {p.returncode}: {p.stderr.read().decode().strip()}")
            print(f"attempt {attempts} FAILED (exit {p.returncode})")
            break
        finished = True

    same_record = finished and numbers(read_record(soak)) == numbers(reference)
    a_ck, b_ck = checkpoints(ref), checkpoints(soak) if finished else {}
    same_bytes = finished and a_ck == b_ck
    leftovers = [n for n in os.listdir(soak) if n.startswith(".") and ".tmp-" in n] if finished else []
    print(f"kill -9 soak: {good}/{kills} kills left a consistent, resumable run directory; final record "
          f"{'identical' if same_record else 'DIFFERENT'} (timing aside), checkpoints ({', '.join(a_ck)}) "
          f"{'bit-identical' if same_bytes else 'DIFFERENT: ' + str(sorted(set(a_ck) ^ set(b_ck)) or 'bytes')}; "
          f"{len(leftovers)} temporary files left; {attempts} starts")
    for line in problems:
        print("  " + line)
    ok = good == kills == a.kills and same_record and same_bytes and not leftovers
    if not a.keep and ok:
        shutil.rmtree(root, ignore_errors=True)
    elif not ok:
        print(f"run directories kept in {root}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
