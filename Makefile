# SQAKDBench. `make setup` once on a fresh Debian 12 machine, then `make test`.
SWIFT ?= swift
# What the build and the tests need; PyTorch only serves the golden-file and comparison scripts.
# python3-pil and python3-numpy: the tests write a Fashion-MNIST tree of JPEGs (scripts/make_fashion_tiny_imagenet.py).
# slurm-wlm and munge: the single-node Slurm test (scripts/slurm-single-node.sh) runs the smoke suite through sbatch.
TEST_PACKAGES = libdnnl-dev libopenblas-dev libpng-dev zlib1g-dev libturbojpeg0-dev dataset-fashion-mnist python3-pil python3-numpy pkg-config slurm-wlm munge
APT_PACKAGES = $(TEST_PACKAGES) python3-torch python3-torchvision
TEST_FLAGS = -c release -Xswiftc -enable-testing

.PHONY: setup deps deps-test apt build test soak bench bench-methods bench-imagenet golden sweep-fashion-mnist report clean

setup: deps build

# Debian packages the project needs (root, or sudo when available).
deps:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_PACKAGES)"

# Only what `make test` needs (CI).
deps-test:
	@$(MAKE) --no-print-directory apt PACKAGES="$(TEST_PACKAGES)"

apt:
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "Debian packages present"; fi

build:
	$(SWIFT) build -c release

# The test suite runs optimised (numeric Swift in debug is 10-100x slower); -enable-testing keeps @testable.
# The tests (and the sqakd processes they start) write their scratch runs under a TMPDIR of their own, removed
# afterwards: a few smoke sweeps keep GBs of checkpoints, and leftovers of earlier runs once filled the disk.
# They run on the instruction sets their goldens were made with (AVX2): oneDNN and OpenBLAS dispatch by CPU, and
# on an AVX-512 machine the pre-refactor records and the MobileNet-V2/VGG-11 gradient goldens drift past their
# tolerances (45 expectations; README, "Run directories"). On an AVX2 machine the caps change nothing.
TEST_ISA = DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell
test:
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/sqakd-test.XXXXXX") && \
	TMPDIR=$$tmp $(TEST_ISA) $(SWIFT) test $(TEST_FLAGS); status=$$?; rm -rf "$$tmp"; exit $$status

# Kill -9 soak: a tiny run killed at 20 random moments and resumed each time must end bit-identical to an
# uninterrupted one (about 2 minutes; not part of `make test`, which runs a 3-kill variant).
soak: build
	/usr/bin/python3 scripts/kill9_soak.py --kills 20

# Training-step throughput, ours vs PyTorch on this machine (same model, batch, threads).
bench: build
	/usr/bin/python3 scripts/bench_vs_pytorch.py --model resnet20 --batch 128 --threads 2
	/usr/bin/python3 scripts/bench_sqakd_vs_pytorch.py --model resnet20 --bits 2 --batch 128 --threads 2

# Step time of every distillation method relative to EWGS alone, ours vs the authors' PyTorch code (issue 11;
# each method timed right after its side's EWGS-alone step, 3 rounds, as this CPU drifts 10-20% over minutes;
# about 25 minutes on 2 cores, quiet machine).
bench-methods: build
	/usr/bin/python3 scripts/bench_methods_torch.py --threads 2 --steps 5 --rounds 3 --sqakd .build/release/sqakd --json .build/methods-bench.json

# The five Tiny-ImageNet models vs torchvision, 64x64 and 224x224, the paper's batch sizes, 3 alternating rounds
# at 64x64 (about 35 minutes on 2 cores; quiet machine); rewrites the table in README.md.
bench-imagenet: build
	/usr/bin/python3 scripts/bench_imagenet_vs_torchvision.py --threads 2 --readme README.md

# The committed real-data results: the Fashion-MNIST suite at its reduced budget (hours on 2 cores;
# rerun to resume), then the tables, plots and REPORT.md.
sweep-fashion-mnist: build
	.build/release/sqakd sweep run suites/fashion-mnist.yaml --budget reduced --jobs 2

report: build
	.build/release/sqakd report

# Regenerate the PyTorch golden files used by the tests.
golden:
	/usr/bin/python3 scripts/make_golden.py
	/usr/bin/python3 scripts/make_quantizer_golden.py
	/usr/bin/python3 scripts/make_optim_schedule_golden.py
	/usr/bin/python3 scripts/make_safetensors_fixture.py
	/usr/bin/python3 scripts/make_kd_golden.py
	/usr/bin/python3 scripts/make_imagenet_golden.py
	/usr/bin/python3 scripts/make_tiny_imagenet_golden.py
	/usr/bin/python3 scripts/make_quirks_golden.py
	/usr/bin/python3 scripts/make_torchvision_checkpoint.py

clean:
	rm -rf .build
