import json
import re

import pytest
from typer.testing import CliRunner

from assist.cli import app
from assist.config import SuggestSettings
from assist.errors import AssistError
from assist.index.store import build_index, load_index
from assist.kb import ReplyTemplate, Variable
from assist.suggest.emotion import detect_emotion
from assist.suggest.intent import IntentDetector
from assist.suggest.pipeline import Suggester
from assist.suggest.query import Turn, build_query, clean, last_turn_query
from assist.suggest.templates import MissingVariable, contradicts_state, extract_entities, other_product, render
from tests.conftest import CHUNKING, TINY_KB

# The hashing fake gives lower cosines than a real model: thresholds scaled to it.
FAKE = SuggestSettings(abstain_min_dense=0.15, abstain_min_dense_oos=0.3)


def c(text):
    return Turn("customer", text)


def a(text):
    return Turn("agent", text)


# --- query -----------------------------------------------------------------------------------------


def test_filler_turns_are_dropped_and_greetings_stripped():
    assert clean("你好") == "" and clean("谢谢！") == "" and clean("好的 谢谢") == ""
    assert clean("你好，请问退款多久到账？谢谢") == "退款多久到账"
    q = build_query([c("在吗"), c("退款多久能到账"), c("谢谢")])
    assert q.text == "退款多久能到账"


def test_a_dependent_follow_up_brings_the_earlier_turn():
    turns = [c("我上周买的耳机，订单 DD202611230001"), a("好的，请问有什么可以帮您？"), c("怎么还没到")]
    q = build_query(turns)
    assert q.latest == "怎么还没到"
    assert q.context == ("我上周买的耳机，订单",)
    assert q.text.startswith("怎么还没到；我上周买的耳机")
    assert "DD202611230001" not in q.text  # order numbers never identify an article
    assert "请问" not in q.text  # the agent's words are not the customer's request
    assert last_turn_query(turns).text == "怎么还没到"


def test_a_self_contained_new_request_drops_the_old_topic():
    turns = [c("我的快递三天没有更新了"), a("已为您催件"), c("另外我想开一张公司抬头的增值税发票")]
    q = build_query(turns)
    assert q.text == "另外我想开一张公司抬头的增值税发票" and q.context == ()


def test_no_customer_request_gives_an_empty_query():
    assert build_query([a("您好，有什么可以帮您？"), c("你好")]).text == ""


# --- emotion ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "texts,level,escalate",
    [
        (["请问退款多久到账"], 0, False),
        (["怎么还没到"], 1, False),
        (["我要投诉你们！！"], 2, True),
        (["再不退钱我就打12315"], 3, True),
        (["THIS IS A SCAM, refund now"], 3, True),
        (["快递怎么还没到", "还没到，到底什么时候"], 2, True),
        # capitals: a product name or a code in a Chinese message is not shouting, nor are two words
        (["AIRBEAT 耳机的充电盒怎么配对"], 0, False),
        (["我的 SKU-30127 订单 DD202611230001 能改地址吗"], 0, False),
        (["DROP TABLE"], 0, False),
        (["WHERE IS MY ORDER"], 1, False),
        # angry faces count
        (["😡🤬"], 2, True),
        (["快递怎么还没到 😠"], 2, True),
        (["谢谢 😊"], 0, False),
    ],
)
def test_emotion_levels(texts, level, escalate):
    e = detect_emotion(texts)
    assert (e.level, e.escalate) == (level, escalate), e.cues


def test_shouting_is_one_cue_with_the_words():
    e = detect_emotion(["WHY IS MY REFUND NOT HERE YET"])
    assert e.cues == ("WHY IS MY REFUND NOT HERE YET",) and e.level == 1


def test_cues_say_why_and_escalating_intents_escalate():
    e = detect_emotion(["你们就是骗子，我要给差评"])
    assert {"骗子", "差评"} <= set(e.cues)
    calm = detect_emotion(["我想投诉一下"], intent_escalates=True)
    assert calm.escalate


# --- intent ----------------------------------------------------------------------------------------


class Detect:
    """The tiny index's trained intent model, called as the pipeline calls it."""

    def __init__(self, index):
        self.detector = IntentDetector(list(index.kb.intents), index.intent_model)
        self.embedder = index.embedder

    def detect(self, text):
        return self.detector.detect(text, self.embedder.encode_queries([text])[0] if text else None)


