# stoxgw: the two set-up commands of README.md, for a fresh Debian 12 machine as root.
#
#   make test   installs what the suite needs, then runs the whole suite (trial)
#   make demo   installs what the demo needs, then runs it (Prosody + gateway)
#   make fuzz   installs atheris, then fuzzes every parser (fuzz/README.md); not
#               part of make test: 1,000,000 inputs per harness by default
#
# All three create or update the virtualenv $(VENV) and install the package into it
# (not editable: the twistd plugin file must land in twisted/plugins).

PYTHON ?= python3
VENV ?= .venv
VPY = $(VENV)/bin/python
# Real peers of the interop tests and the demo (PEERS.md), man for the
# manual page test, valgrind for the W9 instruction-count check (bench/).
DEBS = prosody lua-unbound ejabberd sip-tester kamailio man-db groff-base valgrind
TRIAL_ARGS ?= tests

.PHONY: all test demo bench fuzz deps venv check-config clean

all: test

deps:
	@missing=""; \
	for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null)

venv: deps
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install -q --upgrade pip setuptools wheel
	@$(VPY) -m pip install -q '.[test]'

test: venv
	$(VPY) -m twisted.trial $(TRIAL_ARGS)

demo: venv
	$(VPY) demo/demo.py

# Benchmarks print ratios to baselines measured in the same run (bench/README.md):
# the suite, W1-W9 and the MSRP stack against R_msrp before and after issue 13
# (writes bench/results.json and bench/report.md).  BENCH_ARGS go to bench/run.py, e.g. --workloads w9.
bench: venv
	$(VPY) bench/run.py $(BENCH_ARGS)

# Coverage-guided fuzzing (atheris, the [fuzz] extra) of every parser: runs
# each harness of fuzz/ for FUZZ_ARGS (default --runs 1000000), two at a time
# on two CPUs; exits non-zero on a crash, saved under fuzz/crashes/.  Needs no
# Debian package beyond python3-venv: the harnesses run sans-IO.
FUZZ_ARGS ?=

fuzz:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null)
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install -q --upgrade pip setuptools wheel
	@$(VPY) -m pip install -q '.[fuzz]'
	$(VPY) fuzz/run.py $(FUZZ_ARGS)

check-config: venv
	$(VENV)/bin/stoxgw-checkconfig $(CONFIG)

clean:
	rm -rf $(VENV) build *.egg-info _trial_temp fuzz/corpus fuzz/logs
