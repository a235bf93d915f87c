#!/usr/bin/env bash
# Benchmark: ingest.csv against pandas.read_csv on the same file, in the same run.
#
# Generates a mixed CSV (1,000,000 rows by default: integers, floats, categories,
# booleans, quoted strings with embedded quotes and commas, ~1% empty cells; ~93 MB),
# then times, best of REPEAT runs each, with the file in the page cache:
#   loom   `loom run` of a graph with one ingest.csv node (parse + type inference +
#          frames of 8192 rows; the frames are counted and dropped)
#   pandas python3 -c 'pandas.read_csv(path)' (parse into a DataFrame)
# and prints wall seconds, rows/s and peak resident memory of each process, and the
# ratios. Needs python3-pandas (scripts/setup.sh --bench installs it).
#
# usage: bench/ingest_csv.sh [ROWS] ; env BUILD_DIR (default build), REPEAT (default 3),
#        PYTHON (default /usr/bin/python3, Debian's, which has python3-pandas)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
build=${BUILD_DIR:-build}
repeat=${REPEAT:-3}
py=${PYTHON:-/usr/bin/python3} # Debian's python, where python3-pandas lives
loom="$build/bin/loom"
[ -x "$loom" ] || { echo "build Loom first (scripts/dev.sh demo)" >&2; exit 2; }
"$py" -c "import pandas" 2>/dev/null || { echo "needs python3-pandas: scripts/setup.sh --bench" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_mixed_csv.py "$work/mixed.csv" "$rows"
cat > "$work/ingest.yaml" <<YAML
name: bench-ingest
nodes:
  - {id: load, op: ingest.csv, with: {path: mixed.csv}}
YAML
cat "$work/mixed.csv" > /dev/null # page cache, for both
size_mb=$(du -m "$work/mixed.csv" | cut -f1)

best() { sort -n | head -1; }
measure() { # label command... -> appends "seconds kbytes" lines to $work/$label
  local label=$1
  shift
  for _ in $(seq "$repeat"); do
    /usr/bin/time -f "%e %M" -o "$work/t" "$@" > "$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
    cat "$work/t" >> "$work/$label"
  done
}

measure loom "$loom" run "$work/ingest.yaml" --home "$work/home" -q
measure pandas "$py" -c "import sys, pandas; df = pandas.read_csv(sys.argv[1]); assert len(df) == $rows" "$work/mixed.csv"

# check Loom read every row
got=$("$loom" runs show 1 --json --home "$work/home" | python3 -c "import json,sys; r=json.load(sys.stdin); print(r['nodes'][0]['rows_out'], r['nodes'][0]['rows_rejected'])")
[ "$got" = "$rows 0" ] || { echo "loom read '$got' (rows_out rejected), expected '$rows 0'" >&2; exit 1; }

loom_s=$(cut -d' ' -f1 "$work/loom" | best)
pandas_s=$(cut -d' ' -f1 "$work/pandas" | best)
loom_kb=$(cut -d' ' -f2 "$work/loom" | best)
pandas_kb=$(cut -d' ' -f2 "$work/pandas" | best)
python3 - "$rows" "$size_mb" "$loom_s" "$pandas_s" "$loom_kb" "$pandas_kb" <<'PY'
import sys
rows, mb = int(sys.argv[1]), int(sys.argv[2])
ls, ps, lk, pk = (float(x) for x in sys.argv[3:7])
print(f"ingest of a {rows:,}-row mixed CSV ({mb} MB), best of runs, file in page cache")
print(f"{'':8}{'seconds':>10}{'rows/s':>14}{'MB/s':>9}{'peak RSS MiB':>14}")
for name, s, k in (("loom", ls, lk), ("pandas", ps, pk)):
    print(f"{name:8}{s:>10.2f}{rows / s:>14,.0f}{mb / s:>9.1f}{k / 1024:>14.1f}")
print(f"speed-up loom vs pandas: {ps / ls:.2f}x   memory loom/pandas: {lk / pk:.2f}")
PY
