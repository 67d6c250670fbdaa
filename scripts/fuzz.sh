#!/usr/bin/env bash
# Runs the cargo-fuzz targets of tests/fuzz, each for FUZZ_SECONDS, and reports executions per
# target and in total. Crash inputs are copied to testdata/fuzz/<target>/, where
# tests/it/fuzz_regressions.rs replays them; the script then exits 1.
#
#   scripts/fuzz.sh [--cmin] [target...]     (default: every target)
#
# The growing corpus lives in target/fuzz/corpus/<target> (seeded from testdata/fuzz/<target>).
# --cmin runs no fuzzing: it minimises that corpus together with testdata/fuzz/<target> and
# keeps the 200 smallest of the result in testdata/fuzz/<target> (crash inputs are always kept).
# Needs the nightly toolchain and cargo-fuzz: `make fuzz` installs them.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-60}
keep=${FUZZ_KEEP:-200}
work=$root/target/fuzz
cmin=0
if [[ ${1:-} == --cmin ]]; then
	cmin=1
	shift
fi

mapfile -t all < <(sed -n 's/^name = "\(.*\)"$/\1/p' tests/fuzz/Cargo.toml | grep -v '^weft-fuzz$')
targets=("$@")
if ((${#targets[@]} == 0)); then
	targets=("${all[@]}")
fi
for t in "${targets[@]}"; do
	if [[ ! " ${all[*]} " == *" $t "* ]]; then
		echo "fuzz.sh: no target $t (have: ${all[*]})" >&2
		exit 2
	fi
done

# host_local_files flushes every reservation it makes; on tmpfs that costs nothing.
scratch=$work/tmp
if [[ -d /dev/shm && -w /dev/shm ]]; then
	scratch=$(mktemp -d /dev/shm/weft-fuzz.XXXXXX)
fi
mkdir -p "$scratch"
trap 'rm -rf "$scratch"' EXIT
export WEFT_FUZZ_TMPDIR=$scratch

# One build of every target (address sanitizer, debug assertions), then the binaries are run
# directly: `cargo fuzz run` would check the build again before each.
nice -n 10 cargo +nightly fuzz build --fuzz-dir tests/fuzz --target-dir "$work/build" \
	--debug-assertions
bin=$work/build/$(rustc +nightly -vV | sed -n 's/^host: //p')/release
export RUST_BACKTRACE=1
fuzz() {
	nice -n 10 "$bin/$1" "${@:2}"
}

if ((cmin)); then
	for t in "${targets[@]}"; do
		seeds=$root/testdata/fuzz/$t
		min=$work/cmin/$t
		rm -rf "$min"
		mkdir -p "$min" "$work/corpus/$t"
		fuzz "$t" -merge=1 "$min" "$seeds" "$work/corpus/$t" 2>"$work/cmin-$t.log" ||
			{
				tail -20 "$work/cmin-$t.log" >&2
				exit 1
			}
		find "$seeds" -maxdepth 1 -type f ! -name 'crash-*' -delete
		# sed reads to the end, so sort never meets a closed pipe (SIGPIPE under pipefail).
		find "$min" -maxdepth 1 -type f -printf '%s %p\n' | sort -n | sed -n "1,${keep}p" |
			cut -d' ' -f2- | xargs -r cp -t "$seeds"
		echo "$t: kept $(find "$seeds" -maxdepth 1 -type f | wc -l) inputs in testdata/fuzz/$t"
	done
	exit 0
fi

summary=$work/summary.txt
mkdir -p "$work"
: >"$summary"
total=0
found=()
for t in "${targets[@]}"; do
	corpus=$work/corpus/$t
	artifacts=$work/artifacts/$t
	log=$work/$t.log
	rm -rf "$artifacts"
	mkdir -p "$corpus" "$artifacts"
	echo "fuzzing $t for ${seconds}s (log: ${log#"$root"/})"
	status=0
	fuzz "$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$artifacts/" "$corpus" "testdata/fuzz/$t" >"$log" 2>&1 || status=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)$/\1/p' "$log" | tail -1)
	if [[ -z $execs ]]; then
		# A crash ends the run before the final stats: take the last progress line.
		execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
	fi
	execs=${execs:-0}
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
	took=${took:-"<$seconds"}
	total=$((total + execs))
	crashes=0
	for a in "$artifacts"/{crash,leak,timeout,oom}-*; do
		[[ -f $a ]] || continue
		cp "$a" "testdata/fuzz/$t/"
		found+=("testdata/fuzz/$t/$(basename "$a")")
		crashes=$((crashes + 1))
	done
	if ((status != 0 && crashes == 0)); then
		echo "fuzz.sh: $t failed without a crash input (exit $status); see $log" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	line="$t: $execs executions in ${took}s, $(find "$corpus" -type f | wc -l) corpus inputs, $crashes crash inputs"
	echo "$line" | tee -a "$summary"
done
echo "total: $total executions" | tee -a "$summary"
if ((${#found[@]})); then
	printf 'crash input (replayed by cargo test --test it fuzz_regressions::): %s\n' "${found[@]}" >&2
	exit 1
fi
