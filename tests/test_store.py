"""The store on both backends: the same behaviour on a SQLite file and on a real PostgreSQL server (a throwaway
cluster these tests start in a temp dir, as a non-root user), plus migrations, encryption and the audit log."""

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.server import free_port
from assist.crypto import Cipher, new_key
from assist.errors import AssistError
from assist.feedback import FeedbackEvent, FeedbackStore, HelpEvent, current_revision, engine_for, head_revision, store_url
from assist.suggestlog import SuggestionRecord, quantize

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WORDS = ("退款", "李先生", "空气炸锅", "refund")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A throwaway PostgreSQL cluster on a free loopback port; its URL. Skips when PostgreSQL is not installed."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL is not installed: run make install (Debian package postgresql)")
    root = Path(tempfile.mkdtemp(prefix="assist-pg-"))  # not under pytest's dirs: the server's user must reach it
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(root, "postgres")
    port = free_port()
    data = root / "data"
    subprocess.run([*run_as, PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "assist"], check=True, capture_output=True)
    subprocess.run([*run_as, PG_BIN / "pg_ctl", "-D", data, "-l", root / "log", "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"], check=True, capture_output=True)
    try:
        engine = sa.create_engine(f"postgresql+psycopg://assist@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE assist"))
        engine.dispose()
        yield f"postgresql://assist@127.0.0.1:{port}/assist", port
    finally:
        subprocess.run([*run_as, PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _fresh_pg_db(postgres, name: str) -> str:
    url, port = postgres
    engine = sa.create_engine(f"postgresql+psycopg://assist@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"postgresql://assist@127.0.0.1:{port}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """A fresh, migrated store location on each backend."""
    if request.param == "sqlite":
        return tmp_path / "store.db"
    url = _fresh_pg_db(request.getfixturevalue("postgres"), f"t_{os.getpid()}_{abs(hash(request.node.name)) % 10**8}")
    FeedbackStore(url, upgrade_schema=True).close()
    return url


def _record(rid, session="s1", customer=None, query="退款多久到账 李先生"):
    return SuggestionRecord(rid, session, customer, query, "refund_status", 0.8, False, False, ("refund-timing",), ("tpl-refund",),
                            0.7, 6.5, "v1", "m", vector=quantize([0.5] * 8))


def test_the_same_behaviour_on_both_backends(target):
    cipher = Cipher(new_key())
    store = FeedbackStore(target, cipher)
    conv = ({"role": "customer", "text": "退款多久到账？我是李先生，电话 13812345678"},)
    first = store.add(FeedbackEvent("used", "refund-timing", "article", session_id="s1", conversation=conv, text="空气炸锅 refund", event_id="evt-00000001"))
    again = store.add(FeedbackEvent("used", "refund-timing", "article", session_id="s1", conversation=conv, event_id="evt-00000001"))
    assert not first.duplicate and again.duplicate and again.id == first.id  # a retried POST is stored once
    store.add(FeedbackEvent("dismissed", "return-policy", "article", session_id="s2"))
    store.add_suggestions([_record("r1"), _record("r2", session="s2", customer="c-ref")])
    store.add_help(HelpEvent("search", "h1", "退款 李先生", abstained=True, comment="没找到"))
    store.add_decision("gap-1", "ignore", ["退款 李先生"], centroid="AAEC")
    store.audit("cli test@host", "erase", erased={"feedback": 1})

    events = store.events()
    assert [e.event for e in events] == ["used", "dismissed"]
    assert events[0].conversation[0]["text"] == "退款多久到账？我是李先生，电话 [手机号]"  # redacted, then decrypted
    assert [r.request_id for r in store.suggestions("2000")] == ["r1", "r2"]
    assert store.suggestions("2000")[0].query == "退款多久到账 李先生" and store.suggestions("2000")[0].vector == quantize([0.5] * 8)
    assert store.help_events("2000")[0].comment == "没找到"
    assert store.decisions()[0]["queries"] == ["退款 李先生"] and store.decisions()[0]["centroid"] == "AAEC"
    assert store.audit_entries()[0].action == "erase"

    # At rest, no column holds a customer's words.
    engine = engine_for(store_url(target))
    with engine.connect() as conn:
        for table, columns in {"feedback": ("conversation", "text"), "suggestions": ("query",), "help_events": ("query", "comment"),
                               "review_decisions": ("queries",)}.items():
            joined = " || ".join(f"COALESCE({c}, '')" for c in columns)
            values = [v for (v,) in conn.execute(sa.text(f"SELECT {joined} FROM {table}"))]
            assert any(values), table
            for value in values:
                assert not any(w in value for w in WORDS), (table, value[:40])
        for (blob,) in conn.execute(sa.text("SELECT query_vector FROM suggestions")):
            assert bytes(blob).startswith(b"enc1:")
    engine.dispose()

    assert store.erase(customer_ref="c-ref") == {"feedback": 1, "suggestions": 1, "help_events": 0}
    assert store.purge("2999") == {"feedback": 1, "suggestions": 1, "help_events": 1}
    store.close()


def test_a_rotated_key_reads_old_rows_and_rekey_moves_them_to_the_new_key(target):
    old, new = new_key(), new_key()
    store = FeedbackStore(target, Cipher(old))
    store.add(FeedbackEvent("edited", "tpl-refund", "template", text="李先生您好"))
    store.close()
    with pytest.raises(AssistError, match="ASSIST_STORE_KEY"):
        FeedbackStore(target).events()  # no key: a clear error, never tokens shown as text
    rotated = FeedbackStore(target, Cipher(f"{new},{old}"))
    assert rotated.events()[0].text == "李先生您好"
    assert rotated.rekey()["feedback"] == 1
    rotated.close()
    assert FeedbackStore(target, Cipher(new)).events()[0].text == "李先生您好"  # the old key is no longer needed


def test_a_postgresql_store_behind_the_code_is_refused_until_upgraded(postgres):
    url = _fresh_pg_db(postgres, "behind")
    with pytest.raises(AssistError, match="assist db upgrade"):
        FeedbackStore(url)
    from typer.testing import CliRunner

    from assist.cli import app

    result = CliRunner().invoke(app, ["db", "upgrade"], env={"ASSIST_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "none -> " + head_revision() in result.output
    FeedbackStore(url).close()  # now it opens


def test_a_sqlite_store_from_before_migrations_is_adopted_with_its_rows(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the layout the store had before it used migrations
        db.executescript("""
            CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, event TEXT NOT NULL,
              suggestion_id TEXT NOT NULL, kind TEXT NOT NULL, intent TEXT, index_version TEXT, latency_ms REAL, session_id TEXT,
              conversation TEXT, text TEXT);
            INSERT INTO feedback (created_at, event, suggestion_id, kind, text) VALUES ('2026-11-01T00:00:00', 'used', 'a1', 'article', 'plain');
        """)
    store = FeedbackStore(path)
    assert current_revision(store.engine) == head_revision()
    assert [e.text for e in store.events()] == ["plain"]  # plain rows from before a key are still read
    store.add(FeedbackEvent("used", "a2", "article", request_id="r", arm="b", event_id="evt-abcdefgh"))
    assert len(store.events()) == 2
    store.close()


def test_the_server_refuses_to_start_without_a_store_key_outside_dev_mode(tmp_path):
    from api.main import create_app
    from tests.test_api import make_settings

    with pytest.raises(AssistError, match="ASSIST_STORE_KEY"):
        create_app(make_settings(tmp_path, store_key=""))
    with pytest.raises(AssistError, match="not a Fernet key"):
        create_app(make_settings(tmp_path, store_key="not-a-key"))
