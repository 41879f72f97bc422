#!/usr/bin/env bash
# The path of a Python X.Y interpreter: `pythonX.Y` on PATH, else pyenv's newest X.Y.*; or one line saying what is
# missing and how to get it.
#
#   bash stacks/python.sh 3.12      # prints e.g. /root/.pyenv/versions/3.12.1/bin/python3.12
set -euo pipefail
want=${1:?usage: stacks/python.sh X.Y}

works() { [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; }

if found=$(command -v "python$want" 2>/dev/null) && works "$found"; then echo "$found"; exit 0; fi
if command -v pyenv >/dev/null 2>&1; then
  for found in $(ls -d "$(pyenv root)/versions/$want".* 2>/dev/null | sort -V -r); do
    if works "$found/bin/python$want"; then echo "$found/bin/python$want"; exit 0; fi
  done
fi
echo "stacks/python.sh: no Python $want: neither python$want on PATH nor a pyenv $want.* (pyenv install $want)" >&2
exit 1
