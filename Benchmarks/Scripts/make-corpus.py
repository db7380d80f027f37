#!/usr/bin/env python3
"""Writes a deterministic, app-like tree for benchmarks (never committed).

About 3000 files per 256 MiB with log-normal sizes: source-like text (compresses well),
binary-like data (compresses somewhat) and incompressible data, in nested folders.

    make-corpus.py DEST [--mebibytes 256] [--seed 1]
"""
import argparse, os, random

WORDS = ("update archive stream extract version signature install folder process child "
         "return value const let var func struct class import export module table index").split()

def text(rng, size):
    out, line = bytearray(), []
    while len(out) < size:
        line.append(rng.choice(WORDS))
        if len(line) > rng.randint(4, 12):
            out += (" " * rng.choice((0, 4, 8)) + " ".join(line) + ";\n").encode()
            line = []
    return bytes(out[:size])

def binary(rng, size):
    # Machine-code-like: repeated opcodes and small integers, partly random.
    out = bytearray()
    ops = [rng.randbytes(rng.randint(2, 6)) for _ in range(64)]
    while len(out) < size:
        out += rng.choice(ops) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 8))
    return bytes(out[:size])

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dest")
    parser.add_argument("--mebibytes", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total, target, index = 0, args.mebibytes << 20, 0
    while total < target:
        size = min(int(rng.lognormvariate(9.6, 1.9)), 16 << 20, target - total)
        kind = rng.choices(("text", "binary", "random"), weights=(45, 40, 15))[0]
        depth = rng.randint(1, 4)
        folder = os.path.join(args.dest, *[f"dir{rng.randint(0, 9)}" for _ in range(depth)])
        os.makedirs(folder, exist_ok=True)
        name = os.path.join(folder, f"file{index}.{ {'text': 'txt', 'binary': 'so', 'random': 'dat'}[kind] }")
        data = text(rng, size) if kind == "text" else binary(rng, size) if kind == "binary" else rng.randbytes(size)
        with open(name, "wb") as f:
            f.write(data)
        if kind == "binary" and rng.random() < 0.3:
            os.chmod(name, 0o755)
        total += size
        index += 1
    print(f"{index} files, {total} bytes in {args.dest}")

if __name__ == "__main__":
    main()
