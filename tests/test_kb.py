import re

from typer.testing import CliRunner

from assist.cli import app
from assist.kb import check_kb, load_kb
from tests.conftest import TINY_KB

runner = CliRunner()


def test_tiny_kb_is_clean_and_complete():
    kb, problems = check_kb(TINY_KB)
    assert problems == []
    assert {a.id for a in kb.published} == {"refund-timing", "return-policy", "shipping-delay", "international-shipping", "password-reset",
                                         "faq-invoice-download", "faq-internal-compensation"}
    assert [a.id for a in kb.articles if a.status == "draft"] == ["draft-notice"]
    assert {t.id for t in kb.templates} == {"tpl-refund-timing", "tpl-refund-timing-vip", "tpl-shipping-delay", "tpl-complaint-apology"}
    complaint = next(i for i in kb.intents if i.name == "complaint")
    assert complaint.escalate and complaint.label == "投诉" and "12315" in complaint.keywords
    tpl = next(t for t in kb.templates if t.id == "tpl-refund-timing")
    assert [(v.name, v.required, v.default) for v in tpl.variables] == [("customer_name", False, "您好"), ("order_id", True, None)]


def _line_of(path, needle):
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_check_reports_path_line_and_exits_1(kb_copy):
    dup = kb_copy / "articles/refund/return-policy.md"  # sorts after refund-timing.md, so it is the duplicate
    dup.write_text(dup.read_text(encoding="utf-8").replace("id: return-policy", "id: refund-timing"), encoding="utf-8")
    unknown = kb_copy / "articles/account/password-reset.md"
    unknown.write_text(unknown.read_text(encoding="utf-8").replace("[account_security]", "[account_securty]"), encoding="utf-8")
    tpl = kb_copy / "templates/tpl-shipping-delay.md"
    tpl.write_text(tpl.read_text(encoding="utf-8") + "\n预计 {{ eta_days }} 天送达。\n", encoding="utf-8")

    result = runner.invoke(app, ["kb", "check", str(kb_copy)])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line]
    expected = {
        f"{dup}:{_line_of(dup, 'id: refund-timing')}: duplicate id 'refund-timing'",
        f"{unknown}:{_line_of(unknown, 'intents:')}: unknown intent 'account_securty'",
        f"{tpl}:{_line_of(tpl, 'eta_days')}: placeholder '{{{{ eta_days }}}}' is not declared",
    }
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, lines)
    assert len(lines) == 3
    assert all(re.match(r"^\S+:\d+: ", line) for line in lines)


def test_check_reports_bad_yaml_with_its_line(kb_copy):
    bad = kb_copy / "articles/refund/refund-timing.md"
    text = bad.read_text(encoding="utf-8").replace("tags: [退款, 到账, 原路退回]", "tags: [退款, 到账")
    bad.write_text(text, encoding="utf-8")
    kb, problems = check_kb(kb_copy)
    assert len(problems) == 1
    assert problems[0].path == bad and "bad YAML" in problems[0].message
    assert 5 <= problems[0].line <= 9  # the unclosed list, inside the front matter


def test_check_reports_missing_front_matter_empty_body_and_reserved_intent(kb_copy):
    (kb_copy / "articles/refund/no-front.md").write_text("# 没有前置信息\n正文", encoding="utf-8")
    (kb_copy / "articles/refund/empty.md").write_text("---\nid: empty-one\ntitle: 空\nintents: []\n---\n\n", encoding="utf-8")
    intents = kb_copy / "intents.yaml"
    intents.write_text(intents.read_text(encoding="utf-8") + "  - name: out_of_scope\n    label: 无关\n    examples: [你好]\n", encoding="utf-8")
    _, problems = check_kb(kb_copy)
    messages = sorted(p.message for p in problems)
    assert any("missing YAML front matter" in m for m in messages)
    assert any("body is empty" in m for m in messages)
    assert any("'out_of_scope' is built in" in m for m in messages)
    reserved = next(p for p in problems if "built in" in p.message)
    assert reserved.line == _line_of(intents, "name: out_of_scope")


def test_load_kb_raises_with_all_problems(kb_copy):
    (kb_copy / "articles/refund/no-front.md").write_text("no front matter", encoding="utf-8")
    try:
        load_kb(kb_copy)
    except Exception as exc:
        assert type(exc).__name__ == "KBValidationError"
        assert "no-front.md:1: missing YAML front matter" in str(exc)
    else:
        raise AssertionError("load_kb accepted a broken KB")


def test_check_missing_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["kb", "check", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no such knowledge base folder" in result.stdout


def test_an_index_serves_the_kb_as_typed_objects(tiny_index):
    from assist.kb import KB, ReplyTemplate, Variable

    kb = load_kb(TINY_KB)
    loaded = tiny_index.kb
    assert isinstance(loaded, KB) and loaded.content_hash == kb.content_hash
    assert loaded.articles == kb.published and loaded.intents == kb.intents and loaded.templates == kb.templates
    template = next(t for t in loaded.templates if t.id == "tpl-refund-timing")
    assert isinstance(template, ReplyTemplate) and all(isinstance(v, Variable) for v in template.variables)
    assert KB.from_snapshot(kb.to_snapshot()) == KB.from_snapshot(loaded.to_snapshot())


def test_check_validates_clarify_route_and_out_of_scope_examples(kb_copy):
    intents = kb_copy / "intents.yaml"
    text = intents.read_text(encoding="utf-8")
    text = text.replace("    route: logistics\n", "    route: [logistics]\n")
    text += "out_of_scope_examples:\n  - 今天天气怎么样\n  - 42\nbuiltin_out_of_scope: maybe\n"
    intents.write_text(text, encoding="utf-8")
    _, problems = check_kb(kb_copy)
    messages = [(p.line, p.message) for p in problems]
    assert (_line_of(intents, "name: shipping_delay"), "intent 'shipping_delay': 'route' must be a string") in messages
    assert (_line_of(intents, "out_of_scope_examples:"), "'out_of_scope_examples' must be a list of non-empty strings") in messages
    assert (_line_of(intents, "builtin_out_of_scope:"), "'builtin_out_of_scope' must be true or false") in messages


def test_clarify_route_and_out_of_scope_examples_reach_the_kb(kb_copy):
    intents = kb_copy / "intents.yaml"
    intents.write_text(intents.read_text(encoding="utf-8") + "out_of_scope_examples:\n  - 淘宝的订单怎么退\nbuiltin_out_of_scope: false\n",
                       encoding="utf-8")
    kb = load_kb(kb_copy)
    refund = next(i for i in kb.intents if i.name == "refund_status")
    assert refund.clarify == "请问您的退货已经寄回并被仓库签收了吗？" and refund.route == "after_sales"
    assert kb.out_of_scope_examples == ("淘宝的订单怎么退",) and kb.builtin_out_of_scope is False
    assert type(kb).from_snapshot(kb.to_snapshot()).out_of_scope_examples == kb.out_of_scope_examples
