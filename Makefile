# juno.hub developer and CI entry points. Every target does its own set-up when something is
# missing (virtualenv, Docker engine, test images), so a fresh Debian 12 machine needs nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
BIN         := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0
COLLECTION_LINK := .collections/ansible_collections/juno/hub
SCENARIOS   ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
PYTEST_ARGS ?=

.PHONY: help tools setup k8s-components lint docs sanity units integration molecule test lab lab-destroy bench bench-ad build ee docker images clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

tools: ## host tools the tests and the lab call (installs the missing ones from Debian's archive)
	tests/harness/ensure-tools.sh

$(VENV)/.installed: requirements.txt
	@command -v python3 >/dev/null || { echo "python3 (3.11 or newer) is needed" >&2; exit 1; }
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

# The bytecode of the collection's plugins is written here, whatever PYTHONDONTWRITEBYTECODE says:
# ansible-core forks a worker per task and host, and each worker imports the filter plugins its task
# uses; without a .pyc, every worker compiles them from source again (docs/performance.md).
setup: $(VENV)/.installed $(COLLECTION_LINK) ## virtualenv with the pinned requirements; link the checkout as juno.hub; plugins' bytecode
	@$(PY) -m compileall -q plugins

# The docs site's own packages (Sphinx theme, MyST), pinned in docs/sphinx/requirements.txt.
$(VENV)/.docs-installed: docs/sphinx/requirements.txt $(VENV)/.installed
	$(PY) -m pip install -q -r docs/sphinx/requirements.txt
	touch $@

docker: ## start a Docker engine when none answers (installs Debian's docker.io if missing)
	tests/harness/ensure-docker.sh

images: docker ## build the local test images (Debian 12 systemd base, Samba AD DC)
	tests/harness/build-images.sh

lint: setup ## yamllint, ansible-lint (production profile) and antsibull-docs' collection docs linter
	yamllint -s .
	ansible-lint
	antsibull-docs lint-collection-docs --plugin-docs .

docs: setup $(VENV)/.docs-installed ## the docs site (antsibull-docs + Sphinx, a warning fails it): .cache/docs/html/index.html
	docs/sphinx/build.sh .cache/docs

sanity: setup ## ansible-test sanity on a copy laid out as ansible_collections/juno/hub
	tests/harness/sanity.sh

units: setup ## unit tests of modules, filters and templates
	mkdir -p tests/output
	pytest -q tests/unit --junitxml=tests/output/units.xml $(PYTEST_ARGS)

integration: setup images k8s-components ## tests against real services (Samba AD, etcd, JupyterHub, a kubeadm cluster) in containers
	mkdir -p tests/output
	pytest -q tests/integration --junitxml=tests/output/integration.xml $(PYTEST_ARGS)

molecule: setup images ## every molecule scenario (converge, idempotence, check, verify)
	@mkdir -p tests/output; \
	tests/harness/molecule.sh $(SCENARIOS)

test: ## everything CI runs: lint, docs, sanity, units, integration, molecule
	@$(MAKE) --no-print-directory tools setup docker images
	@rc=0; \
	for t in lint docs sanity units integration molecule; do \
	  echo "##### make $$t"; \
	  JUNO_IMAGES_BUILT=1 $(MAKE) --no-print-directory $$t || { rc=1; echo "##### make $$t FAILED"; }; \
	done; \
	tests/harness/stop-docker.sh; \
	tests/harness/summary.sh $$rc; \
	exit $$rc

k8s-components: ## Kubernetes components built from their Go modules, as .deb files and image archives (.cache/components)
	tests/harness/ensure-tools.sh go mmdebstrap dpkg-deb
	python3 tests/components/build.py $(COMPONENTS_ARGS)

# RENDER=1: the lab without a cluster (site.yml in render mode; no Go build needed).
lab: tools setup images $(if $(RENDER),,k8s-components) ## local container lab: a real kubeadm cluster (1 control plane, 2 workers), NFS, Samba AD; RENDER=1 renders only
	$(PY) tests/harness/lab.py up $(if $(RENDER),--render) -- $(LAB_ARGS)

lab-destroy: ## remove the lab containers, network and inventory
	$(PY) tests/harness/lab.py down

bench: setup images k8s-components ## benchmarks: site.yml first/noop/add-node/single/stock runs, apply-mode first/noop, AD lookup
	bench/run.sh

bench-ad: setup images ## AD lookup benchmark alone (chain rule vs naive)
	bench/ad.sh

ee: setup images ## the execution environment (execution-environment.yml built here from local sources): juno-hub-ee:<version>
	$(PY) tests/harness/ee.py

build: setup ## build the collection tarball
	ansible-galaxy collection build --force --output-path .cache/dist .

clean: ## remove caches (keeps .venv)
	rm -rf .cache/facts .cache/dist .cache/sanity .cache/docs .cache/ee tests/output
