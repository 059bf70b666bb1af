# Two entry points: `make demo` (set up, run the smoke benchmark, show the leaderboard)
# and `make test` (set up, run the test suite). Both create .venv when it is missing.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RESULTS ?= runs

.PHONY: demo test test-fast test-cluster bench gpu-check check-reported protocols screenshot browser clean

$(STAMP): pyproject.toml
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[test]' --config-settings editable_mode=lenient
	@touch $@

# Debian's Chromium and ChromeDriver, for the HTML leaderboard tests.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

# The smoke grid (dense + every method on digits) on an embedded local Ray cluster; the grid
# ends with the leaderboard in the terminal and as a self-contained HTML page beside the runs.
demo: $(STAMP)
	$(VENV)/bin/prunebench submit configs/grids/smoke.yaml --set storage_path=$(RESULTS)

# The shipped configs' two-step runs apart, two at a time: one torch thread each, so on 2 cores
# they take about half their CPU time.
test: $(STAMP) browser
	$(PYTHON) -m pytest -m "not cluster and not configs"
	$(PYTHON) -m pytest -m configs -n 2 --dist worksteal

# The edit-test loop: every layer's unit tests, two at a time; nothing marked slow (whole runs,
# Ray, a browser, an interpreter per case), cluster or configs: 931 tests in about a minute on
# 2 cores (docs/reliability.md).
test-fast: $(STAMP)
	$(PYTHON) -m pytest -m "not slow and not cluster and not configs" -n 2 -q

# The multi-process cluster tests: two `ray start` nodes, node loss, `ray job submit`, S3
# storage on a local server, killed drivers resumed. CI runs them after `make test`.
test-cluster: $(STAMP) browser
	$(PYTHON) -m pytest -m cluster

bench: $(STAMP)
	$(PYTHON) -m bench.run_all

# On a machine with CUDA: NCCL DDP, DALI mixed vs CPU decoding, AMP vs fp32, pruned latency on
# the GPU (a few minutes; bench/results/gpu_check.json). Without a GPU: one line, exit 0.
gpu-check: $(STAMP)
	$(PYTHON) -m bench.gpu_check

# leaderboard/reported.csv against the papers' plain-text files in PAPERS (not shipped with the
# repository): every number occurs near its table. Exit 2 when the folder is missing.
PAPERS ?= ../shared/papers
check-reported: $(STAMP)
	$(PYTHON) -m scripts.check_reported $(PAPERS)

# The README's picture of the page, from the demo's runs (run `make demo` first); commit the image.
screenshot: $(STAMP) browser
	$(PYTHON) -m scripts.screenshot $(RESULTS)/smoke docs/leaderboard.png

# leaderboard/protocols.json from the configs that reported.csv names as its rows' protocols
# (after a change to one of them, or to a config default; a test says when it is due).
protocols: $(STAMP)
	$(PYTHON) -m scripts.protocols

clean:
	rm -rf $(RESULTS) wandb .pytest_cache