@pytest.fixture(scope="module")
def detector(tiny_index):
    return Detect(tiny_index)


def test_intent_from_examples_and_keywords(detector):
    r = detector.detect("我的退款什么时候到账")
    assert r.name == "refund_status" and 0 < r.confidence <= 1
    assert detector.detect("快递好几天没动了").name == "shipping_delay"
    assert detector.detect("我要去12315投诉你们").name == "complaint"


def test_unrelated_text_is_out_of_scope(detector):
    r = detector.detect("今天天气怎么样")
    assert r.name == "out_of_scope" and r.in_scope < 0.5
    assert detector.detect("").name == "out_of_scope"


def test_a_question_about_two_things_offers_the_second_as_first_alternative(detector):
    both = detector.detect("退款什么时候到账，快递也好几天没动了")
    assert {both.name, both.alternatives[0].name} == {"refund_status", "shipping_delay"}


def test_the_index_version_carries_its_intent_model(tiny_index):
    model = tiny_index.intent_model
    assert model is not None and set(model.classes) == {i.name for i in tiny_index.kb.intents} | {"out_of_scope"}
    assert (tiny_index.path / "intent-model.npz").is_file()
    assert tiny_index.manifest["intent_model"]["out_of_scope_rows"] > 300  # the built-in set


def test_with_settings_leaves_the_original(suggester):
    refund = [c("我的退款什么时候到账")]
    other = suggester.with_settings(answers=1)
    assert len(other.suggest(refund).answers) <= 1 and other.detector is suggester.detector
    assert suggester.settings.answers == 3
    with pytest.raises(ValueError):
        suggester.with_settings(answers=0)  # validated like the settings themselves


def test_confidence_orders_alternatives(detector):
    r = detector.detect("退款到账")
    confs = [x.confidence for x in r.alternatives]
    assert confs == sorted(confs, reverse=True)


# --- templates -------------------------------------------------------------------------------------


def test_entities_are_extracted_whole():
    e = extract_entities(["订单DD202611230001的SKU-20931，快递SF1234567890123", "手机13812345678，退了 199.5 元"])
    assert e["order_id"] == "DD202611230001" and e["sku"] == "SKU-20931" and e["tracking_no"] == "SF1234567890123"
    assert e["phone_tail"] == "5678" and e["refund_amount"] == "199.5"


def test_render_fills_known_values_and_lists_missing_required_ones():
    tpl = template("{{ customer_name }}，订单 {{ order_id }} 退款 {{ refund_amount }} 元。", (
        Variable("customer_name", "称呼", required=False, default="您好"),
        Variable("order_id", "订单号", required=True),
        Variable("refund_amount", "退款金额", required=True),
    ))
    text, missing = render(tpl, {"order_id": "DD202611230001"})
    assert text == "您好，订单 DD202611230001 退款 【退款金额】 元。"
    assert missing == (MissingVariable("refund_amount", "退款金额"),)


def test_missing_variable_without_description_is_labelled_by_name():
    _, missing = render(template("{{ code }}", (Variable("code", required=True),)), {})
    assert missing == (MissingVariable("code", "code"),)


def template(body: str, variables=()) -> ReplyTemplate:
    return ReplyTemplate(id="t", title="t", intents=(), variables=tuple(variables), body=body, path="t.md")


def test_render_is_sandboxed_and_strict():
    with pytest.raises(AssistError):
        render(template("{{ secret }}"), {})
    with pytest.raises(AssistError):
        render(template("{{ ''.__class__.__mro__ }}"), {})


# --- pipeline --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suggester(tiny_index):
    return Suggester(tiny_index, FAKE)


