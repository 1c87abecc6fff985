"""Agent feedback on suggestions (shown / used / dismissed / edited) and what customers do in the help
centre, stored in SQLite with PII redacted.

Conversation and free text pass through `assist.redact.redact` before they reach the file, whoever
writes. "used" events read back with `FeedbackStore.events` are the raw material for new eval cases.
"""

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from assist.errors import AssistError
from assist.redact import redact

EVENTS = ("shown", "used", "dismissed", "edited")
KINDS = ("article", "template")
# What customers do in the help centre: searched, opened an article, voted on it, followed "contact us".
HELP_EVENTS = ("search", "view", "helpful", "not_helpful", "contact")
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at    TEXT NOT NULL,
    event         TEXT NOT NULL,
    suggestion_id TEXT NOT NULL,
    kind          TEXT NOT NULL,
    intent        TEXT,
    index_version TEXT,
    latency_ms    REAL,
    session_id    TEXT,
    conversation  TEXT,  -- JSON list of {role, text}, redacted
    text          TEXT   -- free text (e.g. the edited reply), redacted
);
CREATE INDEX IF NOT EXISTS feedback_event ON feedback (event, id);
CREATE TABLE IF NOT EXISTS help_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    session_id TEXT,     -- the help page's random per-tab id (no account, no IP)
    event      TEXT NOT NULL,
    query      TEXT,     -- the customer's search, redacted
    article_id TEXT,
    abstained  INTEGER,  -- search: 1 when no good answer was found
    comment    TEXT      -- "was this helpful?" free text, redacted
);
CREATE INDEX IF NOT EXISTS help_events_time ON help_events (created_at);
CREATE TABLE IF NOT EXISTS suggestions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at     TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    session_id     TEXT,
    customer_ref   TEXT,     -- hash of the customer id (erasure), never the id
    query          TEXT,     -- the retrieval query, redacted
    intent         TEXT,
    confidence     REAL,
    abstained      INTEGER,
    escalate       INTEGER,
    answers        TEXT,     -- JSON list of article ids, rank order
    templates      TEXT,     -- JSON list of template ids, rank order
    top_similarity REAL,
    latency_ms     REAL,
    index_version  TEXT,
    model          TEXT,
    arm            TEXT,
    query_vector   BLOB      -- int8 query vector (assist.suggestlog.quantize)
);
CREATE INDEX IF NOT EXISTS suggestions_time ON suggestions (created_at);
CREATE INDEX IF NOT EXISTS suggestions_session ON suggestions (session_id);
CREATE TABLE IF NOT EXISTS review_decisions (
    gap_key    TEXT PRIMARY KEY,
    action     TEXT NOT NULL,   -- ignore | added
    article_id TEXT,
    queries    TEXT NOT NULL,   -- JSON list of the gap's requests
    centroid   TEXT,            -- base64 int8 vector of the gap (later reviews match it)
    created_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class FeedbackEvent:
    event: str
    suggestion_id: str
    kind: str
    intent: str | None = None
    index_version: str | None = None
    latency_ms: float | None = None
    session_id: str | None = None
    conversation: tuple[dict, ...] | None = None  # turns {role, text}
    text: str | None = None
    request_id: str | None = None  # the suggest response it is about (its `request_id`)
    arm: str | None = None  # that response's experiment arm


@dataclass(frozen=True)
class StoredFeedback(FeedbackEvent):
    id: int = 0
    created_at: str = ""


def _period(select: str, since: str, until: str | None) -> tuple[str, list]:
    """`select` limited to rows created in [since, until), oldest first (every table has created_at)."""
    sql, args = select + " WHERE created_at >= ?", [since]
    if until is not None:
        sql += " AND created_at < ?"
        args.append(until)
    return sql + " ORDER BY id", args


def retention_cutoff(days: int, now: datetime | None = None) -> str:
    """The ISO time before which rows are past a retention of `days` days."""
    from datetime import timedelta

    return ((now or datetime.now(timezone.utc)) - timedelta(days=days)).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class HelpEvent:
    event: str
    session_id: str | None = None
    query: str | None = None
    article_id: str | None = None
    abstained: bool | None = None
    comment: str | None = None
    created_at: str = ""  # set by the store (a test or an import may give its own)


class FeedbackStore:
    """One SQLite file in WAL mode; one connection shared by threads behind a lock."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            with self._db:
                self._db.executescript(_SCHEMA)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(feedback)")}
                for column in ("request_id", "arm"):  # a store from before the suggestion log and experiments
                    if column not in columns:
                        self._db.execute(f"ALTER TABLE feedback ADD COLUMN {column} TEXT")
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise AssistError(f"cannot open the feedback store {self.path}: {exc}") from None

    def add(self, event: FeedbackEvent) -> StoredFeedback:
        """Store one event (text redacted) and return it as stored."""
        if event.event not in EVENTS:
            raise AssistError(f"unknown feedback event {event.event!r}; use one of {', '.join(EVENTS)}")
        if event.kind not in KINDS:
            raise AssistError(f"unknown suggestion kind {event.kind!r}; use one of {', '.join(KINDS)}")
        turns = None
        if event.conversation is not None:
            turns = tuple({"role": t["role"], "text": redact(t["text"])} for t in event.conversation)
        text = redact(event.text) if event.text is not None else None
        created = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        row = (
            created, event.event, event.suggestion_id, event.kind, event.intent, event.index_version,
            event.latency_ms, event.session_id,
            None if turns is None else json.dumps(turns, ensure_ascii=False), text, event.request_id, event.arm,
        )
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO feedback (created_at, event, suggestion_id, kind, intent, index_version,"
                " latency_ms, session_id, conversation, text, request_id, arm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            new_id = cur.lastrowid
        return StoredFeedback(
            event.event, event.suggestion_id, event.kind, event.intent, event.index_version, event.latency_ms,
            event.session_id, turns, text, event.request_id, event.arm, id=new_id, created_at=created,
        )

    def events(self, event: str | None = None, after_id: int = 0, limit: int = 1000) -> list[StoredFeedback]:
        """Stored events with id > after_id, oldest first; `event` filters by type."""
        sql = "SELECT * FROM feedback WHERE id > ?"
        args: list = [after_id]
        if event is not None:
            sql += " AND event = ?"
            args.append(event)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return self._feedback(sql, args)

    def _feedback(self, sql: str, args: list) -> list[StoredFeedback]:
        """Rows of a `SELECT * FROM feedback` as StoredFeedback, the conversation JSON decoded."""
        with self._lock:
            cur = self._db.execute(sql, args)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        out = []
        for r in rows:
            conv = r.pop("conversation")
            out.append(StoredFeedback(**r, conversation=None if conv is None else tuple(json.loads(conv))))
        return out

    def add_help(self, event: HelpEvent) -> None:
        """Store one help-centre event; query and comment are redacted first."""
        if event.event not in HELP_EVENTS:
            raise AssistError(f"unknown help-centre event {event.event!r}; use one of {', '.join(HELP_EVENTS)}")
        created = event.created_at or datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        row = (created, event.session_id, event.event, None if event.query is None else redact(event.query), event.article_id,
               None if event.abstained is None else int(event.abstained), None if event.comment is None else redact(event.comment))
        with self._lock, self._db:
            self._db.execute("INSERT INTO help_events (created_at, session_id, event, query, article_id, abstained, comment)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def help_events(self, since: str, until: str | None = None) -> list[HelpEvent]:
        """Help-centre events created at or after `since` (ISO time) and before `until`, oldest first."""
        sql, args = _period("SELECT created_at, session_id, event, query, article_id, abstained, comment FROM help_events", since, until)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [HelpEvent(event=e, session_id=sid, query=q, article_id=a, abstained=None if ab is None else bool(ab), comment=c, created_at=t)
                for t, sid, e, q, a, ab, c in rows]

    def feedback_between(self, since: str, until: str | None = None) -> list[StoredFeedback]:
        """Feedback events created in [since, until), oldest first."""
        sql, args = _period("SELECT * FROM feedback", since, until)
        return self._feedback(sql, args)

    # --- the suggestion log ---

    def add_suggestions(self, records) -> None:
        """Store a batch of SuggestionRecords (queries redacted) in one transaction."""
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        rows = [(r.created_at or now, r.request_id, r.session_id, r.customer_ref, redact(r.query), r.intent, r.confidence,
                 int(r.abstained), int(r.escalate), json.dumps(list(r.answers)), json.dumps(list(r.templates)),
                 r.top_similarity, r.latency_ms, r.index_version, r.model, r.arm, r.vector) for r in records]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO suggestions (created_at, request_id, session_id, customer_ref, query, intent, confidence, abstained,"
                " escalate, answers, templates, top_similarity, latency_ms, index_version, model, arm, query_vector)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def suggestions(self, since: str, until: str | None = None):
        """Logged suggestions created in [since, until), oldest first, as SuggestionRecords."""
        from assist.suggestlog import SuggestionRecord

        sql, args = _period("SELECT created_at, request_id, session_id, customer_ref, query, intent, confidence, abstained, escalate,"
                            " answers, templates, top_similarity, latency_ms, index_version, model, arm, query_vector FROM suggestions",
                            since, until)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [SuggestionRecord(request_id=r[1], session_id=r[2], customer_ref=r[3], query=r[4] or "", intent=r[5] or "",
                                 confidence=r[6] or 0.0, abstained=bool(r[7]), escalate=bool(r[8]), answers=tuple(json.loads(r[9] or "[]")),
                                 templates=tuple(json.loads(r[10] or "[]")), top_similarity=r[11], latency_ms=r[12] or 0.0,
                                 index_version=r[13] or "", model=r[14] or "", arm=r[15], created_at=r[0], vector=r[16]) for r in rows]

    # --- retention and erasure ---

    def purge(self, before: str) -> dict[str, int]:
        """Delete everything created before `before` (ISO time): feedback, suggestion log, help events."""
        with self._lock, self._db:
            return {table: self._db.execute(f"DELETE FROM {table} WHERE created_at < ?", (before,)).rowcount
                    for table in ("feedback", "suggestions", "help_events")}

    def erase(self, session_id: str | None = None, customer_ref: str | None = None) -> dict[str, int]:
        """Delete every row of one conversation session (feedback, suggestions, help events) or of one
        customer (the suggestion log, and the feedback of that customer's sessions)."""
        if not session_id and not customer_ref:
            raise AssistError("name a session id or a customer id to erase")
        counts = {"feedback": 0, "suggestions": 0, "help_events": 0}
        with self._lock, self._db:
            sessions = {session_id} if session_id else set()
            if customer_ref:
                sessions |= {r[0] for r in self._db.execute(
                    "SELECT DISTINCT session_id FROM suggestions WHERE customer_ref = ? AND session_id IS NOT NULL", (customer_ref,))}
                counts["suggestions"] += self._db.execute("DELETE FROM suggestions WHERE customer_ref = ?", (customer_ref,)).rowcount
            for sid in sessions:
                for table in counts:
                    counts[table] += self._db.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,)).rowcount
        return counts

    # --- review decisions ---

    def add_decision(self, gap_key: str, action: str, queries: list[str], article_id: str | None = None, centroid: str | None = None) -> None:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO review_decisions (gap_key, action, article_id, queries, centroid, created_at)"
                             " VALUES (?, ?, ?, ?, ?, ?)", (gap_key, action, article_id, json.dumps(queries, ensure_ascii=False), centroid, created))

    def decisions(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT gap_key, action, article_id, queries, centroid, created_at FROM review_decisions").fetchall()
        return [{"gap_key": k, "action": a, "article_id": art, "queries": json.loads(q), "centroid": cen, "created_at": c}
                for k, a, art, q, cen, c in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
