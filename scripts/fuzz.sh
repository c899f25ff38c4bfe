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
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"; then
      # Go's fuzzing engine can end with "context deadline exceeded" when a worker is slow
      # to answer as the time runs out, with no failing input found: run that target again
      # once. A real failure writes its input and fails both times.
      if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
        echo "fuzz: $target: the engine timed out without a failing input; running it again"
        go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
      else
        rm -f "$out"
        exit 1
      fi
    fi
    rm -f "$out"
  done
done < <(git ls-files --cached --others --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' | sort)
echo "fuzz: $found targets ran for $fuzztime each"
