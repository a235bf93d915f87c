# Shared by the bench/*.sh scripts (sourced): set-up, timing, the report.

# bench_init [ROWS] : sets rows, repeat, py, loom and work (a new temp dir holding
# mixed.csv, generated and read once so that it is in the page cache for every tool)
bench_init() {
  rows=${1:-1000000}
  repeat=${REPEAT:-3}
  py=${PYTHON:-/usr/bin/python3}
  loom="${BUILD_DIR:-build}/bin/loom"
  [ -x "$loom" ] || { echo "build Loom first (scripts/dev.sh demo)" >&2; exit 2; }
  "$py" -c "import pandas" 2>/dev/null || { echo "needs python3-pandas: scripts/setup.sh --bench" >&2; exit 2; }
  work=$(mktemp -d)
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

# bench_report TITLE : prints the best time and memory of "loom" and "pandas" and the ratios
bench_report() {
  local best_s best_kb
  best_s() { cut -d' ' -f1 "$work/$1" | sort -n | head -1; }
  best_kb() { cut -d' ' -f2 "$work/$1" | sort -n | head -1; }
  "$py" - "$1" "$rows" "$(best_s loom)" "$(best_s pandas)" "$(best_kb loom)" "$(best_kb pandas)" <<'PY'
import sys
title, rows = sys.argv[1], int(sys.argv[2])
ls, ps, lk, pk = (float(x) for x in sys.argv[3:7])
print(title)
print(f"{'':8}{'seconds':>10}{'rows/s':>14}{'peak RSS MiB':>14}")
for name, s, k in (("loom", ls, lk), ("pandas", ps, pk)):
    print(f"{name:8}{s:>10.2f}{rows / s:>14,.0f}{k / 1024:>14.1f}")
print(f"speed-up loom vs pandas: {ps / ls:.2f}x   memory loom/pandas: {lk / pk:.2f}")
PY
}
