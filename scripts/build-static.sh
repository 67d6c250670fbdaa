#!/usr/bin/env bash
# Builds the release binary as one static executable and links it to target/static/weft (what
# `make static` runs; the demo, the benchmarks, `make dist` and the dist tests use that path).
#
# musl first: a static glibc program asks CPUID for every cache parameter at start-up, and in a
# VM each CPUID traps to the hypervisor, which made glibc's start-up 0.4 to 0.5 ms of every plugin
# run (README, Benchmarks). The musl target comes from rustup and its C compiler (for ring) from
# Debian's musl-tools; where either cannot be had (an offline builder with only the host
# target), the build falls back to a static-pie glibc binary, loudly, and that binary works the
# same.
#
# Usage: scripts/build-static.sh [extra cargo args]   (env CARGO, default cargo)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
musl=x86_64-unknown-linux-musl
gnu=x86_64-unknown-linux-gnu

have_musl() {
    command -v musl-gcc >/dev/null || return 1
    command -v rustup >/dev/null || return 1
    rustup target list --installed 2>/dev/null | grep -qx "$musl" && return 0
    echo "build-static: adding the $musl target with rustup" >&2
    rustup target add "$musl" >/dev/null 2>&1
}

if have_musl; then
    target=$musl
    "$cargo" build --locked --release --target "$target" "$@"
else
    target=$gnu
    echo "build-static: WARNING: no $musl target or no musl-gcc (Debian: musl-tools);" \
        "building a static-pie glibc binary instead, which starts 0.4 to 0.5 ms slower in VMs" >&2
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        "$cargo" build --locked --release --target "$target" "$@"
fi
mkdir -p target/static
ln -f "target/$target/release/weft" target/static/weft
echo "build-static: target/static/weft is the $target build"
file target/static/weft || true
