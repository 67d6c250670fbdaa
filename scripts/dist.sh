#!/bin/sh
# Builds the air-gapped release tarball, weft-VERSION-linux-x86_64.tar.gz: the static binary,
# install.sh and uninstall.sh, the systemd units, the example configs, the container image
# archive (scripts/image.py) and the Kubernetes manifest, README, LICENSE and SHA256SUMS.
# `make dist` runs it after building the static binary.
#
#   scripts/dist.sh [--binary PATH] [--out DIR]
#
# Reproducible: the same inputs give the same bytes. Every entry has the mtime SOURCE_DATE_EPOCH
# (default: the time of the last commit), owner 0:0, a fixed mode, and names in byte order; gzip
# stores no name or time.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
binary=$root/target/static/weft
out=$root/target/dist
while [ $# -gt 0 ]; do
	case $1 in
	--binary) binary=$2; shift ;;
	--out) out=$2; shift ;;
	*) echo "usage: scripts/dist.sh [--binary PATH] [--out DIR]" >&2; exit 2 ;;
	esac
	shift
done

die() {
	echo "dist.sh: $*" >&2
	exit 1
}
[ -x "$binary" ] || die "$binary missing: make static"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || die "no version in Cargo.toml"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null) ||
		die "not a git checkout: set SOURCE_DATE_EPOCH"
fi
name=weft-$version-linux-x86_64

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
d=$stage/$name
# Modes set here, not inherited from the checkout or the umask.
install -d -m 0755 "$d" "$d/bin" "$d/systemd" "$d/systemd/docker.service.d" \
	"$d/etc" "$d/etc/flannel" "$d/etc/cni" "$d/etc/cni/net.d" "$d/image" "$d/deploy"
install -m 0755 "$binary" "$d/bin/weft"
install -m 0755 "$root/scripts/install.sh" "$root/scripts/uninstall.sh" "$d/"
install -m 0644 "$root/README.md" "$root/LICENSE" "$d/"
install -m 0644 "$root/scripts/dist/systemd/flanneld.service" "$d/systemd/"
install -m 0644 "$root/scripts/dist/systemd/docker.service.d/10-flannel.conf" "$d/systemd/docker.service.d/"
install -m 0644 "$root/scripts/dist/etc/flannel/options.env" "$d/etc/flannel/"
install -m 0644 "$root/scripts/dist/etc/cni/net.d/10-flannel.conflist" "$d/etc/cni/net.d/"
install -m 0644 "$root/deploy/kube-flannel.yml" "$d/deploy/"
SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH python3 "$root/scripts/image.py" --binary "$binary" \
	--out "$stage/image" >/dev/null
install -m 0644 "$stage/image/weft-$version-image.tar" "$d/image/"

(
	cd "$d"
	find . -type f | sed 's|^\./||' | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done >"$stage/SHA256SUMS"
)
install -m 0644 "$stage/SHA256SUMS" "$d/SHA256SUMS"

mkdir -p "$out"
# GNU format: no pax headers, which would carry atime and ctime.
(cd "$stage" && LC_ALL=C tar --sort=name --format=gnu --mtime="@$SOURCE_DATE_EPOCH" \
	--owner=0 --group=0 --numeric-owner -cf - "$name") | gzip -9 -n >"$out/$name.tar.gz.new"
mv -f "$out/$name.tar.gz.new" "$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
