#!/usr/bin/env python3
"""The machine's speed of the moment, for the benchmark thresholds: the median time of seven
`gzip -dc` of the benchmark corpus's tar.gz (one core, zlib's inflate: the kind of work the
decode and extract benchmarks do), in seconds."""
import os, statistics, subprocess, sys, tempfile, time

size = os.environ.get("BENCH_MIB", "32")
archive = os.path.join(tempfile.gettempdir(), f"autoupdate-benchmark-{size}", "project.tar.gz")
if not os.path.exists(archive):
    sys.exit(f"calibrate: no corpus at {archive} (the benchmarks make it on their first run)")
times = []
for _ in range(7):
    start = time.perf_counter()
    subprocess.run(["gzip", "-dc", archive], stdout=subprocess.DEVNULL, check=True)
    times.append(time.perf_counter() - start)
print(f"{statistics.median(times):.4f}")
