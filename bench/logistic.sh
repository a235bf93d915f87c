#!/usr/bin/env bash
# Benchmark: logistic regression on a tabular dataset in Loom against scikit-learn's
# LogisticRegression, on the same rows, in the same run.
#
# Data: scikit-learn's breast cancer table (569 rows, 30 numeric features, malignant /
# benign) enlarged to ROWS rows (default 200,000) by drawing rows with replacement and
# adding Gaussian noise of 0.1 standard deviations to every feature (seeded), then cut
# into train.csv (80%) and test.csv (20%) once, so both tools see the same files.
#
#   loom     `loom run`: ingest.csv (train) -> featurize.fit (standardize all 30
#            features) -> train (logistic, featurization bundled, Adam, EPOCHS epochs,
#            batch 256) ; ingest.csv (test) -> predict -> evaluate
#   sklearn  pandas.read_csv both files, StandardScaler + LogisticRegression (lbfgs,
#            C=1, max_iter 1000) fitted on train, accuracy on test
# Prints the test accuracy of both, the fit time (Loom: its training epochs from the
# train node's log; sklearn: scaler + fit) and the whole-process time (best of REPEAT
# runs each, start-up and CSV reading included), and the ratios. Needs python3-sklearn
# and python3-pandas (scripts/setup.sh --bench).
#
# usage: bench/logistic.sh [ROWS] ; env BUILD_DIR (default build), REPEAT (3), EPOCHS (5),
#        THREADS (1: oneDNN threads of the train node), PYTHON (/usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rows=${1:-200000}
bench_env sklearn pandas
trap 'rm -rf "$work"' EXIT
epochs=${EPOCHS:-5}
threads=${THREADS:-1}

"$py" - "$work" "$rows" <<'PY'
import sys
import numpy as np
from sklearn.datasets import load_breast_cancer
work, rows = sys.argv[1], int(sys.argv[2])
d = load_breast_cancer()
names = [n.replace(" ", "_") for n in d.feature_names]
rng = np.random.default_rng(7)
pick = rng.integers(0, len(d.data), rows)
x = d.data[pick] + rng.normal(0, 0.1, (rows, d.data.shape[1])) * d.data.std(axis=0)
y = d.target_names[d.target[pick]]
cut = rows * 4 // 5
for name, part in (("train", slice(0, cut)), ("test", slice(cut, rows))):
    with open(f"{work}/{name}.csv", "w") as f:
        f.write(",".join(names) + ",diagnosis\n")
        for xi, yi in zip(x[part], y[part]):
            f.write(",".join(f"{v:.6g}" for v in xi) + f",{yi}\n")
with open(f"{work}/features.txt", "w") as f:
    f.write("\n".join(names) + "\n")
PY
cat "$work/train.csv" "$work/test.csv" > /dev/null

{
  cat <<YAML
name: bench-logistic
nodes:
  - {id: train_data, op: ingest.csv, with: {path: train.csv}}
  - {id: test_data, op: ingest.csv, with: {path: test.csv}}
  - id: features
    op: featurize.fit
    inputs: train_data.out
    with:
      transforms:
YAML
  while read -r f; do echo "        - {column: $f, op: standardize}"; done < "$work/features.txt"
  cat <<YAML
  - id: train
    op: train
    inputs: {train: train_data.out, featurizer: features.state}
    with: {model: logistic, target: diagnosis, optimizer: adam, lr: 0.01, epochs: $epochs, batch_size: 256,
           threads: $threads}
  - id: predict
    op: predict
    inputs: {model: train.model, data: test_data.out}
    with: {keep: [diagnosis]}
  - id: evaluate
    op: evaluate
    inputs: {predictions: predict.predictions, model: train.model}
    with: {target: diagnosis, report: false}
YAML
} > "$work/logistic.yaml"

cat > "$work/logistic.py" <<'PY'
import json, sys, time
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
train, test = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
x, y = train.drop(columns="diagnosis").to_numpy(), train["diagnosis"].to_numpy()
t0 = time.perf_counter()
scaler = StandardScaler().fit(x)
model = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x), y)
fit = time.perf_counter() - t0
acc = model.score(scaler.transform(test.drop(columns="diagnosis").to_numpy()), test["diagnosis"].to_numpy())
print(json.dumps({"fit_seconds": fit, "accuracy": acc, "iterations": int(model.n_iter_[0])}))
PY

loom_cmd=("$loom" run "$work/logistic.yaml" --home "$work/home" -q)
sklearn_cmd=("$py" "$work/logistic.py" "$work/train.csv" "$work/test.csv")
bench_pair loom loom_cmd sklearn sklearn_cmd
cp "$work/out" "$work/sklearn.json"
"$loom" runs show "$repeat" --json --logs --home "$work/home" > "$work/run.json"

"$py" - "$work" "$rows" "$(bench_best_s loom)" "$(bench_best_s sklearn)" "$epochs" <<'PY'
import json, sys
sys.path.insert(0, "bench")
import loom_runs
work, rows, loom_s, sk_s, epochs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
run = loom_runs.load(f"{work}/run.json")
sk = json.load(open(f"{work}/sklearn.json"))
nodes = loom_runs.nodes(run)
loom_fit = sum(loom_runs.epoch_seconds(run, "train"))
loom_acc = nodes["evaluate"]["metrics"]["accuracy"]
train_rows = loom_runs.training_rows(run, "train")
print(f"logistic regression, breast cancer enlarged to {rows} rows x 30 features ({train_rows} train, "
      f"{rows - train_rows} test)")
print(f"{'':9}{'test acc':>10}{'fit s':>9}{'process s':>11}")
print(f"{'loom':9}{loom_acc:>10.4f}{loom_fit:>9.3f}{loom_s:>11.2f}   ({epochs} epochs of Adam, batch 256)")
print(f"{'sklearn':9}{sk['accuracy']:>10.4f}{sk['fit_seconds']:>9.3f}{sk_s:>11.2f}   "
      f"(lbfgs, {sk['iterations']} iterations)")
print(f"speed-up loom vs sklearn: fit {sk['fit_seconds'] / loom_fit:.2f}x, whole process {sk_s / loom_s:.2f}x; "
      f"accuracy difference {loom_acc - sk['accuracy']:+.4f}")
PY
