"""`assist kb check` warns when two places of one intent state different figures for the same fact."""

import shutil
from pathlib import Path

from typer.testing import CliRunner

from assist.cli import app
from assist.consistency import find_conflicts
from assist.kb import check_kb, load_kb
from tests.conftest import ROOT

runner = CliRunner()
REFUND_TIMING = "articles/refund/refund-timing.md"


def _sample_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", dest)
    return dest


def test_the_sample_kb_states_every_figure_one_way():
    assert find_conflicts(load_kb(ROOT / "kb")) == []


def test_a_changed_refund_time_is_reported_with_both_places_and_does_not_fail_the_check(tmp_path):
    kb_dir = _sample_copy(tmp_path)
    article = kb_dir / REFUND_TIMING
    text = article.read_text(encoding="utf-8")
    assert "**1–3 个工作日**到账" in text
    article.write_text(text.replace("**1–3 个工作日**到账", "**2 小时内**到账"), encoding="utf-8")
    line = next(n for n, row in enumerate(article.read_text(encoding="utf-8").splitlines(), 1) if "2 小时内" in row)

    result = runner.invoke(app, ["kb", "check", str(kb_dir)])
    assert result.exit_code == 0, result.output  # a warning, not an error
    warnings = [row for row in result.output.splitlines() if "warning:" in row]
    about_refund = [w for w in warnings if REFUND_TIMING in w]
    assert about_refund and all("2 小时" in w and "1–3 个工作日" in w for w in about_refund), warnings
    assert any(f"{REFUND_TIMING}:{line}:" in w and "templates/tpl-refund-timing.md:" in w for w in about_refund), warnings
    assert any("refund-not-received" in w for w in about_refund), warnings  # the other article too
    assert result.output.strip().endswith(f"{len(warnings)} warning(s)")


def _kb(tmp_path: Path, articles: dict[str, str]) -> Path:
    root = tmp_path / "kb"
    (root / "articles").mkdir(parents=True)
    examples = "[运费多少, 包邮吗, 满多少包邮, 运费怎么算, 为什么收运费, 偏远地区运费, 运费险, 退货运费]"
    (root / "intents.yaml").write_text(f"intents:\n  - name: shipping_fee\n    label: 运费\n    examples: {examples}\n", encoding="utf-8")
    for name, body in articles.items():
        (root / "articles" / f"{name}.md").write_text(
            f"---\nid: {name}\ntitle: {name}\nintents: [shipping_fee]\n---\n{body}\n", encoding="utf-8")
    return root


def test_figures_of_different_cases_are_not_conflicts(tmp_path):
    root = _kb(tmp_path, {
        "fee": "# 运费\n订单实付满 99 元包邮。\n工程师 24 小时内电话联系您。\n大部分数码产品整机保修 1 年。",
        # another threshold named by other words, another event, one product's own warranty
        "remote": "# 偏远地区\n偏远地区订单实付满 199 元包邮。\n工程师超过预约时段 2 小时未上门请联系我们。",
        "sku": "# 净界 X7（SKU-31807）\n整机保修 2 年，电池保修 1 年。",
    })
    assert find_conflicts(load_kb(root)) == []


def test_the_same_fact_with_another_figure_is_a_conflict_unless_marked_distinct(tmp_path):
    root = _kb(tmp_path, {"fee": "# 运费\n普通订单实付满 99 元包邮。", "promo": "# 大促\n普通订单实付满 59 元包邮。"})
    [conflict] = find_conflicts(load_kb(root))
    assert {conflict.first.text, conflict.second.text} == {"99 元", "59 元"}
    path, line, message = conflict.message(root)
    assert path.name in ("fee.md", "promo.md") and line == 7 and "warning:" in message

    promo = root / "articles" / "promo.md"
    promo.write_text(promo.read_text(encoding="utf-8").replace("intents:", "distinct_facts: [fee]\nintents:"), encoding="utf-8")
    assert find_conflicts(load_kb(root)) == []
    promo.write_text(promo.read_text(encoding="utf-8").replace("[fee]", "[no-such-id]"), encoding="utf-8")
    _, problems = check_kb(root)
    assert [p.message for p in problems] == ["distinct_facts: unknown id 'no-such-id'"]