def test_refund_question_gets_refund_answer_and_filled_template(suggester):
    conv = [{"role": "customer", "text": "你好"}, {"role": "customer", "text": "订单 DD202611230001 退款到账要多久？银行卡"}]
    s = suggester.suggest(conv, {"name": "李先生"})
    assert s.intent.name == "refund_status"
    assert s.answers[0].article_id == "refund-timing"
    assert s.answers[0].heading_path[0] == "退款到账时间"
    assert len({x.article_id for x in s.answers}) == len(s.answers)  # one hit per article
    first = s.answers[0]
    assert "退款" in first.matched_terms
    assert all(t in (first.snippet + " ".join(first.heading_path)).lower() for t in first.matched_terms)
    top = s.templates[0]
    assert top.template_id == "tpl-refund-timing"  # not the VIP variant: this customer is not VIP
    assert "李先生" in top.text and "DD202611230001" in top.text and top.missing_variables == ()
    assert all(t.template_id != "tpl-refund-timing-vip" for t in s.templates)
    body = s.to_dict()
    assert set(body) >= {"intent", "emotion", "answers", "templates", "index_version", "timings_ms"}
    assert body["timings_ms"]["total"] > 0


def test_vip_customers_get_the_vip_variant_first(suggester):
    s = suggester.suggest([c("退款到账要多久")], {"tier": "VIP"})
    assert s.templates[0].template_id == "tpl-refund-timing-vip"
    assert s.templates[0].missing_variables == ("order_id",)
    assert "【订单号】" in s.templates[0].text
    assert s.to_dict()["templates"][0]["missing"] == [{"name": "order_id", "label": "订单号"}]


def test_regulator_sections_are_dropped_but_the_rest_of_their_article_stays():
    from assist.index.chunk import Chunk
    from assist.index.search import Hit
    from assist.suggest.rank import without_regulator_channels

    review = Chunk("c1", "complaint-external", "article", "对处理结果不满意怎么办", ("对处理结果不满意怎么办", "申请复核"), "7 天内申请复核")
    outside = Chunk("c2", "complaint-external", "article", "对处理结果不满意怎么办", ("对处理结果不满意怎么办", "外部渠道"), "拨打 12315 或向消费者协会投诉")
    police = Chunk("c3", "scam-alert", "article", "防骗提醒", ("防骗提醒",), "遇到诈骗请立即报警")
    kept = without_regulator_channels([(Hit(outside, 0.9), 0.9), (Hit(review, 0.8), 0.8), (Hit(police, 0.7), 0.7)])
    assert [h.chunk.chunk_id for h, _ in kept] == ["c1", "c3"]  # calling the police is advice, not a regulator


def test_no_reply_template_when_the_kb_has_no_answer(suggester):
    weather = suggester.suggest([c("今天天气怎么样")])
    assert weather.abstained and weather.answers == [] and weather.templates == []


def test_an_upset_customer_without_an_answer_gets_only_the_labelled_hand_off_template(suggester):
    for text in ("😡🤬 气死了", "今天天气怎么样？？？我要投诉你们，骗子！！"):
        s = suggester.suggest([c(text)])
        assert s.abstained and s.emotion.escalate
        assert [(t.template_id, t.purpose) for t in s.templates] == [("tpl-complaint-apology", "escalation")]
    calm = suggester.suggest([c("退款到账要多久")])
    assert not calm.abstained and calm.templates[0].template_id == "tpl-refund-timing"
    assert {t.purpose for t in calm.templates} == {"reply"}


def test_angry_customer_escalates_with_cues(suggester):
    s = suggester.suggest([c("快递一直不更新"), a("已为您催件"), c("还没到！！我要投诉")])
    assert s.emotion.escalate and s.emotion.level >= 2
    assert "投诉" in s.emotion.cues


def test_nonsense_abstains_instead_of_returning_noise(suggester):
    s = suggester.suggest([c("zxqv wplm qqqq")])
    assert s.abstained and s.answers == []
    assert s.intent.name == "out_of_scope"


def test_bad_turns_are_clear_errors(suggester):
    with pytest.raises(AssistError, match="role must be one of"):
        suggester.suggest([{"role": "robot", "text": "hi"}])
    with pytest.raises(AssistError, match="turn 1"):
        suggester.suggest(["just a string"])


runner = CliRunner()


@pytest.fixture
def cli_env(fake_env, monkeypatch):
    monkeypatch.setenv("ASSIST_KB_DIR", str(TINY_KB))
    assert runner.invoke(app, ["index", "build"]).exit_code == 0


