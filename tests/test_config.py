"""Settings are documented where operators look: every field has a description and the README table is current."""

import re

from assist.config import Settings, settings_fields, settings_help, settings_table
from tests.conftest import ROOT


def test_every_setting_has_a_description():
    assert [env for env, _, description in settings_fields() if not description.strip()] == []


def test_readme_configuration_table_is_generated_from_the_settings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", readme, re.DOTALL)
    assert block, "README.md lost its settings block"
    assert block.group(1) == settings_table(), "README is stale: run .venv/bin/python scripts/readme-settings.py"
    documented = set(re.findall(r"`(ASSIST_[A-Z0-9_]+)`", block.group(1)))
    assert documented == {env for env, _, _ in settings_fields()}


def test_help_lists_every_environment_variable():
    text = settings_help()
    for env, _, _ in settings_fields():
        assert env in text
    assert "ASSIST_SUGGEST__ABSTAIN_MIN_DENSE_OOS" in text and "ASSIST_MAX_TURNS" in text
    assert len(settings_fields()) > len(Settings.model_fields)  # nested groups are listed field by field
