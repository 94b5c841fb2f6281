# shellcheck shell=bash
# Shared helpers for the scripts in this directory: bring up the local
# services Sluice needs (MariaDB, RabbitMQ) and build its tools. Every helper
# is idempotent and says what it does. Source this file; do not run it.

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

readonly SLUICE_DEFAULT_DATABASE_URL="mysql://root@127.0.0.1:3306/sluice"
readonly SLUICE_DEFAULT_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
: "${DATABASE_URL:=$SLUICE_DEFAULT_DATABASE_URL}"
: "${AMQP_URL:=$SLUICE_DEFAULT_AMQP_URL}"
export DATABASE_URL AMQP_URL

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND once a second until it
# succeeds; gives up after SECONDS.
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what did not come up within ${timeout}s"
        sleep 1
    done
}

# port_open HOST PORT: whether something accepts TCP connections there.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# show_url URL DEFAULT: prints URL, hiding its password unless it is the
# documented local default (whose credentials are public anyway).
show_url() {
    if [[ $1 == "$2" ]]; then
        printf '%s\n' "$1"
    else
        printf '%s\n' "$1" | sed -E 's#^([a-z]+://[^:/@]+):[^@]*@#\1:***@#'
    fi
}

mariadb_up() {
    mysqladmin -uroot -h127.0.0.1 --connect-timeout=2 ping
}

ensure_mariadb() {
    step "MariaDB on 127.0.0.1:3306"
    if mariadb_up >/dev/null 2>&1; then
        note "already running"
        return
    fi
    # /run is a tmpfs: after a reboot the socket directory is gone, and
    # mariadbd (which drops to the mysql user) cannot recreate it.
    [[ -d /run/mysqld ]] || install -d -o mysql -g mysql /run/mysqld
    note "starting /usr/sbin/mariadbd"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_until 60 "MariaDB" mariadb_up
    note "started"
}

rabbitmq_up() {
    rabbitmq-diagnostics -q ping && port_open 127.0.0.1 5672
}

ensure_rabbitmq() {
    step "RabbitMQ on 127.0.0.1:5672"
    if rabbitmq_up >/dev/null 2>&1; then
        note "already running"
    else
        note "starting rabbitmq-server -detached"
        rabbitmq-server -detached
        # The node answers pings before the broker has finished booting;
        # await_startup waits for the rest.
        wait_until 60 "RabbitMQ node" rabbitmq-diagnostics -q ping
        rabbitmqctl -q --timeout 60 await_startup
        wait_until 60 "RabbitMQ AMQP port 5672" port_open 127.0.0.1 5672
        note "started"
    fi
    # A node can answer pings with its metadata store gone (every AMQP
    # connection is then reset); say so instead of failing later.
    if ! rabbitmqctl -q --timeout 30 list_vhosts 2>/dev/null | grep -qx '/'; then
        die "RabbitMQ is running but cannot list its virtual hosts (its data directory is damaged or the default vhost / is missing). On a development machine: rabbitmqctl stop; remove the node's mnesia directory (rabbitmqctl eval 'rabbit_mnesia:dir().' shows it); start it again."
    fi
    if rabbitmq-plugins -q is_enabled rabbitmq_prometheus >/dev/null 2>&1; then
        note "rabbitmq_prometheus already enabled"
    else
        note "enabling rabbitmq_prometheus"
        rabbitmq-plugins -q enable rabbitmq_prometheus
    fi
}

# The cargo profile for tools built by these scripts: SLUICE_PROFILE=debug
# (the default, quick to build) or release.
sluice_profile() {
    case "${SLUICE_PROFILE:-debug}" in
    debug) echo dev ;;
    release) echo release ;;
    *) die "SLUICE_PROFILE must be debug or release, not ${SLUICE_PROFILE}" ;;
    esac
}

# Builds every Sluice binary (sluice-db, sluice-gateway, sluice-worker,
# bench) and sets SLUICE_BIN to their directory and SLUICE_DB to sluice-db.
#
# A debug build is the very invocation the tests' build resolves to (every
# target of the workspace): cargo settles crate features per invocation, so
# a narrower one (`-p gateway --bin ...`) would compile some 40 crates again
# with other features. This way scripts/test, scripts/demo, the live metrics
# check and the browser tests reuse each other's work, whichever runs first.
build_binaries() {
    local profile dir
    profile=$(sluice_profile)
    step "building the Sluice binaries (${SLUICE_PROFILE:-debug})"
    if [[ $profile == dev ]]; then
        dir=debug
        cargo build --manifest-path "$SLUICE_ROOT/Cargo.toml" --workspace --all-targets
    else
        dir=$profile
        cargo build --manifest-path "$SLUICE_ROOT/Cargo.toml" --profile "$profile" --workspace --bins
    fi
    SLUICE_BIN="${CARGO_TARGET_DIR:-$SLUICE_ROOT/target}/$dir"
    SLUICE_DB="$SLUICE_BIN/sluice-db"
    local b
    for b in sluice-db sluice-gateway sluice-worker; do
        [[ -x $SLUICE_BIN/$b ]] || die "built $b not found in $SLUICE_BIN"
    done
}
