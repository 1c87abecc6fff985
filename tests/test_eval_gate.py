"""The real model on the sample KB: the regression gate against the committed baseline, and concrete
suggestions an agent relies on."""

import json

import pytest
from typer.testing import CliRunner

from assist.cli import app
from assist.index.store import open_index
from assist.suggest.pipeline import Suggester
from evals.io import eval_index_dir
from tests.conftest import index_dir_env
from tests.test_sample_kb import KB, ROOT

pytestmark = pytest.mark.slow
BASELINE = ROOT / "evals" / "baselines" / "sample-kb.json"

runner = CliRunner()


@pytest.fixture(scope="module")
def sample_eval(tmp_path_factory):
    """`assist eval run` on the sample KB once; its index is reused by the tests below."""
    tmp = tmp_path_factory.mktemp("sample-eval")
    out = tmp / "out"
    with index_dir_env(tmp / "idx") as s:
        result = runner.invoke(app, ["eval", "run", str(ROOT / "evals"), "--kb", str(KB), "--variants", "full,last_turn", "--out", str(out)])
        suggester = Suggester(open_index(s, eval_index_dir(s)), s.suggest)
    assert result.exit_code == 0, result.output
    return out, suggester


def test_sample_kb_eval_holds_the_baseline(sample_eval):
    out, _ = sample_eval
    full = json.loads((out / "report.json").read_text())["variants"]["full"]
    # floors that hold regardless of the baseline file
    assert full["answer_hit@3"] >= 0.70 and full["template_hit@3"] >= 0.70
    assert full["intent_accuracy"] >= 0.74 and full["oos_recall"] >= 0.75 and full["escalation_recall"] >= 0.80
    assert full["intent_ece"] <= 0.10  # the shown confidence means what it says
    gate = runner.invoke(app, ["eval", "compare", str(BASELINE), str(out / "report.json"), "--max-drop", "0.02"])
    assert gate.exit_code == 0, gate.output


def turns(*texts):
    return [{"role": "customer" if i % 2 == 0 else "agent", "text": t} for i, t in enumerate(texts)]


def test_refund_question_gets_the_refund_timing_article_and_template(sample_eval):
    _, sug = sample_eval
    s = sug.suggest(turns("钱退到银行卡要几天啊"), {"name": "刘女士"})
    assert s.intent.name == "refund_status"
    assert "refund-timing" in [a.article_id for a in s.answers[:3]]
    assert s.templates and "refund_status" in sug.templates[s.templates[0].template_id].intents


def test_intent_from_an_earlier_turn(sample_eval):
    _, sug = sample_eval
    s = sug.suggest(turns("我上周买的扫地机器人一直显示运输中", "亲，麻烦提供一下订单号哦", "怎么还没到"))
    assert s.intent.name in ("shipping_delay", "tracking_query", "order_status")
    assert s.query.context  # the earlier turn was folded in


def test_a_customer_threatening_12315_is_not_handed_regulator_instructions(sample_eval):
    _, sug = sample_eval
    s = sug.suggest(turns("上周投诉给的方案我不接受！！你们再不重新处理我直接打12315"))
    assert s.emotion.escalate and s.answers
    chunks = {c.chunk_id: c for c in sug.index.chunks}
    shown = [chunks[a.chunk_id].embed_text for a in s.answers]
    assert not any("12315" in text or "消费者协会" in text for text in shown), shown


def test_angry_customer_is_escalated_and_chit_chat_abstains(sample_eval):
    _, sug = sample_eval
    angry = sug.suggest(turns("退款半个月了还没到！！再不处理我就打12315投诉你们"))
    assert angry.emotion.escalate and angry.emotion.level == 3 and "12315" in angry.emotion.cues
    chit_chat = ["今天天气真好，给我讲个笑话吧", "给我讲个笑话", "你们公司附近有什么好吃的", "帮我订一张去上海的火车票", "股票明天会涨吗", "你叫什么名字"]
    results = [sug.suggest(turns(t)) for t in chit_chat]
    answered = sug.suggest(turns("退款多久能到账"))  # the same bar lets a real question through
    assert not answered.abstained and answered.answers and answered.intent.name != "out_of_scope"
    # out-of-scope recall is about 0.6 on the labelled set; plain chit-chat must do better than that
    assert sum(r.intent.name == "out_of_scope" and r.abstained for r in results) >= 5, [(r.query.text, r.intent.name) for r in results]


def test_sample_kb_routes_clarifies_and_hands_off(sample_eval):
    _, sug = sample_eval
    refund = sug.suggest(turns("退货寄回去一个礼拜了，钱还没到账"))
    assert refund.intent.name == "refund_status" and refund.route.queue == "after_sales" and refund.handoff is None
    unsure = sug.with_settings(clarify_below=1.0).suggest(turns("退货寄回去一个礼拜了，钱还没到账"))
    assert unsure.clarify.question == "请问您的退货已经寄回并被仓库签收了吗？"  # refund_status's own question
    angry = sug.suggest(turns("退款半个月了还没到！！再不处理我就打12315投诉你们"), {"tier": "vip"})
    assert angry.route.queue == "supervisor" and angry.route.priority == 1 and angry.route.transfer
    assert "【转接】supervisor" in angry.handoff.note and "情绪：等级 3" in angry.handoff.note


def test_the_headline_example_gets_shipping_delay_answers_and_fitting_templates(sample_eval):
    """我昨天买的空气炸锅 SKU-30127 还没发货: the shipping-delay articles, no reply that asks for a tracking
    number (nothing has shipped) or explains another product."""
    _, sug = sample_eval
    s = sug.suggest(turns("我昨天买的空气炸锅 SKU-30127 还没发货，能帮我催一下吗"))
    assert s.intent.name == "shipping_delay"
    answers = [a.article_id for a in s.answers[:3]]
    assert answers[0] == "shipping-delay-compensation" and "order-shipping-time" in answers, answers
    assert not {"missing-or-wrong-items", "order-split-shipment"} & set(answers), answers  # parcels that arrived
    top = s.templates[0]
    assert top.template_id == "tpl-shipping-delay-compensation", [t.template_id for t in s.templates]
    for t in s.templates:
        assert "tracking_no" not in t.missing_variables and "扫地机器人" not in t.text, t.template_id
