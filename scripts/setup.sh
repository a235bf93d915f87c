#!/usr/bin/env bash
# Installs everything Loom needs to build and test on Debian 12, from Debian's
# packages only. Idempotent: installs only what is missing. Run as root.
#   scripts/setup.sh           build and test dependencies
#   scripts/setup.sh --bench   also the peers the benchmarks in bench/ compare with
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git python3
  libcaf-dev                    # C++ Actor Framework 0.17
  libzmq3-dev cppzmq-dev        # ZeroMQ (cluster transport)
  libflatbuffers-dev flatbuffers-compiler
  liblmdb-dev lmdb-utils        # run store
  libdnnl-dev                   # oneDNN 2.6 (training)
  libboost-dev libboost-filesystem-dev
  catch2                        # Catch2 v2
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libssl-dev                    # sha256 of graph files, https
  zlib1g-dev                    # gzip input
  libfast-float-dev             # fast, exact number parsing in ingest
  openssl                       # the https ingest test makes a self-signed certificate
  python3-sklearn               # the evaluate tests check every metric against scikit-learn
  dataset-fashion-mnist         # the Fashion-MNIST graph runs (reduced) in the tests
)
if [ "${1:-}" = "--bench" ]; then
  # pandas, PyTorch and scikit-learn (base list) are the peers; Fashion-MNIST is the data
  # of bench/train_mnist.sh
  packages+=(python3-pandas time python3-torch)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
