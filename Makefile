# hunyuan-trtllm: the front door. `make` (or `make help`) lists every target.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/hunyuan-trt
PROFILE ?= cpu-tiny
ENGINE ?=
ENGINE_ARG := $(if $(ENGINE),--engine $(ENGINE))
MODEL_DIR ?=
WORKSPACE ?= workspace/$(PROFILE)
URL ?= http://127.0.0.1:8080
API_KEY ?=

##@ General
help: ## List every target
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target> [PROFILE=name] [MODEL_DIR=dir]\n"} \
	/^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } \
	/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## Create .venv and install the package with dev tools (pinned by constraints.txt)

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[serve,dev,quantize]'
	touch $@

##@ Quality
lint: setup ## Ruff on the code
	$(VENV)/bin/ruff check pipeline tests tools
	$(VENV)/bin/hadolint docker/Dockerfile docker/Dockerfile.cpu docker/Dockerfile.gateway docker/Dockerfile.vllm docker/Dockerfile.sglang
	$(VENV)/bin/yamllint -c k8s/.yamllint.yaml k8s docker/compose.yaml

TEST_WORKERS ?= 2

# One compute thread per test process and its children: the TEST_WORKERS processes already fill the cores, and two
# OpenMP threads each on two cores spin-wait for each other (make test: 3 min 38 s to 4 min 0 s without, 3 min 20 s
# and 3 min 26 s with, 2026-12-07 on the 2-core VM).
test: setup lint ## Lint and the whole test suite (what CI runs), on TEST_WORKERS processes (one test file each at a time)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests

test-fast: setup ## Unit tests only: no servers or subprocesses, nothing slow (< 60 s on 2 cores)
	$(PY) -m pytest -q -m "not integration and not slow" tests

# The GPU image runs Python 3.12 with NVIDIA's own torch: install everything else on 3.12 and run the tests that
# do not need torch (tests/conftest.py leaves out the ones that do when torch is missing).
PY312 ?= $(firstword $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null) \
                     $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12))
VENV312 ?= .venv312

