#!/usr/bin/env bash
# Set up the checkout (see setup.sh), then run the whole test suite once with vitest.
# Arguments go to vitest, for example: scripts/test.sh test/unit
# The last line is a plain "tests: N passed, N failed, N skipped" summary for CI logs.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash scripts/setup.sh

results="$(mktemp -t dropbox-mount-results.XXXXXX.json)"
trap 'rm -f "$results"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$results" || echo "tests: no result file (vitest exited with status $status)"
exit "$status"
