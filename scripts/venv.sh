#!/bin/sh
# Create the project's venv with the dependencies pinned in pyproject.toml.
# On a fresh Debian machine python3-venv may be missing: install it when
# root, otherwise print the exact apt-get line and exit 3 (infra-error).
# pip's output goes to a log in $TMPDIR, shown only when a step fails (exit 3).
set -eu
python=${1:-python3}
venv=${2:-.venv}
say() { echo "venv: $*"; }

if ! command -v "$python" >/dev/null 2>&1; then
	echo "error: $python not found; run as root: apt-get install -y python3 python3-venv" >&2
	exit 3
fi
say "creating $venv, the harness's own Python environment (first run only; again when pyproject.toml changes)"
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		say "installing Debian's python3-venv with apt-get (this Python cannot make a venv without it)"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
	else
		echo "error: python venv support is missing; run as root: apt-get install -y python3-venv" >&2
		exit 3
	fi
fi

log=$(mktemp "${TMPDIR:-/tmp}/mmlock-venv.XXXXXX")
rm -rf "$venv"
# step DESCRIPTION COMMAND...: COMMAND's output into the log; on failure, the log and exit 3.
step() {
	what=$1
	shift
	echo "# $what: $*" >>"$log"
	if ! "$@" >>"$log" 2>&1; then
		echo "error: $what failed; pip's output ($log):" >&2
		cat "$log" >&2
		exit 3
	fi
}
step "python -m venv" "$python" -m venv "$venv"
# A newer pip where the index has one; Debian 12's own pip 23 does the rest if not.
"$venv/bin/pip" install --upgrade pip >>"$log" 2>&1 || echo "# (pip not upgraded; going on)" >>"$log"
say "installing pexpect, paramiko and PyYAML (the harness drives QEMU and the guest with them)"
say "and the test tools (pytest, pytest-xdist, ruff, mypy, actionlint, kcidb-io: make unit, make test) into $venv with pip"
step "pip install -e .[test]" "$venv/bin/pip" install -e '.[test]'
rm -f "$log"
say "ready: $venv (pip's log only on failure)"
