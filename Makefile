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
	$(PYTHON) -m pytest -q

test-slow: $(STAMP)
	$(PYTHON) -m pytest -q --run-slow -m slow

bench: $(STAMP)
	$(PYTHON) benchmarks/runtime_stability.py
	$(PYTHON) benchmarks/isolation_overhead.py
	$(PYTHON) benchmarks/metrics_speed.py
	$(PYTHON) benchmarks/scoring_speed.py

clean:
	rm -rf results $(STAMP) build *.egg-info
