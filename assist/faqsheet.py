"""FAQ spreadsheets: `assist kb import FILE.xlsx|.csv` and `assist kb export`.

A sheet has one FAQ entry per row: 标准问 / 相似问 (one per line, or separated by ｜ or |) / 答案 / 分类 /
意图, optionally 编号 (id) / 否定词 / 状态 / 受众 / 更新 (English headers work too). Import checks every
row first and writes nothing when any row is bad (`FILE.xlsx:row 17: 答案 is empty`); then it writes
one `faq/<id>.yaml` per row. Re-importing the same sheet changes nothing; an edited row updates its
entry, found by its id (the 编号 column, else one derived from the standard question).
"""

import csv
import datetime
import hashlib
import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assist.errors import AssistError
from assist.files import atomic_write_text
from assist.kb import AUDIENCES, FAQ_KEYS, STATUSES, check_kb, normalize_question

# sheet header (lower case, no spaces) -> entry field
HEADERS = {
    "标准问": "question", "问题": "question", "question": "question", "standardquestion": "question",
    "相似问": "similar", "相似问题": "similar", "similar": "similar", "similarquestions": "similar",
    "答案": "answer", "回答": "answer", "answer": "answer",
    "分类": "category", "类别": "category", "category": "category",
    "意图": "intents", "intent": "intents", "intents": "intents",
    "编号": "id", "id": "id",
    "否定词": "negative_keywords", "negativekeywords": "negative_keywords",
    "状态": "status", "status": "status",
    "受众": "audience", "audience": "audience",
    "更新": "updated", "更新时间": "updated", "updated": "updated",
}
REQUIRED = ("question", "answer")
# what `export` writes, in this order (Chinese headers: the sheet a Chinese team already keeps)
COLUMNS = (("编号", "id"), ("标准问", "question"), ("相似问", "similar"), ("答案", "answer"), ("分类", "category"),
           ("意图", "intents"), ("否定词", "negative_keywords"), ("状态", "status"), ("受众", "audience"), ("更新", "updated"))
LABEL = {f: h for h, f in COLUMNS}
_SIMILAR_SPLIT = re.compile(r"[\n\r]+|[｜|]")
_LIST_SPLIT = re.compile(r"[\n\r,，;；、|｜\s]+")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
MAX_ROWS = 100_000


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    written: bool = False


