# Shared by the bench/*.sh scripts (sourced): set-up, timing, the report.

# bench_env MODULE... : sets repeat, py, loom and work (a new temp dir); checks that
# Loom is built and that $py imports every python MODULE
bench_env() {
  repeat=${REPEAT:-3}
  py=${PYTHON:-/usr/bin/python3}
  loom="${BUILD_DIR:-build}/bin/loom"
  [ -x "$loom" ] || { echo "build Loom first (scripts/dev.sh demo)" >&2; exit 2; }
  local m
  for m in "$@"; do
    "$py" -c "import $m" 2>/dev/null || { echo "needs python module $m in $py: scripts/setup.sh --bench" >&2; exit 2; }
  done
  work=$(mktemp -d)
}

# bench_init [ROWS] : bench_env pandas, then sets rows and generates $work/mixed.csv
# (read once so that it is in the page cache for every tool)
bench_init() {
  rows=${1:-1000000}
  bench_env pandas
  "$py" bench/gen_mixed_csv.py "$work/mixed.csv" "$rows"
  cat "$work/mixed.csv" > /dev/null
}

# bench_once LABEL command... : one run; appends "seconds peak-KiB" to $work/LABEL. The
# time is taken around the process to the microsecond (GNU time's %e has 10 ms steps,
# too coarse for runs of a tenth of a second); the memory is GNU time's %M.
bench_once() {
  local label=$1 t0 t1
  shift
  t0=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/t" "$@" > "$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 )) $(tail -1 "$work/t")" | awk '{printf "%.6f %s\n", $1 / 1e6, $2}' >> "$work/$label"
}

# bench_measure LABEL command... : REPEAT runs of one command
bench_measure() {
  local label=$1
  shift
  for _ in $(seq "$repeat"); do
    bench_once "$label" "$@"
  done
}

# bench_pair LABEL_A ARRAY_A LABEL_B ARRAY_B : REPEAT runs of each of the two commands
# (held in the named arrays), alternating A, B, A, B ..., so that both see the same
# moments of a noisy machine
bench_pair() {
  local -n cmd_a=$2 cmd_b=$4
  for _ in $(seq "$repeat"); do
    bench_once "$1" "${cmd_a[@]}"
    bench_once "$3" "${cmd_b[@]}"
  done
}

# bench_best_s LABEL, bench_best_kb LABEL : the best time / memory of bench_measure LABEL
bench_best_s() { cut -d' ' -f1 "$work/$1" | sort -n | head -1; }
bench_best_kb() { cut -d' ' -f2 "$work/$1" | sort -n | head -1; }

# bench_report TITLE [PEER] : prints the best time and memory of "loom" and PEER
# (default pandas) and the ratios
bench_report() {
  local peer=${2:-pandas}
  "$py" - "$1" "$rows" "$peer" "$(bench_best_s loom)" "$(bench_best_s "$peer")" "$(bench_best_kb loom)" \
    "$(bench_best_kb "$peer")" <<'PY'
import sys
title, rows, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ls, ps, lk, pk = (float(x) for x in sys.argv[4:8])
print(title)
print(f"{'':8}{'seconds':>10}{'rows/s':>14}{'peak RSS MiB':>14}")
for name, s, k in (("loom", ls, lk), (peer, ps, pk)):
    print(f"{name:8}{s:>10.3f}{rows / s:>14,.0f}{k / 1024:>14.1f}")
print(f"speed-up loom vs {peer}: {ps / ls:.2f}x   memory loom/{peer}: {lk / pk:.2f}")
PY
}
