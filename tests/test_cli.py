import json

import pytest
from typer.testing import CliRunner

from assist.cli import app

runner = CliRunner()


@pytest.fixture
def env(fake_env, monkeypatch, kb_copy):
    monkeypatch.setenv("ASSIST_KB_DIR", str(kb_copy))
    return fake_env


def test_build_list_search_rollback_through_the_cli(env):
    first = runner.invoke(app, ["index", "build", "--json"])
    assert first.exit_code == 0, first.output
    stats = json.loads(first.stdout)
    assert set(stats) == {"version", "chunks", "embedded", "reused", "seconds", "intent_model"}
    assert stats["intent_model"]["classes"] == 5 and stats["intent_model"]["out_of_scope_rows"] > 300
    assert stats["embedded"] == stats["chunks"] > 0
    second = json.loads(runner.invoke(app, ["index", "build", "--json"]).stdout)
    assert second["embedded"] == 0 and second["reused"] == stats["chunks"]

    listing = runner.invoke(app, ["index", "list"])
    assert listing.exit_code == 0
    lines = listing.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("* " + second["version"])

    found = runner.invoke(app, ["search", "退款 到账 银行卡", "--json", "-k", "2"])
    assert found.exit_code == 0, found.output
    body = json.loads(found.stdout)
    assert body["index_version"] == second["version"]
    assert body["hits"][0]["article_id"] == "refund-timing"

    back = runner.invoke(app, ["index", "rollback"])
    assert back.exit_code == 0 and stats["version"] in back.stdout
    assert runner.invoke(app, ["index", "list"]).stdout.splitlines()[0].startswith("* " + stats["version"])
    plain = runner.invoke(app, ["index", "build"])
    assert "intent model: 5 classes from" in plain.stdout and "cross-validated accuracy" in plain.stdout


def test_errors_are_one_line_and_exit_1(env):
    result = runner.invoke(app, ["search", "退款"])
    assert result.exit_code == 1
    assert "run `assist index build` first" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["index", "rollback", "nope"])
    assert result.exit_code == 1 and "no index version 'nope'" in result.output


def test_build_refuses_a_broken_kb_and_keeps_current(env, kb_copy):
    assert runner.invoke(app, ["index", "build"]).exit_code == 0
    before = runner.invoke(app, ["index", "list"]).stdout
    (kb_copy / "articles/refund/bad.md").write_text("---\nid: refund-timing\ntitle: 重复\n---\n正文", encoding="utf-8")
    result = runner.invoke(app, ["index", "build"])
    assert result.exit_code == 1
    assert ":2: duplicate id 'refund-timing'" in result.output and "bad.md" in result.output
    assert runner.invoke(app, ["index", "list"]).stdout == before


def test_help_lists_settings():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("ASSIST_INDEX_DIR", "ASSIST_KB_DIR", "ASSIST_EMBEDDING__BACKEND", "ASSIST_MODELS_DIR"):
        assert name in result.output
