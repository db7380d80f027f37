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
import argparse, os, resource, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CA = os.path.join(ROOT, "Tests/AutoupdateTestSupport/Certificates/ca.pem")


def sh(command, **kwargs):
    return subprocess.run(command, shell=True, check=True, **kwargs)


def timed(command, runs, setup=None, env=None):
    """Median wall time of `command` (a shell line) over `runs` runs; `setup` runs untimed before each."""
    times = []
    for _ in range(runs):
        if setup:
            setup()
        os.sync()  # the previous run's dirty pages are written back outside the timing
        start = time.perf_counter()
        done = subprocess.run(command, shell=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"failed ({done.returncode}): {command}\n{done.stderr}")
    return statistics.median(times)


def peak_rss_mib(command, setup=None, env=None):
    """Peak resident memory of `command` and its children, in MiB (a fresh measuring process)."""
    if setup:
        setup()
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
        dest = os.path.join(work, "dest")

        def fresh(folder=dest):
            def setup():
                shutil.rmtree(folder, ignore_errors=True)
                os.makedirs(folder)
            return setup

        def fresh_app(folder=dest):
            def setup():
                shutil.rmtree(folder, ignore_errors=True)
                os.makedirs(folder)
                with open(os.path.join(folder, "version.txt"), "w") as f:
                    f.write("1.0\n")
                open(os.path.join(folder, "filelist.txt"), "w").close()
            return setup

        rows = []  # (group, name, seconds, reference name or None, peak MiB or None)

        def row(group, name, command, setup=None, reference=None, env=None, memory=False):
            seconds = timed(command, args.runs, setup, env)
            peak = peak_rss_mib(command, setup, env) if memory else None
            rows.append((group, name, seconds, reference, peak))
            print(f"  {group}: {name}: {seconds:.2f} s", file=sys.stderr)

        row("write bound", "cp -r (the tree itself)", f"cp -r {corpus}/. {dest}/", fresh())
        row("decode bound", "gzip -dc > /dev/null", f"gzip -dc {srv}/project.tar.gz > /dev/null")
        row("decode bound", "bzip2 -dc > /dev/null", f"bzip2 -dc {srv}/project.tar.bz2 > /dev/null")
        for archive, peers in [
            ("project.tar.gz", [("GNU tar xzf", f"tar xzf {srv}/project.tar.gz -C {{d}}"), ("bsdtar xf", f"bsdtar xf {srv}/project.tar.gz -C {{d}}")]),
            ("project.tar.bz2", [("GNU tar xjf", f"tar xjf {srv}/project.tar.bz2 -C {{d}}")]
             + ([("lbzip2 -dc | tar x", f"lbzip2 -dc {srv}/project.tar.bz2 | tar x -C {{d}}")] if shutil.which("lbzip2") else [])),
            ("project.zip", [("Info-ZIP unzip", f"unzip -qo {srv}/project.zip -d {{d}}"), ("bsdtar xf", f"bsdtar xf {srv}/project.zip -C {{d}}")]),
        ]:
            group = f"extract {archive.split('.', 1)[1]} (disk)"
            for name, command in peers:
                row(group, name, command.format(d=dest), fresh())
            row(group, "autoupdate extract", f"{ours} extract {srv}/{archive} {dest}/x", fresh(), reference=peers[0][0], memory=True)
            if shm:
                target = os.path.join(shm, "dest")
                group = f"extract {archive.split('.', 1)[1]} (tmpfs)"
                row(group, peers[0][0], peers[0][1].format(d=target), fresh(target))
                row(group, "autoupdate extract", f"{ours} extract {srv}/{archive} {target}/x", fresh(target), reference=peers[0][0])
                shutil.rmtree(target, ignore_errors=True)

        server = subprocess.Popen([args.helper, "serve", "--root", srv], stdout=subprocess.PIPE, text=True)
        url = server.stdout.readline().strip()
        print(f"serving {url}", file=sys.stderr)
        row("download (loopback HTTPS)", "curl > /dev/null", f"curl -sf --cacert {CA} -o /dev/null {url}project.tar.gz")
        row("download (loopback HTTPS)", "autoupdate's downloader", f"{args.helper} slow-download {url}project.tar.gz --ca-file {CA} --delay-microseconds 0",
            reference="curl > /dev/null")
        for archive, tool in [("project.tar.gz", "tar xz"), ("project.zip", None)]:
            group = f"download + extract {archive.split('.', 1)[1]}"
            reference = None
            if tool:
                reference = f"curl | {tool}"
                row(group, reference, f"curl -sf --cacert {CA} {url}{archive} | {tool} -C {dest}", fresh())
            row(group, "autoupdate update", f"{ours} update --url {url} --dir {dest} --archive {archive} --ca-file {CA}", fresh_app(),
                reference=reference, memory=True)

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
            row("full update (project.zip)", reference, f"cd {dest} && {python} -c \"{script}\"", fresh_app(), env=env)
        row("full update (project.zip)", "autoupdate update", f"{ours} update --url {url} --dir {dest} --archive project.zip --ca-file {CA}", fresh_app(),
            reference=reference)

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
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
        if shm:
            shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
