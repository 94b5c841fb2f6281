-- Each gateway process says it is alive every few seconds, so the
-- registrar's live view can show how many gateways serve the round (and
-- which one leads admission) without asking Kubernetes.

CREATE TABLE gateway_heartbeats (
    instance    VARCHAR(96)  NOT NULL,
    started_at  DATETIME(3)  NOT NULL,
    seen_at     DATETIME(3)  NOT NULL,
    leader      BOOLEAN      NOT NULL DEFAULT FALSE,
    PRIMARY KEY (instance),
    KEY ix_heartbeats_seen (seen_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
