"""Agent feedback on suggestions (shown / used / dismissed / edited), the suggestion log, what customers do
in the help centre, review decisions and the admin audit log: one store, SQLite or PostgreSQL.

The store is a SQLite file by default (`ASSIST_FEEDBACK_DB`) and PostgreSQL when `ASSIST_DATABASE_URL`
is set (psycopg 3 through SQLAlchemy's connection pool, so every replica of a cluster shares it). The
schema is kept by Alembic migrations (assist/migrations): a SQLite file is brought up to date when it is
opened; a PostgreSQL database is upgraded by `assist db upgrade`, and a server refuses one that is behind.

Conversation and free text pass through `assist.redact.redact` before they reach the store, whoever
writes, and are then sealed with `ASSIST_STORE_KEY` (assist.crypto) when a key is set.
"""

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from assist.crypto import Cipher
from assist.errors import AssistError
from assist.redact import redact

EVENTS = ("shown", "used", "dismissed", "edited")
KINDS = ("article", "template")
# What customers do in the help centre: searched, opened an article, voted on it, followed "contact us".
HELP_EVENTS = ("search", "view", "helpful", "not_helpful", "contact")
MIGRATIONS = Path(__file__).parent / "migrations"
# The store's schema as the code reads it; the migrations create it (tests check that the two agree).
metadata = sa.MetaData()
feedback_t = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("suggestion_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("intent", sa.Text),
    sa.Column("index_version", sa.Text),
    sa.Column("latency_ms", sa.Float),
    sa.Column("session_id", sa.Text),
    sa.Column("conversation", sa.Text),  # JSON list of {role, text}, redacted, sealed
    sa.Column("text", sa.Text),  # free text (e.g. the edited reply), redacted, sealed
    sa.Column("request_id", sa.Text),
    sa.Column("arm", sa.Text),
    sa.Column("event_id", sa.Text),  # the client's idempotency key: a retried POST is stored once
)
help_t = sa.Table(
    "help_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("session_id", sa.Text),  # the help page's random per-tab id (no account, no IP)
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("query", sa.Text),  # the customer's search, redacted, sealed
    sa.Column("article_id", sa.Text),
    sa.Column("abstained", sa.Integer),  # search: 1 when no good answer was found
    sa.Column("comment", sa.Text),  # "was this helpful?" free text, redacted, sealed
)
suggestions_t = sa.Table(
    "suggestions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column("session_id", sa.Text),
    sa.Column("customer_ref", sa.Text),  # hash of the customer id (erasure), never the id
    sa.Column("query", sa.Text),  # the retrieval query, redacted, sealed
    sa.Column("intent", sa.Text),
    sa.Column("confidence", sa.Float),
    sa.Column("abstained", sa.Integer),
    sa.Column("escalate", sa.Integer),
    sa.Column("answers", sa.Text),  # JSON list of article ids, rank order
    sa.Column("templates", sa.Text),  # JSON list of template ids, rank order
    sa.Column("top_similarity", sa.Float),
    sa.Column("latency_ms", sa.Float),
    sa.Column("index_version", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("arm", sa.Text),
    sa.Column("query_vector", sa.LargeBinary),  # int8 query vector (assist.suggestlog.quantize), sealed
)
decisions_t = sa.Table(
    "review_decisions", metadata,
    sa.Column("gap_key", sa.Text, primary_key=True),
    sa.Column("action", sa.Text, nullable=False),  # ignore | added
    sa.Column("article_id", sa.Text),
    sa.Column("queries", sa.Text, nullable=False),  # JSON list of the gap's requests, sealed
    sa.Column("centroid", sa.Text),  # base64 int8 vector of the gap (later reviews match it), sealed
    sa.Column("created_at", sa.Text, nullable=False),
)
audit_t = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),  # who: "api <address> token <fingerprint>" or "cli <user>@<host>"
    sa.Column("action", sa.Text, nullable=False),  # reload, feedback_export, erase, purge, review, review_apply, ...
    sa.Column("detail", sa.Text),  # JSON: counts, ids, periods; never customer text
)
# Columns holding customer text (or what could be turned back into it), sealed when a key is set.
SEALED = {
    "feedback": ("id", ("conversation", "text")),
    "help_events": ("id", ("query", "comment")),
    "suggestions": ("id", ("query", "query_vector")),
    "review_decisions": ("gap_key", ("queries", "centroid")),
}
TABLES = {t.name: t for t in metadata.sorted_tables}


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
    event_id: str | None = None  # the client's idempotency key