def entry_id(question: str) -> str:
    """A stable id from the standard question (its normalised form), for sheets without an id column."""
    return "faq-" + hashlib.sha1(normalize_question(question).encode("utf-8")).hexdigest()[:10]


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(sheet row number, {field: text}) for every non-empty row of an .xlsx or .csv file."""
    path = Path(path)
    if not path.is_file():
        raise AssistError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        table = _xlsx_table(path)
    elif suffix == ".csv":
        table = _csv_table(path)
    else:
        raise AssistError(f"{path}: expected an .xlsx or .csv file")
    if not table:
        raise AssistError(f"{path}: the sheet is empty")
    header = [HEADERS.get(re.sub(r"\s+", "", str(h or "")).lower()) for h in table[0]]
    missing = [LABEL[f] for f in REQUIRED if f not in header]
    if missing:
        raise AssistError(f"{path}: row 1: missing column(s) {', '.join(missing)} (headers: 标准问, 相似问, 答案, 分类, 意图)")
    if len(table) - 1 > MAX_ROWS:
        raise AssistError(f"{path}: {len(table) - 1} rows; at most {MAX_ROWS} per sheet")
    rows = []
    for n, cells in enumerate(table[1:], start=2):
        values = {f: _text(c) for f, c in zip(header, cells) if f}
        if any(values.values()):
            rows.append((n, values))
    return rows


def _text(cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, (datetime.date, datetime.datetime)):
        return cell.strftime("%Y-%m-%d")
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _xlsx_table(path: Path) -> list[list]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a corrupt or non-Excel file: openpyxl raises several kinds
        raise AssistError(f"{path}: not a readable .xlsx file ({exc.__class__.__name__})") from None
    try:
        return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


def _csv_table(path: Path) -> list[list]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise AssistError(f"{path}: not UTF-8 or GB18030 text")
    return [row for row in csv.reader(io.StringIO(text, newline=""))]  # quoted cells may hold line breaks


def _entries(path: Path, rows: list[tuple[int, dict[str, str]]], intents: set[str], today: str,
             problems: list[str]) -> list[tuple[int, dict]]:
    """Entries from rows; every bad row adds `FILE:row N: message` to `problems`."""
    out, seen_ids, seen_questions = [], {}, {}
    for n, v in rows:
        where = f"{path.name}:row {n}"
        bad = [f"{where}: {LABEL[f]} is empty" for f in REQUIRED if not v.get(f)]
        problems += bad
        if bad:
            continue
        question = v["question"]
        eid = v.get("id") or entry_id(question)
        if not _ID.match(eid):
            problems.append(f"{where}: 编号 '{eid}' may only use letters, digits, '-' and '_'")
            continue
        for seen, key, label in ((seen_ids, eid, "编号"), (seen_questions, normalize_question(question), "标准问")):
            if key in seen:
                problems.append(f"{where}: the same {label} as row {seen[key]}")
            seen.setdefault(key, n)
        names = [i for i in _LIST_SPLIT.split(v.get("intents", "")) if i]
        unknown = [i for i in names if i not in intents]
        if unknown:
            problems.append(f"{where}: 意图 {', '.join(unknown)} not in intents.yaml")
        status = v.get("status") or "published"
        audience = v.get("audience") or "internal"
        if status not in STATUSES:
            problems.append(f"{where}: 状态 must be one of {', '.join(STATUSES)}, not '{status}'")
        if audience not in AUDIENCES:
            problems.append(f"{where}: 受众 must be one of {', '.join(AUDIENCES)}, not '{audience}'")
        similar = list(dict.fromkeys(s.strip() for s in _SIMILAR_SPLIT.split(v.get("similar", "")) if s.strip() and s.strip() != question))
        entry = {
            "id": eid, "question": question, "similar": similar, "answer": v["answer"].replace("\r\n", "\n").strip() + "\n",
            "category": v.get("category", ""), "intents": names,
            "negative_keywords": [w for w in _LIST_SPLIT.split(v.get("negative_keywords", "")) if w],
            "status": status, "audience": audience, "updated": v.get("updated") or today,
        }
        out.append((n, entry))
    return out


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(entry: dict) -> str:
    """The file text of one entry: keys in the documented order, empty optional keys left out."""
    ordered = {k: entry[k] for k in FAQ_KEYS if k in entry and (entry[k] or k in ("id", "question", "answer"))}
    return yaml.dump(ordered, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def _comparable(data: dict) -> dict:
    """An entry's content for "did this row change?": list fields as lists, text stripped, no date."""
    out = {}
    for key in FAQ_KEYS:
        if key == "updated":
            continue
        value = data.get(key)
        if key in ("similar", "intents", "negative_keywords"):
            value = [str(v).strip() for v in (value or [])] if isinstance(value, list) else [str(value).strip()] if value else []
        else:
            value = str(value if value is not None else "").strip()
        out[key] = value
    out["status"] = out["status"] or "published"
    out["audience"] = out["audience"] or "internal"
    return out


def _loaded_kb(kb_dir: Path):
    """The KB as `kb check` reads it (problems are reported later, by row); an error when there is none."""
    kb, problems = check_kb(kb_dir)
    if kb is None:
        raise AssistError(f"{kb_dir}: {problems[0].message}" if problems else f"{kb_dir}: not a knowledge base")
    return kb


