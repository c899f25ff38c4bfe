#!/usr/bin/env bash
# Runs every Go fuzz target for a while each: `make fuzz` (default 60s each) or, briefly,
# from make test. Usage: scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-60s}
found=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    found=$((found + 1))
    echo "fuzz: $pkg $target for $fuzztime"
    out=$(mktemp)
    # Go's fuzzing engine (before Go 1.27, golang/go#75804) can end with "context deadline
    # exceeded" as -fuzztime runs out, when a worker's stop races the deadline, with no
    # failing input found; on a loaded machine it can happen twice in a row. Such a run is
    # run again, up to four times. A real failure writes its input and fails at once.
    attempt=1
    until go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"; do
      if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out" && [ "$attempt" -lt 5 ]; then
        attempt=$((attempt + 1))
        echo "fuzz: $target: the engine timed out without a failing input; running it again ($attempt of 5)"
      else
        rm -f "$out"
        exit 1
      fi
    done
    rm -f "$out"
  done
done < <(git ls-files --cached --others --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' | sort)
echo "fuzz: $found targets ran for $fuzztime each"
