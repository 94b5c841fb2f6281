#!/bin/bash
# Logical backup of the Sluice database: a consistent mysqldump (one
# InnoDB snapshot, no table locks), gzipped, written under a temporary name
# and renamed only once it is complete and verified, then old dumps pruned.
#
# Environment: MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PWD (read by the
# client itself, never on a command line), MYSQL_DATABASE, BACKUP_DIR,
# BACKUP_RETENTION_DAYS.
set -euo pipefail

host=${MYSQL_HOST:-mysql}
port=${MYSQL_PORT:-3306}
user=${MYSQL_USER:-root}
db=${MYSQL_DATABASE:-sluice}
dir=${BACKUP_DIR:-/backup}
keep_days=${BACKUP_RETENTION_DAYS:-14}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dir/$db-$stamp.sql.gz"
partial="$final.partial"

echo "backup: dumping $db from $host:$port to $final"
mysqldump --host="$host" --port="$port" --user="$user" \
  --single-transaction --quick --hex-blob --no-tablespaces \
  --routines --triggers --events \
  "$db" | gzip -c > "$partial"
gzip -t "$partial"
mv "$partial" "$final"
echo "backup: wrote $(wc -c < "$final") bytes"

echo "backup: removing dumps older than $keep_days days"
find "$dir" -maxdepth 1 -name "$db-*.sql.gz" -mtime +"$keep_days" -print -delete
# A dump interrupted by a crash leaves a .partial behind; never restore one.
find "$dir" -maxdepth 1 -name "$db-*.sql.gz.partial" -mmin +120 -print -delete
echo "backup: done"
