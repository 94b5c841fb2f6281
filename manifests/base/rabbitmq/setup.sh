#!/bin/sh
# Runs in RabbitMQ's init container: assembles /etc/rabbitmq (an emptyDir,
# so the root filesystem stays read-only) from the rabbitmq-config ConfigMap
# and the sluice-rabbitmq Secret, and installs the Erlang cookie.
set -eu

src=/config
dst=/etc/rabbitmq

check_token() {
  # The values are spliced into JSON below, so only allow characters that
  # need no escaping. `openssl rand -hex 24` satisfies this.
  case "$2" in
    "" | *[!A-Za-z0-9._~-]*)
      echo "setup: $1 must be non-empty and use only A-Z a-z 0-9 . _ ~ -" >&2
      exit 1
      ;;
  esac
}
check_token username "$RABBITMQ_USERNAME"
check_token password "$RABBITMQ_PASSWORD"
check_token admin-password "$RABBITMQ_ADMIN_PASSWORD"

mkdir -p "$dst/conf.d"
cp "$src"/*.conf "$dst/conf.d/"
cp "$src/enabled_plugins" "$dst/enabled_plugins"

umask 077
cat > "$dst/definitions.json" <<JSON
{
  "users": [
    {"name": "$RABBITMQ_USERNAME", "password": "$RABBITMQ_PASSWORD", "tags": []},
    {"name": "ops", "password": "$RABBITMQ_ADMIN_PASSWORD", "tags": ["administrator"]}
  ],
  "vhosts": [
    {"name": "/", "metadata": {"description": "Sluice", "tags": [], "default_queue_type": "quorum"}}
  ],
  "permissions": [
    {"user": "$RABBITMQ_USERNAME", "vhost": "/", "configure": "^sluice", "write": "^(sluice.*|amq[.]default)?\$", "read": "^sluice"},
    {"user": "ops", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
  ],
  "policies": [
    {
      "vhost": "/",
      "name": "sluice-commands",
      "pattern": "^sluice[.]commands\$",
      "apply-to": "queues",
      "priority": 0,
      "definition": {
        "delivery-limit": 5,
        "dead-letter-exchange": "",
        "dead-letter-routing-key": "sluice.commands.dead",
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish"
      }
    }
  ]
}
JSON

cookie=/var/lib/rabbitmq/.erlang.cookie
rm -f "$cookie"
printf '%s' "$RABBITMQ_ERLANG_COOKIE" > "$cookie"
chmod 400 "$cookie"
echo "setup: wrote $dst/conf.d, enabled_plugins, definitions.json and the Erlang cookie"
