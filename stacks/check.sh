#!/usr/bin/env bash
# A second stack's checks (CI runs them on today's Levanter): its default suite (not the `slow` end-to-end tests,
# which the default stack runs), then the demo sweep end to end on both stacks (side by side, a store each), and
# `m9 report --compare` of the two: it must name both stacks and match every point.
#
#   bash stacks/check.sh .venv-3.12 .venv
set -euo pipefail
cd "$(dirname "$0")/.."; root=$PWD
other=${1:?usage: stacks/check.sh OTHER_VENV DEFAULT_VENV}; default=${2:?usage: stacks/check.sh OTHER_VENV DEFAULT_VENV}
"$other/bin/python" -m pytest -m "not slow" -p no:cacheprovider
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
# The two stacks' sweeps side by side: each is one process and its engine child, about a core.
for venv in "$default" "$other"; do
  name=$("$venv/bin/python" -c 'import platform; print("py" + platform.python_version())')
  (cd "$out" && "$root/$venv/bin/python" -m m9 -m engine.max_seqs=2,4,8 "tracking.uri=sqlite:///$out/$name.db" \
    "hydra.sweep.dir=$out/$name" > "$out/$name.log" 2>&1) & pids+=($!)
  sweeps+=("$out/$name")
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { tail -20 "${sweeps[$i]}.log"; exit 1; }; done
(cd "$out" && "$root/$other/bin/python" -m m9.report --compare "${sweeps[@]}" --out "$out/compare" > /dev/null)
cat "$out/compare/compare.md"
grep -q "^## Stacks" "$out/compare/compare.md" && [ "$(grep -c '| PASS |.*| PASS |' "$out/compare/compare.md")" = 3 ] \
  || { echo "stacks/check.sh: the comparison does not name two stacks with three points passing on both" >&2; exit 1; }
