"""The MySQL backup and restore scripts (manifests/base/mysql/) round-trip
a small database on the local MySQL-compatible server: a dump, retention
pruning an expired one, a refusal to overwrite, a restore with identical
tables. Skipped, loudly, when no server answers."""

import os
import shutil
import subprocess
import time

from .common import CheckFailed, ok, run


def round_trip(work):
    host = os.environ.get("MYSQL_TEST_HOST", "127.0.0.1")
    port = os.environ.get("MYSQL_TEST_PORT", "3306")
    user = os.environ.get("MYSQL_TEST_USER", "root")
    env = {**os.environ, "MYSQL_PWD": os.environ.get("MYSQL_TEST_PASSWORD", "")}
    client = ["mysql", f"--host={host}", f"--port={port}", f"--user={user}"]

    def sql(statements, **kwargs):
        return subprocess.run([*client, "-e", statements], env=env, **kwargs)

    tools = shutil.which("mysql") and shutil.which("mysqldump")
    if not tools or sql("SELECT 1", capture_output=True).returncode != 0:
        print(f"    SKIPPED: no MySQL-compatible server answers at {host}:{port} as {user}", flush=True)
        return

    src_db, dst_db = f"sluice_backup_check_{os.getpid()}", f"sluice_restore_check_{os.getpid()}"
    try:
        if sql(f"""CREATE DATABASE `{src_db}`;
            CREATE TABLE `{src_db}`.sections (id INT PRIMARY KEY, code VARCHAR(20) NOT NULL, seats INT NOT NULL,
              title VARCHAR(80) CHARACTER SET utf8mb4 NOT NULL);
            INSERT INTO `{src_db}`.sections VALUES (1, 'CSE101-01', 30, '자료구조'), (2, 'MAT201-02', 0, 'Linear Algebra');
            CREATE TABLE `{src_db}`.enrollments (student INT, section INT, PRIMARY KEY (student, section),
              FOREIGN KEY (section) REFERENCES `{src_db}`.sections (id));
            INSERT INTO `{src_db}`.enrollments VALUES (1001, 1), (1002, 1), (1003, 2);""").returncode:
            raise CheckFailed(f"could not create the test database {src_db}")
        backup = work / "backup"
        backup.mkdir()
        scripts_env = {**env, "MYSQL_HOST": host, "MYSQL_PORT": port, "MYSQL_USER": user,
                       "MYSQL_DATABASE": src_db, "BACKUP_DIR": str(backup)}
        backup_sh = ["bash", "manifests/base/mysql/backup.sh"]
        restore_sh = ["bash", "manifests/base/mysql/restore.sh", "latest"]
        run(*backup_sh, env={**scripts_env, "BACKUP_RETENTION_DAYS": "14"})

        # An expired dump is pruned by the next run; a fresh one is kept.
        expired = backup / f"{src_db}-20000101T000000Z.sql.gz"
        expired.touch()
        old = time.time() - 20 * 86400
        os.utime(expired, (old, old))
        run(*backup_sh, env={**scripts_env, "BACKUP_RETENTION_DAYS": "14"}, stdout=subprocess.DEVNULL)
        if expired.exists():
            raise CheckFailed("retention did not prune an expired dump")

        run(*restore_sh, env={**scripts_env, "RESTORE_DATABASE": dst_db})
        # Restoring over a database that has tables needs RESTORE_REPLACE=yes.
        again = subprocess.run(restore_sh, env={**scripts_env, "RESTORE_DATABASE": dst_db},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if again.returncode == 0:
            raise CheckFailed("restore.sh replaced a non-empty database without RESTORE_REPLACE=yes")

        for table in ("sections", "enrollments"):
            a, b = (checksum(client, env, db, table) for db in (src_db, dst_db))
            if a != b:
                raise CheckFailed(f"table {table} differs after restore ({a} vs {b})")
        ok("backup, retention, refusal to overwrite, restore: tables identical")
    finally:
        sql(f"DROP DATABASE IF EXISTS `{src_db}`; DROP DATABASE IF EXISTS `{dst_db}`")


def checksum(client, env, db, table):
    out = subprocess.run([*client, "--batch", "--skip-column-names", "-e", f"CHECKSUM TABLE `{db}`.{table}"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return out.split("\t")[1].strip()


