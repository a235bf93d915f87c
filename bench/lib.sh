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

# bench_measure LABEL command... : REPEAT runs, "seconds peak-KiB" lines in $work/LABEL
bench_measure() {
  local label=$1
  shift
  for _ in $(seq "$repeat"); do
    /usr/bin/time -f "%e %M" -o "$work/t" "$@" > "$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
    cat "$work/t" >> "$work/$label"
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
    print(f"{name:8}{s:>10.2f}{rows / s:>14,.0f}{k / 1024:>14.1f}")
print(f"speed-up loom vs {peer}: {ps / ls:.2f}x   memory loom/{peer}: {lk / pk:.2f}")
PY
}
