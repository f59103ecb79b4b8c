#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 30 s each).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain
# RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
export RUSTC_BOOTSTRAP=1
for target in decode tcp_lines journal; do
  mkdir -p "corpus/$target"
  echo "fuzzing $target for ${secs}s"
  log="$(mktemp)"
  if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$secs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    grep -v '^"' "$log" | tail -n 60
    echo "fuzz target $target FAILED (see fuzz/artifacts/$target)"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log"
  rm -f "$log"
done