def import_sheet(path: Path, kb_dir: Path, dry_run: bool = False, today: str | None = None) -> ImportResult:
    """Check every row, then (unless `dry_run` or a row is bad) write one faq/<id>.yaml per row.
    The KB with the new entries must pass `kb check` (e.g. no question also asked by an article)
    before anything is written."""
    path, kb_dir = Path(path), Path(kb_dir)
    result = ImportResult()
    kb = _loaded_kb(kb_dir)
    rows = read_rows(path)
    today = today or datetime.date.today().isoformat()
    entries = _entries(path, rows, {i.name for i in kb.intents}, today, result.problems)
    if result.problems:
        return result
    faq_dir = kb_dir / "faq"
    planned = []  # (file, text)
    for _, entry in entries:
        target = faq_dir / f"{entry['id']}.yaml"
        text = to_yaml(entry)
        if target.exists():
            try:
                old = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
            except (yaml.YAMLError, UnicodeDecodeError):
                old = {}
            if isinstance(old, dict) and _comparable(old) == _comparable(entry):  # unchanged: the file stays as it is
                result.unchanged.append(entry["id"])
                continue
            result.updated.append(entry["id"])
        else:
            result.created.append(entry["id"])
        planned.append((target, text))
    if planned:
        result.problems += _check_with(kb_dir, planned, {n: e["id"] for n, e in entries}, path.name)
    if result.problems or dry_run or not planned:
        return result
    faq_dir.mkdir(parents=True, exist_ok=True)
    for target, text in planned:
        atomic_write_text(target, text)
    result.written = True
    return result


def _check_with(kb_dir: Path, planned: list[tuple[Path, str]], row_of: dict[int, str], sheet: str) -> list[str]:
    """`kb check` problems of the KB as it would be after the import, named by sheet row."""
    rows_by_id = {eid: n for n, eid in row_of.items()}
    with tempfile.TemporaryDirectory(prefix="assist-import-") as tmp:
        trial = Path(tmp) / "kb"
        shutil.copytree(kb_dir, trial, ignore=shutil.ignore_patterns(".git"))
        (trial / "faq").mkdir(exist_ok=True)
        for target, text in planned:
            (trial / "faq" / target.name).write_text(text, encoding="utf-8")
        _, problems = check_kb(trial)
        out = []
        for p in problems:
            rel = p.path.relative_to(trial).as_posix() if p.path.is_relative_to(trial) else str(p.path)
            eid = Path(rel).stem if rel.startswith("faq/") else None
            where = f"{sheet}:row {rows_by_id[eid]}" if eid in rows_by_id else rel
            out.append(f"{where}: {p.message}")
        return out


def export_sheet(kb_dir: Path, out: Path, fmt: str) -> int:
    """Write the KB's standalone FAQ entries (drafts too) to an .xlsx or .csv sheet; returns the row count."""
    kb = _loaded_kb(kb_dir)
    if fmt not in ("xlsx", "csv"):
        raise AssistError(f"unknown format '{fmt}' (use xlsx or csv)")
    entries = [a for a in kb.articles if a.source == "faq"]
    rows = [[h for h, _ in COLUMNS]]
    for a in entries:
        values = {"id": a.id, "question": a.questions[0], "similar": "\n".join(a.questions[1:]), "answer": a.body,
                  "category": a.category, "intents": ", ".join(a.intents), "negative_keywords": ", ".join(a.negative_keywords),
                  "status": a.status, "audience": a.audience, "updated": a.updated}
        rows.append([values[f] for _, f in COLUMNS])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if fmt == "csv":
        with open(tmp, "w", encoding="utf-8-sig", newline="") as f:  # with a BOM: Excel opens it as UTF-8
            csv.writer(f).writerows(rows)
    else:
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font

        book = Workbook()
        sheet = book.active
        sheet.title = "FAQ"
        for row in rows:
            sheet.append(row)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for column, width in zip("ABCDEFGHIJ", (22, 30, 36, 60, 12, 22, 14, 10, 10, 12)):
            sheet.column_dimensions[column].width = width
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.freeze_panes = "A2"
        book.save(tmp)
    os.replace(tmp, out)
    return len(entries)
