#!/usr/bin/env bash
# A loopback cluster: PostgreSQL + 3 `assist serve` replicas + nginx, with its files in DIR (default .assist/cluster).
#
#   bash scripts/cluster.sh up [DIR]       start what is not running; prints the balancer's URL
#   bash scripts/cluster.sh status [DIR]   each part's pid and whether it is alive, each replica's index version
#   bash scripts/cluster.sh down [DIR]     stop everything, by pid files only
#
# Settings: ASSIST_INDEX_DIR (default .assist/index, built by `assist index build --kb kb`), ASSIST_INDEX_POLL_SECONDS
# (default 2), ASSIST_CLUSTER_PORT (the balancer's port; default a free one), ASSIST_API_KEYS / ASSIST_ADMIN_TOKEN
# (default: generated into DIR/credentials.env). The logic is scripts/cluster.py, which the bench and the test use too.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export OMP_NUM_THREADS=1
exec "$root/.venv/bin/python" "$root/scripts/cluster.py" "$@"