$(VENV312)/.installed: pyproject.toml constraints.txt
	@test -n "$(PY312)" || { echo "make test-py312: no python3.12 (set PY312=/path/to/python3.12)"; exit 2; }
	$(PY312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install -q --upgrade pip packaging setuptools
	$(VENV312)/bin/python tools/requirements.py --extras serve,dev --without torch > $(VENV312)/requirements.txt
	$(VENV312)/bin/python -m pip install -q -c constraints.txt -r $(VENV312)/requirements.txt
	$(VENV312)/bin/python -m pip install -q --no-deps -e .
	touch $@

test-py312: $(VENV312)/.installed ## Python 3.12 without torch (the image's Python): the tests that do not need torch
	$(VENV312)/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version'
	$(VENV312)/bin/python -m pytest -q -p no:cacheprovider tests

##@ Pipeline
plan: setup ## Memory plan for PROFILE (ENGINE=trtllm|vllm|sglang)
	$(CLI) plan --profile $(PROFILE) $(ENGINE_ARG)

BUNDLE ?= $(WORKSPACE)/bundle

REVISION ?=
REVISION_ARG := $(if $(REVISION),--revision $(REVISION))

download: setup ## Fetch PROFILE's weights (pinned commit, or REVISION=) into models/<repo>@<commit> (resumable)
	$(CLI) download --profile $(PROFILE) $(ENGINE_ARG) $(REVISION_ARG)

# Without MODEL_DIR: the quantize step the model-prep Job runs when PROFILE serves another weights format than it
# downloads (a100x2: INT8 weight-only from BF16; FP8 profiles: Tencent's FP8 relabelled), into
# models/<repo>@<commit>-<weights>, kept when current; `quantize --profile` says "nothing to quantize" otherwise.
build-engine: setup ## Plan, quantize the download when PROFILE serves another format (kept when current), bundle for ENGINE=trtllm|vllm|sglang in BUNDLE (MODEL_DIR=: from it)
	$(CLI) plan --profile $(PROFILE) $(ENGINE_ARG)
	$(if $(MODEL_DIR),,$(CLI) quantize --profile $(PROFILE) $(ENGINE_ARG) $(REVISION_ARG))
	$(CLI) build --profile $(PROFILE) $(ENGINE_ARG) $(if $(MODEL_DIR),--model-dir "$(MODEL_DIR)",$(REVISION_ARG)) --out $(BUNDLE) --force

FORMAT ?= fp8
QUANT_OUT ?= $(WORKSPACE)/quantized-$(FORMAT)
QUANT_ARGS ?=

quantize: setup ## Quantize MODEL_DIR (BF16; default: embedded hunyuan-tiny) to FORMAT=fp8|int8-wo|w4a8-awq in QUANT_OUT, then verify on CPU (FROM_PUBLISHED=1: relabel Tencent's FP8)
	$(CLI) quantize --model-dir $(or $(MODEL_DIR),pipeline/data/hunyuan-tiny) $(if $(FROM_PUBLISHED),--from-published,--format $(FORMAT)) --out $(QUANT_OUT) $(QUANT_ARGS)
	$(if $(or $(HF_DIR),$(if $(MODEL_DIR),,1)),$(CLI) verify --quantized $(QUANT_OUT) --hf-dir $(or $(HF_DIR),pipeline/data/hunyuan-tiny),@echo "verify skipped: give HF_DIR=the BF16 checkpoint (a CPU forward of the full model is not feasible; it runs on tiny models)")

SERVE_PORT ?= 8080

serve: setup ## Serve BUNDLE (its engine: trtllm-serve, vllm, SGLang, or the CPU stand-in for cpu-tiny) with the adapter on SERVE_PORT
	$(CLI) serve --bundle $(BUNDLE) --port $(SERVE_PORT)

smoke: setup ## Smoke-test a running endpoint (URL=..., API_KEY=...); exit code = failed checks
	@mkdir -p $(WORKSPACE)
	HUNYUAN_TRT_API_KEY="$(API_KEY)" $(CLI) smoke --url $(URL) --json $(WORKSPACE)/smoke.json

demo: setup ## The whole pipeline on the embedded tiny model behind the smg gateway, with a summary table
	$(CLI) demo

##@ Tiny model
tiny-model: setup ## Train the embedded hunyuan-tiny on CPU (deterministic, seed 0), then measure it
	$(CLI) tiny train
	$(CLI) tiny eval

tiny-eval: setup ## Measure hunyuan-tiny on held-out prompts; writes eval.json and the model card's table
	$(CLI) tiny eval

.PHONY: tiny-model tiny-eval

.PHONY: help setup lint test test-fast test-py312 plan download build-engine quantize serve smoke demo

##@ Benchmarks
BENCH_VENV ?= .venv-bench
AIPERF_VERSION ?= 0.13.0
CONCURRENCY ?= 1,4,16
BENCH_ARGS ?=

bench-setup: ## Install NVIDIA's aiperf into its own virtualenv .venv-bench (~1.2 GB, ~2 min; never used by tests)
	@test -x $(BENCH_VENV)/bin/aiperf || { $(PYTHON) -m venv $(BENCH_VENV) && \
	  $(BENCH_VENV)/bin/pip install -q aiperf==$(AIPERF_VERSION); }
	@$(BENCH_VENV)/bin/aiperf --version

CPU_CHAIN ?=

bench: setup bench-setup ## aiperf against URL (or CPU_CHAIN=2: start the demo chain) for PROFILE; reports/bench/PROFILE
	HUNYUAN_TRT_AIPERF=$(BENCH_VENV)/bin/aiperf HUNYUAN_TRT_API_KEY="$(API_KEY)" \
	  $(CLI) bench $(if $(CPU_CHAIN),--cpu-chain $(CPU_CHAIN) --plain-text,--url $(URL)) --profile $(PROFILE) \
	  --concurrency $(CONCURRENCY) $(BENCH_ARGS)

URLS ?=
CPU_SURFACES ?=

bench-engines: setup bench-setup ## The same aiperf load against each engine: URLS=trtllm=…,vllm=…,sglang=… (or CPU_SURFACES=trtllm,vllm,sglang); reports/bench/engines
	HUNYUAN_TRT_AIPERF=$(BENCH_VENV)/bin/aiperf HUNYUAN_TRT_API_KEY="$(API_KEY)" \
	  $(CLI) bench-engines $(if $(CPU_SURFACES),--cpu-surfaces $(CPU_SURFACES) --plain-text,--urls $(URLS)) \
	  --profile $(PROFILE) --concurrency $(CONCURRENCY) $(BENCH_ARGS)

bench-overhead: setup bench-setup ## Direct vs adapter vs gateway+adapter on the same visible tokens: aiperf + paired probe (CPU stand-in)
	HUNYUAN_TRT_AIPERF=$(BENCH_VENV)/bin/aiperf $(CLI) bench-overhead $(BENCH_ARGS)

BENCH_CONVERT_ARGS ?=
bench-convert: setup ## Cold convert vs cp at A13B widths (3 layers, ~15 GB synthetic in /tmp, deleted after): ratio, peak RSS
	@test -x /usr/bin/time || { echo "GNU time not found: apt-get install time" >&2; exit 1; }
	$(PY) benchmarks/bench_convert.py $(BENCH_CONVERT_ARGS)

BENCH_QUANTIZE_ARGS ?=
bench-quantize: setup ## Quantize stage at A13B widths (synthetic, /tmp, deleted after) vs cp: int8-wo stream and --from-published, ratio, peak RSS
	@test -x /usr/bin/time || { echo "GNU time not found: apt-get install time" >&2; exit 1; }
	$(PY) benchmarks/bench_quantize.py $(BENCH_QUANTIZE_ARGS)

drills: setup ## Fault drills (replica kill, rolling restart, converter crash, bad input, auth, hostile input, orphans): table in reports/drills.md
	$(CLI) drills --report reports/drills.md

.PHONY: bench-setup bench bench-engines bench-overhead bench-convert bench-quantize drills

##@ Deploy
k8s: setup ## Re-render k8s/overlays/<profile>[-<engine>]/ and the golden k8s/rendered/*.yaml from the profiles
	@command -v kubectl >/dev/null || { echo "kubectl not found: install kubectl (it bundles kustomize)" >&2; exit 1; }
	$(CLI) render all

CONTAINER_TOOL ?= docker
IMAGE_REF = $$($(PY) -c 'from pipeline.deploy.settings import IMAGES; print(":".join(IMAGES["$(1)"]))')
images: setup ## Build the GPU, CPU and gateway images (needs a container daemon; names match k8s/)
	$(CONTAINER_TOOL) build -f docker/Dockerfile -t $(call IMAGE_REF,gpu) .
	$(CONTAINER_TOOL) build -f docker/Dockerfile.cpu -t $(call IMAGE_REF,cpu) .
	$(CONTAINER_TOOL) build -f docker/Dockerfile.gateway -t $(call IMAGE_REF,gateway) .

engine-image: setup ## Build the vLLM or SGLang serving image: make engine-image ENGINE=vllm (or sglang)
	@case "$(ENGINE)" in vllm|sglang) ;; *) echo "ENGINE=vllm or ENGINE=sglang (TensorRT-LLM: make images)" >&2; exit 2;; esac
	$(CONTAINER_TOOL) build -f docker/Dockerfile.$(ENGINE) -t $(call IMAGE_REF,$(ENGINE)) .

.PHONY: k8s images engine-image
