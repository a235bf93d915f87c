"""The PyTorch peer of bench/train_mnist.sh: the same MLP on the same Fashion-MNIST data.

784-256-128-10, ReLU, softmax cross-entropy, Adam (lr 0.001, PyTorch's default betas
and eps, as Loom's), mini-batches of 128 shuffled each epoch with a seeded generator,
float32, on the CPU with `threads` threads. Pixels are u8 / 255, as ingest.idx's
`normalize`. Reads the IDX files itself (gzip + numpy), outside the timed epochs.

usage: train_mnist_torch.py DATA_DIR EPOCHS BATCH THREADS SEED [TRAIN_ROWS]
prints one JSON object: epoch_seconds (list), test_accuracy, train_rows, threads, torch.
"""
import gzip
import json
import struct
import sys
import time

import numpy as np
import torch


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise SystemExit(f"{path}: not a u8 IDX file")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    data_dir, epochs, batch, threads, seed = sys.argv[1], *map(int, sys.argv[2:6])
    train_rows = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    def load(prefix, rows):
        x = read_idx(f"{data_dir}/{prefix}-images-idx3-ubyte.gz")
        y = read_idx(f"{data_dir}/{prefix}-labels-idx1-ubyte.gz")
        if rows:
            x, y = x[:rows], y[:rows]
        x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)
        return x, torch.from_numpy(y.astype(np.int64))

    x_train, y_train = load("train", train_rows)
    x_test, y_test = load("t10k", 0)

    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # graphs/fashion_mnist.yaml uses `schedule: cosine`: lr * (1 + cos(pi * epoch / epochs)) / 2
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    n = len(x_train)
    epoch_seconds, losses = [], []
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            xb, yb = x_train[idx], y_train[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        epoch_seconds.append(time.perf_counter() - t0)
        losses.append(total / n)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(json.dumps({"epoch_seconds": epoch_seconds, "train_loss": losses, "test_accuracy": accuracy,
                      "train_rows": n, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
