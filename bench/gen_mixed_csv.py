#!/usr/bin/env python3
"""Writes the benchmark's mixed CSV: ROWS rows of numbers, categories and quoted strings
with embedded quotes and commas, about 1% empty cells. Deterministic (seeded).

usage: gen_mixed_csv.py OUT.csv [ROWS]
"""
import random
import sys

out = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
rng = random.Random(20261128)
cities = ["Berlin", "Paris", "Lagos", "Lima", "Osaka", "Perth", "Quito", "Oslo", "Cairo", "Dhaka"]
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def maybe(v):
    return "" if rng.random() < 0.01 else v


with open(out, "w", newline="") as f:
    f.write("id,age,income,score,ratio,city,segment,active,comment,visits\n")
    for i in range(rows):
        comment = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9)))
        if rng.random() < 0.3:
            comment = comment + ', said "' + rng.choice(words) + '"'
        comment = '"' + comment.replace('"', '""') + '"'
        f.write(",".join([
            str(i),
            maybe(str(rng.randint(18, 90))),
            maybe("%.2f" % rng.uniform(1000, 250000)),
            maybe("%.6f" % rng.gauss(0, 1)),
            maybe("%.4f" % rng.random()),
            maybe(rng.choice(cities)),
            maybe(rng.choice("ABCDE")),
            maybe(rng.choice(["true", "false"])),
            maybe(comment),
            maybe(str(rng.randint(0, 500))),
        ]) + "\n")
