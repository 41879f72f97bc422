#!/usr/bin/env bash
# Write a stack's lock file anew: m9 and its test extra installed into a fresh venv with the newest versions that
# pyproject.toml's ranges and the stack's own wishes (stacks/pyX.Y.in) allow on that Python, then every installed
# version, exactly, as pip constraints (stacks/pyX.Y.txt). Run it to move a stack forward on purpose, then run the
# suite on it (stacks/venv.sh).
#
#   bash stacks/lock.sh 3.12
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: stacks/lock.sh X.Y}
python=$(bash stacks/python.sh "$version")
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/pip" install -q -e ".[test]" -r "stacks/py$version.in"
{
  echo "# m9's tested stack on Python $version: pip constraints (pip install -e '.[test]' -c stacks/py$version.txt)."
  echo "# Written by stacks/lock.sh on $(date -u +%F) with $("$venv/bin/python" -V); local version labels dropped."
  "$venv/bin/pip" freeze --exclude-editable | sed 's/+[A-Za-z0-9.]*$//'
} > "stacks/py$version.txt.new"
mv "stacks/py$version.txt.new" "stacks/py$version.txt"
echo "stacks/py$version.txt: $(grep -c '==' "stacks/py$version.txt") packages, marin-levanter $(grep -i '^marin-levanter==' "stacks/py$version.txt" | cut -d= -f3)"
