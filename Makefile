# autoupdate — build, test and tooling entry points.
# `make test` and `make demo` work on a fresh Debian machine with Swift: they install
# what is missing first (apt-get, pip into a local venv), then build and run.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

SWIFT ?= swift
# Debian packages the build links against and the real tools the tests drive.
APT_PACKAGES := libcurl4-openssl-dev libssl-dev zlib1g-dev libbz2-dev libsodium-dev pkg-config \
                tar gzip bzip2 zip unzip libarchive-tools minisign openssl python3 python3-venv curl lbzip2 pigz \
                binutils dpkg-dev nginx tinyproxy
# Python packages the differential tests compare against, pinned for repeatability.
VENV := .venv
PIP_PACKAGES := packaging==26.2

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build dist test docs tsan fuzz demo bench bench-delta bench-lifecycle bench-check bench-thresholds bench-deps fleet peer-corpus clean

## deps: install missing Debian packages (apt-get) and the test venv; does nothing when all are present.
deps: $(VENV)/.installed
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The venv needs python3 with venv support; apt provides both when the machine lacks them.
$(VENV)/.installed: Makefile
	@if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3 python3-venv; \
	fi
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(PIP_PACKAGES)
	@touch $@

## demo: an app updated from 1.0 to 2.0 over a local HTTPS server (a staged rollout first, then a differential update), then run.
demo: deps
	bash Scripts/demo.sh

## build: release build of the library and the `autoupdate` CLI.
build: deps
	$(SWIFT) build -c release

## dist: dist/autoupdate, self-contained (the Swift runtime and FoundationEssentials linked in: no
## toolchain needed to run it), its man pages, and dist/autoupdate_<version>_<arch>.deb.
## lld for DT_RELR (packed relocations: 1 MB less; glibc 2.36, Debian 12, or later).
DIST_BUILD := .build-dist
DIST_FLAGS := -c release --static-swift-stdlib --scratch-path $(DIST_BUILD) --toolset Packaging/toolset.json \
              -Xlinker -z -Xlinker pack-relative-relocs
dist: deps
	$(SWIFT) build $(DIST_FLAGS) --product autoupdate
	$(SWIFT) build $(DIST_FLAGS) --product generate-manual
	rm -rf dist && mkdir -p dist/man
	cp $(DIST_BUILD)/release/autoupdate dist/autoupdate && strip --strip-unneeded dist/autoupdate
	$(DIST_BUILD)/release/generate-manual dist/autoupdate --multi-page --date "$$(git log -1 --format=%cs 2>/dev/null || date +%F)" \
	  --output-directory dist/man
	rm -f dist/man/autoupdate.help.1
	bash Packaging/make-deb.sh dist/autoupdate dist/man dist

## test: install what is missing, build the package (make dist: one test installs it), then build
## (zero warnings, the examples too), run every test, and build the documentation (zero warnings).
test: deps dist
	AUTOUPDATE_PYTHON=$(CURDIR)/$(VENV)/bin/python AUTOUPDATE_DEB="$$(ls $(CURDIR)/dist/autoupdate_*.deb)" \
	  $(SWIFT) test --parallel
	$(MAKE) docs

## docs: the library's DocC documentation (.build/plugins/Swift-DocC/outputs/Autoupdate.doccarchive);
## a warning fails it.
docs:
	$(SWIFT) package generate-documentation --target Autoupdate --warnings-as-errors

## tsan: the whole test suite under ThreadSanitizer (its own build folder).
tsan: deps
	AUTOUPDATE_PYTHON=$(CURDIR)/$(VENV)/bin/python AUTOUPDATE_TEST_TIME_SCALE=5 AUTOUPDATE_SANITIZER=thread \
	  $(SWIFT) test --sanitize=thread --scratch-path .build-tsan

