#!/usr/bin/env bash
# A throwaway PostgreSQL cluster in DIR, on 127.0.0.1 only, trusting local connections (tests, the loopback cluster).
#
#   bash scripts/pg.sh start DIR [PORT]   initdb on the first start, start, create database assist; prints its URL
#   bash scripts/pg.sh stop DIR           fast shutdown (by the cluster's own pid file)
#   bash scripts/pg.sh status DIR         running or not, pid and URL
#
# As root the server runs as the user postgres (PostgreSQL refuses root); DIR is then owned by postgres.
# The port is kept in DIR/port, so a restart keeps the URL. Never use this for data you want to keep (fsync=off).
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR [PORT]" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
data=$dir/data
log=$dir/postgres.log

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "pg.sh: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run make install" >&2
  exit 1
fi

run_as=()
if [ "$(id -u)" -eq 0 ]; then
  run_as=(runuser -u postgres --)
fi

url() { echo "postgresql://assist@127.0.0.1:$(cat "$dir/port")/assist"; }
running() { [ -f "$data/PG_VERSION" ] && "${run_as[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }
fail() {
  echo "pg.sh: $1" >&2
  if [ -f "$log" ]; then echo "--- last lines of $log:" >&2; tail -n 20 "$log" >&2; fi
  exit 1
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ ${#run_as[@]} -gt 0 ]; then
      chown postgres "$dir"
      "${run_as[@]}" test -x "$dir" || fail "the user postgres cannot enter $dir: every parent folder needs o+x (chmod o+x)"
    fi
    if running; then
      url
      exit 0
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      "${run_as[@]}" "$bin/initdb" -D "$data" -A trust -U assist -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; fail "initdb failed in $data"; }
    fi
    if [ $# -ge 3 ]; then
      echo "$3" >"$dir/port"
    elif [ ! -s "$dir/port" ]; then
      python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$dir/port"
    fi
    port=$(cat "$dir/port")
    # The socket goes into DIR too: /var/run/postgresql may not exist or belong to the system cluster.
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
      || fail "PostgreSQL did not start on 127.0.0.1:$port"
    exists=$("$bin/psql" -h 127.0.0.1 -p "$port" -U assist -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'assist'") \
      || fail "cannot connect to PostgreSQL on 127.0.0.1:$port"
    if [ "$exists" != "1" ]; then
      "$bin/createdb" -h 127.0.0.1 -p "$port" -U assist assist || fail "cannot create the database assist"
    fi
    url
    ;;
  stop)
    if running; then
      "${run_as[@]}" "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || fail "PostgreSQL in $data did not stop"
      echo "pg.sh: stopped PostgreSQL in $data"
    else
      echo "pg.sh: PostgreSQL in $data is not running"
    fi
    ;;
  status)
    if running; then
      echo "running pid $(head -n 1 "$data/postmaster.pid") $(url)"
    else
      echo "stopped"
      exit 3
    fi
    ;;
  *) usage ;;
esac
