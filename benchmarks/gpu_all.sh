#!/usr/bin/env bash
# Run every benchmarks/gpu_*.py self-check on a CUDA machine; each prints PASS/FAIL lines.
#   bash benchmarks/gpu_all.sh [OUTDIR]
# Wheels for packages the GPU image lacks (river) may be placed in .whl/ beforehand.
set -u
out=${1:-/tmp/gpu-logs}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src PYTHONUNBUFFERED=1
nvidia-smi -L || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
status=0
for f in benchmarks/gpu_*.py; do
  name=$(basename "$f" .py)
  echo "=== $name"
  timeout 150 python3 "$f" >"$out/$name.log" 2>&1
  rc=$?
  grep -E "PASS|FAIL|Error|error|ratio|x[0-9]" "$out/$name.log" | tail -25
  echo "=== $name rc=$rc"
  [ $rc -eq 0 ] || status=1
done
exit $status
