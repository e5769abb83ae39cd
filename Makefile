# The front door. Each variable is the CLI option of the same name
# (ARCH= -> --arch). The CLI's exit code is passed through: 0 pass, 1 fail,
# 2 config-error, 3 infra-error, 4 build-error, 5 boot-failure.
ARCH ?= x86_64
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HARNESS := $(PY) -m harness

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
GOOD ?=
BAD ?=
RUNS ?=
TITLE ?=

# Our make variables must not leak into the kernel's make through MAKEFLAGS.
unexport MAKEFLAGS MFLAGS
MAKEOVERRIDES :=

RUN_ARGS = --arch '$(ARCH)' --kernel-version '$(KERNEL_VERSION)' --profile '$(PROFILE)' \
	--storm '$(STORM)' --seed '$(SEED)' --accel '$(ACCEL)' --preempt '$(PREEMPT)' \
	$(if $(KERNEL_SRC),--kernel-src '$(KERNEL_SRC)') \
	$(if $(DURATION),--duration '$(DURATION)') \
	$(if $(INJECT),--inject '$(INJECT)') \
	$(if $(INACTIVITY),--inactivity-timeout '$(INACTIVITY)') \
	$(if $(LEAVE_OUT),--leave-out '$(LEAVE_OUT)') \
	$(if $(STAGGER),--stagger '$(STAGGER)') \
	$(if $(FAULTS),--faults '$(FAULTS)') \
	$(if $(STOP_ON_REPORT),$(if $(filter 0 no false,$(STOP_ON_REPORT)),--no-stop-on-report,--stop-on-report))

CASES ?=
BENCH_COLD ?= 1
REPEAT ?= 3

.PHONY: all venv deps test-deps build boot boot-test shell selftest matrix module-check soak bisect bench zoo test unit clean

all: boot-test

$(VENV)/.installed: pyproject.toml scripts/venv.sh
	@scripts/venv.sh '$(PYTHON)' '$(VENV)'
	@touch $@

venv: $(VENV)/.installed

deps: venv
	@$(HARNESS) deps --arch '$(ARCH)' --kernel-version '$(KERNEL_VERSION)'

ARCHES ?= x86_64 aarch64
KERNEL_VERSIONS ?= 6.1
JOBS ?=

matrix: venv
	@$(HARNESS) deps --arch '$(ARCHES)' --kernel-version '$(KERNEL_VERSIONS)'
	@$(HARNESS) matrix --arches '$(ARCHES)' --kernel-versions '$(KERNEL_VERSIONS)' --profile '$(PROFILE)' \
		--storm '$(STORM)' --seed '$(SEED)' --accel '$(ACCEL)' $(if $(DURATION),--duration '$(DURATION)') \
		$(if $(JOBS),--jobs '$(JOBS)') $(if $(LEAVE_OUT),--leave-out '$(LEAVE_OUT)')

# The test module, warning-free against every arch x kernel version (default:
# every arch, 6.1 and 6.12); trees without a finished kernel build are only
# brought to modules_prepare. results/module-check/summary.json.
MODULE_CHECK_ARCHES ?= $(sort $(basename $(notdir $(wildcard configs/arches/*.yaml))))
MODULE_CHECK_VERSIONS ?= 6.1 6.12
module-check: venv
	@$(HARNESS) deps --arch '$(MODULE_CHECK_ARCHES)' --kernel-version '$(MODULE_CHECK_VERSIONS)'
	@$(HARNESS) module-check --arches '$(MODULE_CHECK_ARCHES)' --kernel-versions '$(MODULE_CHECK_VERSIONS)' \
		--profile '$(PROFILE)'

test-deps: venv
	@$(HARNESS) deps --arch 'x86_64 aarch64 i386' --kernel-version 6.1 --packages 'chromium stress-ng' 

build: deps
	@$(HARNESS) build --arch '$(ARCH)' --kernel-version '$(KERNEL_VERSION)' --profile '$(PROFILE)' \
		$(if $(KERNEL_SRC),--kernel-src '$(KERNEL_SRC)')

boot: deps
	@$(HARNESS) boot $(RUN_ARGS)

boot-test: deps
	@$(HARNESS) run $(RUN_ARGS)

# An interactive shell in the guest: SSH when sshd comes up, else the serial
# console; console.log is recorded as in every run.
shell: deps
	@$(HARNESS) shell $(RUN_ARGS)

selftest: deps
	@$(HARNESS) selftest --arch '$(ARCH)' --kernel-version '$(KERNEL_VERSION)' --profile '$(PROFILE)' \
		--accel '$(ACCEL)' $(if $(KERNEL_SRC),--kernel-src '$(KERNEL_SRC)') $(if $(CASES),--cases '$(CASES)')

# git bisect KERNEL_SRC between GOOD and BAD with a storm as the test:
# 0 culprit named, 1 none, 2 bad input, 3 infra (results/bisect/bisect.json).
bisect: deps
	@$(HARNESS) bisect $(RUN_ARGS) --good '$(GOOD)' --bad '$(BAD)' \
		$(if $(RUNS),--runs '$(RUNS)') $(if $(TITLE),--title '$(TITLE)')

soak: deps
	@$(HARNESS) soak --runs '$(or $(RUNS),20)' $(RUN_ARGS)

# The regression zoo: each configs/zoo case (a real mm-locking fix, undone)
# built in one git work tree of Debian's source, our storm and stress-ng on
# its kernel -> results/zoo/summary.json and a table. CASES= a subset;
# YARDSTICK=0 skips stress-ng.
YARDSTICK ?= 1
zoo: deps
	@$(HARNESS) zoo $(RUN_ARGS) $(if $(CASES),--cases '$(CASES)') \
		$(if $(filter 0 no false,$(YARDSTICK)),--no-yardstick)

# Figures for this machine: builds (cold unless BENCH_COLD=0), boot, storm
# intensity and thoroughness against Debian's stress-ng, parser speed; each
# a median of REPEAT samples -> results/bench/bench.json and a table.
bench: deps
	@$(HARNESS) bench --arch '$(ARCH)' --kernel-version '$(KERNEL_VERSION)' --profile '$(PROFILE)' \
		--repeat '$(REPEAT)' $(if $(filter 0 no false,$(BENCH_COLD)),--no-cold,--cold)

# Unit tests, then the end-to-end tests (real kernel builds and QEMU boots).
test: test-deps
	@$(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	@$(PY) -m pytest -m 'not e2e' $(PYTEST_ARGS)

clean:
	rm -rf results .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
