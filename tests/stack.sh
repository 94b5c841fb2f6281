# The real stack the browser tests and the API fuzzer run against, sourced
# by their runners: a fresh database seeded with demo data, fresh queue
# names, one worker and one gateway on a free port, all torn down
# (processes, database, queues) when the runner exits, however it ends.
#
# Usage, after setting ROOT (the repository) and ARTIFACTS (a directory):
#   source "$ROOT/tests/stack.sh"
#   stack_start NAME [VAR=value ...]   # extra settings for the gateway
# then BASE_URL, DB_NAME and STUDENTS (16 demo student numbers of class
# years 1-4, space-separated) are set; logs are in $ARTIFACTS/logs.

SERVER_URL="${SLUICE_TEST_MYSQL:-mysql://root@127.0.0.1:3306}"
AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

say() { printf '==> %s\n' "$*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

STACK_PIDS=()
stack_stop() {
    local pid
    for pid in "${STACK_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -n ${DB_NAME:-} ]] || return 0
    DATABASE_URL="$SERVER_URL/$DB_NAME" "$ROOT/target/debug/sluice-db" drop >/dev/null 2>&1 || \
        mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS \`$DB_NAME\`" 2>/dev/null || true
    if command -v rabbitmqctl >/dev/null 2>&1; then
        rabbitmqctl -q delete_queue "$STACK_PREFIX.commands" >/dev/null 2>&1 || true
        rabbitmqctl -q delete_queue "$STACK_PREFIX.commands.dead" >/dev/null 2>&1 || true
    fi
}

stack_start() {
    local name="$1"
    shift
    local run_id="${name}_$(date +%s)_$$"
    local keys="b1:$name-test-signing-key-$(date +%s%N)"
    LOGS="$ARTIFACTS/logs"
    mkdir -p "$ARTIFACTS" "$LOGS"
    DB_NAME="sluice_$run_id"
    STACK_PREFIX="sluice-$run_id"
    local db_url="$SERVER_URL/$DB_NAME"
    trap stack_stop EXIT

    say "building gateway, worker and sluice-db"
    (cd "$ROOT" && cargo build -q --workspace --all-targets)  # the tests' own build: nothing is compiled twice

    say "creating database $DB_NAME and seeding demo data"
    DATABASE_URL="$db_url" "$ROOT/target/debug/sluice-db" migrate >"$LOGS/db.log" 2>&1
    DATABASE_URL="$db_url" "$ROOT/target/debug/sluice-db" seed --students 200 --sections 60 --demo >>"$LOGS/db.log" 2>&1

    say "starting a worker"
    DATABASE_URL="$db_url" AMQP_URL="$AMQP_URL" SLUICE_QUEUE_PREFIX="$STACK_PREFIX" SLUICE_SIGNING_KEYS="$keys" \
        SLUICE_METRICS_ADDR=127.0.0.1:0 RUST_LOG=warn \
        "$ROOT/target/debug/sluice-worker" >"$LOGS/worker.log" 2>&1 &
    STACK_PIDS+=($!)

    local port
    port="$(free_port)"
    say "starting a gateway on 127.0.0.1:$port"
    env DATABASE_URL="$db_url" AMQP_URL="$AMQP_URL" SLUICE_QUEUE_PREFIX="$STACK_PREFIX" SLUICE_SIGNING_KEYS="$keys" \
        SLUICE_LISTEN="127.0.0.1:$port" SLUICE_TICK_MS=100 SLUICE_REFRESH_MS=100 \
        SLUICE_POLL_MIN_MS=500 SLUICE_POLL_MAX_MS=2000 RUST_LOG=warn "$@" \
        "$ROOT/target/debug/sluice-gateway" >"$LOGS/gateway.log" 2>&1 &
    STACK_PIDS+=($!)
    BASE_URL="http://127.0.0.1:$port"

    local _
    for _ in $(seq 1 60); do
        if curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1; then break; fi
        sleep 0.5
    done
    curl -fsS "$BASE_URL/readyz" >/dev/null || { cat "$LOGS/gateway.log"; exit 1; }

    # Demo students of class years the demo round admits (1-4).
    STUDENTS="$(mysql -uroot -h127.0.0.1 -N -B "$DB_NAME" -e \
        "SELECT number FROM students WHERE class_year BETWEEN 1 AND 4 AND password_hash IS NOT NULL ORDER BY number LIMIT 16" | tr '\n' ' ')"
}
