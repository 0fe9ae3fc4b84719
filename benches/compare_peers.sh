#!/usr/bin/env bash
# Side-by-side eNTK timings: the crate's batched kernel and the Python peers
# (neural-tangents, numpy) on one workload, in one command on one machine.
#
#   benches/compare_peers.sh S|M|L [REPS]
#
# Needs `pip install neural-tangents` (JAX) and the peers' script in ../shared/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:-M}
reps=${2:-5}
case "$workload" in
  S) dims="16 64 10 32" ;;
  M) dims="32 128 50 32" ;;
  L) dims="64 256 100 64" ;;
  *) echo "error: workload must be S, M or L" >&2; exit 2 ;;
esac
peers=${PEERS_SCRIPT:-../shared/bench/entk_peers.py}
cargo build --release --quiet
echo "== learning-dynamics (ldyn bench entk --workload $workload)"
./target/release/ldyn bench entk --workload "$workload" --reps "$reps"
echo "== peers ($peers $dims $reps)"
JAX_PLATFORMS=cpu python3 "$peers" $dims "$reps" 2>/dev/null
