#!/usr/bin/env bash
# Create (or reuse) the virtual environment at $MMRF_VENV (default: .venv in the repo root),
# install the pinned stack plus mmresfamily in editable mode, and build the bundled quickstart
# data from Fashion-MNIST (Debian package dataset-fashion-mnist).
#
# mmcv 2.1.0 ships only a source release; it is compiled once with ops (C++20 for torch 2.14
# headers) and the wheel is cached in $MMRF_CACHE (default ~/.cache/mmresfamily), so later setups
# on the same machine take a minute or two, and an unchanged environment returns at once.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMRF_VENV:-$ROOT/.venv}"
CACHE="${MMRF_CACHE:-$HOME/.cache/mmresfamily}"
WHEELS="$CACHE/wheels"
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
MMCV_VERSION=2.1.0
PY="${PYTHON:-python3}"
FMNIST_FILE=usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

log() { printf '[setup] %s\n' "$*" >&2; }

install_fashion_mnist() {
    # Real data for examples and tests; nothing is downloaded at run time.
    [ -f "/$FMNIST_FILE" ] || [ -f "$CACHE/debs/$FMNIST_FILE" ] && return 0
    log "Fashion-MNIST (Debian package dataset-fashion-mnist)"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || {
            apt-get update -qq >/dev/null 2>&1 &&
            apt-get install -y -qq dataset-fashion-mnist >/dev/null; } ||
            log "warning: could not install dataset-fashion-mnist; tests that need it will say so"
    else  # no root: unpack the package into the cache
        (cd "$(mktemp -d)" && apt-get download dataset-fashion-mnist >/dev/null &&
         dpkg-deb -x dataset-fashion-mnist_*.deb "$CACHE/debs") ||
            log "warning: could not fetch dataset-fashion-mnist; tests that need it will say so"
    fi
}

build_mmcv_wheel() {
    log "building mmcv $MMCV_VERSION with ops (first time on this machine: ~25 minutes on 2 cores)"
    local build src
    build="$(mktemp -d)"
    "$VPY" -m pip download --no-deps --no-binary :all: --no-build-isolation -q -d "$build" \
        "mmcv==$MMCV_VERSION"
    tar -xzf "$build/mmcv-$MMCV_VERSION.tar.gz" -C "$build"
    src="$build/mmcv-$MMCV_VERSION"
    # torch >= 2.10 headers need C++20; mmcv's setup.py hard-codes c++14/c++17.
    sed -i -E 's/-std=c\+\+1[0-9]/-std=c++20/g' "$src/setup.py"
    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$VPY" -m pip wheel --no-build-isolation --no-deps -w "$WHEELS" .)
    rm -rf "$build"
}

install_environment() {
    log "build tools"
    pip_install 'setuptools<80' wheel ninja psutil
    log "torch (${TORCH_PINS[*]})"
    pip_install "${TORCH_PINS[@]}"
    ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1 || build_mmcv_wheel
    local mmcv_wheel
    mmcv_wheel="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
    log "mmcv from $mmcv_wheel"
    pip_install "$mmcv_wheel"
    log "pinned stack (requirements.txt)"
    pip_install -r "$ROOT/requirements.txt"
    log "mmresfamily (editable) with its extras: deploy (ONNX, onnxruntime, torchao), dev (ruff)"
    pip_install --no-build-isolation -e "$ROOT[deploy,dev]"
    "$VPY" - <<'PY'
import mmcv.ops, torch, mmdet, mmseg, mmpretrain, timm, mmresfamily, onnxruntime, torchao  # noqa: F401
print(f"[setup] ok: torch {torch.__version__}, mmcv {mmcv.__version__} (ops), "
      f"mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, "
      f"mmpretrain {mmpretrain.__version__}, timm {timm.__version__}")
PY
}

mkdir -p "$WHEELS"
install_fashion_mnist
if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment at $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
pip_install() {
    "$VPY" -m pip install --disable-pip-version-check -q -c "$ROOT/constraints.txt" "$@"
}

# A stamp of everything that decides the environment lets an unchanged setup return at once.
stamp="$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" "$ROOT/setup.py" "$ROOT/pyproject.toml" \
         "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.mmrf-setup-stamp" 2>/dev/null)" = "$stamp" ] && [ -z "${MMRF_FORCE_SETUP:-}" ]
then
    log "environment at $VENV is up to date"
else
    install_environment
    echo "$stamp" > "$VENV/.mmrf-setup-stamp"
fi

# The bundled default data (quickstart), built from Fashion-MNIST when missing.
if [ ! -f "$ROOT/data/quickstart/annotations/instances_val.json" ] &&
   "$VPY" -c "from mmresfamily.datasets import find_fashion_mnist; find_fashion_mnist()" \
       2>/dev/null; then
    log "building the quickstart data (data/quickstart)"
    "$VPY" "$ROOT/tools/make_quickstart_data.py" --out "$ROOT/data/quickstart" >&2
fi
