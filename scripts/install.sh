#!/bin/sh
# Installs weft from the unpacked release tarball this script sits in, offline: the binary, the
# applet symlinks, the systemd units and (only where none exists) the example configs.
#
#   ./install.sh [--prefix DIR] [--destdir DIR] [--dry-run] [--force]
#
# --prefix DIR   binary and flanneld/mk-docker-opts links in DIR/bin (default /usr/local)
# --destdir DIR  stage everything under DIR (also the DESTDIR variable), for packaging or chroots
# --dry-run      say what would be done, change nothing
# --force        move files in the way that install.sh did not put there aside (to NAME.weft-orig;
#                uninstall.sh puts them back) instead of stopping
# CNI_BIN_DIR    where the CNI applets are linked (default /opt/cni/bin)
# SYSTEMD_UNIT_DIR, SYSCONFDIR   default /etc/systemd/system and /etc
#
# Every change is recorded in PREFIX/lib/weft/install-manifest; uninstall.sh (also copied there)
# removes exactly those. Running it again changes nothing; a newer tarball updates what it
# installed and still leaves existing configs alone.
set -eu

# The applets by where they belong; tests/it/dist.rs checks these cover `weft --list`.
CNI_APPLETS="bridge host-local loopback ptp flannel portmap"
BIN_APPLETS="flanneld mk-docker-opts cnitool"

usage() {
	# The comment block at the top of this file.
	sed -e 1d -e '/^[^#]/,$d' -e 's/^# \{0,1\}//' "$0" >&2
	exit "$1"
}

prefix=/usr/local
destdir=${DESTDIR:-}
dry_run=
force=
while [ $# -gt 0 ]; do
	case $1 in
	--prefix) [ $# -ge 2 ] || usage 2; prefix=$2; shift ;;
	--prefix=*) prefix=${1#*=} ;;
	--destdir) [ $# -ge 2 ] || usage 2; destdir=$2; shift ;;
	--destdir=*) destdir=${1#*=} ;;
	--dry-run) dry_run=1 ;;
	--force) force=1 ;;
	-h | --help) usage 0 ;;
	*) echo "install.sh: unknown argument: $1" >&2; usage 2 ;;
	esac
	shift
done
cni_bin_dir=${CNI_BIN_DIR:-/opt/cni/bin}
unit_dir=${SYSTEMD_UNIT_DIR:-/etc/systemd/system}
sysconfdir=${SYSCONFDIR:-/etc}

die() {
	echo "install.sh: $*" >&2
	exit 1
}

