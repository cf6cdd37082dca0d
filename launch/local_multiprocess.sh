#!/usr/bin/env bash
# Starts an N-process fjax run on this machine over loopback: the code path a TPU pod or a
# GPU cluster takes (coordinator address, process count and id from the environment).
#
#   launch/local_multiprocess.sh 2 -m fjax.main --config=configs/xception.py:demo --workdir=/tmp/mp
#
# Every process gets FJAX_COORDINATOR=127.0.0.1:$PORT, FJAX_NUM_PROCESSES=N and its
# FJAX_PROCESS_ID; process 0's output goes to the terminal, the others' to
# $LOG_DIR/process_<i>.log. Exits non-zero if any process fails.
set -euo pipefail
n=${1:?usage: local_multiprocess.sh NUM_PROCESSES PYTHON_ARGS...}
shift
port=${FJAX_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
log_dir=${LOG_DIR:-$(mktemp -d)}
python=${PYTHON:-python3}
pids=()
for ((i = 0; i < n; i++)); do
  if [ "$i" = 0 ]; then
    FJAX_COORDINATOR=127.0.0.1:$port FJAX_NUM_PROCESSES=$n FJAX_PROCESS_ID=$i \
      "$python" "$@" &
  else
    FJAX_COORDINATOR=127.0.0.1:$port FJAX_NUM_PROCESSES=$n FJAX_PROCESS_ID=$i \
      "$python" "$@" > "$log_dir/process_$i.log" 2>&1 &
  fi
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "process $i failed (log: $log_dir/process_$i.log)" >&2
    status=1
  fi
done
exit $status
