#!/usr/bin/env python3
"""make bench: autoupdate's CLI against the peers, on this machine, in this run.

Generates an app-like corpus (make-corpus.py), archives it with the real tools, and times
medians of --runs runs (warm cache) of: the write bound (cp -r), decode bounds (gzip/bzip2 -dc),
extraction (GNU tar, bsdtar, Info-ZIP unzip, lbzip2 | tar, ours), downloads over loopback HTTPS
(curl, ours), pipelined download+extract (curl | tar, ours) and a full update by the Python
original (pyautoupdate 1.0.0, pip-installed into a venv). Prints a Markdown table with MiB/s of
the corpus and the ratio to each row's reference.

    bench.py --bin .build/release --helper .build/release/AutoupdateTestHelper [--mebibytes 256] [--runs 3]
"""
import argparse, os, re, resource, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CA = os.path.join(ROOT, "Tests/AutoupdateTestSupport/Certificates/ca.pem")


def sh(command, **kwargs):
    return subprocess.run(command, shell=True, check=True, **kwargs)


DEST = "@DEST@"


def prepared(command, setup):
    """Runs `setup` (untimed) and puts the folder it returns into `command` for DEST."""
    folder = setup() if setup else None
    return command.replace(DEST, folder) if folder else command


def timed_once(command, setup=None, env=None, self_timed=False):
    """Wall time of one run of `command` (a shell line); `setup` runs untimed before it.
    `self_timed`: the time the command itself reports as `seconds=S` on stdout instead (a
    transfer's own time, process start excluded: curl's `%{time_total}`, our helper's)."""
    command = prepared(command, setup)
    os.sync()  # the previous run's dirty pages are written back outside the timing
    start = time.perf_counter()
    done = subprocess.run(command, shell=True, env=env, stdout=subprocess.PIPE if self_timed else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {command}\n{done.stderr}")
    if self_timed:
        reported = re.findall(r"seconds=([0-9.]+)", done.stdout)
        if not reported:
            sys.exit(f"no seconds=S in the output of: {command}\n{done.stdout}")
        return float(reported[-1])
    return elapsed


def peak_rss_mib(command, setup=None, env=None):
    """Peak resident memory of `command` and its children, in MiB (a fresh measuring process)."""
    command = prepared(command, setup)
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1], shell=True, check=True, stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, command], check=True, capture_output=True, text=True, env=env)
    return int(out.stdout.strip()) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="the folder holding the release `autoupdate`")
    parser.add_argument("--helper", required=True, help="the AutoupdateTestHelper executable (HTTPS server)")
    parser.add_argument("--mebibytes", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=os.environ.get("BENCH_DIR", "/var/tmp"))
    parser.add_argument("--python-venv", default=os.path.join(ROOT, ".venv-bench"))
    parser.add_argument("--skip-python", action="store_true", help="leave out pyautoupdate")
    args = parser.parse_args()
    ours = os.path.join(args.bin, "autoupdate")
    work = tempfile.mkdtemp(prefix="autoupdate-bench-", dir=args.work)
    shm = tempfile.mkdtemp(prefix="autoupdate-bench-", dir="/dev/shm") if os.access("/dev/shm", os.W_OK) else None
    server = None
    try:
        corpus = os.path.join(work, "corpus")
        print(f"corpus: {args.mebibytes} MiB, app-like (make-corpus.py) in {work}", file=sys.stderr)
        sh(f"{sys.executable} {HERE}/make-corpus.py {corpus} --mebibytes {args.mebibytes} >&2")
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(corpus) for f in fs)
        mib = size / (1 << 20)
        srv = os.path.join(work, "server")
        os.makedirs(srv)
        sh(f"cd {corpus} && tar czf {srv}/project.tar.gz . && tar cjf {srv}/project.tar.bz2 . && zip -qr -6 {srv}/project.zip .")
        with open(os.path.join(srv, "version.txt"), "w") as f:
            f.write("2.0\n")
        # Every run writes into a new folder, and the disk's are deleted only at the end: on
        # ext4 without a journal (this VM's), files created within a minute of deleting
        # thousands make the inode allocator skip each recently deleted inode (perf: 63 % of an
        # extraction in recently_deleted()), which would time the last run's cleanup, not the tool.
        runs = os.path.join(work, "runs")
        serial = iter(range(1 << 30))

        def fresh(base=runs, app=False):
            def setup():
                folder = os.path.join(base, f"run-{next(serial)}")
                if base != runs:
                    shutil.rmtree(base, ignore_errors=True)  # tmpfs: nothing to skip
                os.makedirs(folder)
                if app:
                    with open(os.path.join(folder, "version.txt"), "w") as f:
                        f.write("1.0\n")
                    open(os.path.join(folder, "filelist.txt"), "w").close()
                return folder
            return setup

        def fresh_app():
            return fresh(app=True)

        rows = []  # (group, name, seconds, reference name or None, peak MiB or None)
        per_run = {}  # (group, name) -> every run's seconds, in round-robin order

        def rows_of(group, specs):
            """Times a group's rows round-robin (run 1 of each, then run 2 of each, …), so that
            the disk's changing state (write-back, discards) weighs on every tool alike.
            specs: (name, command, setup, reference, env, memory[, self_timed])."""
            specs = [spec if len(spec) == 7 else spec + (False,) for spec in specs]
            times = {spec[0]: [] for spec in specs}
            for _ in range(args.runs):
                for name, command, setup, _, env, _, self_timed in specs:
                    times[name].append(timed_once(command, setup, env, self_timed))
            for name, command, setup, reference, env, memory, _ in specs:
                per_run[(group, name)] = times[name]
                seconds = statistics.median(times[name])
                peak = peak_rss_mib(command, setup, env) if memory else None
                rows.append((group, name, seconds, reference, peak))
                print(f"  {group}: {name}: {seconds:.2f} s", file=sys.stderr)

        def row(group, name, command, setup=None, reference=None, env=None, memory=False):
            rows_of(group, [(name, command, setup, reference, env, memory)])

        row("write bound", "cp -r (the tree itself)", f"cp -r {corpus}/. {DEST}/", fresh())
        row("decode bound", "gzip -dc > /dev/null", f"gzip -dc {srv}/project.tar.gz > /dev/null")
        row("decode bound", "bzip2 -dc > /dev/null", f"bzip2 -dc {srv}/project.tar.bz2 > /dev/null")
        for archive, peers in [
            ("project.tar.gz", [("GNU tar xzf", f"tar xzf {srv}/project.tar.gz -C {{d}}"), ("bsdtar xf", f"bsdtar xf {srv}/project.tar.gz -C {{d}}")]),
            ("project.tar.bz2", [("GNU tar xjf", f"tar xjf {srv}/project.tar.bz2 -C {{d}}")]
             + ([("lbzip2 -dc | tar x", f"lbzip2 -dc {srv}/project.tar.bz2 | tar x -C {{d}}")] if shutil.which("lbzip2") else [])),
            ("project.zip", [("Info-ZIP unzip", f"unzip -qo {srv}/project.zip -d {{d}}"), ("bsdtar xf", f"bsdtar xf {srv}/project.zip -C {{d}}")]),
        ]:
            group = f"extract {archive.split('.', 1)[1]} (disk)"
            # The write bound in the same round-robin: the zip target is relative to it.
            bound = [("cp -r (write bound)", f"cp -r {corpus}/. {DEST}/", fresh(), None, None, False)] if archive == "project.zip" else []
            rows_of(group, [(name, command.format(d=DEST), fresh(), None, None, False) for name, command in peers]
                    + [("autoupdate extract", f"{ours} extract {srv}/{archive} {DEST}/x", fresh(), peers[0][0], None, True)] + bound)
            if shm:
                target = os.path.join(shm, "dest")
                group = f"extract {archive.split('.', 1)[1]} (tmpfs)"
                rows_of(group, [(peers[0][0], peers[0][1].format(d=DEST), fresh(target), None, None, False),
                                ("autoupdate extract", f"{ours} extract {srv}/{archive} {DEST}/x", fresh(target), peers[0][0], None, False)])
                shutil.rmtree(target, ignore_errors=True)

        server = subprocess.Popen([args.helper, "serve", "--root", srv], stdout=subprocess.PIPE, text=True)
        url = server.stdout.readline().strip()
        print(f"serving {url}", file=sys.stderr)
        rows_of("download (loopback HTTPS)", [
            ("curl > /dev/null", f"curl -sf --cacert {CA} -o /dev/null {url}project.tar.gz", None, None, None, False),
            ("autoupdate's downloader", f"{args.helper} slow-download {url}project.tar.gz --ca-file {CA} --delay-microseconds 0", None,
             "curl > /dev/null", None, False)])
        # The transfer alone, as each program times it (curl's %{time_total}; the helper from its
        # request to the last byte consumed): process start excluded, which the row above includes
        # (a Swift program starts in about 10 ms, curl in 4).
        rows_of("download (loopback HTTPS, the transfer's own time)", [
            ("curl > /dev/null", f"curl -sf --cacert {CA} -o /dev/null -w 'seconds=%{{time_total}}\\n' {url}project.tar.gz", None, None,
             None, False, True),
            ("autoupdate's downloader", f"{args.helper} slow-download {url}project.tar.gz --ca-file {CA} --delay-microseconds 0", None,
             "curl > /dev/null", None, False, True)])
        for archive, tool in [("project.tar.gz", "tar xz"), ("project.zip", None)]:
            group = f"download + extract {archive.split('.', 1)[1]}"
            specs = []
            reference = None
            if tool:
                reference = f"curl | {tool}"
                specs.append((reference, f"curl -sf --cacert {CA} {url}{archive} | {tool} -C {DEST}", fresh(), None, None, False))
            specs.append(("autoupdate update", f"{ours} update --url {url} --dir {DEST} --archive {archive} --ca-file {CA}", fresh_app(),
                          reference, None, True))
            # The write bound again, in the same round-robin, for the "within 10 %" target.
            specs.append(("cp -r (write bound)", f"cp -r {corpus}/. {DEST}/", fresh(), None, None, False))
            # The update makes its files durable before its commit; cp leaves them in the page cache.
            specs.append(("cp -r && sync (durable write bound)", f"cp -r {corpus}/. {DEST}/ && sync", fresh(), None, None, False))
            rows_of(group, specs)

        reference = None
        if not args.skip_python:
            python = os.path.join(args.python_venv, "bin", "python")
            if not os.path.exists(os.path.join(args.python_venv, ".installed")):
                # setuptools 69.5.1: the newest whose archive_util imports nothing of
                # pkg_resources beyond what compat/ supplies.
                sh(f"{sys.executable} -m venv {args.python_venv} && {args.python_venv}/bin/pip install -q --disable-pip-version-check"
                   f" 'pyautoupdate==1.0.0.post1' 'setuptools==69.5.1' 'packaging==26.2' >&2 && touch {args.python_venv}/.installed")
            env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "compat"), REQUESTS_CA_BUNDLE=CA)
            script = f"import pyautoupdate; l = pyautoupdate.Launcher('app.py', '{url}', newfiles='project.zip'); assert l.update_code()"
            reference = "pyautoupdate 1.0.0 update_code()"
        specs = [(reference, f"cd {DEST} && {python} -c \"{script}\"", fresh_app(), None, env, False)] if reference else []
        specs.append(("autoupdate update", f"{ours} update --url {url} --dir {DEST} --archive project.zip --ca-file {CA}", fresh_app(),
                      reference, None, False))
        rows_of("full update (project.zip)", specs)

        by_name = {(g, n): s for g, n, s, _, _ in rows}
        print(f"\n{args.mebibytes} MiB app-like tree ({mib:.0f} MiB of files), median of {args.runs}, {os.cpu_count()} cores\n")
        print("| what | tool | seconds | MiB/s | vs | peak RSS |")
        print("|---|---|---:|---:|---|---:|")
        for group, name, seconds, reference, peak in rows:
            ratio = ""
            if reference:
                ref = by_name.get((group, reference))
                if ref:
                    ratio = f"{ref / seconds:.2f} × {reference}"
            cells = [group, name, f"{seconds:.2f}", f"{mib / seconds:.0f}", ratio, f"{peak:.0f} MiB" if peak else ""]
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        print_targets(by_name, per_run)
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
        if shm:
            shutil.rmtree(shm, ignore_errors=True)


