# The README's two commands are `make up` (the platform on a local cluster) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## install what a fresh machine lacks (Debian packages, uv, venv, tools built from source)
	scripts/setup.sh

tools: ## build the local infrastructure tools that are not cached yet
	tools/build.sh

test: setup lint ## set up, lint, then run the whole test suite against real local servers
	uv run --frozen pytest

lint: ## ruff lint and format check
	uv run --frozen ruff check --no-cache .
	uv run --frozen ruff format --check .
	uv run --frozen mypy

up: setup ## bring the whole platform up locally (cluster, FerretDB, pulumi up, API and operator)
	uv run --frozen python -m localdev up

down: ## stop everything `make up` started and destroy the stack
	uv run --frozen python -m localdev down

scan: ## policy scan (checkov, pinned, own tool env) of the local, dev and prod stacks' manifests
	uv run --frozen pytest -p no:cacheprovider -s -q tests/components/test_policy_scan.py

fuzz: ## long generated-input run over the API's OpenAPI document (real FerretDB + cluster); prints case counts
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} FUZZ_MIN_CASES=$${FUZZ_MIN_CASES:-5000} uv run --frozen pytest \
		-p no:cacheprovider -s -q tests/services/api/test_fuzz.py -k "no_server_errors or enough_cases"

bench: setup ## run the benchmarks (figures as ratios against a baseline of the same run)
	uv run --frozen python -m bench

.PHONY: help setup tools test lint up down scan fuzz bench
