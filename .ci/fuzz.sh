#!/usr/bin/env bash
# CI fuzzing: builds every cargo-fuzz target in fuzz/, replays each saved crash in
# fuzz/regressions/<target>/ (a crash that comes back fails CI), then fuzzes each target for
# FUZZ_SECONDS (default 30) starting from a copy of its seed corpus in fuzz/seeds/<target>/, so
# the run never writes into the repository. Prints the executions per target and fails on any
# crash, timeout or out-of-memory.
#
#   FUZZ_SECONDS=30      seconds of fuzzing per target
#   FUZZ_SEED=1          libFuzzer's seed (0: random)
#   FUZZ_SANITIZER=address  or none (falls back to none by itself if ASan cannot be built)
#   FUZZ_TARGETS="decode socket"  a subset (default: every target `cargo fuzz list` gives)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
# A fixed seed makes a CI failure reproducible (and a CI pass repeatable); set FUZZ_SEED=0 for
# a random one when fuzzing by hand.
FUZZ_SEED="${FUZZ_SEED:-1}"
sanitizer="${FUZZ_SANITIZER:-address}"
# cargo-fuzz passes -Z flags to rustc; the stable toolchain takes them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== fuzz: build (sanitizer: $sanitizer) =="
start=$SECONDS
if ! cargo fuzz build -O -s "$sanitizer"; then
  if [ "$sanitizer" = none ]; then
    exit 1
  fi
  echo "fuzz: WARNING: building with -s $sanitizer failed; building without a sanitizer"
  sanitizer=none
  cargo fuzz build -O -s none
fi
echo "fuzz: built in $((SECONDS - start)) s"

failed=()
summary=()
for target in $targets; do
  regressions="regressions/$target"
  replayed="-"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    echo
    echo "== fuzz: $target: replaying the saved crashes in fuzz/$regressions =="
    total=0
    passed=0
    for input in "$regressions"/*; do
      total=$((total + 1))
      # A file argument (not a directory) makes libFuzzer run that input once.
      if cargo fuzz run -O -s "$sanitizer" "$target" "$input" -- -timeout=60 \
        >"$work/replay.log" 2>&1; then
        passed=$((passed + 1))
        echo "fuzz: $target: $(basename "$input"): passes"
      else
        echo "fuzz: $target: $(basename "$input"): STILL FAILS:"
        { grep -E "panicked at" -A1 "$work/replay.log" || grep -E "ERROR:" "$work/replay.log" \
          || tail -n 5 "$work/replay.log"; } | head -n 4 | sed 's/^/    /'
        failed+=("$target/$(basename "$input")")
      fi
    done
    replayed="$passed/$total"
  fi

  echo
  echo "== fuzz: $target: ${FUZZ_SECONDS} s from fuzz/seeds/$target =="
  corpus="$work/corpus/$target"
  mkdir -p "$corpus"
  if [ -d "seeds/$target" ]; then
    cp seeds/"$target"/* "$corpus"/ 2>/dev/null || true
  fi
  artifacts="$work/artifacts/$target/"
  mkdir -p "$artifacts"
  log="$work/$target.log"
  status=ok
  if ! cargo fuzz run -O -s "$sanitizer" "$target" "$corpus" -- \
    -max_total_time="$FUZZ_SECONDS" -seed="$FUZZ_SEED" -timeout=20 -artifact_prefix="$artifacts" \
    -print_final_stats=1 >"$log" 2>&1; then
    status=CRASH
    failed+=("$target")
    grep -E "panicked at|ERROR:|SUMMARY|Test unit written" -A3 "$log" | tail -n 40 || tail -n 40 "$log"
    for crash in "$artifacts"*; do
      [ -f "$crash" ] || continue
      echo "fuzz: $target: crashing input $(basename "$crash") (base64): $(base64 -w0 "$crash")"
    done
  fi
  # libFuzzer ends with `Done N runs in S second(s)`.
  # A run stopped by a crash prints no `Done` line, but -print_final_stats still counts.
  runs="$(grep -oE '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 | awk '{print $2 " " $5}' || true)"
  if [ -z "$runs" ]; then
    runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | awk '{print $2}' || true) ?"
  fi
  read -r n s <<<"$runs"
  echo "fuzz: $target: $status, ${n:-?} runs in ${s:-?} s"
  summary+=("$(printf '%-12s %-6s %12s %8s  %s' "$target" "$status" "${n:-?}" "${s:-?}" "$replayed")")
done

echo
echo "== fuzz: summary (sanitizer: $sanitizer) =="
printf '%-12s %-6s %12s %8s  %s\n' target fuzzing runs seconds "regressions passing"
for line in "${summary[@]}"; do
  echo "$line"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: ok"
