#!/usr/bin/env bash
# Side-by-side timings in one command on one machine: the crate next to its Python peers.
#
#   benches/compare_peers.sh S|M|L [REPS]         the full eNTK: ldyn bench entk, then
#                                                 neural-tangents and numpy (benches/peers/entk_peers.py)
#   benches/compare_peers.sh lm gallery|large [REPS]
#                                                 one SFT and one DPO step of the tiny LM, and the JVP
#                                                 of log pi along one direction: ldyn bench lm [--jvp],
#                                                 then the jitted JAX mirror (benches/peers/tinylm_jax.py)
#                                                 on the same weights and batches, which it checks first
#
# Needs `pip install -r benches/peers/requirements.txt` (JAX, neural-tangents, numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
if [ "${1:-M}" = lm ]; then
  workload=${2:-large}
  reps=${3:-7}
  export_file=$(mktemp --suffix=.json)
  trap 'rm -f "$export_file"' EXIT
  echo "== learning-dynamics (ldyn bench lm --workload $workload)"
  ./target/release/ldyn bench lm --workload "$workload" --reps "$reps" --export "$export_file"
  ./target/release/ldyn bench lm --workload "$workload" --reps "$reps" --jvp
  echo "== JAX (benches/peers/tinylm_jax.py, jax.jit, 64-bit)"
  JAX_PLATFORMS=cpu python3 benches/peers/tinylm_jax.py "$export_file" "$reps" 2>/dev/null
  exit 0
fi
workload=${1:-M}
reps=${2:-5}
case "$workload" in
  S) dims="16 64 10 32" ;;
  M) dims="32 128 50 32" ;;
  L) dims="64 256 100 64" ;;
  *) echo "error: workload must be S, M, L or lm" >&2; exit 2 ;;
esac
peers=${PEERS_SCRIPT:-benches/peers/entk_peers.py}
echo "== learning-dynamics (ldyn bench entk --workload $workload)"
./target/release/ldyn bench entk --workload "$workload" --reps "$reps"
echo "== peers ($peers $dims $reps)"
JAX_PLATFORMS=cpu python3 "$peers" $dims "$reps" 2>/dev/null
