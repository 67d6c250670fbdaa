#!/bin/sh
# Removes what weft's install.sh installed, exactly as its manifest lists it, newest first: the
# files and links it made, the directories it created (when empty), and the example configs it
# wrote unless they were edited since. Files install.sh --force moved aside are put back.
#
#   uninstall.sh [--prefix DIR] [--destdir DIR] [--dry-run]
#
# Give the --prefix and --destdir (or DESTDIR) the install was made with. install.sh copies this
# script to PREFIX/lib/weft/uninstall.sh.
set -eu

usage() {
	# The comment block at the top of this file.
	sed -e 1d -e '/^[^#]/,$d' -e 's/^# \{0,1\}//' "$0" >&2
	exit "$1"
}

prefix=/usr/local
destdir=${DESTDIR:-}
dry_run=
while [ $# -gt 0 ]; do
	case $1 in
	--prefix) [ $# -ge 2 ] || usage 2; prefix=$2; shift ;;
	--prefix=*) prefix=${1#*=} ;;
	--destdir) [ $# -ge 2 ] || usage 2; destdir=$2; shift ;;
	--destdir=*) destdir=${1#*=} ;;
	--dry-run) dry_run=1 ;;
	-h | --help) usage 0 ;;
	*) echo "uninstall.sh: unknown argument: $1" >&2; usage 2 ;;
	esac
	shift
done
prefix=${prefix%/}
destdir=${destdir%/}
manifest=$destdir$prefix/lib/weft/install-manifest

if [ ! -f "$manifest" ]; then
	echo "uninstall.sh: no $manifest: nothing was installed with this prefix and destdir" >&2
	exit 1
fi
if [ -n "$dry_run" ]; then
	echo "dry run: nothing is changed"
	act() { echo "would: $*"; }
else
	act() { echo "$*"; }
fi
# CRC and size: enough to tell an edited config from the one written (cksum is POSIX, present on
# any host).
fingerprint() { cksum <"$1" | tr ' ' -; }
systemd_here() {
	[ -z "$dry_run" ] && [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# Read whole, newest first, before anything is removed: the manifest is one of the entries.
entries=$(sed '1!G;h;$!d' "$manifest")

# A running or enabled flanneld would outlive its unit file (and leave a dangling enable link).
if systemd_here && printf '%s\n' "$entries" | grep -q '/flanneld\.service$'; then
	systemctl disable --now flanneld.service || true
fi

while read -r kind path extra; do
	d=$destdir$path
	case $kind in
	file | manifest)
		if [ -f "$d" ] && [ ! -L "$d" ]; then
			act "rm $d"
			[ -n "$dry_run" ] || rm -f "$d"
		fi
		;;
	link)
		if [ -L "$d" ]; then
			act "rm $d"
			[ -n "$dry_run" ] || rm -f "$d"
		fi
		;;
	config)
		if [ -f "$d" ] && [ "$(fingerprint "$d")" = "$extra" ]; then
			act "rm $d"
			[ -n "$dry_run" ] || rm -f "$d"
		elif [ -e "$d" ]; then
			echo "keeping $d: changed since install.sh wrote it"
		fi
		;;
	moved)
		if { [ -e "$d.weft-orig" ] || [ -L "$d.weft-orig" ]; } && [ ! -e "$d" ] && [ ! -L "$d" ]; then
			act "mv $d.weft-orig $d"
			[ -n "$dry_run" ] || mv "$d.weft-orig" "$d"
		fi
		;;
	dir)
		if [ -d "$d" ]; then
			if [ -n "$dry_run" ]; then
				act "rmdir $d (if empty)"
			elif rmdir "$d" 2>/dev/null; then
				act "rmdir $d"
			else
				echo "keeping $d: not empty"
			fi
		fi
		;;
	*) echo "uninstall.sh: skipping unknown manifest entry: $kind $path" >&2 ;;
	esac
done <<EOF
$entries
EOF

if systemd_here; then
	systemctl daemon-reload
fi
