"""`assist kb import` / `assist kb export`: FAQ spreadsheets in and out of the KB."""

import csv

import pytest
import yaml
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from assist.cli import app
from assist.faqsheet import entry_id, export_sheet, import_sheet
from assist.kb import check_kb

runner = CliRunner()
HEADER = ["标准问", "相似问", "答案", "分类", "意图"]
ROWS = [
    ["退款多久能到账？", "退款几天到\n钱什么时候退回来｜退款到账要多久|退的钱多久能到", "原路退回，支付宝 1–3 个工作日到账。", "退款售后", "refund_status"],
    ["快递三天不动了怎么办？", "物流一直没更新", "先帮您催件，48 小时仍不更新按丢件处理。", "物流", "shipping_delay"],
]


def _xlsx(path, rows, header=HEADER):
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _csv(path, rows, header=HEADER, encoding="utf-8-sig"):
    with open(path, "w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def _faq_files(kb_dir):
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((kb_dir / "faq").glob("*.yaml"))} if (kb_dir / "faq").exists() else {}


def test_import_writes_one_entry_per_row_that_the_kb_serves(kb_copy, tmp_path):
    result = import_sheet(_xlsx(tmp_path / "faq.xlsx", ROWS), kb_copy, today="2026-12-01")
    assert result.problems == [] and result.written and len(result.created) == 2
    kb, problems = check_kb(kb_copy)
    assert problems == []
    entry = next(a for a in kb.articles if a.id == entry_id("退款多久能到账？"))
    assert entry.source == "faq" and entry.questions == (
        "退款多久能到账？", "退款几天到", "钱什么时候退回来", "退款到账要多久", "退的钱多久能到")  # lines, ｜ and | split
    assert entry.intents == ("refund_status",) and entry.category == "退款售后" and entry.updated == "2026-12-01"
    assert entry.status == "published" and entry.audience == "internal"  # the documented defaults


def test_reimport_changes_nothing_and_an_edited_row_updates_its_entry(kb_copy, tmp_path):
    sheet = _xlsx(tmp_path / "faq.xlsx", ROWS)
    import_sheet(sheet, kb_copy, today="2026-12-01")
    before = _faq_files(kb_copy)
    again = import_sheet(sheet, kb_copy, today="2026-12-09")
    assert again.created == again.updated == [] and len(again.unchanged) == 2
    assert _faq_files(kb_copy) == before  # not even the date moved
    edited = [ROWS[0][:2] + ["原路退回，支付宝 1–3 个工作日、银行卡 3–7 个工作日到账。"] + ROWS[0][3:], ROWS[1]]
    result = import_sheet(_xlsx(tmp_path / "faq2.xlsx", edited), kb_copy, today="2026-12-09")
    assert result.updated == [entry_id("退款多久能到账？")] and result.created == [] and len(result.unchanged) == 1
    data = yaml.safe_load((kb_copy / "faq" / f"{entry_id('退款多久能到账？')}.yaml").read_text(encoding="utf-8"))
    assert "银行卡 3–7 个工作日" in data["answer"] and data["updated"] == "2026-12-09"


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_export_then_import_is_a_round_trip(kb_copy, tmp_path, fmt):
    import_sheet(_xlsx(tmp_path / "in.xlsx", ROWS), kb_copy, today="2026-12-01")
    before = _faq_files(kb_copy)
    out = tmp_path / f"out.{fmt}"
    assert export_sheet(kb_copy, out, fmt) == 4  # the two imported and the tiny KB's own two
    result = import_sheet(out, kb_copy, today="2027-01-01")
    assert result.problems == [] and len(result.unchanged) == 4 and not result.created and not result.updated
    assert _faq_files(kb_copy) == before
    if fmt == "xlsx":
        header = [c.value for c in load_workbook(out).active[1]]
        assert header[:6] == ["编号", "标准问", "相似问", "答案", "分类", "意图"]


def test_a_bad_sheet_reports_every_row_and_writes_nothing(kb_copy, tmp_path):
    rows = [ROWS[0], ["", "x", "答案", "物流", "shipping_delay"], ["运费怎么算？", "", "", "物流", "shipping_delay"],
            ["发票怎么开？", "", "在订单详情申请。", "发票", "invoice_magic"], ["退款多久能到账", "", "重复", "退款售后", "refund_status"]]
    sheet = _csv(tmp_path / "faq.csv", rows)
    before = _faq_files(kb_copy)
    result = runner.invoke(app, ["kb", "import", str(sheet), "--kb", str(kb_copy)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.splitlines()
    assert "faq.csv:row 3: 标准问 is empty" in lines
    assert "faq.csv:row 4: 答案 is empty" in lines
    assert "faq.csv:row 5: 意图 invoice_magic not in intents.yaml" in lines
    assert "faq.csv:row 6: the same 标准问 as row 2" in lines  # 退款多久能到账 and 退款多久能到账？ are one question
    assert "nothing written" in result.output and _faq_files(kb_copy) == before


def test_a_row_asking_an_articles_question_is_refused_by_row(kb_copy, tmp_path):
    article = kb_copy / "articles" / "refund" / "refund-timing.md"
    article.write_text(article.read_text(encoding="utf-8").replace("status: published", "questions:\n  - 快递三天不动了怎么办\nstatus: published"),
                       encoding="utf-8")
    before = _faq_files(kb_copy)
    result = import_sheet(_csv(tmp_path / "faq.csv", ROWS), kb_copy)
    assert any(p.startswith("faq.csv:row 3: duplicate question '快递三天不动了怎么办？'") for p in result.problems), result.problems
    assert not result.written and _faq_files(kb_copy) == before


def test_dry_run_reports_and_writes_nothing_and_gbk_csv_reads(kb_copy, tmp_path):
    sheet = _csv(tmp_path / "faq.csv", ROWS, encoding="gb18030")  # what Excel in China saves
    before = _faq_files(kb_copy)
    result = runner.invoke(app, ["kb", "import", str(sheet), "--kb", str(kb_copy), "--dry-run"])
    assert result.exit_code == 0 and "would create 2" in result.output and _faq_files(kb_copy) == before


def test_unreadable_sheets_are_clear_errors(kb_copy, tmp_path):
    junk = tmp_path / "faq.xlsx"
    junk.write_bytes(b"not a zip file")
    missing = _csv(tmp_path / "cols.csv", [["问", "x"]], header=["标准问", "分类"])
    for sheet, message in ((junk, "not a readable .xlsx file"), (missing, "row 1: missing column(s) 答案"),
                           (tmp_path / "faq.txt", "no such file")):
        result = runner.invoke(app, ["kb", "import", str(sheet), "--kb", str(kb_copy)])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, result.output


def test_the_sample_sheet_is_the_sample_kbs_faq(tmp_path):
    """kb/examples/faq-sample.xlsx shows the import format, and importing it into the sample KB is a no-op."""
    import shutil

    from tests.conftest import ROOT

    kb_dir = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", kb_dir)
    result = import_sheet(ROOT / "kb" / "examples" / "faq-sample.xlsx", kb_dir)
    assert result.problems == [] and not result.created and not result.updated
    assert len(result.unchanged) == len(list((ROOT / "kb" / "faq").glob("*.yaml"))) >= 30
