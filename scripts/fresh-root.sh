#!/usr/bin/env bash
# Runs the README's test command (or the demo) the way a new user on a machine that has never
# seen weft would: in a fresh Debian bookworm root made by debootstrap (minbase), into which the
# repository is cloned from its committed HEAD. Nothing of this machine's packages is visible
# inside; everything the build and the tests need must come from the project's own set-up
# (`make deps`), so a missing install step fails here instead of hiding behind a package that
# was once installed by hand. CI (.ci/run) runs `scripts/fresh-root.sh test`.
#
# What comes from this machine, because it cannot come from a package registry:
#   - the Rust toolchain (rustup's RUSTUP_HOME and cargo's bin/), under an overlay whose lower
#     layer is never written, so `rustup target add` inside works and leaves this machine as it
#     was; cargo's registry cache (/var/cache/weft-fresh-root/cargo-registry), for speed;
#   - how this machine reaches the registries: apt's sources and Acquire settings, the resolver
#     configuration, and the local CA certificates under /usr/local/share/ca-certificates (a
#     TLS-intercepting proxy's CA), which the ca-certificates package adds to the bundle only
#     once the project's set-up installs it;
#   - /proc, /sys and /dev, and a private /run for network namespaces, all in a mount
#     namespace of the run's own, so nothing is mounted on this machine and nothing is left.
# The one step before the README's commands is the prerequisite the README names for a new
# machine: `apt-get install git make`.
#
# The debootstrap result is cached as a tarball under /var/cache/weft-fresh-root (it holds only
# Debian's minbase, nothing the project installs); FRESH_ROOT_REBUILD=1 makes it anew.
#
# Usage: scripts/fresh-root.sh test|demo [make args...]
#        FRESH_ROOT_KEEP=1 leaves the root (path printed) for a look afterwards.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
suite=bookworm
cache=/var/cache/weft-fresh-root
base_tar=$cache/$suite-minbase.tar

die() {
    echo "fresh-root: $*" >&2
    exit 1
}
stamp() { date +%s; }
took() { echo "$(($(stamp) - $1)) s"; }

# The inner half: run inside `unshare --mount` with the root prepared; mounts what the run
# needs and chroots into it. Everything it mounts goes away with the mount namespace.
if [ "${1:-}" = --inside ]; then
    src=$2 root=$3 work=$4 rustup_home=$5 cargo_bin=$6 target=$7
    shift 7
    mount --make-rprivate /
    # The root is a mount point of its own, as / is on a machine: `ip netns exec` remounts /
    # as a slave, which fails on a plain directory.
    mount --bind "$root" "$root"
    mount --bind "$src" "$root/mnt/src"
    mount -o remount,bind,ro "$root/mnt/src"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=755 tmpfs "$root/run"
    mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin" "$root/root/.cargo/registry" \
        "$work/rustup-upper" "$work/rustup-work"
    mount -t overlay overlay \
        -o "lowerdir=$rustup_home,upperdir=$work/rustup-upper,workdir=$work/rustup-work" \
        "$root/root/.rustup"
    mount --bind "$cargo_bin" "$root/root/.cargo/bin"
    mount -o remount,bind,ro "$root/root/.cargo/bin"
    mkdir -p "$cache/cargo-registry"
    mount --bind "$cache/cargo-registry" "$root/root/.cargo/registry"
    in_root() {
        chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" CI="${CI:-}" \
            PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            RUSTUP_HOME=/root/.rustup CARGO_HOME=/root/.cargo \
            /bin/bash -c "$1"
    }
    t=$(stamp)
    echo "== fresh-root: the README's prerequisite: apt-get install git make"
    in_root 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
        apt-get install -y -qq --no-install-recommends git make >/dev/null' ||
        die "apt-get install git make failed inside the root"
    in_root 'git clone -q /mnt/src /root/weft' || die "git clone failed inside the root"
    echo "   prerequisites and clone: $(took "$t")"
    t=$(stamp)
    echo "== fresh-root: make deps (the project's own set-up)"
    in_root 'cd /root/weft && make deps'
    echo "   make deps: $(took "$t")"
    echo "== fresh-root: set-up took $(($(stamp) - FRESH_ROOT_T0)) s in all (root, prerequisites, make deps)"
    t=$(stamp)
    echo "== fresh-root: make $target $*"
    rc=0
    in_root "cd /root/weft && make $target $*" || rc=$?
    echo "== fresh-root: make $target: $(took "$t"), exit $rc"
    exit "$rc"
fi

target=${1:-}
case "$target" in
    test | demo) shift ;;
    *) die "usage: $0 test|demo [make args...]" ;;
esac
[ "$(id -u)" = 0 ] || die "needs root: it makes a root filesystem and mounts into it"
export FRESH_ROOT_T0
FRESH_ROOT_T0=$(stamp)

# This machine's first Debian source, so the root uses the registry this machine is set up for.
mirror=${FRESH_ROOT_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -v security | head -n 1 || true)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' \
        /etc/apt/sources.list)
fi
[ -n "$mirror" ] || die "cannot tell this machine's Debian mirror; set FRESH_ROOT_MIRROR"

rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
[ -d "$rustup_home/toolchains" ] || die "no rustup toolchain at $rustup_home (set RUSTUP_HOME)"
[ -x "$cargo_bin/cargo" ] || die "no cargo in $cargo_bin (set CARGO_HOME)"
git -C "$here" rev-parse -q --verify HEAD >/dev/null || die "$here is not a git checkout"

t=$(stamp)
mkdir -p "$cache"
if [ ! -s "$base_tar" ] || [ -n "${FRESH_ROOT_REBUILD:-}" ]; then
    if ! command -v debootstrap >/dev/null; then
        echo "== fresh-root: installing debootstrap on this machine (the tool that makes the root)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } ||
            die "cannot install debootstrap"
    fi
    echo "== fresh-root: debootstrap --variant=minbase $suite from $mirror"
    boot=$(mktemp -d /var/tmp/weft-debootstrap.XXXXXX)
    if ! debootstrap --variant=minbase "$suite" "$boot" "$mirror" >"$boot.log" 2>&1; then
        tail -n 20 "$boot.log" >&2
        rm -rf --one-file-system "$boot" "$boot.log"
        die "debootstrap failed"
    fi
    tar -C "$boot" --numeric-owner -cf "$base_tar.new" .
    mv "$base_tar.new" "$base_tar"
    rm -rf --one-file-system "$boot" "$boot.log"
fi

work=$(mktemp -d /var/tmp/weft-fresh-root.XXXXXX)
# apt fetches as the unprivileged _apt, which must reach the root's cache through this path.
chmod 755 "$work"
root=$work/root
cleanup() {
    if [ -n "${FRESH_ROOT_KEEP:-}" ]; then
        echo "fresh-root: kept $root" >&2
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
mkdir "$root"
tar -C "$root" --numeric-owner -xf "$base_tar"

# How this machine reaches the registries (see the header).
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/hosts "$root/etc/hosts"
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$root$f"
done
for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] && grep -q '^[[:space:]]*Acquire' "$f" && cp "$f" "$root$f"
done
for f in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$f" ] && mkdir -p "$root/usr/local/share/ca-certificates" && cp "$f" "$root$f"
done
# The repository is bind-mounted here, read-only, to clone from as a user clones.
mkdir -p "$root/mnt/src"
echo "== fresh-root: Debian $suite minbase in $root ($(took "$t"))"

unshare --mount --fork -- bash "$0" --inside "$here" "$root" "$work" "$rustup_home" "$cargo_bin" \
    "$target" "$@"
