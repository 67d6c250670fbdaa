#!/bin/sh
# What flannel's dist/mk-docker-opts.sh does, written afresh from its description (shared docs,
# flannel-cni-and-docker.md part B) to derive the golden files beside it. tests/mk_docker_opts.rs
# runs it under dash on every case and compares with golden/, so the expected bytes come from
# shell semantics, not from weft. It keeps the mechanics that decide bytes: the env file is
# sourced, the options are the variables a grep of `set` finds, their values pass through echo,
# and the combined value starts from the inherited variable plus a space. Not shipped.
# The DOCKER_OPT_* variables are read through `set`, which shellcheck cannot see:
# shellcheck disable=SC2034

src=/run/flannel/subnet.env
dst=/run/docker_opts.env
key=DOCKER_OPTS
want_i=
want_c=
masq=yes

while getopts 'f:d:icmk:?h' flag; do
	case "$flag" in
	f) src=$OPTARG ;;
	d) dst=$OPTARG ;;
	i) want_i=yes ;;
	c) want_c=yes ;;
	m) masq= ;;
	k) key=$OPTARG ;;
	*)
		echo "usage: reference.sh [-f IN] [-d OUT] [-i] [-c] [-m] [-k KEY]" >&2
		exit 1
		;;
	esac
done
if [ -z "$want_i$want_c" ]; then
	want_i=yes
	want_c=yes
fi

if [ -f "$src" ]; then
	# shellcheck disable=SC1090
	. "$src"
fi

if [ -n "$FLANNEL_SUBNET" ]; then
	DOCKER_OPT_BIP="--bip=$FLANNEL_SUBNET"
fi
if [ -n "$FLANNEL_MTU" ]; then
	DOCKER_OPT_MTU="--mtu=$FLANNEL_MTU"
fi
if [ -n "$FLANNEL_IPMASQ" ] && [ -n "$masq" ]; then
	case "$FLANNEL_IPMASQ" in
	true) DOCKER_OPT_IPMASQ=--ip-masq=false ;;
	false) DOCKER_OPT_IPMASQ=--ip-masq=true ;;
	*)
		echo "Invalid value of FLANNEL_IPMASQ: $FLANNEL_IPMASQ" >&2
		exit 1
		;;
	esac
fi

eval "acc=\${$key}"
if [ -n "$acc" ]; then
	acc="$acc "
fi

: >"$dst"
# Unquoted on purpose: the original splits the `set` listing into words.
# shellcheck disable=SC2013,SC2046
for entry in $(set | grep DOCKER_OPT_); do
	name=${entry%%=*}
	value=$(eval echo "\$$name")
	if [ -n "$want_i" ]; then
		echo "$name=\"$value\"" >>"$dst"
	fi
	acc="$acc $value"
done
if [ -n "$want_c" ]; then
	echo "$key=\"$acc\"" >>"$dst"
fi

if [ -n "$FLANNEL_SUBNET" ]; then
	addr=${FLANNEL_SUBNET%/*}
	len=${FLANNEL_SUBNET#*/}
	net="${addr%.*}.$((${addr##*.} - 1))/$len"
	clash=$(ip route show | grep "$net" | grep via)
	if [ -n "$clash" ]; then
		echo "Your routing table already contains the subnet: $clash" >&2
		exit 1
	fi
fi
exit 0
