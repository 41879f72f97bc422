#!/usr/bin/env bash
# A venv with m9 and its test extra on one of the tested stacks, installed as it was tested (the stack's lock file as
# pip constraints): the log's stack on Python 3.11, today's Levanter on Python 3.12.
#
#   bash stacks/venv.sh 3.12 .venv-3.12 && .venv-3.12/bin/python -m m9 -m engine.max_seqs=2,4,8
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: stacks/venv.sh X.Y DIR}; dir=${2:?usage: stacks/venv.sh X.Y DIR}
[ -f "stacks/py$version.txt" ] || { echo "stacks/venv.sh: no tested stack for Python $version (stacks/py*.txt)" >&2; exit 1; }
python=$(bash stacks/python.sh "$version")
"$python" -m venv "$dir"
"$dir/bin/pip" install -e ".[test]" -c "stacks/py$version.txt"
