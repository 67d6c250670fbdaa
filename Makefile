# weft: see README.md. Every target works on a fresh Debian machine as root.
SHELL := /bin/bash
CARGO ?= cargo
STATIC_BIN := target/static/weft
DEB_PACKAGES := build-essential pkg-config protobuf-compiler libprotobuf-dev ca-certificates \
	musl-tools iproute2 iptables nftables procps containernetworking-plugins etcd-server \
	etcd-client openssl curl docker.io containerd systemd shellcheck iputils-ping iperf3 jq file \
	hyperfine time python3 podman

.PHONY: all build static check-static lab test validate bench demo demo-down dist image vendor \
	deps clean fuzz fuzz-tools

all: build

# Installs the Debian packages the build, tests, demo and benchmark need (only the missing ones).
deps:
	@scripts/ensure-deps.sh $(DEB_PACKAGES)

build:
	$(CARGO) build --locked

# One static executable, linked to target/static/weft: musl, or static-pie glibc where the musl
# target cannot be had (see the script).
static:
	CARGO=$(CARGO) scripts/build-static.sh

# The static binary must load no shared object: ldd says "statically linked" (static-pie) or
# "not a dynamic executable" (static non-PIE), and it must run.
check-static: static
	@out=$$(ldd $(STATIC_BIN) 2>&1 || true); echo "ldd: $$out"; \
	  if echo "$$out" | grep -q '=>'; then echo "weft is dynamically linked" >&2; exit 1; fi
	$(STATIC_BIN) --version

# The namespace lab (tests/lab) the tests, the demo and the benchmarks build their overlays in:
# target/debug/weft-lab. Dev-only; never installed or shipped.
lab:
	$(CARGO) build --locked -p weft-lab

validate:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# Unit tests, then the black-box, differential and concurrency tests (root, throwaway netns).
test: deps validate check-static lab
	scripts/test-summary.sh --locked -- --test-threads=4

bench: deps static lab
	mkdir -p target/bench
	$(CARGO) bench --locked --bench encap | tee target/bench/encap.md
	scripts/bench.sh $(STATIC_BIN)
	scripts/bench-docs.sh

# A flannel overlay on this machine: etcd, three flanneld "hosts" and six pods in throwaway network
# namespaces, a ping matrix and iperf3 across hosts, then a full teardown. BACKEND=vxlan|host-gw|udp;
# KEEP=1 leaves it running until `make demo-down`.
BACKEND ?= vxlan
KEEP ?=
demo: deps static lab
	BACKEND=$(BACKEND) KEEP=$(KEEP) scripts/demo.sh $(STATIC_BIN)

# Removes what `make demo KEEP=1` left running (every demo recorded under /run/weft-demo).
demo-down: lab
	scripts/demo.sh --down

# weft's container image, target/image/weft-VERSION-image.tar (see scripts/image.py): the static
# binary alone, no base image, no network, no docker; `docker load -i` and `ctr images import`
# read it, deploy/kube-flannel.yml runs it.
image: check-static
	python3 scripts/image.py --binary $(STATIC_BIN)

# The air-gapped release: target/dist/weft-VERSION-linux-x86_64.tar.gz (see scripts/dist.sh).
dist: check-static
	scripts/dist.sh --binary $(STATIC_BIN)

# Fuzzing (not part of `make test` or CI): every target in tests/fuzz for FUZZ_SECONDS each, then
# executions per target and in total; crash inputs are copied to testdata/fuzz/<target>/, where
# tests/it/fuzz_regressions.rs replays them. FUZZ_TARGETS picks some; see docs/testing.md.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz: fuzz-tools
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

# The nightly toolchain and cargo-fuzz that `make fuzz` needs, each only if missing.
fuzz-tools:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

vendor:
	$(CARGO) vendor --locked vendor > .cargo-vendor-config.toml
	@echo "vendored into vendor/; see .cargo-vendor-config.toml for the source replacement"

clean:
	$(CARGO) clean
