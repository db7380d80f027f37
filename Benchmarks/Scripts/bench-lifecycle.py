#!/usr/bin/env python3
"""make bench (lifecycle rows): what `watch`, `rollback` and `status` cost, in one run.

- rollback of the app-like corpus (make-corpus.py, --mebibytes): 11.0 installed by
  `autoupdate update`, 10.0 kept in the update folder (its tree, as `watch --keep` keeps it);
  `autoupdate rollback` into a fresh copy each run, the process's start included;
- `autoupdate status` on that folder (no network; the process's start included);
- the watch's swap gap for a small app (a shell script that execs sleep): `autoupdate watch`
  against nginx on loopback, a new release published and SIGHUP sent, --swaps times; the gap is
  what the watch reports (`the app was down for …`: the old app stopped → the new one started);
- a poll with nothing new (`autoupdate check` on an up-to-date folder: a conditional request
  answered 304) beside `curl -z` of the same `release.json`: time and bytes on the wire;
- start-up (`--version`) of the self-contained binary (`--static`, `make dist`'s) beside the
  dynamically linked one.

    bench-lifecycle.py --bin .build/release [--static dist/autoupdate] [--mebibytes 256] [--runs 3] [--swaps 10]
"""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import sh, timed_once, DEST  # noqa: E402
from importlib import import_module  # noqa: E402

delta = import_module("bench-delta")
CA = delta.CA


def rollback_rows(ours, work, mebibytes, runs):
    tree = os.path.join(work, "tree")
    sh(f"{sys.executable} {HERE}/make-corpus.py {tree} --mebibytes {mebibytes} >&2")
    files = sum(len(fs) for _, _, fs in os.walk(tree))
    srv = os.path.join(work, "srv")
    nginx = delta.Nginx(work, srv)
    try:
        url = f"https://127.0.0.1:{nginx.https}/"
        app = os.path.join(work, "app")
        # 11.0 differs from 10.0 in one file: the rollback moves every file either way.
        with open(os.path.join(tree, "release.txt"), "w") as f:
            f.write("11.0\n")
        sh(f"{ours} publish {tree} --version 11.0 --out {srv} >&2")
        sh(f"{ours} update --url {url} --dir {app} --ca-file {CA} >/dev/null 2>&1")
    finally:
        nginx.stop()
    kept = os.path.join(app, ".pyautodownloads", "previous-10.0")
    sh(f"cp -a {tree} {kept}")
    with open(os.path.join(kept, "release.txt"), "w") as f:
        f.write("10.0\n")

    runs_dir = os.path.join(work, "runs")
    os.makedirs(runs_dir)
    serial = iter(range(1 << 30))

    def fresh():
        folder = os.path.join(runs_dir, f"run-{next(serial)}")
        sh(f"cp -a {app} {folder}")
        return folder

    rollback = [timed_once(f"{ours} rollback --dir {DEST}", fresh) for _ in range(runs)]
    status = sorted(timed_once(f"{ours} status --dir {app} --json") for _ in range(max(20, runs)))
    return files, statistics.median(rollback), statistics.median(status)


def swap_gaps(ours, work, swaps):
    srv = os.path.join(work, "srv-small")
    source = os.path.join(work, "small")
    os.makedirs(os.path.join(source, "bin"))
    script = os.path.join(source, "bin", "app")

    def publish(version):
        with open(script, "w") as f:
            f.write(f"#!/bin/sh\n# {version}\nexec sleep 600\n")
        os.chmod(script, 0o755)
        sh(f"{ours} publish {source} --version {version} --out {srv} >/dev/null 2>&1")

    publish("1.0")
    nginx_work = os.path.join(work, "nginx-small")
    os.makedirs(nginx_work)
    nginx = delta.Nginx(nginx_work, srv)
    app = os.path.join(work, "small-app")
    url = f"https://127.0.0.1:{nginx.https}/"
    watch = None
    gaps = []
    try:
        sh(f"{ours} update --url {url} --dir {app} --ca-file {CA} >/dev/null 2>&1")
        watch = subprocess.Popen(
            [ours, "watch", "bin/app", "--url", url, "--dir", app, "--ca-file", CA, "--interval", "3600", "--jitter", "0",
             "--health-window", "0.2", "--grace", "2"], stderr=subprocess.PIPE, text=True)

        def await_line(pattern):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = watch.stderr.readline()
                if not line:
                    sys.exit("bench-lifecycle: the watch ended")
                match = re.search(pattern, line)
                if match:
                    return match
            sys.exit(f"bench-lifecycle: no line matching {pattern!r} within 60 s")

        await_line(r"started 1\.0")
        for release in range(2, swaps + 2):
            publish(f"{release}.0")
            watch.send_signal(1)  # SIGHUP: check now
            match = await_line(r"was down for ([0-9.]+) ms")
            gaps.append(float(match.group(1)))
            await_line(rf"started {release}\.0")
            time.sleep(0.4)  # past the health window: the next swap is not deferred by it
    finally:
        if watch:
            watch.terminate()
            watch.wait()
        nginx.stop()
    return gaps


