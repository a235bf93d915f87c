#!/usr/bin/env bash
# Benchmark: a clean + one-hot + standardize pipeline in Loom against the same steps in
# pandas, on the mixed CSV of bench/ingest_csv.sh, in the same run.
#
#   read the CSV; clean: `city` trimmed and lower-cased, `income` and `age` nulls
#   imputed with the median; one-hot `city` and `segment`; standardize `income` and
#   `score` (population std); the result is kept in memory (not written).
#
# Loom: ingest.csv -> clean -> featurize.fit (which holds the table: fitting needs all
# of it). pandas: read_csv, fillna(median), str.strip().str.lower(), get_dummies,
# (x - mean) / std. Best of REPEAT whole-process runs each; prints seconds, rows/s,
# peak memory and the ratios. Needs python3-pandas (scripts/setup.sh --bench).
#
# usage: bench/pipeline.sh [ROWS] ; env BUILD_DIR, REPEAT (default 3), PYTHON
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_init "$@"
trap 'rm -rf "$work"' EXIT
cat > "$work/pipeline.yaml" <<YAML
name: bench-pipeline
nodes:
  - {id: load, op: ingest.csv, with: {path: mixed.csv}}
  - id: clean
    op: clean
    inputs: load.out
    with:
      columns:
        city: {trim: true, case: lower}
        income: {nulls: median}
        age: {nulls: median}
  - id: features
    op: featurize.fit
    inputs: clean.out
    with:
      transforms:
        - {column: city, op: one_hot}
        - {column: segment, op: one_hot}
        - {column: income, op: standardize}
        - {column: score, op: standardize}
YAML
cat > "$work/pipeline.py" <<'PY'
import sys
import pandas as pd
df = pd.read_csv(sys.argv[1])
df["city"] = df["city"].str.strip().str.lower()
for c in ("income", "age"):
    df[c] = df[c].fillna(df[c].median())
df = pd.get_dummies(df, columns=["city", "segment"], dtype="float32")
for c in ("income", "score"):
    df[c] = (df[c] - df[c].mean()) / df[c].std(ddof=0)
assert len(df) == int(sys.argv[2])
PY

loom_cmd=("$loom" run "$work/pipeline.yaml" --home "$work/home" -q)
pandas_cmd=("$py" "$work/pipeline.py" "$work/mixed.csv" "$rows")
bench_pair loom loom_cmd pandas pandas_cmd
got=$("$loom" runs show 1 --json --home "$work/home" | "$py" -c "import json,sys; n={x['id']: x for x in json.load(sys.stdin)['nodes']}; print(n['features']['rows_out'])")
[ "$got" = "$rows" ] || { echo "loom featurized $got rows, expected $rows" >&2; exit 1; }

bench_report "clean + one-hot + standardize on a ${rows}-row mixed CSV, best of $repeat"
