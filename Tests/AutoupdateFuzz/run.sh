#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets, seeds each corpus with real and hostile archives, and
# runs every target for FUZZ_SECONDS (default 60). A crash leaves its input in
# .build-fuzz/findings/<target>/; copy it to Tests/AutoupdateTests/Archive/FuzzRegressions/<target>/
# so that `make test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
scratch=.build-fuzz
swift build --product AutoupdateFuzz --scratch-path "$scratch" \
  --sanitize=fuzzer --sanitize=address -Xswiftc -DAUTOUPDATE_FUZZING -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld
fuzzer="$scratch/debug/AutoupdateFuzz"

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds/src/dir"
echo hello > "$seeds/src/dir/a.txt"
head -c 5000 /dev/urandom > "$seeds/src/b.bin"
ln -s dir/a.txt "$seeds/src/link"
(cd "$seeds" && tar --format=gnu -cf gnu.tar -C src . && tar --format=posix -cf posix.tar -C src . \
  && gzip -c posix.tar > a.tgz && bzip2 -c gnu.tar > a.tbz2 \
  && (cd src && zip -qry ../a.zip . && zip -qr - . | cat > ../pipe.zip))

run() { # target, seed files…
  local target=$1; shift
  local corpus="$scratch/corpus/$target" findings="$scratch/findings/$target"
  mkdir -p "$corpus" "$findings"
  for seed in "$@"; do printf '\x40' | cat - "$seed" > "$corpus/seed-$(basename "$seed")"; done
  if [ -d "Tests/AutoupdateTests/Archive/FuzzRegressions/$target" ]; then
    cp Tests/AutoupdateTests/Archive/FuzzRegressions/"$target"/* "$corpus/" 2>/dev/null || true
  fi
  echo "== fuzzing $target for ${seconds}s"
  AUTOUPDATE_FUZZ_TARGET=$target "$fuzzer" -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" 2>&1 | tail -n 12
}
run tar "$seeds/gnu.tar" "$seeds/posix.tar"
run tgz "$seeds/a.tgz"
run tbz2 "$seeds/a.tbz2"
run zip "$seeds/a.zip" "$seeds/pipe.zip"
run gzip "$seeds/a.tgz"
run bzip2 "$seeds/a.tbz2"
run compress "$seeds/gnu.tar" "$seeds/src/b.bin"
echo "fuzzing done: no crash in any target (findings, if any, are in $scratch/findings)"
