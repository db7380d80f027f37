#!/bin/bash
# `make bench-thresholds`: records the in-process benchmarks' p90 thresholds in
# Benchmarks/Thresholds/ for `make bench-check`.
#
# This VM's speed drifts between runs minutes apart (CPU time too, not only wall clock; one run in
# a few is 20–40 % slower throughout), so one run's p90 may be an outlier. The thresholds are
# each metric's median p90 over RUNS runs (default 3). With them goes the machine's speed at the
# time (Scripts/calibrate.py: `gzip -dc` of the corpus, a median), by which `make bench-check`
# scales the times.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$work/calibrations"
for run in $(seq 1 "$runs"); do
    echo "bench-thresholds: run $run of $runs"
    swift package --allow-writing-to-package-directory benchmark thresholds update --path "$work/run-$run" --no-progress \
        > "$work/run-$run.log" 2>&1 || { cat "$work/run-$run.log" >&2; exit 1; }
    python3 Scripts/calibrate.py >> "$work/calibrations"
done
python3 - "$work" "$runs" Thresholds <<'PY'
import glob, json, os, statistics, sys
work, runs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = sorted({os.path.basename(p) for p in glob.glob(f"{work}/run-*/*.json")})
os.makedirs(out, exist_ok=True)
for old in glob.glob(f"{out}/*.p90.json"):
    os.remove(old)
for name in names:
    values = {}
    for run in range(1, runs + 1):
        with open(f"{work}/run-{run}/{name}") as f:
            for metric, value in json.load(f).items():
                values.setdefault(metric, []).append(value)
    merged = {metric: int(statistics.median(seen)) for metric, seen in values.items()}
    with open(f"{out}/{name}", "w") as f:
        json.dump(merged, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"bench-thresholds: {out}/{name}: {merged}")
seconds = statistics.median(float(line) for line in open(f"{work}/calibrations") if line.strip())
with open(f"{out}/calibration.json", "w") as f:
    json.dump({"gzipDecodeSeconds": seconds}, f, indent=2)
    f.write("\n")
print(f"bench-thresholds: {out}/calibration.json: gzip -dc of the corpus in {seconds:.4f} s")
PY
