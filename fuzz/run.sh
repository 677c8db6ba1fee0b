#!/usr/bin/env bash
# Bounded fuzzing on the stable toolchain: builds every cargo-fuzz target, then runs each
# for SECONDS (default 30, at most 60) from its seed corpus. Exits non-zero when any
# target crashes, fails a check, times out or runs out of memory; the input that did it
# is left in fuzz/artifacts/<target>/ (see fuzz/README.md).
#
#   fuzz/run.sh [SECONDS_PER_TARGET]
#
# FUZZ_BUILD=quick (default, what CI runs): an unoptimised build without a sanitizer,
# about 5 CPU-minutes from clean, ~10x fewer runs per second. FUZZ_BUILD=release: the
# optimised build with AddressSanitizer, for long local campaigns (~15 CPU-minutes to
# build from clean).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a C++ compiler (libfuzzer-sys
# builds libFuzzer). No nightly: cargo-fuzz passes -Z flags (-Zsanitizer=address), which
# a stable rustc takes under RUSTC_BOOTSTRAP=1; the AddressSanitizer runtime ships with
# stable's rust-std.
set -euo pipefail

secs=${1:-30}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ] || [ "$secs" -gt 60 ]; then
    echo "usage: fuzz/run.sh [SECONDS_PER_TARGET]  (1-60, default 30)" >&2
    exit 2
fi

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz_dir"
command -v cargo-fuzz >/dev/null || {
    echo "fuzz/run.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}

export RUSTC_BOOTSTRAP=1
# Apart from the main workspace's build: other RUSTFLAGS, other artifacts.
target_dir=${CARGO_TARGET_DIR:-$fuzz_dir/../target}/fuzz
# What libFuzzer adds to the corpus while it runs; the committed seeds stay as they are.
work=$target_dir/corpus

case ${FUZZ_BUILD:-quick} in
quick) flags=(--dev --sanitizer none) ;;
release) flags=() ;;
*)
    echo "fuzz/run.sh: FUZZ_BUILD is quick or release, not ${FUZZ_BUILD}" >&2
    exit 2
    ;;
esac

targets=$(cargo fuzz list)
echo "== building: $(echo "$targets" | tr '\n' ' ')"
build_start=$SECONDS
cargo fuzz build "${flags[@]}" --target-dir "$target_dir"
echo "== built in $((SECONDS - build_start)) s"

failed=()
summary=()
for t in $targets; do
    mkdir -p "$work/$t" "artifacts/$t"
    log=$target_dir/$t.log
    echo "== $t: ${secs} s"
    status=0
    # -timeout: an input that runs 10 s is a hang, reported like a crash.
    cargo fuzz run "${flags[@]}" --target-dir "$target_dir" "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    units=$(find "$work/$t" -type f | wc -l)
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        tail -n 60 "$log"
        summary+=("$t: FAILED (exit $status), input in fuzz/artifacts/$t/, log $log")
    else
        summary+=("$t: ok, ${execs:-?} runs, ${cov:-cov: ?}, $units units in $work/$t")
    fi
done

echo "== fuzz summary (${secs} s per target)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: ${failed[*]} failed; reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} TARGET fuzz/artifacts/TARGET/FILE" >&2
    exit 1
fi