def test_cli_suggest_json_from_stdin(cli_env):
    conv = {"conversation": [{"role": "customer", "text": "密码忘了，账户被冻结了"}], "customer": {"name": "张三"}}
    result = runner.invoke(app, ["suggest", "--json"], input=json.dumps(conv, ensure_ascii=False))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["intent"]["name"] == "account_security"
    assert body["answers"][0]["article_id"] == "password-reset"
    assert isinstance(body["answers"][0]["matched_terms"], list)


def test_cli_suggest_rejects_bad_input(cli_env):
    result = runner.invoke(app, ["suggest"], input="{not json")
    assert result.exit_code == 1 and "not valid JSON" in result.output
    result = runner.invoke(app, ["suggest"], input=json.dumps({"conversation": [{"role": "bot", "text": "x"}]}))
    assert result.exit_code == 1 and "role must be one of" in result.output and "Traceback" not in result.output


def test_langchain_retriever_returns_documents_one_per_article(tiny_index):
    from assist.retriever import AssistRetriever

    docs = AssistRetriever(index=tiny_index, k=3).invoke("退款 到账 银行卡")
    assert docs[0].metadata["article_id"] == "refund-timing"
    assert len({d.metadata["article_id"] for d in docs}) == len(docs) == 3
    assert docs[0].metadata["heading_path"][0] == "退款到账时间"
    first = docs[0].page_content.splitlines()[0]
    assert first == " > ".join(docs[0].metadata["heading_path"])  # the section's place in its article comes first


def test_an_upset_customer_gets_the_escalation_template_first_then_the_reply(suggester):
    calm = suggester.suggest([c("快递物流三天没有更新了")])
    assert [t.template_id for t in calm.templates][:1] == ["tpl-shipping-delay"]
    assert "tpl-complaint-apology" not in [t.template_id for t in calm.templates[:2]]
    angry = suggester.suggest([c("快递物流三天没有更新了！！骗子")])
    assert angry.emotion.escalate
    assert [(t.template_id, t.purpose) for t in angry.templates[:2]] == [
        ("tpl-complaint-apology", "escalation"), ("tpl-shipping-delay", "reply")]


def test_a_follow_up_that_alone_looks_out_of_scope_keeps_the_conversations_intent(suggester):
    for last in ("对，都第十天了，一分没见着", "我是用支付宝付的款，上周五就批了"):
        alone = suggester.suggest([c(last)])
        assert alone.intent.name == "out_of_scope"
        followed = suggester.suggest([c("我的退款什么时候到账"), {"role": "agent", "text": "请问是哪种支付方式？"}, c(last)])
        assert followed.intent.name == "refund_status", last
        assert followed.query.text == last  # retrieval still reads the latest request


def _build_variant(kb_copy, tmp_path, embedder, intents_yaml: str):
    (kb_copy / "intents.yaml").write_text(intents_yaml, encoding="utf-8")
    # articles and templates may only name declared intents
    for path in [*(kb_copy / "articles").rglob("*.md"), *(kb_copy / "templates").rglob("*.md")]:
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"^intents: .*$", "intents: [refund_status]", text, flags=re.MULTILINE), encoding="utf-8")
    build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    return Suggester(load_index(tmp_path / "idx", embedder), FAKE)


ONE_INTENT = """intents:
  - name: refund_status
    label: 退款进度
    clarify: 请问您的退货已经寄回并被仓库签收了吗？
    examples: [退款什么时候到账, 我的钱怎么还没退回来, 退款进度在哪里看]
"""


def test_a_kb_with_one_intent_builds_and_answers(kb_copy, tmp_path, embedder):
    s = _build_variant(kb_copy, tmp_path, embedder, ONE_INTENT)
    assert s.index.intent_model.classes == ("refund_status", "out_of_scope")
    out = s.suggest([c("退款到账要多久？银行卡")])
    assert out.intent.name == "refund_status" and out.answers[0].article_id == "refund-timing"
    assert out.clarify is None  # nothing to tell apart
    assert s.suggest([c("今天天气怎么样")]).intent.name == "out_of_scope"


