#!/usr/bin/env bash
# The fuzz campaign: every target of fuzz/ under libFuzzer (cargo-fuzz, nightly, AddressSanitizer),
# seeded from tests/data and models/ (tools/fuzz_seeds.py), each for SECONDS, JOBS at a time.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]      default: 600 s, every target, 2 at a time
#   JOBS=2 FUZZ_MODELS=0 tools/fuzz.sh 20     what .ci/run does (about 20 s each, the targets
#                                             that need no model engine)
#
# FUZZ_MODELS=0 leaves out the model targets (onnx, tflite, card): they bring tract, whose ASan
# build is most of the build's time; the campaign run by hand keeps them.
#
# Built with 16 codegen units (cargo-fuzz's release default is 1: one LLVM job per crate, and
# tract-core and tensorcv-kernels alone then took over 15 minutes each under ASan on 2 cores);
# the runs are somewhat slower per input, the build several times faster. FUZZ_CODEGEN_UNITS
# changes it (build and runs must agree, or the run rebuilds).
#
# Limits: 2 GB of RSS and of any single allocation (-rss_limit_mb, -malloc_limit_mb), 20 s per
# input (-timeout). A crash, leak, out-of-memory or timeout stops that target and leaves its
# input in fuzz/artifacts/<target>/; tests/data/fuzz/<target>/ keeps the ones fixed since.
# Writes a line per target (executions, coverage, corpus) to target/fuzz-report.txt and
# prints them; exits 1 if any target found something.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-600}
shift || true
JOBS=${JOBS:-2}
CGU=${FUZZ_CODEGEN_UNITS:-16}
FEATURES=()
if [ "${FUZZ_MODELS:-1}" = 0 ]; then
  ALL=(image_decode y4m avi gif multipart raw preview_http)
  FEATURES=(--no-default-features)
else
  ALL=(image_decode y4m avi gif multipart raw onnx tflite card preview_http)
fi
TARGETS=("${@:-${ALL[@]}}")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

if ! rustup toolchain list | grep -q nightly; then
  rustup toolchain install nightly --profile minimal >/dev/null || exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked >/dev/null || exit 1
fi
python3 tools/fuzz_seeds.py fuzz/corpus >/dev/null
cargo +nightly fuzz build --release --debug-assertions --codegen-units "$CGU" "${FEATURES[@]}" 2>&1 | tail -1

mkdir -p target
REPORT=target/fuzz-report.txt
: > "$REPORT"
found=0
run_one() {
  local t=$1 log=target/fuzz-$1.log
  cargo +nightly fuzz run --release --debug-assertions --codegen-units "$CGU" "${FEATURES[@]}" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=20 \
    -print_final_stats=1 -close_fd_mask=3 >"$log" 2>&1
  local rc=$?
  local execs cov ft corpus speed
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  speed=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' | awk '{print $2}')
  ft=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'ft: [0-9]+' | awk '{print $2}')
  corpus=$(ls "fuzz/corpus/$t" | wc -l)
  local verdict=ok
  [ $rc -ne 0 ] && verdict="FOUND ($(grep -m1 -oE '(ERROR|SUMMARY): (libFuzzer|AddressSanitizer): [a-z -]+' "$log" | head -1))"
  printf '%-13s %6ss  %10s execs  %7s/s  cov %6s  ft %6s  corpus %5s  %s\n' \
    "$t" "$SECONDS_EACH" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$verdict" | tee -a "$REPORT"
  [ $rc -eq 0 ]
}
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || found=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || found=1; done
exit $found
