#!/usr/bin/env bash
# Benchmark: ingest.csv against pandas.read_csv on the same file, in the same run.
#
# Generates a mixed CSV (1,000,000 rows by default: integers, floats, categories,
# booleans, quoted strings with embedded quotes and commas, ~1% empty cells; ~93 MB),
# then times, best of REPEAT runs each (the two alternating), with the file in the page
# cache, the whole process (start-up included):
#   loom   `loom run` of a graph with one ingest.csv node (parse + type inference +
#          frames of 8192 rows; the frames are counted and dropped). ingest.csv parses
#          with its default `threads: 0`, one thread per core (the frames are the same
#          for any number)
#   pandas pandas.read_csv(path) (parse into a DataFrame)
# and prints seconds, rows/s and peak resident memory of each, and the ratios.
# Needs python3-pandas (scripts/setup.sh --bench installs it).
#
# usage: bench/ingest_csv.sh [ROWS] ; env BUILD_DIR (default build), REPEAT (default 3),
#        PYTHON (default /usr/bin/python3, Debian's, which has python3-pandas)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_init "$@"
trap 'rm -rf "$work"' EXIT
cat > "$work/ingest.yaml" <<YAML
name: bench-ingest
nodes:
  - {id: load, op: ingest.csv, with: {path: mixed.csv}}
YAML

loom_cmd=("$loom" run "$work/ingest.yaml" --home "$work/home" -q)
pandas_cmd=("$py" -c "import sys, pandas; df = pandas.read_csv(sys.argv[1]); assert len(df) == $rows" "$work/mixed.csv")
bench_pair loom loom_cmd pandas pandas_cmd

# Loom read every row
got=$("$loom" runs show 1 --json --home "$work/home" | "$py" -c "import json,sys; n=json.load(sys.stdin)['nodes'][0]; print(n['rows_out'], n['rows_rejected'])")
[ "$got" = "$rows 0" ] || { echo "loom read '$got' (rows_out rejected), expected '$rows 0'" >&2; exit 1; }

bench_report "ingest of a ${rows}-row mixed CSV ($(du -m "$work/mixed.csv" | cut -f1) MB), best of $repeat, file in page cache"
