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
SCHEMA_VERSION = 2

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


@dataclass(frozen=True)
class StoredFeedback(FeedbackEvent):
    id: int = 0
    created_at: str = ""


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
            None if turns is None else json.dumps(turns, ensure_ascii=False), text,
        )
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO feedback (created_at, event, suggestion_id, kind, intent, index_version,"
                " latency_ms, session_id, conversation, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            new_id = cur.lastrowid
        return StoredFeedback(
            event.event, event.suggestion_id, event.kind, event.intent, event.index_version, event.latency_ms,
            event.session_id, turns, text, id=new_id, created_at=created,
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
        sql, args = "SELECT created_at, session_id, event, query, article_id, abstained, comment FROM help_events WHERE created_at >= ?", [since]
        if until is not None:
            sql += " AND created_at < ?"
            args.append(until)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [HelpEvent(event=e, session_id=sid, query=q, article_id=a, abstained=None if ab is None else bool(ab), comment=c, created_at=t)
                for t, sid, e, q, a, ab, c in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
