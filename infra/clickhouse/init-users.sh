#!/bin/bash
# Create the two clinops accounts on a ClickHouse server:
#   clinops_writer  INSERT and SELECT on audit.*, for the worker's audit sink
#   clinops_reader  SELECT on audit.*, for people and tools that query the trail
#
# The clickhouse/clickhouse-server image runs this file from
# /docker-entrypoint-initdb.d in file-name order, so docker-compose.yml mounts it
# as 02-users.sh after 01-audit.sql, which creates the audit database. The image
# runs init files only on the first start, when its data folder is empty.
#
# It connects as CLICKHOUSE_USER with CLICKHOUSE_PASSWORD, the administrator that
# the image's entrypoint creates, which can create users only with
# CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1. The new passwords come
# from CLICKHOUSE_WRITER_PASSWORD and CLICKHOUSE_READER_PASSWORD and reach
# clickhouse-client on standard input, so they never appear in a process list.
# CREATE USER OR REPLACE makes a rerun set the current passwords and grants, so a
# start with CLICKHOUSE_ALWAYS_RUN_INITDB_SCRIPTS=1 rotates them.

# The entrypoint runs this file when it is executable and sources it otherwise,
# such as from a checkout that lost the executable bit. The subshell keeps `set`
# and `exit` from leaking into the entrypoint when it is sourced.
(
    set -euo pipefail

    script_name=$(basename "${BASH_SOURCE[0]}")

    # Passwords may contain only URL-unreserved characters, because the worker's
    # CLICKHOUSE_URL embeds the writer password without percent-encoding, and the
    # SQL below quotes both passwords without escaping.
    password_pattern='^[A-Za-z0-9._~-]{16,}$'

    require_password() {
        local name=$1
        local value=${!name:-}
        if [[ -z $value ]]; then
            echo "$script_name: $name is missing. Set it in .env (see .env.example)." >&2
            exit 1
        fi
        if [[ ! $value =~ $password_pattern ]]; then
            echo "$script_name: $name is invalid. Use at least 16 characters from" \
                "A-Z a-z 0-9 . _ ~ -, such as the output of 'openssl rand -hex 24'." >&2
            exit 1
        fi
    }

    require_password CLICKHOUSE_WRITER_PASSWORD
    require_password CLICKHOUSE_READER_PASSWORD

    clickhouse-client --host 127.0.0.1 \
        --user "${CLICKHOUSE_USER:-default}" --password "${CLICKHOUSE_PASSWORD:-}" \
        --multiquery <<SQL
CREATE USER OR REPLACE clinops_writer
    IDENTIFIED WITH sha256_password BY '${CLICKHOUSE_WRITER_PASSWORD}'
    DEFAULT DATABASE audit;
GRANT INSERT, SELECT ON audit.* TO clinops_writer;

CREATE USER OR REPLACE clinops_reader
    IDENTIFIED WITH sha256_password BY '${CLICKHOUSE_READER_PASSWORD}'
    DEFAULT DATABASE audit;
GRANT SELECT ON audit.* TO clinops_reader;
SQL

    echo "$script_name: created clinops_writer (INSERT, SELECT on audit.*)" \
        "and clinops_reader (SELECT on audit.*)"
)
