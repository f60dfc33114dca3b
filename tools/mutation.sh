#!/usr/bin/env bash
# Mutation testing of pcattn/ops and pcattn/nn with mutmut (dev extra; not run in CI).
# Configuration: [tool.mutmut] in pyproject.toml (mutants/ is the scratch copy, git-ignored).
#   tools/mutation.sh                                   # every mutant of ops and nn
#   tools/mutation.sh 'pcattn.nn.transition.*' ...      # only these modules' mutants
# MUTMUT_CHILDREN (default 2) sets the parallel test processes. Prints killed / total.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p mutants
PY=${PYTHON:-python}
OMP_NUM_THREADS=1 "$PY" -m mutmut run --max-children "${MUTMUT_CHILDREN:-2}" "$@" \
    > mutants/run.log 2>&1 || { tail -n 30 mutants/run.log; exit 1; }
"$PY" - "$@" <<'PY'
import fnmatch, json, pathlib, sys
from mutmut.stats import status_by_exit_code
pats = sys.argv[1:] or ["*"]
counts, survivors = {}, []
for meta in sorted(pathlib.Path("mutants/pcattn").rglob("*.py.meta")):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if any(fnmatch.fnmatch(name, p) for p in pats):
            status = status_by_exit_code[code]
            counts[status] = counts.get(status, 0) + 1
            if status != "killed":
                survivors.append(f"{status}: {name}")
print("\n".join(survivors))
total, killed = sum(counts.values()), counts.get("killed", 0)
print(counts)
print(f"mutation score: {killed} / {total} killed = {100 * killed / max(total, 1):.1f} %")
PY