def print_targets(t, per_run):
    """Issue 22's targets as same-run ratios (> 1 favours us where a peer is the reference)."""
    def get(group, name):
        return t.get((group, name))

    lines = []
    download = get("download (loopback HTTPS)", "autoupdate's downloader")
    for kind, archive in [("tar.gz", "tar.gz"), ("zip", "zip")]:
        update = get(f"download + extract {archive}", "autoupdate update")
        extract = get(f"extract {archive} (disk)", "autoupdate extract")
        bound = get(f"download + extract {archive}", "cp -r (write bound)")
        if update and extract and download:
            lines.append(f"pipelining {kind}: update / max(download, extract) = {update / max(download, extract):.2f} (target ≤ 1.15)")
        if update and bound:
            lines.append(f"{kind} update / cp -r = {update / bound:.2f} (target for zip ≤ 1.10)")
        durable = get(f"download + extract {archive}", "cp -r && sync (durable write bound)")
        if update and durable:
            lines.append(f"{kind} update / (cp -r && sync) = {update / durable:.2f} (for comparison: both durable)")
    extract, bound = get("extract zip (disk)", "autoupdate extract"), get("extract zip (disk)", "cp -r (write bound)")
    if extract and bound:
        lines.append(f"zip extract / cp -r = {extract / bound:.2f} (target ≤ 1.10)")
    pairs = [
        ("zip vs bsdtar", "extract zip (disk)", "bsdtar xf", 1.2),
        ("zip vs unzip", "extract zip (disk)", "Info-ZIP unzip", 1.25),
        ("tar.gz vs tar xzf", "extract tar.gz (disk)", "GNU tar xzf", 1.0),
        ("bzip2 vs lbzip2 | tar", "extract tar.bz2 (disk)", "lbzip2 -dc | tar x", 1.0),
        ("bzip2 vs tar xjf", "extract tar.bz2 (disk)", "GNU tar xjf", 1.9),
    ]
    for label, group, peer, target in pairs:
        ours, theirs = get(group, "autoupdate extract"), get(group, peer)
        if ours and theirs:
            lines.append(f"{label}: {theirs / ours:.2f}× (target ≥ {target})")
    for group in ["download (loopback HTTPS)", "download (loopback HTTPS, the transfer's own time)"]:
        ours, theirs = per_run.get((group, "autoupdate's downloader")), per_run.get((group, "curl > /dev/null"))
        if ours and theirs:
            ratios = [c / o for c, o in zip(theirs, ours)]
            met = sum(r >= 0.95 for r in ratios)
            lines.append(f"{group}: vs curl {statistics.median(theirs) / statistics.median(ours):.2f}× (medians); run by run "
                         + ", ".join(f"{r:.2f}" for r in ratios) + f" ({met} of {len(ratios)} ≥ 0.95; target: all)")
    python = get("full update (project.zip)", "pyautoupdate 1.0.0 update_code()")
    full = get("full update (project.zip)", "autoupdate update")
    if python and full:
        lines.append(f"full update vs pyautoupdate: {python / full:.2f}× (target ≥ 2)")
    print("\nTargets (same run):\n")
    for line in lines:
        print(f"- {line}")


if __name__ == "__main__":
    main()
