# The front door. Each variable is the CLI option of the same name
# (ARCH= -> --arch). The CLI's exit code is passed through: 0 pass, 1 fail,
# 2 config-error, 3 infra-error, 4 build-error, 5 boot-failure.

# A value reaches the CLI as one word, whatever it holds: a TITLE copied from a
# kernel report may hold ' or $(...). Each variable given on the command line or
# in the environment is taken verbatim (make neither expands it nor exports an
# expansion of it), and $(call q,VALUE) single-quotes it for the shell.
OPTION_VARS := ARCH PYTHON VENV KERNEL_SRC KERNEL_VERSION PROFILE STORM SEED DURATION ACCEL INJECT \
	INACTIVITY LEAVE_OUT STAGGER PREEMPT FAULTS STOP_ON_REPORT GOOD BAD RUNS TITLE CASES YARDSTICK \
	BENCH_COLD REPEAT ARCHES KERNEL_VERSIONS JOBS MODULE_CHECK_ARCHES MODULE_CHECK_VERSIONS UNIT_WORKERS
define newline


endef
$(foreach v,$(OPTION_VARS),$(if $(filter command line environment,$(origin $(v))),\
	$(eval override $(v) := $$(value $(v)))))
$(foreach v,$(OPTION_VARS),$(if $(findstring $(newline),$(value $(v))),$(error $(v) holds a newline)))
q = '$(subst ','\'',$(1))'
ARCH ?= x86_64
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HARNESS := $(call q,$(PY)) -m harness

KERNEL_SRC ?=
KERNEL_VERSION ?= 6.1
PROFILE ?= lockdep
STORM ?= swapoff-fork-mmap
SEED ?= 1
DURATION ?=
ACCEL ?= auto
INJECT ?=
INACTIVITY ?=
LEAVE_OUT ?=
STAGGER ?=
PREEMPT ?= full
FAULTS ?=
STOP_ON_REPORT ?=
PYTEST_ARGS ?=
# make unit: pytest-xdist worker processes (most unit tests wait on timeouts).
UNIT_WORKERS ?= 4
GOOD ?=
BAD ?=
RUNS ?=
TITLE ?=

# Our make variables must not leak into the kernel's make through MAKEFLAGS.
unexport MAKEFLAGS MFLAGS
MAKEOVERRIDES :=

RUN_ARGS = --arch $(call q,$(ARCH)) --kernel-version $(call q,$(KERNEL_VERSION)) --profile $(call q,$(PROFILE)) \
	--storm $(call q,$(STORM)) --seed $(call q,$(SEED)) --accel $(call q,$(ACCEL)) --preempt $(call q,$(PREEMPT)) \
	$(if $(KERNEL_SRC),--kernel-src $(call q,$(KERNEL_SRC))) \
	$(if $(DURATION),--duration $(call q,$(DURATION))) \
	$(if $(INJECT),--inject $(call q,$(INJECT))) \
	$(if $(INACTIVITY),--inactivity-timeout $(call q,$(INACTIVITY))) \
	$(if $(LEAVE_OUT),--leave-out $(call q,$(LEAVE_OUT))) \
	$(if $(STAGGER),--stagger $(call q,$(STAGGER))) \
	$(if $(FAULTS),--faults $(call q,$(FAULTS))) \
	$(if $(STOP_ON_REPORT),$(if $(filter 0 no false,$(STOP_ON_REPORT)),--no-stop-on-report,--stop-on-report))

CASES ?=
BENCH_COLD ?= 1
REPEAT ?= 3

.PHONY: all venv deps test-deps build boot boot-test shell selftest matrix module-check soak bisect bench zoo test unit clean

all: boot-test

$(VENV)/.installed: pyproject.toml scripts/venv.sh
	@scripts/venv.sh $(call q,$(PYTHON)) $(call q,$(VENV))
	@touch $@

venv: $(VENV)/.installed

deps: venv
	@$(HARNESS) deps --arch $(call q,$(ARCH)) --kernel-version $(call q,$(KERNEL_VERSION))

ARCHES ?= x86_64 aarch64
KERNEL_VERSIONS ?= 6.1
JOBS ?=