for p in "$prefix" "$cni_bin_dir" "$unit_dir" "$sysconfdir"; do
	case $p in
	/*) ;;
	*) die "$p: paths must be absolute" ;;
	esac
	# The manifest is one entry per line, fields split on blanks.
	case $p in
	*[[:space:]]*) die "$p: paths with blanks are not supported" ;;
	esac
done
prefix=${prefix%/}
destdir=${destdir%/}

src=$(cd "$(dirname "$0")" && pwd)
[ -x "$src/bin/weft" ] || die "$src/bin/weft missing: run install.sh from the unpacked tarball"
case $src in
*[[:space:]]*) die "$src: unpack the tarball into a directory whose path has no blanks" ;;
esac

# The tarball's own checksums: a truncated download or a changed file stops here.
if command -v sha256sum >/dev/null 2>&1; then
	(cd "$src" && sha256sum -c --quiet SHA256SUMS) || die "SHA256SUMS does not match the files"
else
	echo "install.sh: sha256sum not found, not checking SHA256SUMS" >&2
fi

bin="$prefix/bin"
weft="$bin/weft"
libdir="$prefix/lib/weft"
manifest="$libdir/install-manifest"
say() { echo "$*"; }
if [ -n "$dry_run" ]; then
	say "dry run: nothing is changed"
	act() { say "would: $*"; }
else
	act() { say "$*"; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The manifest so far, also when an earlier install made it; entries are only ever appended.
if [ -f "$destdir$manifest" ]; then
	cp "$destdir$manifest" "$tmp/manifest"
else
	: >"$tmp/manifest"
fi
manifest_dir_ready=

# recorded KIND PATH: true if an earlier step or install recorded PATH as KIND.
recorded() {
	# Paths have no blanks, so "KIND PATH" alone or followed by a blank is exactly this entry.
	grep -qxF "$1 $2" "$tmp/manifest" || grep -qF "$1 $2 " "$tmp/manifest"
}
# Written out after every step (once its directory exists), so an install that stops half way
# can still be undone.
flush_manifest() {
	if [ -z "$dry_run" ] && [ -n "$manifest_dir_ready" ]; then
		cp "$tmp/manifest" "$destdir$manifest.new"
		mv -f "$destdir$manifest.new" "$destdir$manifest"
	fi
}
record() {
	if ! grep -qxF "$*" "$tmp/manifest"; then
		echo "$*" >>"$tmp/manifest"
		flush_manifest
	fi
}
# CRC and size: enough to tell an edited config from the one written (cksum is POSIX, present on
# any host).
fingerprint() { cksum <"$1" | tr ' ' -; }

# The unit with the paths of this prefix and sysconfdir.
sed -e "s|/usr/local/bin/|$bin/|g" -e "s|/etc/flannel/|$sysconfdir/flannel/|g" \
	"$src/systemd/flanneld.service" >"$tmp/flanneld.service"

# Plan: "KIND DEST SOURCE-OR-TARGET MODE", one per line.
{
	echo "file $weft $src/bin/weft 0755"
	for a in $BIN_APPLETS; do echo "link $bin/$a $weft -"; done
	for a in $CNI_APPLETS; do echo "link $cni_bin_dir/$a $weft -"; done
	echo "file $unit_dir/flanneld.service $tmp/flanneld.service 0644"
	echo "file $unit_dir/docker.service.d/10-flannel.conf $src/systemd/docker.service.d/10-flannel.conf 0644"
	# May hold etcd credentials.
	echo "config $sysconfdir/flannel/options.env $src/etc/flannel/options.env 0600"
	echo "config $sysconfdir/cni/net.d/10-flannel.conflist $src/etc/cni/net.d/10-flannel.conflist 0644"
	echo "file $libdir/uninstall.sh $src/uninstall.sh 0755"
} >"$tmp/plan"

# Already as wanted?
in_place() { # kind dest source mode
	case $1 in
	link) [ -L "$destdir$2" ] && [ "$(readlink "$destdir$2")" = "$3" ] ;;
	*) [ -f "$destdir$2" ] && [ ! -L "$destdir$2" ] && cmp -s "$destdir$2" "$3" ;;
	esac
}

# First every conflict, so a refusal changes nothing.
conflicts=
while read -r kind dest from mode; do
	d=$destdir$dest
	if [ ! -e "$d" ] && [ ! -L "$d" ]; then continue; fi
	if [ "$kind" = config ] || in_place "$kind" "$dest" "$from" "$mode" || recorded "$kind" "$dest"; then
		continue
	fi
	[ -d "$d" ] && [ ! -L "$d" ] && die "$d is a directory"
	if [ -e "$d.weft-orig" ] || [ -L "$d.weft-orig" ]; then
		die "$d is in the way and $d.weft-orig exists already"
	fi
	conflicts="$conflicts $d"
done <"$tmp/plan"
if [ -n "$conflicts" ] && [ -z "$force" ]; then
	for c in $conflicts; do echo "install.sh: $c exists and was not installed by install.sh" >&2; done
	die "nothing changed; --force moves them aside (NAME.weft-orig, restored by uninstall.sh)"
fi

# ensure_dir DIR: creates DIR and its missing parents, recording each one created.
ensure_dir() {
	if [ -d "$destdir$1" ] || [ "$1" = / ] || [ -z "$1" ]; then
		return 0
	fi
	# A dry run makes nothing, so it remembers what it would have made.
	if [ -n "$dry_run" ] && recorded dir "$1"; then
		return 0
	fi
	ensure_dir "$(dirname "$1")"
	act "mkdir $destdir$1"
	[ -n "$dry_run" ] || mkdir -m 0755 "$destdir$1"
	record dir "$1"
}

# A staging directory is the caller's, made here if missing but not recorded.
if [ -n "$destdir" ] && [ -z "$dry_run" ]; then
	mkdir -p "$destdir"
fi

# The manifest's own directory first: uninstall.sh walks the manifest backwards, so the manifest
# and that directory go last.
ensure_dir "$libdir"
manifest_dir_ready=1
record manifest "$manifest"
flush_manifest

changed=
while read -r kind dest from mode; do
	d=$destdir$dest
	if [ "$kind" = config ] && { [ -e "$d" ] || [ -L "$d" ]; }; then
		in_place "$kind" "$dest" "$from" "$mode" || say "keeping $d (differs from the example in $from)"
		continue
	fi
	if in_place "$kind" "$dest" "$from" "$mode"; then
		continue
	fi
	changed=1
	ensure_dir "$(dirname "$dest")"
	if [ -e "$d" ] || [ -L "$d" ]; then
		if ! recorded "$kind" "$dest"; then
			act "mv $d $d.weft-orig"
			[ -n "$dry_run" ] || mv "$d" "$d.weft-orig"
			record moved "$dest"
		fi
	fi
	case $kind in
	link)
		act "ln -s $from $d"
		if [ -z "$dry_run" ]; then
			# Beside the old name, then renamed over it: never a moment without the link.
			ln -sfn "$from" "$d.weft-new"
			mv -f "$d.weft-new" "$d"
		fi
		record link "$dest"
		;;
	file | config)
		act "install -m $mode $from $d"
		if [ -z "$dry_run" ]; then
			cp "$from" "$d.weft-new"
			chmod "$mode" "$d.weft-new"
			mv -f "$d.weft-new" "$d"
		fi
		if [ "$kind" = config ]; then
			record config "$dest" "$(fingerprint "$from")"
		else
			record file "$dest"
		fi
		;;
	esac
done <"$tmp/plan"

if [ -z "$changed" ]; then
	say "weft is installed already; nothing to do"
elif [ -z "$dry_run" ] && [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload
fi
if [ -z "$dry_run" ] && [ -n "$changed" ]; then
	cat <<EOF

weft is installed: $weft, CNI plugins in $cni_bin_dir, units in $unit_dir.
Next: set etcd and the interface in $sysconfdir/flannel/options.env, then
  systemctl enable --now flanneld        # writes /run/flannel/subnet.env and /run/flannel/docker
  systemctl restart docker               # docker0 on the flannel subnet
Uninstall: $libdir/uninstall.sh$( [ "$prefix" = /usr/local ] || printf ' --prefix %s' "$prefix")
EOF
fi
