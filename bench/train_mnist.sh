#!/usr/bin/env bash
# Benchmark: training an MLP on Fashion-MNIST in Loom against the same network in
# PyTorch, in the same run, and against oneDNN's own matmul peak on this machine.
#
#   loom     `loom run graphs/fashion_mnist.yaml`: ingest.idx (train and test IDX files)
#            -> train (mlp 784-256-128-10, ReLU, Adam lr 0.001, batch 128, EPOCHS epochs)
#            -> predict (test) -> evaluate. Epoch times are the training loop's own (the
#            train node logs rows/s per epoch), test accuracy is evaluate's.
#   pytorch  bench/train_mnist_torch.py: the same network, optimizer, batch size, epochs,
#            data (u8 / 255) and float32, Debian's python3-torch on the CPU with
#            torch.set_num_threads(THREADS); epochs timed inside the process.
#   peak     loom_bench_dnnl_peak: oneDNN's f32 matmul GFLOP/s on the matmuls of one
#            training step of this MLP (forward, backward-data, backward-weights), on
#            THREADS threads and on one, and a 1024^3 square product.
# Prints seconds per epoch (median), samples/s, achieved GFLOP/s (training FLOPs: 3 x the
# forward matmul FLOPs, 3 x 2 x (784*256 + 256*128 + 128*10) per sample) and test
# accuracy for both, the ratios, and the fraction of oneDNN's matmul peak that a Loom
# epoch reaches: the time the matmuls of an epoch's steps take at the best mlp-step
# figure (THREADS or one thread), over the time of the Loom epoch. Needs dataset-fashion-mnist and python3-torch (scripts/setup.sh --bench)
# and a build with loom_bench_dnnl_peak (LOOM_BUILD_BENCH, on by default).
#
# usage: bench/train_mnist.sh ; env BUILD_DIR (default build), EPOCHS (5), THREADS (2),
#        TRAIN_ROWS (0: all 60,000), PYTHON (/usr/bin/python3), DATA
#        (/usr/share/datasets/fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_env torch numpy
trap 'rm -rf "$work"' EXIT
epochs=${EPOCHS:-5}
threads=${THREADS:-2}
train_rows=${TRAIN_ROWS:-0}
data=${DATA:-/usr/share/datasets/fashion-mnist}
peak="${BUILD_DIR:-build}/bin/loom_bench_dnnl_peak"
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "needs dataset-fashion-mnist in $data: scripts/setup.sh --bench" >&2; exit 2; }
[ -x "$peak" ] || { echo "needs $peak (build with -DLOOM_BUILD_BENCH=ON)" >&2; exit 2; }

echo "== oneDNN matmul peak" >&2
"$peak" --json --threads "$threads" > "$work/peak_n.json"
"$peak" --json --threads 1 > "$work/peak_1.json"

echo "== loom: graphs/fashion_mnist.yaml" >&2
/usr/bin/time -f "%e %M" -o "$work/loom_time" "$loom" run graphs/fashion_mnist.yaml --home "$work/home" -q \
  --set data="$data" --set epochs="$epochs" --set threads="$threads" --set train_rows="$train_rows" \
  > "$work/loom_out" 2>&1 || { cat "$work/loom_out" >&2; exit 1; }
"$loom" runs show 1 --json --logs --home "$work/home" > "$work/run.json"

echo "== pytorch" >&2
/usr/bin/time -f "%e %M" -o "$work/torch_time" "$py" bench/train_mnist_torch.py "$data" "$epochs" 128 "$threads" 42 \
  "$train_rows" > "$work/torch.json"

"$py" - "$work" "$epochs" "$threads" <<'PY'
import json, statistics, sys
sys.path.insert(0, "bench")
import loom_runs
work, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
run = loom_runs.load(f"{work}/run.json")
torch = json.load(open(f"{work}/torch.json"))
peak_n = json.load(open(f"{work}/peak_n.json"))
peak_1 = json.load(open(f"{work}/peak_1.json"))
nodes = loom_runs.nodes(run)
rows = loom_runs.training_rows(run, "train")
loom_epochs = loom_runs.epoch_seconds(run, "train")
if len(loom_epochs) != epochs:
    sys.exit(f"expected {epochs} epoch lines in the train node's log, found {len(loom_epochs)}")