@dataclass(frozen=True)
class StoredFeedback(FeedbackEvent):
    id: int = 0
    created_at: str = ""
    duplicate: bool = False  # this event_id was stored before: the earlier row is returned, nothing new written


@dataclass(frozen=True)
class HelpEvent:
    event: str
    session_id: str | None = None
    query: str | None = None
    article_id: str | None = None
    abstained: bool | None = None
    comment: str | None = None
    created_at: str = ""  # set by the store (a test or an import may give its own)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    created_at: str
    actor: str
    action: str
    detail: dict


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def retention_cutoff(days: int, now: datetime | None = None) -> str:
    """The ISO time before which rows are past a retention of `days` days."""
    return ((now or datetime.now(timezone.utc)) - timedelta(days=days)).isoformat(timespec="milliseconds")


def _period(table: sa.Table, since: str, until: str | None, columns=None) -> sa.Select:
    """Rows of `table` created in [since, until), oldest first (every table has created_at)."""
    query = sa.select(*(columns or table.c)).where(table.c.created_at >= since)
    if until is not None:
        query = query.where(table.c.created_at < until)
    return query.order_by(table.c.id)


# --- where the store is, and its schema ---

def store_url(target: "str | Path") -> str:
    """The SQLAlchemy URL of a store given as a SQLite path or a postgresql:// URL."""
    text = str(target)
    for scheme in ("postgresql://", "postgres://"):
        if text.startswith(scheme):
            return "postgresql+psycopg://" + text[len(scheme):]
    if "://" in text:
        if text.startswith(("postgresql+psycopg://", "sqlite:///")):
            return text
        raise AssistError(f"unsupported store URL {safe_url(text)}: use postgresql://user:password@host:5432/db, or unset it for the SQLite file")
    return f"sqlite:///{Path(text)}"


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def store_of(settings, cipher: "Cipher | None" = None, **options) -> "FeedbackStore":
    """The store the settings name: PostgreSQL when ASSIST_DATABASE_URL is set, else the SQLite file."""
    return FeedbackStore(settings.database_url or settings.feedback_db, cipher or Cipher(settings.store_key), **options)


def engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            cur.close()

        return engine
    # A pool per process: replicas and workers each keep a few connections; pre-ping survives a database restart.
    return sa.create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True, pool_recycle=1800,
                            connect_args={"connect_timeout": 10, "application_name": "assist"})


