#!/bin/sh
# Create the project's venv with the dependencies pinned in pyproject.toml.
# On a fresh Debian machine python3-venv may be missing: install it when
# root, otherwise print the exact apt-get line and exit 3 (infra-error).
set -eu
python=${1:-python3}
venv=${2:-.venv}

if ! command -v "$python" >/dev/null 2>&1; then
	echo "error: $python not found; run as root: apt-get install -y python3 python3-venv" >&2
	exit 3
fi
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
	else
		echo "error: python venv support is missing; run as root: apt-get install -y python3-venv" >&2
		exit 3
	fi
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip >/dev/null 2>&1 || true
"$venv/bin/pip" install --quiet -e '.[test]'
