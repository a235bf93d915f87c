"""Reading a Loom run record (`loom runs show ID --json --logs`) in the bench scripts."""
import json
import re

_EPOCH = re.compile(r"epoch (\d+)/\d+:.*\(([\d.e+-]+) s, (\d+) rows/s\)")
# e.g. "mlp 784-256-128-10 (235146 parameters, classification) on 60000 rows, ..."
_START = re.compile(r"\w+ .*\) on (\d+) rows")


def load(path):
    """The run record in `path`; exits naming the error when the run did not succeed."""
    run = json.load(open(path))
    if run["state"] != "succeeded":
        failed = [f"{n['id']}: {n['error']}" for n in run["nodes"] if n["error"]]
        raise SystemExit(f"the loom run {run['state']}: {run['error']} {'; '.join(failed)}")
    return run


def nodes(run):
    """Node records by id (rows_in, rows_out, metrics, started_ms, ...)."""
    return {n["id"]: n for n in run["nodes"]}


def training_rows(run, node):
    """The rows train node `node` trained on (its first log line says "... on N rows")."""
    for line in run.get("logs", []):
        m = _START.match(line["message"])
        if line["node"] == node and m:
            return int(m.group(1))
    raise SystemExit(f"no '... on N rows' line in the log of node {node}")


def epoch_seconds(run, node):
    """Training seconds of every epoch of train node `node`: its log line per epoch says
    "epoch k/N: ... (S s, R rows/s)" with R = training rows / seconds of the training
    batches (S also counts the validation pass)."""
    rows = training_rows(run, node)
    out = []
    for line in run.get("logs", []):
        m = _EPOCH.match(line["message"])
        if line["node"] == node and m:
            out.append(rows / int(m.group(3)))
    return out
