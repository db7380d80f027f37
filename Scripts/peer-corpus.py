#!/usr/bin/env python3
"""Runs `autoupdate extract` over other projects' reader test archives and compares with the peers.

The archives are in ../shared/peer_corpus/ (Go's archive/tar and archive/zip testdata, CPython's
archivetestdata, libarchive's test corpus, real sdists, wheels and jars). For each archive:

- ours: `autoupdate extract ARCHIVE DEST`, then the tree DEST holds;
- the peers: GNU tar, bsdtar and Python's tarfile (tar formats), unzip, bsdtar and Python's
  zipfile (zip), each asked for its listing (nothing of theirs is extracted).

Every archive falls in one kind:

- same:        we extract it, and every name a peer lists is in our tree (and nothing else);
- DIFFERENT:   we extract it, but a name is missing, renamed or extra: the serious kind;
- refused:     we refuse it while at least one peer reads it: each needs a reason (the policy);
- both-refuse: we and every peer refuse it;
- only-ours:   we read it and no peer does.

Usage: Scripts/peer-corpus.py --bin .build/debug/autoupdate [--corpus ../shared/peer_corpus] [--verbose]
Exit status 0 unless an archive is DIFFERENT (or the corpus is missing: 0, with a message).
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tbz2", ".tar.xz")
ZIP_SUFFIXES = (".zip", ".jar", ".whl", ".zipx", ".notzip")


def normalize(name):
    """A listed name as a path: no leading ./ or /, no trailing /, '' for the root."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return "/".join(parts)


def with_parents(names):
    """The names plus every folder above them (readers create those implicitly)."""
    result = set()
    for name in names:
        if not name:
            continue
        parts = name.split("/")
        for length in range(1, len(parts) + 1):
            result.add("/".join(parts[:length]))
    return result


def run(command, timeout=60):
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        return 124, b"", b"timed out"


def listing_lines(output, zip_names=False):
    """Names as listed; for zips, bytes that are not UTF-8 read as CP437, as the format says
    (unzip and bsdtar list raw bytes)."""
    names = []
    for line in output.splitlines():
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("cp437") if zip_names else line.decode("utf-8", "surrogateescape")
        names.append(normalize(text))
    return names


def peers_for(path):
    lower = path.lower()
    if lower.endswith(ZIP_SUFFIXES):
        return {
            "unzip": lambda: run(["unzip", "-Z1", path]),
            "bsdtar": lambda: run(["bsdtar", "-tf", path]),
            "python": lambda: python_zip(path),
        }
    return {
        "gnu-tar": lambda: run(["tar", "-tf", path]),
        "bsdtar": lambda: run(["bsdtar", "-tf", path]),
        "python": lambda: python_tar(path),
    }


def python_tar(path):
    try:
        with tarfile.open(path) as archive:
            names = [member.name for member in archive.getmembers()]
        return 0, "\n".join(names).encode("utf-8", "surrogateescape"), b""
    except Exception as error:  # noqa: BLE001 - any failure is the peer refusing
        return 1, b"", str(error).encode()


def python_zip(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            archive.testzip()
        return 0, "\n".join(names).encode("utf-8", "surrogateescape"), b""
    except Exception as error:  # noqa: BLE001
        return 1, b"", str(error).encode()


def our_tree(root):
    names = set()
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            full = os.path.join(folder, name)
            names.add(os.path.relpath(full, root).replace(os.sep, "/"))
    return names


def classify(binary, path, scratch):
    destination = os.path.join(scratch, "out")
    shutil.rmtree(destination, ignore_errors=True)
    status, _, stderr = run([binary, "extract", path, destination], timeout=120)
    ours_ok = status == 0
    message = stderr.decode("utf-8", "replace").strip().splitlines()
    message = message[-1] if message else ""
    tree = our_tree(destination) if ours_ok else set()
    shutil.rmtree(destination, ignore_errors=True)

    peer_results = {}
    for name, listing in peers_for(path).items():
        code, output, _ = listing()
        is_zip = path.lower().endswith(ZIP_SUFFIXES)
        peer_results[name] = (code == 0, set(listing_lines(output, is_zip)) - {""} if code == 0 else set())
    readers = [name for name, (ok, _) in peer_results.items() if ok]

    if not ours_ok:
        return ("refused" if readers else "both-refuse"), message, readers
    if not readers:
        return "only-ours", "", readers
    # Compare with every peer that read it; a name one peer lists and we lack is a difference.
    problems = []
    for name in readers:
        listed = peer_results[name][1]
        missing = sorted(with_parents(listed) - tree)
        extra = sorted(tree - with_parents(listed))
        if missing or extra:
            problems.append(f"{name}: missing {missing[:4]} extra {extra[:4]}")
    if len(problems) == len(readers):
        return "DIFFERENT", "; ".join(problems), readers
    return "same", "; ".join(problems), readers


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the autoupdate binary")
    parser.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peer_corpus"))
    parser.add_argument("--verbose", action="store_true", help="print every archive, not only the ones that are not 'same'")
    arguments = parser.parse_args()
    corpus = os.path.abspath(arguments.corpus)
    if not os.path.isdir(corpus):
        print(f"peer corpus not found at {corpus}: nothing to compare (it lives outside the repository)")
        return 0
    tally = collections.Counter()
    by_folder = collections.defaultdict(collections.Counter)
    lines = []
    with tempfile.TemporaryDirectory(prefix="peer-corpus-") as scratch:
        for folder in sorted(os.listdir(corpus)):
            directory = os.path.join(corpus, folder)
            if not os.path.isdir(directory):
                continue
            for name in sorted(os.listdir(directory)):
                path = os.path.join(directory, name)
                kind, detail, readers = classify(os.path.abspath(arguments.bin), path, scratch)
                tally[kind] += 1
                by_folder[folder][kind] += 1
                if kind != "same" or arguments.verbose:
                    lines.append(f"{kind:12} {folder}/{name}: {detail} (read by: {', '.join(readers) or 'none'})")
    for line in lines:
        print(line)
    print()
    print("by folder:")
    for folder, counts in sorted(by_folder.items()):
        print(f"  {folder:20} " + ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items())))
    print("total: " + ", ".join(f"{kind} {count}" for kind, count in sorted(tally.items())) + f" ({sum(tally.values())} archives)")
    return 1 if tally["DIFFERENT"] else 0


if __name__ == "__main__":
    sys.exit(main())