def _alembic(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Apply the migrations the store lacks; (revision before, revision after)."""
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # two replicas upgrading at once: the second waits, then finds nothing to do
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(72657601)"))
        before = _adopt_unversioned(conn)
        command.upgrade(_alembic(conn), "head")
    return before, head_revision()


def _adopt_unversioned(conn) -> str | None:
    """A SQLite store from before migrations has the tables but no version: bring it to 0001 and stamp it."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    revision = MigrationContext.configure(conn).get_current_revision()
    tables = set(sa.inspect(conn).get_table_names())
    if revision is None and "feedback" in tables:
        for name, ddl in (("help_events", "help_events"), ("suggestions", "suggestions"), ("review_decisions", "review_decisions")):
            if name not in tables:  # a very old file: create what it lacks as 0001 has it
                metadata.tables[ddl].create(conn)
        columns = {c["name"] for c in sa.inspect(conn).get_columns("feedback")}
        for column in ("request_id", "arm"):
            if column not in columns:
                conn.execute(sa.text(f"ALTER TABLE feedback ADD COLUMN {column} TEXT"))
        if "event_id" in columns:
            raise AssistError("the store has an unknown layout (feedback.event_id without a schema version)")
        command.stamp(_alembic(conn), "0001")
        return "unversioned"
    return revision


class FeedbackStore:
    """The store behind one engine (a small connection pool); safe to share between threads."""

    def __init__(self, target: "str | Path", cipher: Cipher | None = None, upgrade_schema: bool | None = None):
        self.url = store_url(target)
        self.cipher = cipher or Cipher()
        self.kind = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        self.path = Path(self.url.removeprefix("sqlite:///")) if self.kind == "sqlite" else None
        self._lock = threading.Lock() if self.kind == "sqlite" else None  # one writer at a time in one process
        try:
            self.engine = engine_for(self.url)
            if upgrade_schema if upgrade_schema is not None else self.kind == "sqlite":
                upgrade(self.engine)
            else:
                have, need = current_revision(self.engine), head_revision()
                if have != need:
                    raise AssistError(f"the store at {self.where} has schema {have or 'none'}, this version needs {need}: "
                                      "run `assist db upgrade` (with the same ASSIST_DATABASE_URL) first")
        except AssistError:
            raise
        except Exception as exc:
            raise AssistError(f"cannot open the store {self.where}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else safe_url(self.url)

    def _begin(self):
        """A transaction (serialised per process for SQLite, which has one writer anyway)."""
        return _Locked(self.engine, self._lock)

    def _rows(self, query) -> list:
        with self.engine.connect() as conn:
            return conn.execute(query).all()

    # --- feedback ---

    def add(self, event: FeedbackEvent) -> StoredFeedback:
        """Store one event (text redacted, then sealed) and return it as stored; an event_id seen before
        returns the earlier row (duplicate=True) and writes nothing."""
        if event.event not in EVENTS:
            raise AssistError(f"unknown feedback event {event.event!r}; use one of {', '.join(EVENTS)}")
        if event.kind not in KINDS:
            raise AssistError(f"unknown suggestion kind {event.kind!r}; use one of {', '.join(KINDS)}")
        turns = None
        if event.conversation is not None:
            turns = tuple({"role": t["role"], "text": redact(t["text"])} for t in event.conversation)
        text = redact(event.text) if event.text is not None else None
        created = now_iso()
        row = {
            "created_at": created, "event": event.event, "suggestion_id": event.suggestion_id, "kind": event.kind,
            "intent": event.intent, "index_version": event.index_version, "latency_ms": event.latency_ms,
            "session_id": event.session_id, "request_id": event.request_id, "arm": event.arm, "event_id": event.event_id,
            "conversation": self.cipher.seal(None if turns is None else json.dumps(turns, ensure_ascii=False)),
            "text": self.cipher.seal(text),
        }
        insert = (postgresql.insert if self.kind == "postgresql" else sqlite.insert)(feedback_t).values(**row)
        if event.event_id is not None:
            insert = insert.on_conflict_do_nothing(index_elements=["event_id"])
        with self._begin() as conn:
            new_id = conn.execute(insert.returning(feedback_t.c.id)).scalar()
            if new_id is None:  # this event_id is stored already (a retry, perhaps through another replica)
                earlier = conn.execute(sa.select(feedback_t).where(feedback_t.c.event_id == event.event_id)).one()
                return self._stored(earlier._asdict(), duplicate=True)
        return StoredFeedback(
            event.event, event.suggestion_id, event.kind, event.intent, event.index_version, event.latency_ms,
            event.session_id, turns, text, event.request_id, event.arm, event.event_id, id=new_id, created_at=created,
        )

    def _stored(self, r: dict, duplicate: bool = False) -> StoredFeedback:
        conv = self.cipher.open(r.pop("conversation"))
        r["text"] = self.cipher.open(r["text"])
        return StoredFeedback(**r, conversation=None if conv is None else tuple(json.loads(conv)), duplicate=duplicate)

    def events(self, event: str | None = None, after_id: int = 0, limit: int = 1000) -> list[StoredFeedback]:
        """Stored events with id > after_id, oldest first; `event` filters by type."""
        query = sa.select(feedback_t).where(feedback_t.c.id > after_id)
        if event is not None:
            query = query.where(feedback_t.c.event == event)
        return [self._stored(r._asdict()) for r in self._rows(query.order_by(feedback_t.c.id).limit(limit))]

    def feedback_between(self, since: str, until: str | None = None) -> list[StoredFeedback]:
        """Feedback events created in [since, until), oldest first."""
        return [self._stored(r._asdict()) for r in self._rows(_period(feedback_t, since, until))]

    # --- the help centre ---

    def add_help(self, event: HelpEvent) -> None:
        """Store one help-centre event; query and comment are redacted, then sealed."""
        if event.event not in HELP_EVENTS:
            raise AssistError(f"unknown help-centre event {event.event!r}; use one of {', '.join(HELP_EVENTS)}")
        row = {"created_at": event.created_at or now_iso(), "session_id": event.session_id, "event": event.event,
               "query": self.cipher.seal(None if event.query is None else redact(event.query)), "article_id": event.article_id,
               "abstained": None if event.abstained is None else int(event.abstained),
               "comment": self.cipher.seal(None if event.comment is None else redact(event.comment))}
        with self._begin() as conn:
            conn.execute(help_t.insert().values(**row))

    def help_events(self, since: str, until: str | None = None) -> list[HelpEvent]:
        """Help-centre events created at or after `since` (ISO time) and before `until`, oldest first."""
        c = help_t.c
        rows = self._rows(_period(help_t, since, until, [c.created_at, c.session_id, c.event, c.query, c.article_id, c.abstained, c.comment]))
        return [HelpEvent(event=e, session_id=sid, query=self.cipher.open(q), article_id=a, abstained=None if ab is None else bool(ab),
                          comment=self.cipher.open(cm), created_at=t) for t, sid, e, q, a, ab, cm in rows]

    # --- the suggestion log ---

    def add_suggestions(self, records) -> None:
        """Store a batch of SuggestionRecords (queries redacted, then sealed) in one transaction."""
        now = now_iso()
        seal = self.cipher.seal
        rows = [{"created_at": r.created_at or now, "request_id": r.request_id, "session_id": r.session_id, "customer_ref": r.customer_ref,
                 "query": seal(redact(r.query)), "intent": r.intent, "confidence": r.confidence, "abstained": int(r.abstained),
                 "escalate": int(r.escalate), "answers": json.dumps(list(r.answers)), "templates": json.dumps(list(r.templates)),
                 "top_similarity": r.top_similarity, "latency_ms": r.latency_ms, "index_version": r.index_version, "model": r.model,
                 "arm": r.arm, "query_vector": self.cipher.seal_bytes(r.vector)} for r in records]
        if rows:
            with self._begin() as conn:
                conn.execute(suggestions_t.insert(), rows)

    def suggestions(self, since: str, until: str | None = None):
        """Logged suggestions created in [since, until), oldest first, as SuggestionRecords."""
        from assist.suggestlog import SuggestionRecord

        c = suggestions_t.c
        columns = [c.created_at, c.request_id, c.session_id, c.customer_ref, c.query, c.intent, c.confidence, c.abstained, c.escalate,
                   c.answers, c.templates, c.top_similarity, c.latency_ms, c.index_version, c.model, c.arm, c.query_vector]
        open_, open_bytes = self.cipher.open, self.cipher.open_bytes
        return [SuggestionRecord(request_id=r[1], session_id=r[2], customer_ref=r[3], query=open_(r[4]) or "", intent=r[5] or "",
                                 confidence=r[6] or 0.0, abstained=bool(r[7]), escalate=bool(r[8]), answers=tuple(json.loads(r[9] or "[]")),
                                 templates=tuple(json.loads(r[10] or "[]")), top_similarity=r[11], latency_ms=r[12] or 0.0,
                                 index_version=r[13] or "", model=r[14] or "", arm=r[15], created_at=r[0],
                                 vector=None if r[16] is None else bytes(open_bytes(r[16])))
                for r in self._rows(_period(suggestions_t, since, until, columns))]

    # --- retention and erasure ---

    def purge(self, before: str) -> dict[str, int]:
        """Delete everything created before `before` (ISO time): feedback, suggestion log, help events."""
        with self._begin() as conn:
            return {t.name: conn.execute(t.delete().where(t.c.created_at < before)).rowcount for t in (feedback_t, suggestions_t, help_t)}

    def erase(self, session_id: str | None = None, customer_ref: str | None = None) -> dict[str, int]:
        """Delete every row of one conversation session (feedback, suggestions, help events) or of one
        customer (the suggestion log, and the feedback of that customer's sessions)."""
        if not session_id and not customer_ref:
            raise AssistError("name a session id or a customer id to erase")
        tables = {"feedback": feedback_t, "suggestions": suggestions_t, "help_events": help_t}
        counts = dict.fromkeys(tables, 0)
        with self._begin() as conn:
            sessions = {session_id} if session_id else set()
            if customer_ref:
                s = suggestions_t.c
                sessions |= set(conn.execute(sa.select(s.session_id).distinct().where(s.customer_ref == customer_ref, s.session_id.is_not(None))).scalars())
                counts["suggestions"] += conn.execute(suggestions_t.delete().where(s.customer_ref == customer_ref)).rowcount
            for sid in sessions:
                for name, table in tables.items():
                    counts[name] += conn.execute(table.delete().where(table.c.session_id == sid)).rowcount
        return counts

    # --- review decisions ---

    def add_decision(self, gap_key: str, action: str, queries: list[str], article_id: str | None = None, centroid: str | None = None) -> None:
        row = {"gap_key": gap_key, "action": action, "article_id": article_id, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "queries": self.cipher.seal(json.dumps(queries, ensure_ascii=False)), "centroid": self.cipher.seal(centroid)}
        with self._begin() as conn:  # a decision replaces the earlier one about the same gap
            conn.execute(decisions_t.delete().where(decisions_t.c.gap_key == gap_key))
            conn.execute(decisions_t.insert().values(**row))

    def decisions(self) -> list[dict]:
        c = decisions_t.c
        rows = self._rows(sa.select(c.gap_key, c.action, c.article_id, c.queries, c.centroid, c.created_at))
        return [{"gap_key": k, "action": a, "article_id": art, "queries": json.loads(self.cipher.open(q)), "centroid": self.cipher.open(cen),
                 "created_at": t} for k, a, art, q, cen, t in rows]

    # --- the audit log ---

    def audit(self, actor: str, action: str, **detail) -> None:
        """Record an admin action (who, what, when); `detail` holds counts and ids, never customer text."""
        with self._begin() as conn:
            conn.execute(audit_t.insert().values(created_at=now_iso(), actor=actor, action=action,
                                                 detail=json.dumps(detail, ensure_ascii=False, default=str)))

    def audit_entries(self, since: str = "", until: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries created in [since, until), newest first."""
        query = _period(audit_t, since, until).order_by(None).order_by(audit_t.c.id.desc()).limit(limit)
        return [AuditEntry(r.id, r.created_at, r.actor, r.action, json.loads(r.detail or "{}")) for r in self._rows(query)]

    # --- keys ---

    def rekey(self, progress=None) -> dict[str, int]:
        """Re-seal every sealed column with the first key of ASSIST_STORE_KEY (rows sealed with an older key,
        and plain-text rows from before a key was set); returns the rows rewritten per table."""
        if not self.cipher.enabled:
            raise AssistError("set ASSIST_STORE_KEY first: the new key first, then the old ones")
        counts = {}
        for name, (key, columns) in SEALED.items():
            table = TABLES[name]
            rows = self._rows(sa.select(table.c[key], *(table.c[c] for c in columns)))
            done = 0
            for start in range(0, len(rows), 500):
                with self._begin() as conn:
                    for row in rows[start:start + 500]:
                        values = {}
                        for column, value in zip(columns, row[1:]):
                            if isinstance(value, (bytes, memoryview)):
                                values[column] = self.cipher.seal_bytes(self.cipher.open_bytes(bytes(value)))
                            else:
                                values[column] = self.cipher.seal(self.cipher.open(value))
                        conn.execute(table.update().where(table.c[key] == row[0]).values(**values))
                        done += 1
                if progress:
                    progress(name, done, len(rows))
            counts[name] = done
        return counts

    def close(self) -> None:
        self.engine.dispose()


class _Locked:
    """`with store._begin() as conn:` — a transaction, holding the process's SQLite write lock if any."""

    def __init__(self, engine: sa.Engine, lock: "threading.Lock | None"):
        self.engine, self.lock, self._ctx = engine, lock, None

    def __enter__(self):
        if self.lock is not None:
            self.lock.acquire()
        try:
            self._ctx = self.engine.begin()
            return self._ctx.__enter__()
        except BaseException:
            if self.lock is not None:
                self.lock.release()
            raise

    def __exit__(self, *exc):
        try:
            return self._ctx.__exit__(*exc)
        finally:
            if self.lock is not None:
                self.lock.release()
