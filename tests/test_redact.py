import logging

import pytest

from assist.redact import RedactingFilter, redact

CASES = [
    # mobile numbers, in the shapes customers type them
    ("我的手机号是13812345678，麻烦回电", "我的手机号是[手机号]，麻烦回电"),
    ("电话 138-1234-5678 白天都在", "电话 [手机号] 白天都在"),
    ("打 139 1234 5678 找我", "打 [手机号] 找我"),
    ("+86 158 0000 1234 是我老婆的号", "[手机号] 是我老婆的号"),
    ("联系方式：+8618612345678", "联系方式：[手机号]"),
    ("收件人王女士 (+86)17712345678", "收件人王女士 [手机号]"),
    ("新号码１３９１２３４５６７８", "新号码[手机号]"),
    # ID cards: 18 digits (also with an X check digit) and the old 15-digit ones
    ("身份证110105199003072311，实名认证失败", "身份证[身份证号]，实名认证失败"),
    ("证件号 32010219780815123x", "证件号 [身份证号]"),
    ("老身份证号码是 110105900307231", "老身份证号码是 [身份证号]"),
    # bank cards, plain or grouped, Luhn-valid or named as a card
    ("退到我的卡 6222021234567890128 里", "退到我的卡 [银行卡号] 里"),
    ("卡号 6217 0012 3456 7893，工商银行", "卡号 [银行卡号]，工商银行"),
    ("银行卡号：6228480012345678901", "银行卡号：[银行卡号]"),
    ("信用卡 4367-4212-3456-7896 被扣了两次", "信用卡 [银行卡号] 被扣了两次"),
    # emails
    ("发票发到 zhang.san@example.com 吧", "发票发到 [邮箱] 吧"),
    ("邮箱12345678@qq.com", "邮箱[邮箱]"),
    # landlines
    ("公司座机 010-62345678 转 8001", "公司座机 [电话] 转 8001"),
    ("打(0571)88886666找前台", "打[电话]找前台"),
    # addresses
    ("收货地址：浙江省杭州市西湖区文三路199号3单元502室", "收货地址：[地址]"),
    ("我的地址是北京市朝阳区建国路88号", "我的地址是[地址]"),
    ("帮我改成上海市浦东新区世纪大道100号", "帮我改成[地址]"),
    ("寄到广东省深圳市南山区科苑路15号科兴科学园B座12楼，谢谢", "寄到[地址]，谢谢"),
    ("送到朝阳区望京阳光小区3号楼2单元401", "送到[地址]"),
    # several kinds in one message
    (
        "我叫李雷，电话13912345678，身份证440306198511224560，邮箱lilei@163.com",
        "我叫李雷，电话[手机号]，身份证[身份证号]，邮箱[邮箱]",
    ),
]

KEPT = [
    # business identifiers, amounts, dates and hotlines must survive untouched
    "订单号 DD202611230001 还没发货",
    "顺丰单号SF1234567890123一直没更新",
    "SKU-20931 和 SKU-20932 有什么区别",
    "订单 2026112300012345678 的退款",  # a long numeric order number after 订单
    "退款 1299.00 元，2026-11-23 到账",
    "我在上海市买的，11月23日下午3点下单",
    "客服热线 400-820-8820，工作时间 9:00-21:00",
    "京东订单JD0012345678901，尾号5678",
    "发票号码 12345678901234567890 需要重开",
    "优惠券满300减50，会员积分 123456",
    "型号 iPhone15 Pro 256G，价格 8999 元",
]


@pytest.mark.parametrize("text,expected", CASES)
def test_personal_data_is_replaced_by_tags(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_business_identifiers_amounts_and_dates_are_kept(text):
    assert redact(text) == text


def test_luhn_decides_unlabelled_long_numbers():
    assert redact("流水 6222021234567890128") == "流水 [银行卡号]"  # Luhn-valid: a card
    assert redact("流水 6222021234567890127") == "流水 6222021234567890127"  # Luhn-invalid, no card word


def test_the_log_filter_redacts_message_arguments_and_traceback():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "turn: %s (%d)", ("我的电话13812345678", 3), None)
    try:
        raise ValueError("bad email a.b@example.com")
    except ValueError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "turn: 我的电话[手机号] (3)"
    assert "[邮箱]" in record.exc_text and "a.b@example.com" not in record.exc_text
