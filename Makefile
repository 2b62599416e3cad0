# The commands README.md names. Every target sets up .venv first, so on a fresh machine
# `make lab` and `make test` are all a newcomer types.
#
#   make lab             JupyterLab on notebooks/ (installs the lab only)
#   make test            the whole test suite, notebooks included (what CI runs; adds the
#                        test tools to the lab's .venv)
#   make notebooks       execute every notebook headless (fast mode) into build/notebooks/
#   make notebooks-full  the published-scale run (--mode full --device auto)
#   make gpu             the full notebook run on CUDA, the GPU tests, a report in reports/gpu/
#                        (GPU_PY=python3 on a machine without network: no .venv)
#   make bench           benchmarks/bench_phi4.py on the default device (BENCH_ARGS=--quick)
#   make bench-fermions  benchmarks/bench_fermions.py (Wilson–Dirac, CG, pseudofermion HMC)
#   make bench-u1-inverse  benchmarks/bench_u1_inverse.py (the U(1) flow's reverse pass)
#   make lint            ruff
#   make nbval           nbval in lax mode over notebooks/ (a second, independent execution)
#   make clean           remove build outputs (keeps .venv)
#
# torch is installed first and pinned to a CPU-only wheel by default; on a GPU machine pick
# the build with TORCH_SPEC, e.g. `make gpu TORCH_SPEC=torch` (PyPI's Linux default is CUDA).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LAB_STAMP := $(VENV)/.installed-lab
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: venv lab-venv lab test nbval notebooks notebooks-full gpu bench bench-fermions bench-u1-inverse lint clean

# Two stages, each re-installed only when pyproject.toml (or this file) changed since:
# lab-venv is what the notebooks need (torch, the package, JupyterLab), so a first `make lab`
# opens JupyterLab after a few minutes; venv adds the test tools ([dev]) for `make test`.
# jupyter-repo2docker is a test tool, not a dependency of the lab: tests/test_binder.py has
# it render the Binder image's Dockerfile (no Docker needed) to check that binder/ is used.
# The lab's settings overrides (in the venv, not in the user's home) turn off JupyterLab's
# news prompt and update check: nothing stands between a student and notebook 01.
LAB_SETTINGS_DIR := $(VENV)/share/jupyter/lab/settings
lab-venv: $(LAB_STAMP)

$(LAB_STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install '$(TORCH_SPEC)'
	$(PY) -m pip install -e '.[lab]'
	mkdir -p $(LAB_SETTINGS_DIR)
	printf '%s\n' '{"@jupyterlab/apputils-extension:notification":' \
		'  {"fetchNews": "false", "checkForUpdates": false}}' > $(LAB_SETTINGS_DIR)/overrides.json
	touch $(LAB_STAMP)

venv: $(STAMP)

$(STAMP): $(LAB_STAMP)
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m pip install 'jupyter-repo2docker>=2024.7'
	touch $(STAMP)

# The file browser starts in notebooks/ and can reach the rest of the repository (data/).
# Jupyter refuses to run as root without --allow-root; containers often run as root.
lab: lab-venv
	$(VENV)/bin/jupyter lab --ServerApp.root_dir='$(CURDIR)' \
		--LabApp.default_url=/lab/tree/notebooks --LabApp.news_url=None \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# Headless runs need no environment here: pyproject.toml's pytest section sets
# MPLBACKEND=Agg and LQFT_LAB_HEADLESS=1 for every pytest run (nbval's kernels included),
# and `python -m lqft_lab notebooks` gives its kernels LQFT_LAB_HEADLESS=1 itself.

# pytest's configuration (pyproject.toml) collects tests/, which executes every notebook
# once (papermill, fast mode); it leaves out the tests marked gpu (see the gpu target).
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# Not part of `make test`: a second execution of every notebook, by nbval in a fresh kernel.
nbval: venv
	$(PY) -m pytest --nbval-lax --nbval-current-env -m 'not gpu' $(PYTEST_ARGS) notebooks

notebooks: lab-venv
	$(PY) -m lqft_lab notebooks --mode fast

notebooks-full: lab-venv
	$(PY) -m lqft_lab notebooks --mode full --device auto

# Refuses without CUDA; then every notebook in full mode on CUDA into $(GPU_OUT), GPU_JOBS of
# them at once (they share the card; each kernel gets a share of the cores), the tests
# marked gpu (which check that run's figures, so they come second; pytest's default
# -m 'not gpu' is replaced by this -m), and a report of the run in reports/gpu/. The report
# is written even when a notebook or a test failed; the target then fails.
# On a GPU machine without network, GPU_PY names a Python that already has a CUDA build of
# torch and the packages (e.g. `make gpu GPU_PY=python3`): no .venv is built then.
# GPU_ONLY runs some of the notebooks (e.g. GPU_ONLY="02 03"), for a GPU lent by the hour.
GPU_OUT := build/notebooks-full
GPU_JOBS ?= 4
GPU_PY ?=
GPU_ONLY ?=
GPU_RUN := $(or $(GPU_PY),$(PY))
GPU_THREADS := $(shell n=$$(nproc 2>/dev/null || echo 4); echo $$(( n / $(GPU_JOBS) > 0 ? n / $(GPU_JOBS) : 1 )))
gpu: $(if $(GPU_PY),,venv)
	$(if $(GPU_PY),,$(PY) -m pip install '$(TORCH_SPEC)')
	$(GPU_RUN) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
		f'torch {torch.__version__} in $(GPU_RUN) cannot use CUDA; install a CUDA build of torch')"
	OMP_NUM_THREADS=$(GPU_THREADS) $(GPU_RUN) -m lqft_lab notebooks --mode full --device cuda \
		--jobs $(GPU_JOBS) --out $(GPU_OUT) $(if $(GPU_ONLY),--only $(GPU_ONLY)); nb=$$?; \
	$(GPU_RUN) -m pytest -m gpu $(PYTEST_ARGS); tests=$$?; \
	$(GPU_RUN) -m lqft_lab report --metrics $(GPU_OUT)/metrics.json --out reports/gpu; \
	[ $$nb -eq 0 ] && [ $$tests -eq 0 ]

# Figures print as name=value lines; record them with the machine in benchmarks/RESULTS.md.
bench: lab-venv
	$(PY) benchmarks/bench_phi4.py $(BENCH_ARGS)

bench-fermions: lab-venv
	$(PY) benchmarks/bench_fermions.py $(BENCH_ARGS)

bench-u1-inverse: lab-venv
	$(PY) benchmarks/bench_u1_inverse.py $(BENCH_ARGS)

lint: venv
	$(PY) -m ruff check lqft_lab tests benchmarks
	$(PY) -m ruff format --check lqft_lab tests benchmarks

clean:
	rm -rf build .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
