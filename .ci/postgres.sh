#!/usr/bin/env bash
# Makes a local PostgreSQL ready for the tests: the cluster started, the test user trusted on
# 127.0.0.1 (first matching pg_hba line wins, so ours goes on top), the test database created.
# Idempotent: a second run changes nothing.
set -euo pipefail
cluster=$(ls /etc/postgresql | sort -V | tail -n1)
hba=/etc/postgresql/$cluster/main/pg_hba.conf
rule='host all postgres 127.0.0.1/32 trust'
if ! grep -qxF "$rule" "$hba"; then
  sed -i "1i $rule" "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$cluster" main start 2>/dev/null \
  || pg_ctlcluster --skip-systemctl-redirect "$cluster" main reload
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.2
done
pg_isready -h 127.0.0.1 -p 5432
psql_() { psql -X -q -h 127.0.0.1 -U postgres "$@"; }
if [ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
  psql_ -d postgres -c 'CREATE DATABASE test'
fi
# The schema's exclusion constraint needs btree_gist (contrib, shipped with the server package).
psql_ -d test -c 'CREATE EXTENSION IF NOT EXISTS btree_gist'
