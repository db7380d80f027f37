#!/usr/bin/env python3
"""make bench (differential rows): a differential update against a full one and the peers that
do the same job, served by nginx on loopback, in one run.

The releases: 1.0 is the app-like corpus (make-corpus.py) plus a 1 MiB binary, bin/core.bin;
each release after it rewrites bin/core.bin and adds one small file. 11.0 is the target; the
installed version is 10.0 (the previous release) or 1.0 (ten releases back). For each archive
format, medians of --runs round-robin runs (each into a fresh copy of the installed tree) of:

- autoupdate update --differential never (the full update: the reference for time);
- autoupdate update from 10.0 and from 1.0 (differential: manifest, ranges, install);
- zsync 0.6.2 with 10.0's archive as its seed (zsyncmake -Z on 11.0's archive): it rebuilds the
  archive only, it does not extract or install it;

and once: rsync 3 from an rsync daemon on loopback, tree 10.0 to tree 11.0 (the transfer bound).
Bytes are what nginx (or rsync) sent, from its own log: every request of the run counts.

    bench-delta.py --bin .build/release [--mebibytes 256] [--runs 3]
"""
import argparse, os, random, shutil, socket, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import sh, timed_once, DEST  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
CERTS = os.path.join(ROOT, "Tests/AutoupdateTestSupport/Certificates")
CA = os.path.join(CERTS, "ca.pem")
FORMATS = ["zip", "tar.gz", "tar.bz2"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_release(tree, base, version):
    """`tree` as release `version`: hard links to `base` (1.0), with bin/core.bin rewritten and
    one small file added per release since 1.0."""
    if os.path.exists(tree):
        return
    sh(f"cp -al {base} {tree}")
    core = os.path.join(tree, "bin", "core.bin")
    os.unlink(core)  # a hard link to 1.0's: never write through it
    with open(core, "wb") as f:
        f.write(random.Random(version).randbytes(1 << 20))
    # A day apart per release, as real releases are: rsync's quick check (size and mtime) sees
    # the change.
    os.utime(core, (1_700_000_000 + version * 86_400,) * 2)
    for release in range(2, version + 1):
        added = os.path.join(tree, "notes", f"added-{release}.txt")
        with open(added, "w") as f:
            f.write(f"what changed in {release}.0\n" * 20)
        os.utime(added, (1_700_000_000 + release * 86_400,) * 2)


class Nginx:
    """nginx serving `root` over HTTPS (our client) and HTTP (zsync), logging bytes per request."""

    def __init__(self, work, root):
        self.https, self.http = free_port(), free_port()
        self.log = os.path.join(work, "nginx-access.log")
        conf = os.path.join(work, "nginx.conf")
        temp = os.path.join(work, "nginx-temp")
        os.makedirs(temp, exist_ok=True)
        with open(conf, "w") as f:
            f.write(f"""
user root;
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  log_format bytes '$request_uri $status $body_bytes_sent $bytes_sent';
  access_log {self.log} bytes;
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 60;
  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
  server {{
    listen 127.0.0.1:{self.https} ssl;
    ssl_certificate {CERTS}/server.pem;
    ssl_certificate_key {CERTS}/server-key.pem;
    root {root};
  }}
  server {{ listen 127.0.0.1:{self.http}; root {root}; }}
}}
""")
        self.process = subprocess.Popen(["nginx", "-c", conf, "-p", work, "-e", os.path.join(work, "nginx-error.log")])
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.https), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("nginx did not start: see " + os.path.join(work, "nginx-error.log"))

    def mark(self):
        return os.path.getsize(self.log) if os.path.exists(self.log) else 0

    def since(self, mark):
        """The bytes sent and the requests answered since `mark`."""
        with open(self.log, "rb") as f:
            f.seek(mark)
            lines = [line for line in f.read().decode().splitlines() if line.strip()]
        return sum(int(line.split()[2]) for line in lines), len(lines)

    def stop(self):
        self.process.terminate()
        self.process.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="the folder holding the release `autoupdate`")
    parser.add_argument("--mebibytes", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=os.environ.get("BENCH_DIR", "/var/tmp"))
    args = parser.parse_args()
    for tool in ["nginx", "zsync", "zsyncmake", "rsync"]:
        if not shutil.which(tool):
            sys.exit(f"bench-delta: {tool} is missing (make bench installs nginx, zsync and rsync)")
    ours = os.path.join(args.bin, "autoupdate")
    work = tempfile.mkdtemp(prefix="autoupdate-bench-delta-", dir=args.work)
    nginx = rsyncd = None
    try:
        base = os.path.join(work, "tree-1")
        print(f"differential: corpus of {args.mebibytes} MiB in {work}", file=sys.stderr)
        sh(f"{sys.executable} {HERE}/make-corpus.py {base} --mebibytes {args.mebibytes} >&2")
        os.makedirs(os.path.join(base, "bin"), exist_ok=True)
        os.makedirs(os.path.join(base, "notes"), exist_ok=True)
        with open(os.path.join(base, "bin", "core.bin"), "wb") as f:
            f.write(random.Random(1).randbytes(1 << 20))
        trees = {v: os.path.join(work, f"tree-{v}") for v in (1, 10, 11)}
        for version in (10, 11):
            write_release(trees[version], base, version)
        files = sum(len(fs) for _, _, fs in os.walk(trees[11]))

        root = os.path.join(work, "srv")
        nginx = Nginx(work, root)
        installed = {}  # (format, version) -> app folder holding that version
        archives = {}
        for fmt in FORMATS:
            srv = os.path.join(root, fmt)
            url = f"https://127.0.0.1:{nginx.https}/{fmt}/"
            for version in (1, 10, 11):
                sh(f"{ours} publish {trees[version]} --version {version}.0 --out {srv} --archive project.{fmt} >&2")
                if version < 11:
                    app = os.path.join(work, f"installed-{fmt}-{version}")
                    sh(f"{ours} update --url {url} --dir {app} --ca-file {CA} >/dev/null 2>&1")
                    installed[(fmt, version)] = app
            archive = os.path.join(srv, "releases", "11.0", f"project.{fmt}")
            archives[fmt] = os.path.getsize(archive)
            sh(f"zsyncmake -Z -u http://127.0.0.1:{nginx.http}/{fmt}/releases/11.0/project.{fmt} -o {archive}.zsync {archive} >&2")

        # Every run gets a new folder; they are deleted only at the end (see bench.py: ext4's
        # inode allocator slows down right after thousands of deletions).
        runs = os.path.join(work, "runs")
        serial = iter(range(1 << 30))

        def copy_of(source):
            def setup():
                folder = os.path.join(runs, f"run-{next(serial)}")
                os.makedirs(runs, exist_ok=True)
                sh(f"cp -a {source} {folder}")
                return folder
            return setup

        def seed_of(fmt):
            def setup():
                folder = os.path.join(runs, f"run-{next(serial)}")
                os.makedirs(folder)
                shutil.copy(os.path.join(root, fmt, "releases", "10.0", f"project.{fmt}"), os.path.join(folder, "seed"))
                return folder
            return setup

        rows = []  # (group, name, seconds, bytes, archive bytes, reference)
        for fmt in FORMATS:
            url = f"https://127.0.0.1:{nginx.https}/{fmt}/"
            update = f"{ours} update --url {url} --dir {DEST} --ca-file {CA}"
            full = "full update (10.0 → 11.0)"
            specs = [
                (full, update + " --differential never", copy_of(installed[(fmt, 10)]), None),
                ("differential update from 10.0 (previous)", update, copy_of(installed[(fmt, 10)]), full),
                ("differential update from 1.0 (ten back)", update, copy_of(installed[(fmt, 1)]), full),
                ("zsync, seed 10.0's archive (archive only)",
                 f"cd {DEST} && zsync -q -i seed -o new http://127.0.0.1:{nginx.http}/{fmt}/releases/11.0/project.{fmt}.zsync",
                 seed_of(fmt), full),
            ]
            times = {name: [] for name, _, _, _ in specs}
            sent = {name: [] for name, _, _, _ in specs}
            requests = {name: [] for name, _, _, _ in specs}
            for _ in range(args.runs):
                for name, command, setup, _ in specs:
                    mark = nginx.mark()
                    times[name].append(timed_once(command, setup))
                    fetched, answered = nginx.since(mark)
                    sent[name].append(fetched)
                    requests[name].append(answered)
            for name, _, _, reference in specs:
                rows.append((f"project.{fmt}", name, statistics.median(times[name]), statistics.median(sent[name]), archives[fmt],
                             reference, statistics.median(requests[name])))
                print(f"  {fmt}: {name}: {statistics.median(times[name]):.2f} s, {statistics.median(sent[name])} B", file=sys.stderr)

        # rsync: the tree itself, from a daemon on loopback.
        port = free_port()
        conf = os.path.join(work, "rsyncd.conf")
        with open(conf, "w") as f:
            f.write(f"use chroot = no\nuid = root\ngid = root\n[v11]\npath = {trees[11]}\nread only = yes\n")
        rsyncd = subprocess.Popen(["rsync", "--daemon", "--no-detach", f"--config={conf}", "--address=127.0.0.1", f"--port={port}"])
        time.sleep(0.5)
        rsync_times, rsync_bytes = [], []
        for _ in range(args.runs):
            setup = copy_of(trees[10])
            folder = setup()
            os.sync()
            start = time.perf_counter()
            out = subprocess.run(["rsync", "-a", "--stats", f"rsync://127.0.0.1:{port}/v11/", folder + "/"], check=True,
                                 capture_output=True, text=True).stdout
            rsync_times.append(time.perf_counter() - start)
            received = next(line for line in out.splitlines() if line.startswith("Total bytes received"))
            rsync_bytes.append(int(received.split(":")[1].strip().replace(",", "")))
        rows.append(("tree", "rsync 10.0 → 11.0 (daemon on loopback)", statistics.median(rsync_times), statistics.median(rsync_bytes),
                     archives["tar.gz"], None, None))

        by_name = {(g, n): s for g, n, s, _, _, _, _ in rows}
        print(f"\nDifferential updates: {args.mebibytes} MiB app-like tree ({files} files) + bin/core.bin (1 MiB) rewritten and one "
              f"small file added per release; nginx on loopback; median of {args.runs}, {os.cpu_count()} cores\n")
        print("| archive | what | seconds | fetched | of the archive | HTTP requests | vs full update |")
        print("|---|---|---:|---:|---:|---:|---|")
        for group, name, seconds, fetched, archive, reference, answered in rows:
            ratio = ""
            if reference and by_name.get((group, reference)):
                ratio = f"{seconds / by_name[(group, reference)]:.2f} × the time"
            share = f"{100 * fetched / archive:.2f} %" if group != "tree" else f"{100 * fetched / archive:.2f} % (of the tar.gz)"
            count = f"{answered:.0f}" if answered is not None else ""
            print(f"| {group} | {name} | {seconds:.2f} | {fetched / 1e6:.2f} MB | {share} | {count} | {ratio} |")
        print("\nTargets (same run):\n")
        for group, name, seconds, fetched, archive, reference, _ in rows:
            if name.startswith("differential"):
                print(f"- {group}, {name}: fetched {100 * fetched / archive:.2f} % (target ≤ 2 %), "
                      f"time {seconds / by_name[(group, reference)]:.2f} × the full update (target ≤ 0.25)")
    finally:
        if nginx:
            nginx.stop()
        if rsyncd:
            rsyncd.terminate()
            rsyncd.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
