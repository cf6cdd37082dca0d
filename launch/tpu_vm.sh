#!/usr/bin/env bash
# Cloud TPU VMs (one host or a pod slice): create, install this checkout on every worker,
# train, follow, stop, delete. Every step is one gcloud command over all workers.
#
#   export TPU_NAME=fjax-v4 ZONE=us-central2-b ACCELERATOR_TYPE=v4-32
#   launch/tpu_vm.sh create
#   launch/tpu_vm.sh setup                  # copies this checkout, installs jax[tpu]
#   launch/tpu_vm.sh run --config=configs/focus.py:paper \
#       --config.init_from=/mnt/shared/weights/vit_s16 --workdir=/mnt/shared/runs/focus
#   launch/tpu_vm.sh logs                   # worker 0's log
#   launch/tpu_vm.sh stop | delete
#
# On a pod slice every host writes its shards of each checkpoint into the workdir, so the
# workdir (and TFDS_DATA_DIR, default /mnt/shared/tensorflow_datasets) must be a path
# every worker mounts: a Filestore NFS share or a gcsfuse-mounted bucket.
# Optional: PROJECT, RUNTIME_VERSION (default tpu-ubuntu2204-base), TFDS_DATA_DIR,
# PYTHON_VERSION (default 3.11), DRY_RUN=1 (print the gcloud commands instead of running
# them). The runtime images ship Python 3.10 and the pinned requirements need 3.11: setup
# installs uv with the system pip (user site) and lets it fetch a standalone CPython
# PYTHON_VERSION for the venv, on every worker, without sudo or apt.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: TPU_NAME=... ZONE=... launch/tpu_vm.sh create|setup|run FLAGS...|logs|stop|delete"
command=${1:-}
if [ -z "$command" ]; then echo "$usage" >&2; exit 2; fi
shift
if [ -z "${TPU_NAME:-}" ] || [ -z "${ZONE:-}" ]; then
  echo "error: set TPU_NAME and ZONE (and ACCELERATOR_TYPE for create)" >&2; exit 2
fi
remote_dir=fjax
data_dir=${TFDS_DATA_DIR:-/mnt/shared/tensorflow_datasets}
jax_version=$(sed -n 's/^jax==//p' requirements.txt)
python_version=${PYTHON_VERSION:-3.11}

gcloud_tpu() {  # gcloud compute tpus tpu-vm ARGS --zone ... (or its echo with DRY_RUN=1)
  local cmd=(gcloud compute tpus tpu-vm "$@" "--zone=$ZONE")
  if [ -n "${PROJECT:-}" ]; then cmd+=("--project=$PROJECT"); fi
  if [ "${DRY_RUN:-0}" = 1 ]; then printf '%q ' "${cmd[@]}"; echo; else "${cmd[@]}"; fi
}

on_all_workers() { gcloud_tpu ssh "$TPU_NAME" --worker=all "--command=$1"; }

case "$command" in
  create)
    if [ -z "${ACCELERATOR_TYPE:-}" ]; then echo "error: set ACCELERATOR_TYPE, e.g. v4-32" >&2; exit 2; fi
    gcloud_tpu create "$TPU_NAME" "--accelerator-type=$ACCELERATOR_TYPE" \
      "--version=${RUNTIME_VERSION:-tpu-ubuntu2204-base}" ;;
  setup)
    tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
    archive=$tmp/fjax.tar.gz
    git archive --format=tar.gz -o "$archive" HEAD  # the committed checkout
    gcloud_tpu scp "$archive" "$TPU_NAME:fjax.tar.gz" --worker=all
    on_all_workers "mkdir -p $remote_dir && tar xzf fjax.tar.gz -C $remote_dir && cd $remote_dir \
&& python3 -m pip install -q --user uv && ~/.local/bin/uv venv -q --seed --python $python_version .venv \
&& . .venv/bin/activate && python -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
&& pip install -q -U pip \
&& pip install -q 'jax[tpu]==$jax_version' && pip install -q -r requirements.txt \
&& pip install -q --no-deps -r requirements-media.txt" ;;
  run)
    if [ "$#" = 0 ]; then echo "error: run needs fjax.main flags (--config=... --workdir=...)" >&2; exit 2; fi
    flags=$(printf '%q ' "$@")
    # Detached, so that a dropped ssh session does not stop training; FJAX_DISTRIBUTED=1
    # makes fjax.main call jax.distributed.initialize(), which finds the pod's hosts.
    on_all_workers "cd $remote_dir && . .venv/bin/activate && FJAX_DISTRIBUTED=1 \
TFDS_DATA_DIR=$(printf '%q' "$data_dir") nohup python -m fjax.main $flags > run.log 2>&1 < /dev/null &" ;;
  logs)
    gcloud_tpu ssh "$TPU_NAME" --worker=0 "--command=tail -n 100 -f $remote_dir/run.log" ;;
  stop)
    on_all_workers "pkill -f 'python -m fjax.main' || true" ;;
  delete)
    gcloud_tpu delete "$TPU_NAME" --quiet ;;
  *)
    echo "$usage" >&2; exit 2 ;;
esac