## bench: our CLI against the peers (tar, bsdtar, unzip, curl, pyautoupdate; zsync and rsync for deltas) on an app-like corpus;
## BENCH_MIB (default 256) and BENCH_RUNS (default 3); prints a Markdown table.
BENCH_MIB ?= 256
BENCH_RUNS ?= 3
bench: deps bench-deps
	$(SWIFT) build -c release --product autoupdate
	$(SWIFT) build -c release --product AutoupdateTestHelper
	bin=$$($(SWIFT) build -c release --show-bin-path) && \
	  python3 Benchmarks/Scripts/bench.py --bin "$$bin" --helper "$$bin/AutoupdateTestHelper" \
	    --mebibytes $(BENCH_MIB) --runs $(BENCH_RUNS) && \
	  python3 Benchmarks/Scripts/bench-delta.py --bin "$$bin" --mebibytes $(BENCH_MIB) --runs $(BENCH_RUNS) && \
	  python3 Benchmarks/Scripts/bench-lifecycle.py --bin "$$bin" --static dist/autoupdate --mebibytes $(BENCH_MIB) --runs $(BENCH_RUNS)

## bench-delta: only the differential-update rows (ours, full, zsync, rsync; nginx on loopback).
bench-delta: deps bench-deps
	$(SWIFT) build -c release --product autoupdate
	python3 Benchmarks/Scripts/bench-delta.py --bin "$$($(SWIFT) build -c release --show-bin-path)" \
	  --mebibytes $(BENCH_MIB) --runs $(BENCH_RUNS)

## bench-lifecycle: only the rollback, status and watch swap-gap rows (nginx on loopback).
bench-lifecycle: deps bench-deps
	$(SWIFT) build -c release --product autoupdate
	python3 Benchmarks/Scripts/bench-lifecycle.py --bin "$$($(SWIFT) build -c release --show-bin-path)" --static dist/autoupdate \
	  --mebibytes $(BENCH_MIB) --runs $(BENCH_RUNS)

## bench-check: the in-process decode, scan and extract benchmarks (Benchmarks/, ordo-one) against the
## thresholds in Benchmarks/Thresholds/: a p90 more than BENCH_TOLERANCE % (default 10) worse, twice,
## fails (times scaled by the machine's speed now against when they were recorded).
BENCH_TOLERANCE ?= 10
bench-check: deps
	BENCH_TOLERANCE=$(BENCH_TOLERANCE) bash Benchmarks/Scripts/bench-check.sh

## bench-thresholds: records those thresholds (each metric's median p90 of RUNS=3 runs, with the machine's speed).
bench-thresholds: deps
	bash Benchmarks/Scripts/bench-thresholds.sh

## fleet: N real `watch` clients (default 200) against nginx on loopback: requests per second, 304 share,
## a 10 % rollout's reach, the time until 50 % and 100 % run a release raised to 100 % (a benchmark).
N ?= 200
fleet: deps bench-deps
	$(SWIFT) build -c release --product autoupdate
	python3 Benchmarks/Scripts/fleet.py --bin "$$($(SWIFT) build -c release --show-bin-path)" --clients $(N)

# The peers only the benchmarks drive.
BENCH_APT_PACKAGES := nginx zsync rsync
bench-deps:
	@missing=""; \
	for p in $(BENCH_APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "bench-deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## fuzz: libFuzzer + AddressSanitizer on every archive reader and decoder, FUZZ_SECONDS each (default 60).
fuzz: deps
	bash Tests/AutoupdateFuzz/run.sh

## peer-corpus: our extractor against GNU tar, bsdtar, unzip and Python over other projects' reader
## test archives (PEER_CORPUS, default ../shared/peer_corpus; skipped with a message when absent).
PEER_CORPUS ?= $(CURDIR)/../shared/peer_corpus
peer-corpus: deps
	$(SWIFT) build --product autoupdate
	python3 Scripts/peer-corpus.py --bin "$$($(SWIFT) build --show-bin-path)/autoupdate" --corpus "$(PEER_CORPUS)"

clean:
	rm -rf .build .build-tsan .build-fuzz $(VENV)
