#!/usr/bin/env bash
# Create (or reuse) the virtual environment at $MMRF_VENV (default: .venv in the repo root) and
# install the pinned stack plus mmresfamily in editable mode.
#
# mmcv 2.1.0 ships only a source release; it is compiled once with ops (C++20 for torch 2.14
# headers) and the wheel is cached in $MMRF_CACHE (default ~/.cache/mmresfamily), so later setups
# on the same machine take a minute or two.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMRF_VENV:-$ROOT/.venv}"
CACHE="${MMRF_CACHE:-$HOME/.cache/mmresfamily}"
WHEELS="$CACHE/wheels"
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
MMCV_VERSION=2.1.0
PY="${PYTHON:-python3}"

log() { printf '[setup] %s\n' "$*" >&2; }
mkdir -p "$WHEELS"

# Real data for training examples and tests: Fashion-MNIST from Debian (nothing downloaded at
# run time). As root: apt-get; otherwise unpack the .deb into the cache.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && \
   [ ! -f "$CACHE/debs/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
    log "Fashion-MNIST (Debian package dataset-fashion-mnist)"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
         { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null; }) \
            || log "warning: could not install dataset-fashion-mnist; tests that need it will say so"
    else
        (cd "$(mktemp -d)" && apt-get download dataset-fashion-mnist >/dev/null && \
         dpkg-deb -x dataset-fashion-mnist_*.deb "$CACHE/debs") \
            || log "warning: could not fetch dataset-fashion-mnist; tests that need it will say so"
    fi
fi


if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment at $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
pip_install() { "$VPY" -m pip install --disable-pip-version-check -q -c "$ROOT/constraints.txt" "$@"; }

# A stamp of everything that decides the environment lets a repeated setup return at once.
stamp_src="$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" "$ROOT/setup.py" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
stamp_file="$VENV/.mmrf-setup-stamp"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_src" ] && [ -z "${MMRF_FORCE_SETUP:-}" ]; then
    log "environment at $VENV is up to date"
    exit 0
fi

log "build tools"
pip_install 'setuptools<80' wheel ninja psutil
log "torch (${TORCH_PINS[*]})"
pip_install "${TORCH_PINS[@]}"

mmcv_wheel="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$mmcv_wheel" ]; then
    log "building mmcv $MMCV_VERSION with ops (first time on this machine: ~25 minutes on 2 cores)"
    build="$(mktemp -d)"
    "$VPY" -m pip download --no-deps --no-binary :all: --no-build-isolation -q -d "$build" "mmcv==$MMCV_VERSION"
    tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
    src="$build/mmcv-$MMCV_VERSION"
    # torch >= 2.10 headers need C++20; mmcv's setup.py hard-codes c++14/c++17.
    sed -i -E 's/-std=c\+\+1[0-9]/-std=c++20/g' "$src/setup.py"
    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$VPY" -m pip wheel --no-build-isolation --no-deps -w "$WHEELS" .)
    rm -rf "$build"
    mmcv_wheel="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
fi
log "mmcv from $mmcv_wheel"
pip_install "$mmcv_wheel"

log "pinned stack (requirements.txt) and mmresfamily (editable)"
pip_install -r "$ROOT/requirements.txt"
pip_install --no-deps --no-build-isolation -e "$ROOT"

"$VPY" - <<'PY'
import mmcv.ops, torch, mmdet, mmseg, mmpretrain, timm, mmresfamily  # noqa: F401
print(f"[setup] ok: torch {torch.__version__}, mmcv {mmcv.__version__} (ops), mmdet {mmdet.__version__}, "
      f"mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}, timm {timm.__version__}")
PY
echo "$stamp_src" > "$stamp_file"
