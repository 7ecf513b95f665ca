"""SQLite's chain of migrations: step n takes schema n to n + 1 (``PRAGMA user_version``
keeps the number applied). Steps are only ever appended: a released step never changes."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE revisions (
        sha TEXT PRIMARY KEY, seen_at REAL NOT NULL, subject TEXT, author TEXT, author_email TEXT
    );
    CREATE TABLE applied (
        workflow TEXT NOT NULL, task TEXT NOT NULL, fingerprint TEXT NOT NULL,
        spec_hash TEXT NOT NULL DEFAULT '', inputs_hash TEXT NOT NULL DEFAULT '',
        revision TEXT NOT NULL, applied_at REAL NOT NULL, run_id INTEGER,
        rollback TEXT, PRIMARY KEY (workflow, task)
    );
    CREATE TABLE failures (
        workflow TEXT NOT NULL, task TEXT NOT NULL, fingerprint TEXT NOT NULL,
        run_id INTEGER NOT NULL, failed_at REAL NOT NULL, PRIMARY KEY (workflow, task)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, workflow TEXT NOT NULL, revision TEXT NOT NULL,
        status TEXT NOT NULL, trigger TEXT NOT NULL, slot REAL, created_at REAL NOT NULL,
        started_at REAL, finished_at REAL, definition TEXT NOT NULL, error TEXT,
        superseded_by INTEGER
    );
    CREATE INDEX runs_by_workflow ON runs (workflow, id);
    CREATE INDEX runs_by_status ON runs (status);
    CREATE TABLE run_tasks (
        run_id INTEGER NOT NULL, task TEXT NOT NULL, status TEXT NOT NULL,
        fingerprint TEXT NOT NULL, spec_hash TEXT NOT NULL, inputs_hash TEXT NOT NULL,
        reason TEXT NOT NULL, previous TEXT, attempts INTEGER NOT NULL DEFAULT 0,
        completed_seq INTEGER, started_at REAL, finished_at REAL, error TEXT,
        not_before REAL, PRIMARY KEY (run_id, task)
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, task TEXT NOT NULL,
        number INTEGER NOT NULL, phase TEXT NOT NULL, status TEXT NOT NULL,
        exit_code INTEGER, http_status INTEGER, started_at REAL NOT NULL, finished_at REAL,
        pid INTEGER, log_path TEXT, output_tail TEXT, error TEXT,
        UNIQUE (run_id, task, phase, number)
    );
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, task TEXT NOT NULL,
        fingerprint TEXT NOT NULL, revision TEXT NOT NULL, status TEXT NOT NULL,
        approvers TEXT NOT NULL, requested_at REAL NOT NULL, deadline REAL,
        on_timeout TEXT NOT NULL, author_email TEXT, decided_by TEXT, decided_at REAL,
        comment TEXT, via TEXT
    );
    CREATE INDEX approvals_by_run ON approvals (run_id, task);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL,
        workflow TEXT, run_id INTEGER, task TEXT, actor TEXT, data TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, event_id INTEGER NOT NULL, notifier TEXT NOT NULL,
        target TEXT, key TEXT NOT NULL UNIQUE, attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL, delivered_at REAL, last_error TEXT, created_at REAL NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (delivered_at, next_at);
    CREATE TABLE workflows (
        name TEXT PRIMARY KEY, file TEXT, first_seen REAL NOT NULL, last_slot REAL,
        applied_revision TEXT, status TEXT, reason TEXT, message TEXT, updated_at REAL
    );
    CREATE TABLE files (
        file TEXT PRIMARY KEY, workflow TEXT, good_revision TEXT, problems TEXT
    );
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE lease (
        name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL,
        acquired_at REAL NOT NULL
    );
    CREATE TABLE message_refs (
        key TEXT PRIMARY KEY, notifier TEXT NOT NULL, ref TEXT NOT NULL, updated_at REAL NOT NULL
    );
    """,
    # 2: fewer pages written per finished task: attempt ids without AUTOINCREMENT (which
    # rewrote sqlite_sequence on every insert; attempts are never deleted, so a new id is
    # always above every earlier one), applied rows clustered on their key
    """
    CREATE TABLE attempts_v2 (
        id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, task TEXT NOT NULL,
        number INTEGER NOT NULL, phase TEXT NOT NULL, status TEXT NOT NULL,
        exit_code INTEGER, http_status INTEGER, started_at REAL NOT NULL, finished_at REAL,
        pid INTEGER, log_path TEXT, output_tail TEXT, error TEXT,
        UNIQUE (run_id, task, phase, number)
    );
    INSERT INTO attempts_v2 (id, run_id, task, number, phase, status, exit_code, http_status,
        started_at, finished_at, pid, log_path, output_tail, error)
        SELECT id, run_id, task, number, phase, status, exit_code, http_status, started_at,
        finished_at, pid, log_path, output_tail, error FROM attempts;
    DROP TABLE attempts;
    ALTER TABLE attempts_v2 RENAME TO attempts;
    CREATE TABLE applied_v2 (
        workflow TEXT NOT NULL, task TEXT NOT NULL, fingerprint TEXT NOT NULL,
        spec_hash TEXT NOT NULL DEFAULT '', inputs_hash TEXT NOT NULL DEFAULT '',
        revision TEXT NOT NULL, applied_at REAL NOT NULL, run_id INTEGER,
        rollback TEXT, PRIMARY KEY (workflow, task)
    ) WITHOUT ROWID;
    INSERT INTO applied_v2 (workflow, task, fingerprint, spec_hash, inputs_hash, revision,
        applied_at, run_id, rollback)
        SELECT workflow, task, fingerprint, spec_hash, inputs_hash, revision, applied_at,
        run_id, rollback FROM applied;
    DROP TABLE applied;
    ALTER TABLE applied_v2 RENAME TO applied;
    """,
    # 3: "needs a human" marks that outlive a run (an interrupted non-idempotent attempt),
    # the outstanding count of each workflow's last plan (for ``podium status``), and the
    # four-eyes rule bound to each approval request with the committer it concerns
    """
    CREATE TABLE holds (
        workflow TEXT NOT NULL, task TEXT NOT NULL, fingerprint TEXT NOT NULL,
        phase TEXT NOT NULL, run_id INTEGER NOT NULL, attempt_id INTEGER,
        reason TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (workflow, task)
    );
    ALTER TABLE workflows ADD COLUMN outstanding INTEGER;
    ALTER TABLE approvals ADD COLUMN committer_email TEXT;
    ALTER TABLE approvals ADD COLUMN forbid_self_approval INTEGER;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]
