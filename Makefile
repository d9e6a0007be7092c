# Rodeo's entry points. Each target sets up what it needs first, and every
# target is safe to run again.
#   make bake   install, start the local stack, bake the sample app image and release it: ends with its URL
#   make test   install, then run the whole test suite
#   make setup  install only (apt: APT_PACKAGES below; .venv with Rodeo and its dev tools, by uv)

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := packer mmdebstrap openssh-client git util-linux python3-venv haproxy systemd-container socat iproute2
STAMP := $(VENV)/.installed
# The distribution's Python: Debian's and Ubuntu's are built with PGO and LTO; a pyenv or source build without
# --enable-optimizations ran the suite's Python (moto, botocore, Ansible, the tests) about 30% slower here.
# Another: make PYTHON=python3.12 ...
PYTHON := /usr/bin/python3

.PHONY: setup bake test clean

setup: $(STAMP)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v packer >/dev/null && packer version | head -1
	@$(PY) -m compileall -q toolkit tests tasks.py >/dev/null  # Rodeo's own code, installed editable: kept fresh

# Reinstall only when the dependencies change. uv installs what pip would (the same resolution from the same
# index) in about 2 s where pip took about 34 s of one core here: pip only installs uv. --compile-bytecode writes
# the .pyc files pip writes at install and uv does not: without them, where PYTHONDONTWRITEBYTECODE is set (this
# machine sets it), every process compiled every module it imported, every time (importing Rodeo's release code
# took 0.56 CPU-s instead of 0.21; moto's server 0.74 instead of 0.30).
$(STAMP): pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV) 2>/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	@[ -x $(VENV)/bin/uv ] || $(PY) -m pip install -q --disable-pip-version-check 'uv>=0.9,<1'
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e '.[dev]'
	@# uv compiles only what this install put in; a venv made before keeps the rest uncompiled (about 12 s, once).
	@$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null
	@touch $(STAMP)

# A deploy, not only a bake: the sample app is served at the URL it prints (again: reused, unchanged, same URL).
bake: setup
	$(SUDO) $(VENV)/bin/invoke deploy
	@echo "next: $(strip $(SUDO) $(VENV)/bin/invoke) config.set GREETING=Howdy (released like code), then open that URL again;"
	@echo "      or bake your own app from its Procfile: README, 'Bake your own app'"

# The linter and the formatter first (pyproject's [tool.ruff]): seconds, before the suite's minutes.
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(SUDO) $(VENV)/bin/pytest

clean:
	-$(VENV)/bin/invoke local.down
	rm -rf .rodeo