def test_a_kb_without_out_of_scope_examples_builds_and_answers(kb_copy, tmp_path, embedder):
    closed = ONE_INTENT.replace("    examples:", "    escalate: false\n    examples:") + """  - name: shipping_delay
    label: 物流延迟
    examples: [快递三天没动了, 物流一直不更新, 我的包裹怎么还没到]
builtin_out_of_scope: false
"""
    s = _build_variant(kb_copy, tmp_path, embedder, closed)
    assert s.index.intent_model.classes == ("refund_status", "shipping_delay")  # no out-of-scope class
    assert s.index.manifest["intent_model"]["out_of_scope_rows"] == 0
    out = s.suggest([c("退款到账要多久？银行卡")])
    assert out.intent.name == "refund_status" and out.answers[0].article_id == "refund-timing"
    assert s.suggest([c("快递好几天没动了")]).intent.name == "shipping_delay"
    assert 0 < out.intent.confidence <= 1


def test_a_reply_needing_a_tracking_number_ranks_last_for_an_order_not_shipped(kb_copy, tmp_path, embedder):
    (kb_copy / "templates" / "tpl-urge-shipping.md").write_text(
        "---\nid: tpl-urge-shipping\ntitle: 催发货答复\nintents: [shipping_delay]\n---\n"
        "非常抱歉让您久等，我已为您登记催促仓库尽快发货，发出后会短信通知您物流信息。\n", encoding="utf-8")
    build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    s = Suggester(load_index(tmp_path / "idx", embedder), FAKE)
    in_transit = [t.template_id for t in s.suggest([c("快递三天没动了，物流一直不更新")]).templates]
    assert in_transit[0] == "tpl-shipping-delay"  # a parcel on its way: the tracking-number reply fits
    unshipped = [t.template_id for t in s.with_settings(templates=5).suggest([c("我的包裹怎么还没发货，物流一直不更新")]).templates]
    assert unshipped[0] == "tpl-urge-shipping" and unshipped[-1] == "tpl-shipping-delay", unshipped
    tpl = s.templates["tpl-shipping-delay"]
    assert contradicts_state(tpl, ["It has not shipped yet"], {})
    assert not contradicts_state(tpl, ["还没发货吗？"], {"tracking_no": "SF1234567890123"})  # the number is known after all
    assert not contradicts_state(s.templates["tpl-urge-shipping"], ["还没发货"], {})


def test_a_reply_written_for_another_product_ranks_below_the_generic_one(kb_copy, tmp_path, embedder):
    (kb_copy / "templates" / "tpl-vacuum-wifi.md").write_text(
        "---\nid: tpl-vacuum-wifi\ntitle: 扫地机器人物流与联网答复\nintents: [shipping_delay]\n"
        "products: [扫地机器人, robot vacuum]\n---\n"
        "扫地机器人的快递物流三天没有更新时，请先把机器连上 2.4GHz Wi-Fi，物流更新后会推送给您。\n", encoding="utf-8")
    build_index(kb_copy, tmp_path / "idx", embedder, chunking=CHUNKING)
    s = Suggester(load_index(tmp_path / "idx", embedder), FAKE).with_settings(templates=5)
    vacuum = [t.template_id for t in s.suggest([c("扫地机器人的快递物流三天没有更新了")]).templates]
    fryer = [t.template_id for t in s.suggest([c("空气炸锅的快递物流三天没有更新了")]).templates]
    assert vacuum[0] == "tpl-vacuum-wifi", vacuum  # it is about the product the customer has
    assert fryer[0] == "tpl-shipping-delay" and fryer[-1] == "tpl-vacuum-wifi", fryer
    tpl = s.templates["tpl-vacuum-wifi"]
    assert other_product(tpl, ["我的空气炸锅还没到"]) and not other_product(tpl, ["My Robot Vacuum is late"])
    assert not other_product(s.templates["tpl-shipping-delay"], ["我的空气炸锅还没到"])  # no products: any product


def test_kb_check_refuses_products_that_are_not_a_list_of_strings(kb_copy):
    from assist.kb import check_kb

    (kb_copy / "templates" / "tpl-bad.md").write_text(
        "---\nid: tpl-bad\ntitle: 坏模板\nintents: [shipping_delay]\nproducts: {a: 1}\n---\n正文\n", encoding="utf-8")
    _, problems = check_kb(kb_copy)
    assert any(p.path.name == "tpl-bad.md" and p.line == 5 and "'products' must be a list of strings" in p.message
               for p in problems), problems