loom_acc = nodes["evaluate"]["metrics"]["accuracy"]
assert torch["train_rows"] == rows, (torch["train_rows"], rows)

fwd = 2 * (784 * 256 + 256 * 128 + 128 * 10)   # forward matmul FLOPs per sample
train_flops = 3 * fwd                           # forward + backward (data and weights)
loom_wall, loom_kb = (float(x) for x in open(f"{work}/loom_time").read().split())
torch_wall, torch_kb = (float(x) for x in open(f"{work}/torch_time").read().split())

def row(name, secs, acc):
    s = statistics.median(secs)
    return name, s, min(secs), rows / s, rows * train_flops / s / 1e9, acc

lo = row("loom", loom_epochs, loom_acc)
pt = row("pytorch", torch["epoch_seconds"], torch["test_accuracy"])
print(f"Fashion-MNIST MLP 784-256-128-10, ReLU, Adam lr 0.001, batch 128, {epochs} epochs, {rows} training rows, "
      f"{threads} threads (torch {torch['torch']}, oneDNN {peak_n['onednn']})")
print(f"{'':9}{'s/epoch':>9}{'best':>8}{'samples/s':>12}{'GFLOP/s':>9}{'test acc':>10}")
for name, med, best, rate, gf, acc in (lo, pt):
    print(f"{name:9}{med:>9.3f}{best:>8.3f}{rate:>12,.0f}{gf:>9.2f}{acc:>10.4f}")
print(f"speed-up loom vs pytorch: {pt[1] / lo[1]:.1f}x per epoch (target >= 10x); "
      f"test accuracy loom {lo[5]:.4f} vs pytorch {pt[5]:.4f} (target >= 0.87)")
print(f"whole process: loom {loom_wall:.1f} s (ingest, {epochs} epochs, predict, evaluate, report), "
      f"peak RSS {loom_kb / 1024:.0f} MiB; pytorch {torch_wall:.1f} s, peak RSS {torch_kb / 1024:.0f} MiB")
# the peak: oneDNN running exactly the matmuls of one training step (forward, backward-
# data but for the first layer, backward-weights), back to back, on the same buffers
if threads == 1:
    peaks = {1: peak_1}
    print(f"oneDNN f32 matmul peak on the matmuls of one training step: {peak_1['mlp_step_gflops']:.1f} GFLOP/s on "
          f"1 thread; square {peak_1['square']}^3: {peak_1['square_gflops']:.1f}")
else:
    peaks = {threads: peak_n, 1: peak_1}
    print(f"oneDNN f32 matmul peak on the matmuls of one training step: {peak_n['mlp_step_gflops']:.1f} GFLOP/s on "
          f"{threads} threads, {peak_1['mlp_step_gflops']:.1f} on 1; square {peak_n['square']}^3: "
          f"{peak_n['square_gflops']:.1f} on {threads}, {peak_1['square_gflops']:.1f} on 1")
best = max(peaks.values(), key=lambda p: p["mlp_step_gflops"])
steps = -(-rows // best["batch"])
at_peak = steps * best["mlp_step_flops"] / (best["mlp_step_gflops"] * 1e9)
print(f"a Loom epoch reaches {at_peak / lo[1]:.0%} of oneDNN's matmul peak: its {steps} steps' matmuls alone "
      f"({best['mlp_step_flops'] / best['batch'] / 1e6:.2f} MFLOP per sample) take {at_peak:.3f} s at "
      f"{best['mlp_step_gflops']:.1f} GFLOP/s; the epoch takes {lo[1]:.3f} s (it also runs the bias, activation, "
      f"softmax, loss and Adam steps and gathers the shuffled batches)")
PY
