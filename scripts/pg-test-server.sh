#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL server for the test suite.
#
#   eval "$(scripts/pg-test-server.sh start)"   # prints export lines: UPDRAFT_TEST_PG_URL, UPDRAFT_TEST_PG_DIR
#   eval "$(scripts/pg-test-server.sh start --durable)"   # the same, with PostgreSQL's default durability
#   eval "$(scripts/pg-test-server.sh start --listen 10.1.2.1/30)"   # also on 10.1.2.1, for 10.1.2.0/30
#   scripts/pg-test-server.sh stop "$UPDRAFT_TEST_PG_DIR"
#
# The server lives in a fresh temp dir, listens on 127.0.0.1 only on a free port, and requires a
# random password (so tests see real credentials to keep out of logs). By default it is tuned
# for speed over durability (fsync off: fine for tests, never for benchmarks); `--durable`
# keeps fsync, synchronous_commit and full_page_writes on, as a real deployment would.
# `--listen ADDR/PREFIX` also listens on ADDR (an address of this machine, e.g. a veth end) and
# lets clients of the network ADDR/PREFIX in, with the same password; the URL printed still
# names 127.0.0.1 (the same port serves both).
set -euo pipefail

pg_bin() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$1" ] && { echo "$dir/$1"; return; }
  done
  command -v "$1" || { echo "error: PostgreSQL's $1 not found: run scripts/setup.sh" >&2; exit 2; }
}

# Run as the postgres user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    tuning="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    listen="127.0.0.1"
    allow=""
    shift
    while [ "$#" -gt 0 ]; do
      case "$1" in
        --durable) tuning="" ;;
        --listen)
          [[ "${2:-}" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] \
            || { echo "usage: $0 start [--durable] [--listen ADDR/PREFIX] | stop DIR" >&2; exit 2; }
          listen="127.0.0.1,${2%/*}"
          allow="$2"
          shift ;;
        *) echo "usage: $0 start [--durable] [--listen ADDR/PREFIX] | stop DIR" >&2; exit 2 ;;
      esac
      shift
    done
    dir="$(mktemp -d /tmp/updraft-pg.XXXXXX)"
    chmod 755 "$dir"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    password="$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
    printf '%s\n' "$password" > "$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    as_pg "$(pg_bin initdb)" -D "$dir/data" -U postgres --auth=scram-sha-256 --pwfile="$dir/pwfile" \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    if [ -n "$allow" ]; then
      echo "host all all $allow scram-sha-256" >> "$dir/data/pg_hba.conf"
    fi
    as_pg "$(pg_bin pg_ctl)" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=$listen -c max_connections=400 $tuning" \
      start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "export UPDRAFT_TEST_PG_URL='postgres://postgres:$password@127.0.0.1:$port/postgres'"
    echo "export UPDRAFT_TEST_PG_DIR='$dir'"
    ;;
  stop)
    dir="${2:-${UPDRAFT_TEST_PG_DIR:-}}"
    [ -n "$dir" ] && [ -d "$dir/data" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    as_pg "$(pg_bin pg_ctl)" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start [--durable] [--listen ADDR/PREFIX] | stop DIR" >&2
    exit 2
    ;;
esac