matrix: venv
	@$(HARNESS) deps --arch $(call q,$(ARCHES)) --kernel-version $(call q,$(KERNEL_VERSIONS))
	@$(HARNESS) matrix --arches $(call q,$(ARCHES)) --kernel-versions $(call q,$(KERNEL_VERSIONS)) --profile $(call q,$(PROFILE)) \
		--storm $(call q,$(STORM)) --seed $(call q,$(SEED)) --accel $(call q,$(ACCEL)) $(if $(DURATION),--duration $(call q,$(DURATION))) \
		$(if $(JOBS),--jobs $(call q,$(JOBS))) $(if $(LEAVE_OUT),--leave-out $(call q,$(LEAVE_OUT)))

# The test module, warning-free against every arch x kernel version (default:
# every arch, 6.1 and 6.12); trees without a finished kernel build are only
# brought to modules_prepare. results/module-check/summary.json.
MODULE_CHECK_ARCHES ?= $(sort $(basename $(notdir $(wildcard configs/arches/*.yaml))))
MODULE_CHECK_VERSIONS ?= 6.1 6.12
module-check: venv
	@$(HARNESS) deps --arch $(call q,$(MODULE_CHECK_ARCHES)) --kernel-version $(call q,$(MODULE_CHECK_VERSIONS))
	@$(HARNESS) module-check --arches $(call q,$(MODULE_CHECK_ARCHES)) --kernel-versions $(call q,$(MODULE_CHECK_VERSIONS)) \
		--profile $(call q,$(PROFILE))

test-deps: venv
	@$(HARNESS) deps --arch 'x86_64 aarch64 i386' --kernel-version 6.1 --packages 'chromium stress-ng'

build: deps
	@$(HARNESS) build --arch $(call q,$(ARCH)) --kernel-version $(call q,$(KERNEL_VERSION)) --profile $(call q,$(PROFILE)) \
		$(if $(KERNEL_SRC),--kernel-src $(call q,$(KERNEL_SRC)))

boot: deps
	@$(HARNESS) boot $(RUN_ARGS)

boot-test: deps
	@$(HARNESS) run $(RUN_ARGS)

# An interactive shell in the guest: SSH when sshd comes up, else the serial
# console; console.log is recorded as in every run.
shell: deps
	@$(HARNESS) shell $(RUN_ARGS)

selftest: deps
	@$(HARNESS) selftest --arch $(call q,$(ARCH)) --kernel-version $(call q,$(KERNEL_VERSION)) --profile $(call q,$(PROFILE)) \
		--accel $(call q,$(ACCEL)) $(if $(KERNEL_SRC),--kernel-src $(call q,$(KERNEL_SRC))) $(if $(CASES),--cases $(call q,$(CASES)))

# git bisect KERNEL_SRC between GOOD and BAD with a storm as the test:
# 0 culprit named, 1 none, 2 bad input, 3 infra (results/bisect/bisect.json).
bisect: deps
	@$(HARNESS) bisect $(RUN_ARGS) --good $(call q,$(GOOD)) --bad $(call q,$(BAD)) \
		$(if $(RUNS),--runs $(call q,$(RUNS))) $(if $(TITLE),--title $(call q,$(TITLE)))

soak: deps
	@$(HARNESS) soak --runs $(call q,$(or $(RUNS),20)) $(RUN_ARGS)

# The regression zoo: each configs/zoo case (a real mm-locking fix, undone)
# built in one git work tree of Debian's source, our storm and stress-ng on
# its kernel -> results/zoo/summary.json and a table. CASES= a subset;
# YARDSTICK=0 skips stress-ng.
YARDSTICK ?= 1
zoo: deps
	@$(HARNESS) zoo $(RUN_ARGS) $(if $(CASES),--cases $(call q,$(CASES))) \
		$(if $(filter 0 no false,$(YARDSTICK)),--no-yardstick)

# Figures for this machine: builds (cold unless BENCH_COLD=0), boot, storm
# intensity and thoroughness against Debian's stress-ng, parser speed; each
# a median of REPEAT samples -> results/bench/bench.json and a table.
bench: deps
	@$(HARNESS) bench --arch $(call q,$(ARCH)) --kernel-version $(call q,$(KERNEL_VERSION)) --profile $(call q,$(PROFILE)) \
		--repeat $(call q,$(REPEAT)) $(if $(filter 0 no false,$(BENCH_COLD)),--no-cold,--cold)

# Unit tests, then the end-to-end tests (real kernel builds and QEMU boots).
test: test-deps
	@$(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	@$(PY) -m pytest -m 'not e2e' -n $(call q,$(UNIT_WORKERS)) $(PYTEST_ARGS)

clean:
	rm -rf results .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
