//! The connection fault: a worker's MySQL connections killed while one of
//! them is inside a transaction.

use super::Ctx;
use crate::report::FaultRecord;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;

/// Local ports of the TCP connections `pid` holds to `remote_port`.
pub(super) fn client_ports(pid: u32, remote_port: u16) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: HashSet<u64> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|table| tcp_table_ports(&table, remote_port, &inodes))
        .collect()
}

/// Parses a `/proc/net/tcp` table: local ports of rows whose remote port
/// is `remote_port` and whose socket inode is in `inodes`.
pub(super) fn tcp_table_ports(table: &str, remote_port: u16, inodes: &HashSet<u64>) -> Vec<u16> {
    let port_of = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, inode) = (f.get(1)?, f.get(2)?, f.get(9)?.parse::<u64>().ok()?);
            (port_of(remote)? == remote_port && inodes.contains(&inode)).then(|| port_of(local))?
        })
        .collect()
}

/// The client port in a processlist `host` (`localhost:54321`).
pub(super) fn host_port(host: &str) -> Option<u16> {
    host.rsplit(':').next()?.parse().ok()
}

/// A worker's MySQL connections, found at a moment when one of them is
/// inside a transaction if such a moment comes within a few seconds.
#[derive(Debug, Default)]
pub(super) struct Connections {
    pub(super) worker: String,
    pub(super) ids: Vec<i64>,
    pub(super) in_transaction: bool,
}

/// Samples a random worker's connections (the bench's own and the
/// gateways' are told apart by their client ports) until one is in a
/// transaction, for at most about 10 s. Worker transactions last a few
/// milliseconds, so the sampling does not sleep: each round trip paces it.
pub(super) async fn find_worker_connections(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Connections> {
    let (worker, pid) = {
        let c = ctx.cluster.lock().await;
        anyhow::ensure!(!c.workers.is_empty(), "no worker");
        let w = &c.workers[rng.gen_range(0..c.workers.len())];
        (w.name.clone(), w.pid())
    };
    let port = ctx.faults.mysql.port;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ports = HashSet::new();
    let mut found = Connections {
        worker,
        ..Connections::default()
    };
    for attempt in 0u32.. {
        if attempt % 20 == 0 {
            // The pool opens and closes connections now and then.
            ports = tokio::task::spawn_blocking(move || client_ports(pid, port))
                .await
                .unwrap_or_default()
                .into_iter()
                .collect();
        }
        let rows: Vec<(i64, String, bool)> = sqlx::query_as(
            "SELECT p.id, p.host, t.trx_mysql_thread_id IS NOT NULL \
             FROM information_schema.processlist p \
             LEFT JOIN information_schema.innodb_trx t ON t.trx_mysql_thread_id = p.id \
             WHERE p.db = ?",
        )
        .bind(&ctx.db_name)
        .fetch_all(&ctx.pool)
        .await?;
        let mine: Vec<(i64, bool)> = rows
            .into_iter()
            .filter(|(_, host, _)| host_port(host).is_some_and(|p| ports.contains(&p)))
            .map(|(id, _, busy)| (id, busy))
            .collect();
        found.in_transaction = mine.iter().any(|c| c.1);
        found.ids = mine.into_iter().map(|c| c.0).collect();
        if found.in_transaction || Instant::now() >= deadline {
            break;
        }
    }
    Ok(found)
}

/// `KILL CONNECTION` each of them, as a failing network or a DBA would.
pub(super) async fn cut_worker_connections(
    ctx: &Ctx,
    found: &Connections,
    r: &mut FaultRecord,
) -> anyhow::Result<()> {
    r.target = format!("{} ({} connection(s))", found.worker, found.ids.len());
    let mut killed = 0u64;
    for id in &found.ids {
        if sqlx::query(&format!("KILL CONNECTION {id}"))
            .execute(&ctx.pool)
            .await
            .is_ok()
        {
            killed += 1;
        }
    }
    r.connections_killed = Some(killed);
    r.in_transaction = Some(found.in_transaction);
    anyhow::ensure!(
        killed > 0,
        "no connection of {} was found to kill",
        found.worker
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_connections_are_found_in_the_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:D431 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1\n\
   1: 0100007F:D432 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 20 4 30 10 -1\n\
   2: 0100007F:D433 0100007F:1628 01 00000000:00000000 00:00000000 00000000     0        0 4244 1 0 20 4 30 10 -1\n";
        let inodes: HashSet<u64> = [4242, 4244].into_iter().collect();
        assert_eq!(tcp_table_ports(table, 3306, &inodes), vec![0xD431]);
        assert_eq!(host_port("localhost:54321"), Some(54321));
        assert_eq!(host_port("127.0.0.1:3307"), Some(3307));
        assert_eq!(host_port("localhost"), None);
    }
}