def poll_cost(ours, work, runs):
    """A poll that finds nothing new: ours against `curl -z`, time (median) and bytes nginx sent."""
    srv = os.path.join(work, "srv-poll")
    source = os.path.join(work, "poll-src")
    os.makedirs(os.path.join(source, "bin"))
    with open(os.path.join(source, "bin", "app"), "w") as f:
        f.write("#!/bin/sh\nexec sleep 600\n")
    os.chmod(os.path.join(source, "bin", "app"), 0o755)
    sh(f"{ours} publish {source} --version 1.0 --out {srv} >/dev/null 2>&1")
    nginx_work = os.path.join(work, "nginx-poll")
    os.makedirs(nginx_work)
    nginx = delta.Nginx(nginx_work, srv)
    try:
        url = f"https://127.0.0.1:{nginx.https}/"
        app = os.path.join(work, "poll-app")
        sh(f"{ours} update --url {url} --dir {app} --ca-file {CA} >/dev/null 2>&1")
        sh(f"{ours} check --url {url} --dir {app} --ca-file {CA} >/dev/null 2>&1")  # the validator is kept
        index = os.path.join(app, ".pyautodownloads", "release.json")
        commands = {
            "ours": f"{ours} check --url {url} --dir {app} --ca-file {CA}",
            "curl": f"curl -s -o /dev/null --cacert {CA} -z {index} {url}release.json",
        }
        results = {}
        for name, command in commands.items():
            mark = nginx.mark()
            times = [timed_once(command) for _ in range(runs)]
            with open(nginx.log, "rb") as f:
                f.seek(mark)
                lines = [line.split() for line in f.read().decode().splitlines() if line.strip()]
            statuses = sorted({line[1] for line in lines})
            results[name] = (statistics.median(times), sum(int(line[3]) for line in lines) / runs, len(lines) / runs, statuses)
        return results
    finally:
        nginx.stop()


def startup(binary, runs=60):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([binary, "--version"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="the folder holding the release `autoupdate`")
    parser.add_argument("--mebibytes", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--work", default=os.environ.get("BENCH_DIR", "/var/tmp"))
    parser.add_argument("--static", help="make dist's self-contained binary, for the start-up row")
    args = parser.parse_args()
    if not shutil.which("nginx"):
        sys.exit("bench-lifecycle: nginx is missing (make bench-deps installs it)")
    ours = os.path.join(args.bin, "autoupdate")
    work = tempfile.mkdtemp(prefix="autoupdate-bench-lifecycle-", dir=args.work)
    try:
        files, rollback, status = rollback_rows(ours, work, args.mebibytes, args.runs)
        gaps = swap_gaps(ours, work, args.swaps)
        polls = poll_cost(ours, work, max(20, args.runs))
        dynamic_start = startup(ours)
        static_start = startup(args.static) if args.static and os.path.exists(args.static) else None
        print(f"\nLifecycle: {args.mebibytes} MiB app-like tree ({files} files); median of {args.runs} (rollback), "
              f"20 (status), {len(gaps)} swaps; {os.cpu_count()} cores\n")
        print("| what | time | target |")
        print("|---|---:|---|")
        print(f"| `autoupdate rollback` of the tree (fresh copy each run, process start included) | {rollback:.3f} s | ≤ 1 s |")
        print(f"| `autoupdate status --json` (process start included) | {status * 1000:.1f} ms | well under 50 ms |")
        print(f"| watch swap gap, small app: median (min–max) | {statistics.median(gaps):.1f} ms "
              f"({min(gaps):.1f}–{max(gaps):.1f}) | 6–12 ms |")
        for name, label in [("ours", "`autoupdate check`, nothing new"), ("curl", "`curl -z` of the same release.json")]:
            seconds, wire, requests, statuses = polls[name]
            print(f"| a poll: {label} (median of 20; statuses {'/'.join(statuses)}) | {seconds * 1000:.1f} ms, "
                  f"{wire:.0f} B sent, {requests:.0f} request(s) | |")
        print(f"| start-up, `--version`, dynamically linked (median of 60) | {dynamic_start * 1000:.1f} ms | |")
        if static_start is not None:
            print(f"| start-up, `--version`, self-contained (`make dist`; median of 60) | {static_start * 1000:.1f} ms | |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
