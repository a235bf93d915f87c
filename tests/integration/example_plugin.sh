#!/usr/bin/env bash
# Builds plugins/example out of tree the way a user would, and runs its graph:
#   1. against the Loom build tree   (-DLoom_DIR=<build dir>)
#   2. against an install            (cmake --install; -DLoom_DIR=<prefix>/lib/cmake/Loom),
#      with the installed loom finding its standard plugins next to itself.
#
# usage: example_plugin.sh BUILD_DIR SOURCE_DIR     (absolute paths)
# Set KEEP_TMP=1 to keep the scratch directory for a look afterwards.
set -euo pipefail
set -o errtrace # the ERR trap below also fires inside functions

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
loom="$build_dir/bin/loom"
example_src="$source_dir/plugins/example"
iris="$source_dir/data/iris.csv"

fail() {
  echo "example_plugin: FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }
trap 'echo "example_plugin: FAIL: line $LINENO: command failed: $BASH_COMMAND" >&2' ERR

[[ -x "$loom" ]] || fail "no loom executable at $loom (build the 'loom' target first)"
[[ -f "$example_src/CMakeLists.txt" ]] || fail "no example plugin at $example_src"
[[ -f "$iris" ]] || fail "no $iris"
command -v ninja >/dev/null || fail "ninja is not on PATH"
command -v python3 >/dev/null || fail "python3 is not on PATH"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/loom-example-plugin.XXXXXX")
cleanup() {
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    echo "scratch directory kept: $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
# the test must not depend on the caller's environment
unset LOOM_PLUGIN_PATH LOOM_HOME

# Lays out ROOT like the source tree (ROOT/plugins/example/graph.yaml, ROOT/data/iris.csv)
# so that the shipped graph.yaml runs unchanged, and builds the example into
# ROOT/plugins/example/build against the Loom package in LOOM_DIR.
build_example() {
  local root=$1 loom_dir=$2
  mkdir -p "$root/plugins/example" "$root/data"
  cp "$example_src/graph.yaml" "$root/plugins/example/graph.yaml"
  cp "$iris" "$root/data/iris.csv"
  cmake -S "$example_src" -B "$root/plugins/example/build" -G Ninja -DLoom_DIR="$loom_dir" \
    >"$root/configure.log" 2>&1 || { cat "$root/configure.log" >&2; fail "configuring the example against $loom_dir"; }
  cmake --build "$root/plugins/example/build" >"$root/build.log" 2>&1 ||
    { cat "$root/build.log" >&2; fail "building the example against $loom_dir"; }
  [[ -f "$root/plugins/example/build/libloom_example.so" ]] ||
    fail "the build did not produce $root/plugins/example/build/libloom_example.so"
}

# Checks OUT against what iris.csv says it must hold: the rows with petal_length >= 5.0,
# in input order, values unchanged except species, which is upper-cased.
check_output() {
  local out=$1
  [[ -f "$out" ]] || fail "the graph wrote no $out"
  python3 - "$iris" "$out" <<'EOF' || exit 1 # it says what is wrong
import csv, sys
iris_path, out_path = sys.argv[1], sys.argv[2]
def rows(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        return next(r), [row for row in r if row]
head, data = rows(iris_path)
ipl, isp = head.index("petal_length"), head.index("species")
def norm(row, upper):
    return tuple(v.upper() if i == isp and upper else (float(v) if i != isp else v) for i, v in enumerate(row))
expected = [norm(r, True) for r in data if r[ipl] != "" and float(r[ipl]) >= 5.0]
out_head, out = rows(out_path)
errors = []
if out_head != head:
    errors.append(f"header {out_head}, expected {head}")
else:
    got = [norm(r, False) for r in out]
    if len(got) != len(expected):
        errors.append(f"{len(got)} rows, expected {len(expected)} (petal_length >= 5.0 in {iris_path})")
    for k, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            errors.append(f"row {k + 1}: {list(g)}, expected {list(e)}")
            break
    bad = [r[isp] for r in out if r[isp] != r[isp].upper()]
    if bad:
        errors.append(f"species not upper-cased: {bad[:3]}")
    small = [r[ipl] for r in out if float(r[ipl]) < 5.0]
    if small:
        errors.append(f"rows with petal_length < 5.0: {small[:3]}")
if errors:
    print(f"example_plugin: FAIL: {out_path}: " + "; ".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"   {out_path}: {len(expected)} rows as expected")
EOF
}

# Checks that `plugins inspect --json` of SO lists both example operators.
check_inspect() {
  local loom_bin=$1 so=$2 json
  json=$("$loom_bin" plugins inspect "$so" --json) || fail "loom plugins inspect $so failed"
  python3 -c '
import json, sys
j = json.loads(sys.argv[1])
name = j["name"]
names = {op["name"] for op in j["operators"]}
missing = {"example.upper", "example.filter"} - names
if missing or name != "loom-example":
    sys.exit(f"example_plugin: FAIL: plugins inspect: plugin {name!r}, operators {sorted(names)}, missing {sorted(missing)}")
' "$json" || exit 1
}

# ---- 1. against the build tree ---------------------------------------------------------
step "build the example against the build tree ($build_dir)"
tree="$tmp/tree"
build_example "$tree" "$build_dir"
so="$tree/plugins/example/build/libloom_example.so"

step "loom plugins inspect"
check_inspect "$loom" "$so"

step "loom ops describe with --plugin-path"
"$loom" ops describe example.filter --plugin-path "$tree/plugins/example/build" | grep -q "min" ||
  fail "loom ops describe example.filter --plugin-path ... does not show the parameter 'min'"

step "loom run graph.yaml (plugin from the graph's plugins: list)"
"$loom" run "$tree/plugins/example/graph.yaml" --home "$tree/home" -q ||
  fail "loom run $tree/plugins/example/graph.yaml failed"
check_output "$tree/out/example_upper.csv"

# ---- 2. against an install -----------------------------------------------------------------
prefix="$tmp/prefix"
step "cmake --install $build_dir --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
config=$(find "$prefix" -name LoomConfig.cmake -path '*/cmake/Loom/*' | head -n 1)
[[ -n "$config" ]] || fail "the install has no <libdir>/cmake/Loom/LoomConfig.cmake"
[[ -x "$prefix/bin/loom" ]] || fail "the install has no bin/loom"

step "build the example against the install ($(dirname "$config"))"
inst="$tmp/install"
build_example "$inst" "$(dirname "$config")"
if grep -qF -e "$build_dir" -e "$source_dir/sdk" "$inst/plugins/example/build/build.ninja"; then
  fail "the example built against the install still refers to the build or source tree"
fi

# no environment at all: the installed loom must find lib/loom/plugins next to itself
run_installed() {
  env -i HOME="$tmp" ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH="$LD_LIBRARY_PATH"} "$prefix/bin/loom" "$@"
}

step "installed loom ops list (no environment)"
ops=$(run_installed ops list) || fail "installed loom ops list failed"
for op in ingest.csv sink.csv map; do
  grep -q "^$op " <<<"$ops" || fail "installed loom ops list does not list '$op':"$'\n'"$ops"
done
plugin_paths=$(run_installed ops list --json |
  python3 -c 'import json, sys; print("\n".join(sorted({o["plugin_path"] for o in json.load(sys.stdin)})))')
while read -r p; do
  [[ "$p" == "$prefix"/* ]] || fail "installed loom loaded $p, which is outside the install prefix"
done <<<"$plugin_paths"

step "installed loom plugins inspect"
check_inspect "$prefix/bin/loom" "$inst/plugins/example/build/libloom_example.so"

step "installed loom run graph.yaml"
run_installed run "$inst/plugins/example/graph.yaml" --home "$inst/home" -q ||
  fail "installed loom run $inst/plugins/example/graph.yaml failed"
check_output "$inst/out/example_upper.csv"

echo "example_plugin: OK"
