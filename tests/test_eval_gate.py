"""The regression gate on the sample KB: the real pipeline must not fall below the committed baseline."""

import json

import pytest
from typer.testing import CliRunner

from assist.cli import app
from assist.config import get_settings
from tests.test_sample_kb import KB, ROOT

pytestmark = pytest.mark.slow
BASELINE = ROOT / "evals" / "baselines" / "sample-kb.json"

runner = CliRunner()


def test_sample_kb_eval_holds_the_baseline(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSIST_INDEX_DIR", str(tmp_path / "idx"))
    get_settings.cache_clear()
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "run", str(ROOT / "evals"), "--kb", str(KB), "--variants", "full,last_turn", "--out", str(out)])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    full = report["variants"]["full"]
    # floors that hold regardless of the baseline file
    assert full["answer_hit@3"] >= 0.70 and full["template_hit@3"] >= 0.70
    assert full["intent_accuracy"] >= 0.60 and full["escalation_recall"] >= 0.80
    gate = runner.invoke(app, ["eval", "compare", str(BASELINE), str(out / "report.json"), "--max-drop", "0.02"])
    assert gate.exit_code == 0, gate.output
