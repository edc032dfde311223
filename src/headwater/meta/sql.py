"""The SQLite index's schema and statements (index layer, internal), prepared once."""

from __future__ import annotations

#: Bumped when the tables change; an index file with another version gets the new tables.
SCHEMA_VERSION = 1

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    flow TEXT NOT NULL, run_id TEXT NOT NULL, user TEXT,
    tags TEXT NOT NULL, system_tags TEXT NOT NULL,
    created_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL,
    start_step TEXT NOT NULL, end_step TEXT NOT NULL,
    origin_run_id TEXT, pid INTEGER, host TEXT,
    PRIMARY KEY (flow, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (flow, created_at DESC, run_id DESC);
CREATE TABLE IF NOT EXISTS run_tags (
    flow TEXT NOT NULL, run_id TEXT NOT NULL, system INTEGER NOT NULL, tag TEXT NOT NULL,
    PRIMARY KEY (flow, run_id, system, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_tags_by_tag ON run_tags (flow, tag, run_id);
CREATE TABLE IF NOT EXISTS tasks (
    flow TEXT NOT NULL, run_id TEXT NOT NULL, step TEXT NOT NULL, task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL, status TEXT NOT NULL, started_at REAL, finished_at REAL,
    PRIMARY KEY (flow, run_id, step, task_id, attempt)
) WITHOUT ROWID;
PRAGMA user_version = {SCHEMA_VERSION};
"""

RUN_COLS = (
    "flow, run_id, user, tags, system_tags, created_at, finished_at, status, "
    "start_step, end_step, origin_run_id, pid, host"
)
TASK_COLS = "flow, run_id, step, task_id, attempt, status, started_at, finished_at"

INSERT_RUN = f"INSERT OR REPLACE INTO runs ({RUN_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
DELETE_TAGS = "DELETE FROM run_tags WHERE flow = ? AND run_id = ?"
DELETE_USER_TAGS = "DELETE FROM run_tags WHERE flow = ? AND run_id = ? AND system = 0"
INSERT_TAG = "INSERT OR IGNORE INTO run_tags (flow, run_id, system, tag) VALUES (?,?,?,?)"
SET_TAGS = "UPDATE runs SET tags = ? WHERE flow = ? AND run_id = ?"
END_RUN = "UPDATE runs SET status = ?, finished_at = ? WHERE flow = ? AND run_id = ?"
FLOWS = "SELECT DISTINCT flow FROM runs ORDER BY flow"
RUN = f"SELECT {RUN_COLS} FROM runs WHERE flow = ? AND run_id = ?"
# LIMIT -1 means no limit in SQLite, so one statement serves both cases.
RUNS = f"SELECT {RUN_COLS} FROM runs WHERE flow = ? ORDER BY created_at DESC, run_id DESC LIMIT ?"
# AND filter over user+system tags; the tag list travels as one JSON parameter
# so the statement text is the same for any number of tags.
RUNS_TAGGED = f"""
SELECT {RUN_COLS} FROM runs WHERE flow = :flow AND run_id IN (
    SELECT run_id FROM run_tags
    WHERE flow = :flow AND tag IN (SELECT value FROM json_each(:tags))
    GROUP BY run_id HAVING COUNT(DISTINCT tag) = json_array_length(:tags)
) ORDER BY created_at DESC, run_id DESC LIMIT :limit
"""
UPSERT_TASK = f"INSERT OR REPLACE INTO tasks ({TASK_COLS}) VALUES (?,?,?,?,?,?,?,?)"
STEPS = """
SELECT step FROM tasks WHERE flow = ? AND run_id = ? AND step != ?
GROUP BY step ORDER BY MIN(started_at) IS NULL, MIN(started_at), step
"""
# SQLite fills the bare columns of a MAX() aggregate from the row holding the
# maximum: one pass gives the latest attempt of every task. Newest task first by
# id, as Metaflow orders by task creation (a retry does not move a task ahead).
TASKS = """
SELECT flow, run_id, step, task_id, MAX(attempt), status, started_at, finished_at
FROM tasks WHERE flow = ? AND run_id = ? AND step = ?
GROUP BY task_id
ORDER BY CAST(task_id AS INTEGER) DESC, task_id DESC
"""
TASK = f"""
SELECT {TASK_COLS} FROM tasks WHERE flow = ? AND run_id = ? AND step = ? AND task_id = ?
ORDER BY attempt DESC LIMIT 1
"""
ATTEMPTS = f"""
SELECT {TASK_COLS} FROM tasks WHERE flow = ? AND run_id = ? AND step = ? AND task_id = ?
ORDER BY attempt
"""
# A run process carrying its own rows into a rebuilt index (``Index._adopt``): a row the
# rebuild read from a record (no longer "running") is newer than the process's own.
RUN_TAG_ROWS = "SELECT flow, run_id, system, tag FROM run_tags WHERE flow = ? AND run_id = ?"
RUN_TASK_ROWS = f"SELECT {TASK_COLS} FROM tasks WHERE flow = ? AND run_id = ?"
END_RUN_IF_RUNNING = END_RUN + " AND status = 'running'"
MERGE_TASK = f"""
INSERT INTO tasks ({TASK_COLS}) VALUES (?,?,?,?,?,?,?,?)
ON CONFLICT (flow, run_id, step, task_id, attempt) DO UPDATE
SET status = excluded.status, started_at = excluded.started_at, finished_at = excluded.finished_at
WHERE tasks.status = 'running'
"""
CLEAR = ("DELETE FROM runs", "DELETE FROM run_tags", "DELETE FROM tasks")
#: Forget one run (``headwater gc``/``delete`` removed its records): every row that names it.
FORGET_RUN = ("DELETE FROM runs WHERE flow = ? AND run_id = ?", "DELETE FROM run_tags WHERE flow = ? AND run_id = ?",
              "DELETE FROM tasks WHERE flow = ? AND run_id = ?")

# -- the remote index's sync state (meta/remote.py), kept beside the cached rows --------
SYNC_TABLES = (
    # Per flow: the last run id covered by catalog segments this cache read or saw, and the
    # run id up to which the store's listing has been synced (every run at or below it known).
    """CREATE TABLE IF NOT EXISTS sync_state (
        flow TEXT PRIMARY KEY, catalog_last TEXT NOT NULL, listed_to TEXT NOT NULL
    ) WITHOUT ROWID""",
    # Tag marks seen in listings (a run's tags changed at ``stamp``): what a compactor folds
    # into the segment whose range holds the stamp.
    # Only once the event a mark names has been read: until then the mark is read again.
    """CREATE TABLE IF NOT EXISTS tag_marks (
        flow TEXT NOT NULL, stamp TEXT NOT NULL, run_id TEXT NOT NULL, event TEXT NOT NULL,
        PRIMARY KEY (flow, stamp, run_id, event)
    ) WITHOUT ROWID""",
    # Runs whose attempt rows were synced after the run ended: never listed again.
    """CREATE TABLE IF NOT EXISTS synced_attempts (
        flow TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (flow, run_id)
    ) WITHOUT ROWID""",
)
SYNC_STATE = "SELECT catalog_last, listed_to FROM sync_state WHERE flow = ?"
# Never backwards: of two processes syncing one cache, the one that listed less may commit last.
PUT_SYNC_STATE = """
INSERT INTO sync_state (flow, catalog_last, listed_to) VALUES (?,?,?)
ON CONFLICT (flow) DO UPDATE SET catalog_last = max(catalog_last, excluded.catalog_last),
                                 listed_to = max(listed_to, excluded.listed_to)
"""
RAISE_CATALOG_LAST = "UPDATE sync_state SET catalog_last = ? WHERE flow = ? AND catalog_last < ?"
CLEAR_SYNC = ("DELETE FROM sync_state", "DELETE FROM tag_marks", "DELETE FROM synced_attempts")
FORGET_SYNCED_RUN = ("DELETE FROM tag_marks WHERE flow = ? AND run_id = ?",
                     "DELETE FROM synced_attempts WHERE flow = ? AND run_id = ?")
RUN_STATUSES = "SELECT run_id, status FROM runs WHERE flow = ?"
RUNNING_RUNS = "SELECT run_id FROM runs WHERE flow = ? AND status = 'running'"
# Runs of a range, oldest first: what a compactor writes into a segment.
RUNS_IN_RANGE = f"SELECT {RUN_COLS} FROM runs WHERE flow = ? AND run_id > ? AND run_id <= ? ORDER BY run_id"
ADD_TAG_MARK = "INSERT OR IGNORE INTO tag_marks (flow, stamp, run_id, event) VALUES (?,?,?,?)"
TAG_MARK_SEEN = "SELECT 1 FROM tag_marks WHERE flow = ? AND stamp = ? AND run_id = ? AND event = ?"
MARKED_RUNS = "SELECT DISTINCT run_id FROM tag_marks WHERE flow = ? AND stamp > ? AND stamp <= ?"
ATTEMPTS_SYNCED = "SELECT 1 FROM synced_attempts WHERE flow = ? AND run_id = ?"
MARK_ATTEMPTS_SYNCED = "INSERT OR IGNORE INTO synced_attempts (flow, run_id) VALUES (?,?)"
SETTLED_ATTEMPTS = "SELECT step, task_id, attempt FROM tasks WHERE flow = ? AND run_id = ? AND status != 'running'"
