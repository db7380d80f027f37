#!/usr/bin/env python3
"""make fleet: N real `autoupdate watch` clients against nginx on loopback (a benchmark, not a test).

Each client is its own app folder (a small app that execs sleep) with its own install id, run by
`autoupdate watch --interval 2 --jitter 2`. The run:

1. steady state for --steady seconds with 1.0 published: origin requests per second, the share
   answered 304, bytes served;
2. 2.0 published at a 10 % rollout: after --rollout-wait seconds, how many clients run it
   (the goal: 20 ± 8 of 200);
3. the rollout raised to 100 %: the time until 50 % and 100 % of the clients run 2.0.

    fleet.py --bin .build/release [--clients 200] [--steady 10] [--rollout-wait 12]
"""
import argparse, os, random, secrets, shutil, signal, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from importlib import import_module  # noqa: E402

delta = import_module("bench-delta")
CA = delta.CA


def sh(command):
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def versions(folders):
    """How many app folders have 2.0 installed."""
    count = 0
    for folder in folders:
        try:
            with open(os.path.join(folder, "version.txt")) as f:
                count += f.read().strip() == "2.0"
        except OSError:
            pass
    return count


def log_lines(nginx, mark):
    with open(nginx.log, "rb") as f:
        f.seek(mark)
        return [line.split() for line in f.read().decode().splitlines() if line.strip()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--steady", type=float, default=10)
    parser.add_argument("--rollout-wait", type=float, default=12)
    parser.add_argument("--work", default=os.environ.get("BENCH_DIR", "/var/tmp"))
    args = parser.parse_args()
    ours = os.path.join(args.bin, "autoupdate")
    work = tempfile.mkdtemp(prefix="autoupdate-fleet-", dir=args.work)
    nginx = None
    watches = []
    try:
        srv = os.path.join(work, "srv")
        key, pub = os.path.join(work, "release.key"), os.path.join(work, "release.pub")
        sh(f"{ours} keygen --secret-key {key} --public-key {pub}")

        def publish(version, rollout):
            source = os.path.join(work, f"src-{version}")
            os.makedirs(os.path.join(source, "bin"), exist_ok=True)
            with open(os.path.join(source, "bin", "app"), "w") as f:
                f.write(f"#!/bin/sh\n# {version}\nexec sleep 3600\n")
            os.chmod(os.path.join(source, "bin", "app"), 0o755)
            sh(f"{ours} publish {source} --version {version} --out {srv} --secret-key {key} --rollout {rollout}")

        publish("1.0", 100)
        nginx = delta.Nginx(work, srv)
        url = f"https://127.0.0.1:{nginx.https}/"
        template = os.path.join(work, "template")
        sh(f"{ours} update --url {url} --dir {template} --ca-file {CA} --public-key {pub}")
        sh(f"rm -f {template}/.pyautodownloads/install-id")
        folders = []
        for index in range(args.clients):
            folder = os.path.join(work, f"client-{index}")
            sh(f"cp -a {template} {folder}")
            folders.append(folder)
        print(f"fleet: {args.clients} clients, starting their watches", file=sys.stderr)
        environment = dict(os.environ)
        for folder in folders:
            environment["AUTOUPDATE_INSTALL_ID"] = secrets.token_hex(16)
            watches.append(subprocess.Popen(
                [ours, "watch", "bin/app", "--url", url, "--dir", folder, "--ca-file", CA, "--public-key", pub,
                 "--interval", "2", "--jitter", "2", "--health-window", "0.5"],
                env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(5)  # every watch started and past its first check

        mark = nginx.mark()
        start = time.monotonic()
        time.sleep(args.steady)
        elapsed = time.monotonic() - start
        lines = log_lines(nginx, mark)
        steady_requests = len(lines)
        not_modified = sum(1 for line in lines if line[1] == "304")
        steady_bytes = sum(int(line[2]) for line in lines)

        publish("2.0", 10)
        published = time.monotonic()
        time.sleep(args.rollout_wait)
        at_ten = versions(folders)

        mark = nginx.mark()
        sh(f"{ours} rollout 2.0 100 --out {srv} --secret-key {key}")
        raised = time.monotonic()
        half = full = None
        while time.monotonic() - raised < 120:
            done = versions(folders)
            if half is None and done >= args.clients / 2:
                half = time.monotonic() - raised
            if done == args.clients:
                full = time.monotonic() - raised
                break
            time.sleep(0.1)
        rollout_lines = log_lines(nginx, mark)
        rollout_bytes = sum(int(line[2]) for line in rollout_lines)

        print(f"\nFleet: {args.clients} `autoupdate watch` clients (--interval 2 --jitter 2), nginx on loopback, "
              f"{os.cpu_count()} cores\n")
        print("| what | measured | goal |")
        print("|---|---:|---|")
        print(f"| origin requests per second, steady state ({elapsed:.0f} s) | {steady_requests / elapsed:.1f} | |")
        print(f"| share answered 304 Not Modified | {100 * not_modified / max(1, steady_requests):.1f} % | |")
        print(f"| body bytes served per second, steady state | {steady_bytes / elapsed:.0f} B | |")
        print(f"| clients on 2.0 {args.rollout_wait:.0f} s after it was published at a 10 % rollout | {at_ten} of {args.clients} "
              f"| {args.clients // 10} ± {max(1, round(args.clients * 0.04))} |")
        print(f"| rollout raised to 100 %: until 50 % run 2.0 | {half:.1f} s |" if half is not None else "| 50 % | not reached |")
        print(f"| rollout raised to 100 %: until 100 % run 2.0 | {full:.1f} s |" if full is not None else
              f"| 100 % | {versions(folders)} of {args.clients} within 120 s |")
        print(f"| body bytes served from the raise to 100 % | {rollout_bytes / 1e6:.2f} MB ({len(rollout_lines)} requests) | |")
    finally:
        for watch in watches:
            watch.send_signal(signal.SIGTERM)
        for watch in watches:
            try:
                watch.wait(timeout=30)
            except subprocess.TimeoutExpired:
                watch.kill()
        if nginx:
            nginx.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
