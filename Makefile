# Two entry points on a fresh machine: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# The CPU build of torch that this project's machines carry; installing it first keeps pip
# from pulling the multi-GB CUDA wheels to satisfy `torch>=2.1`.
TORCH_SPEC ?= torch==2.13.0
SHARED_ZOO := $(wildcard ../shared/model_zoo)
MODEL_ZOO ?= $(SHARED_ZOO)
ZOO_FLAG := $(if $(MODEL_ZOO),--model-zoo $(MODEL_ZOO),)
STAMP := .install.stamp

.PHONY: install run score test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[test,ray]"
	@# bubblewrap confines submission workers best; without it they fall back to Landlock (docs/isolation.md).
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; }; }; } || \
		echo "note: bubblewrap is not installed; workers will be confined with Landlock where the kernel allows"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	ntire-bench run submissions/ $(ZOO_FLAG)

score: $(STAMP)
	ntire-bench score --results results --out leaderboard

test: $(STAMP)
	lint-imports
	$(PYTHON) -m pytest -q

test-slow: $(STAMP)
	$(PYTHON) -m pytest -q --run-slow -m slow

# Every benchmark, grouped as the package is; each prints ratios measured within its own run.
# The challenge benchmark needs an official checkout: make bench NTIRE_CHECKOUT=/path/to/NTIRE2024_ESR
bench: $(STAMP)
	$(PYTHON) -m benchmarks.timing.runtime_stability
	$(PYTHON) -m benchmarks.timing.timing_cost
	$(PYTHON) -m benchmarks.runner.isolation_overhead
	$(PYTHON) -m benchmarks.metrics.metrics_speed
	$(PYTHON) -m benchmarks.metrics.scoring_speed
	$(PYTHON) -m benchmarks.uploads.upload_scoring
	$(PYTHON) -m benchmarks.cluster.ray_speedup
	@if [ -n "$(NTIRE_CHECKOUT)" ]; then $(PYTHON) -m benchmarks.ntire.ntire_challenge "$(NTIRE_CHECKOUT)"; \
	else echo "skipped benchmarks.ntire.ntire_challenge: pass NTIRE_CHECKOUT=/path/to/an/official/checkout"; fi

clean:
	rm -rf results $(STAMP) build *.egg-info
