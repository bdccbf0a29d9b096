#!/usr/bin/env bash
# Starts (creating if needed) the local Debian PostgreSQL cluster, makes a `backstate` role and a
# `backstate_test` database, and prints the URL the test suite takes in
# BACKSTATE_TEST_POSTGRES_URL. Needs root and Debian's `postgresql` package. Idempotent.
set -euo pipefail
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
as_postgres() { su postgres -c "$1"; }
for _ in $(seq 50); do as_postgres "psql -p $port -tAc 'SELECT 1'" >/dev/null 2>&1 && break; sleep 0.2; done
if [ "$(as_postgres "psql -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'backstate'\"")" != 1 ]; then
  as_postgres "psql -p $port -qc \"CREATE ROLE backstate LOGIN SUPERUSER PASSWORD 'backstate'\""
fi
if [ "$(as_postgres "psql -p $port -tAc \"SELECT 1 FROM pg_database WHERE datname = 'backstate_test'\"")" != 1 ]; then
  as_postgres "createdb -p $port -O backstate backstate_test"
fi
echo "postgresql+psycopg://backstate:backstate@127.0.0.1:$port/backstate_test"
