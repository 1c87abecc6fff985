"""PII redaction for stored feedback and logs: phones, ID cards, bank cards, emails, landlines, addresses.

Rules favour recall on personal data and leave business identifiers alone: order numbers
(`DD202611230001`), tracking numbers (`SF1234567890123`) and SKU codes (`SKU-20931`) are letter-prefixed,
and every numeric rule refuses a match glued to letters or digits. Amounts and dates are too short or
too structured to match.
"""

import logging
import logging.handlers
import re

PHONE, ID_CARD, BANK_CARD, EMAIL, LANDLINE, ADDRESS = "[手机号]", "[身份证号]", "[银行卡号]", "[邮箱]", "[电话]", "[地址]"

# Full-width digits and signs, mapped one character to one character, so spans found in the probe
# text are the spans of the original text.
_PROBE = str.maketrans("０１２３４５６７８９＋－（）　＠．", "0123456789+-() @.")

_EDGE_L = r"(?<![0-9A-Za-z])"  # a number glued to letters (DD2026..., SF1234...) is a business id
_EDGE_R = r"(?![0-9A-Za-z])"
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ID18 = re.compile(_EDGE_L + r"[1-9][0-9]{5}(?:18|19|20)[0-9]{2}" + _DATE + r"[0-9]{3}[0-9Xx]" + _EDGE_R)
_ID15 = re.compile(_EDGE_L + r"[1-9][0-9]{7}" + _DATE + r"[0-9]{3}" + _EDGE_R)
_CARD = re.compile(_EDGE_L + r"[0-9](?:[ -]?[0-9]){15,18}" + _EDGE_R)
_MOBILE = re.compile(
    r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?|\(\+?86\) ?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])"
)
# Area code with a separator (or in parentheses) makes a landline unambiguous; 400/800 hotlines are not personal.
_LANDLINE = re.compile(_EDGE_L + r"(?:\(0[1-9][0-9]{1,2}\) ?|0[1-9][0-9]{1,2}[ -])[2-8][0-9]{6,7}(?:-[0-9]{1,5})?(?![0-9])")

# Addresses: one or more administrative units (省/市/区/县/镇...) then a road and a door number, or a
# residential compound, then building / unit / room details. Name characters exclude common function
# words and verbs so "我的地址是" or "改成" before the address is not swallowed.
_N = r"(?:(?![是在的到址我你他她寄送住往发从和与及请帮把给了就要想改成为家里])[\u4e00-\u9fff])"
# Atomic units: the shortest name ending in a unit word, never retried longer (keeps matching linear).
_ADMIN = rf"(?>{_N}{{1,7}}?(?:特别行政区|自治区|自治州|省|市|地区|盟|区|县|旗|镇|乡|街道))"
_ROAD = rf"{_N}{{1,10}}?(?:大道|大街|路|街|巷|弄|胡同|道)\s?[0-9]+\s?(?:号|弄)"
_ESTATE = rf"{_N}{{1,10}}?(?:小区|花园|公寓|大厦|广场|中心|新村|村|园|苑)"
# Building, unit, floor, room; a bare room number may close it ("2单元401").
_DETAIL = (
    r"(?:\s?[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?\s?(?:号楼|栋|幢|座|单元|层|楼|室|号|户))*"
    r"(?:(?:(?<=单元)|(?<=号楼)|(?<=[栋幢座层楼]))\s?[0-9]{2,5}(?![0-9])(?:室|房|户)?)?"
)
_ADDRESS = re.compile(rf"{_ADMIN}{{1,5}}\s?(?:{_ROAD}(?:{_ESTATE})?|{_ESTATE}){_DETAIL}")

# Long digit runs right after these words are order / tracking numbers, not cards or IDs.
_BUSINESS_CONTEXT = re.compile(r"(?:订单|单号|运单|快递|物流|工单|发票)[号码]?[:：是为\s]*$")
_CARD_CONTEXT = re.compile(r"(?:卡号|银行卡|储蓄卡|信用卡|借记卡|card)[号码]?[:：是为\s]*$", re.IGNORECASE)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _before(probe: str, start: int) -> str:
    return probe[max(0, start - 12):start]


def _business(m: re.Match, probe: str) -> bool:
    return bool(_BUSINESS_CONTEXT.search(_before(probe, m.start())))


def _is_card(m: re.Match, probe: str) -> bool:
    digits = re.sub(r"[^0-9]", "", m.group())
    if not 16 <= len(digits) <= 19 or _business(m, probe):
        return False
    # Luhn keeps other long numbers; an explicit "卡号" also covers the few cards that fail it.
    return _luhn(digits) or bool(_CARD_CONTEXT.search(_before(probe, m.start())))


# Earlier rules win where matches overlap.
_RULES = (
    (EMAIL, _EMAIL, None),
    (ID_CARD, _ID18, None),
    (BANK_CARD, _CARD, _is_card),
    (ID_CARD, _ID15, lambda m, probe: not _business(m, probe)),
    (PHONE, _MOBILE, None),
    (LANDLINE, _LANDLINE, None),
    (ADDRESS, _ADDRESS, None),
)


def redact(text: str) -> str:
    """`text` with personal data replaced by tags such as [手机号]; business identifiers are kept."""
    if not text:
        return text
    probe = text.translate(_PROBE)
    spans: list[tuple[int, int, str]] = []
    for tag, pattern, accept in _RULES:
        for m in pattern.finditer(probe):
            start, end = m.span()
            if any(start < e and s < end for s, e, _ in spans):
                continue
            if accept is None or accept(m, probe):
                spans.append((start, end, tag))
    if not spans:
        return text
    out, pos = [], 0
    for start, end, tag in sorted(spans):
        out += [text[pos:start], tag]
        pos = end
    out.append(text[pos:])
    return "".join(out)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts a record's message, arguments and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_assist_redacted", False):
            return True
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        record._assist_redacted = True
        return True


def install_log_redaction(logger_names: tuple[str, ...] = ("", "uvicorn", "uvicorn.error", "uvicorn.access")) -> None:
    """Add a RedactingFilter to every handler of these loggers (idempotent)."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """The one logging set-up of the CLI and the API: stderr, third-party libraries (faiss,
    onnxruntime, jieba) at WARNING, ours (`assist`, `api`) at `level`, every record PII-redacted.
    A second call only adjusts levels and filters (basicConfig keeps the first handler)."""
    import sys

    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, stream=sys.stderr)
    numeric = getattr(logging, level.upper(), logging.INFO)
    for name in ("assist", "api"):
        logging.getLogger(name).setLevel(numeric)
    install_log_redaction()


class _RecordQueueHandler(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record  # formatted by the real handlers in the listener (uvicorn's access formatter needs the args)


def log_off_the_request_path(name: str = "uvicorn.access"):
    """Move a logger's handlers to a background thread: a request only queues its record; formatting,
    redaction and the write happen in a listener thread. Returns the function that writes what is
    queued and puts the handlers back (call it at shutdown); a no-op when there is nothing to move."""
    import queue

    logger = logging.getLogger(name)
    handlers = list(logger.handlers)
    if not handlers or any(isinstance(h, _RecordQueueHandler) for h in handlers):
        return lambda: None
    records: queue.SimpleQueue = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    queued = _RecordQueueHandler(records)
    for handler in handlers:
        logger.removeHandler(handler)
    logger.addHandler(queued)
    listener.start()

    def restore() -> None:
        listener.stop()
        logger.removeHandler(queued)
        for handler in handlers:
            logger.addHandler(handler)

    return restore
