#!/bin/bash
# Restores a dump written by backup.sh.
#
#   restore.sh FILE|latest
#
# FILE is a path under BACKUP_DIR (or "latest" for the newest dump of
# MYSQL_DATABASE). The target is RESTORE_DATABASE (default MYSQL_DATABASE).
# A target that already has tables is refused unless RESTORE_REPLACE=yes,
# which drops and recreates it: stop gateways and workers first
# (docs/operations.md, "Restore").
set -euo pipefail

host=${MYSQL_HOST:-mysql}
port=${MYSQL_PORT:-3306}
user=${MYSQL_USER:-root}
db=${MYSQL_DATABASE:-sluice}
dir=${BACKUP_DIR:-/backup}
target=${RESTORE_DATABASE:-$db}
what=${1:?usage: restore.sh FILE|latest}

case "$target" in
  "" | *[!A-Za-z0-9_]*) echo "restore: bad database name '$target'" >&2; exit 2 ;;
esac

if [ "$what" = latest ]; then
  file=$(find "$dir" -maxdepth 1 -name "$db-*.sql.gz" | sort | tail -n 1)
  [ -n "$file" ] || { echo "restore: no dump of $db in $dir" >&2; exit 1; }
else
  file=$what
fi

sql() { mysql --host="$host" --port="$port" --user="$user" "$@"; }

echo "restore: checking $file"
gzip -t "$file"

tables=$(sql --batch --skip-column-names -e \
  "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$target'")
if [ "$tables" != 0 ]; then
  if [ "${RESTORE_REPLACE:-no}" != yes ]; then
    echo "restore: $target has $tables tables; set RESTORE_REPLACE=yes to replace it" >&2
    exit 1
  fi
  echo "restore: dropping $target ($tables tables)"
  sql -e "DROP DATABASE \`$target\`"
fi
sql -e "CREATE DATABASE IF NOT EXISTS \`$target\`"

echo "restore: loading $file into $target"
gunzip -c "$file" | sql "$target"
echo "restore: done; $(sql --batch --skip-column-names -e \
  "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$target'") tables in $target"
