#!/usr/bin/env bash
# The two set-up commands of the README:
#   scripts/dev.sh demo   install dependencies, build, run the demo graph end to end
#   scripts/dev.sh test   install dependencies, build, run the whole test suite
#                         (unit + integration), then again under ASan + UBSan
# Environment: BUILD_DIR (default build), JOBS (default: number of cores),
# LOOM_SKIP_SANITIZE=1 to skip the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cmd=${1:-}
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}

configure_and_build() { # dir extra-cmake-args...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

case "$cmd" in
  demo)
    bash scripts/setup.sh
    configure_and_build "$build"
    echo
    echo "== loom run graphs/iris.yaml"
    "$build/bin/loom" run graphs/iris.yaml
    echo
    echo "== loom runs list"
    "$build/bin/loom" runs list -n 5
    ;;
  test)
    bash scripts/setup.sh
    configure_and_build "$build"
    (cd "$build" && ctest --output-on-failure -j "$jobs")
    if [ "${LOOM_SKIP_SANITIZE:-0}" != "1" ]; then
      echo "== the same suite under AddressSanitizer + UndefinedBehaviorSanitizer"
      configure_and_build "$build-asan" -DLOOM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
      (cd "$build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
         UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
         ctest --output-on-failure -j "$jobs")
    fi
    ;;
  *)
    echo "usage: scripts/dev.sh demo|test" >&2
    exit 2
    ;;
esac
