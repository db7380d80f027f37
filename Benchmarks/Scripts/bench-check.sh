#!/bin/bash
# `make bench-check`: runs the in-process benchmarks (ordo-one/benchmark) and checks each p90
# against the thresholds recorded in Benchmarks/Thresholds/ (`make bench-thresholds`), with a
# tolerance of BENCH_TOLERANCE % (default 10) in wall clock and mallocs, twice that in peak memory.
#
# This VM's speed drifts by 10–40 % over minutes, so each benchmark is checked on its own, right
# after measuring the machine's speed (Scripts/calibrate.py), against its recorded times scaled by
# that speed over the speed when they were recorded: `swift package benchmark thresholds check`
# reads the scaled copy. A regression must show twice: a benchmark that deviates is measured and
# checked again, and only a second deviation fails. A benchmark better than its threshold by more
# than the tolerance passes with a note.
set -uo pipefail
cd "$(dirname "$0")/.."

scaled=$(mktemp -d)
trap 'rm -rf "$scaled"' EXIT
# The corpus is made by the benchmarks' first run.
python3 Scripts/calibrate.py > /dev/null 2>&1 || swift package benchmark --filter '^extract_tar$' --no-progress > /dev/null 2>&1

# Checks one benchmark against its thresholds scaled by the machine's speed now; prints the tool's
# output; returns 0 (within), 2 (worse), 4 (only better), 1 (failed to run).
check() {
    local name=$1 now output
    now=$(python3 Scripts/calibrate.py) || return 1
    python3 - "$now" Thresholds "$scaled" "$name" <<'PY' || return 1
import json, os, sys
now, source, target, name = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
recorded = json.load(open(os.path.join(source, "calibration.json")))["gzipDecodeSeconds"]
factor = now / recorded
print(f"bench-check: {name}: the machine decodes gzip in {now:.4f} s now, {recorded:.4f} s at the recording: times scaled by {factor:.3f}")
values = json.load(open(os.path.join(source, f"Throughput.{name}.p90.json")))
values["wallClock"] = int(values["wallClock"] * factor)
json.dump(values, open(os.path.join(target, f"Throughput.{name}.p90.json"), "w"))
PY
    output=$(swift package benchmark thresholds check --path "$scaled" --no-progress --filter "^${name}\$" 2>&1)
    printf '%s\n' "$output" | grep -E '^Deviations|│' || true
    if printf '%s\n' "$output" | grep -q "^Deviations worse than threshold for Throughput:${name}\$"; then return 2; fi
    if printf '%s\n' "$output" | grep -q "^Deviations better than threshold for Throughput:${name}\$"; then return 4; fi
    if printf '%s\n' "$output" | grep -qi "error"; then printf '%s\n' "$output" >&2; return 1; fi
    return 0
}

failed=""
better=""
for file in Thresholds/Throughput.*.p90.json; do
    name=$(basename "$file" .p90.json)
    name=${name#Throughput.}
    check "$name"
    status=$?
    if [ $status -eq 2 ]; then
        echo "bench-check: $name deviated; measuring it again to confirm"
        check "$name"
        status=$?
        [ $status -eq 2 ] && failed="$failed $name"
    fi
    [ $status -eq 1 ] && { echo "bench-check: $name failed to run" >&2; exit 1; }
    [ $status -eq 4 ] && better="$better $name"
done
[ -n "$better" ] && echo "bench-check: more than ${BENCH_TOLERANCE:-10} % better than the thresholds:$better (\`make bench-thresholds\` records new ones)"
if [ -n "$failed" ]; then
    echo "bench-check: regression beyond ${BENCH_TOLERANCE:-10} %, twice:$failed" >&2
    exit 2
fi
echo "bench-check: no regression beyond ${BENCH_TOLERANCE:-10} %"
