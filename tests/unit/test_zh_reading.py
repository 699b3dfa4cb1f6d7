"""Mandarin readings for espeak-ng (ivr/zh_reading.py): 两, 一/不 tone changes, polyphones by phrase.

Issue 11 measured 2,000 read 二千, 一笔 read yi1 and 为 in 到期日为 read wei4. The expected readings
below are standard Putonghua (Xiandai Hanyu Cidian), not the code's output copied back.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from ivr.script import FIELDS, VOICEMAIL_FIELDS, Script, load_script
from ivr.spoken import spoken_amount, spoken_date, spoken_digits
from ivr.tts import speakable, voice_for
from ivr.zh_reading import load_readings, shipped_readings, syllables, unresolved_polyphones, zh_reading
from tests.support.project import PROJECT_ROOT

READINGS = [
    ("您有一笔两千元的还款", "nin2 you3 yi4 bi3 liang3 qian1 yuan2 de5 huan2 kuan3"),
    ("这是第一次", "zhe4 shi4 di4 yi1 ci4"),
    ("一次还清", "yi2 ci4 huan2 qing1"),
    ("一个月", "yi2 ge4 yue4"),
    ("第一期", "di4 yi1 qi1"),
    ("十一期", "shi2 yi1 qi1"),
    ("一月一日", "yi1 yue4 yi1 ri4"),
    ("十一月十一日", "shi2 yi1 yue4 shi2 yi1 ri4"),
    ("二〇二一年", "er4 ling2 er4 yi1 nian2"),
    ("一千一百一十一元", "yi4 qian1 yi4 bai3 yi1 shi2 yi1 yuan2"),
    ("一万一千元", "yi2 wan4 yi4 qian1 yuan2"),
    ("二十一万", "er4 shi2 yi1 wan4"),
    ("一亿零一万", "yi2 yi4 ling2 yi2 wan4"),
    ("一起", "yi4 qi3"),
    ("一定", "yi2 ding4"),
    ("一些", "yi4 xie1"),
    ("一直", "yi4 zhi2"),
    ("请按1或说是", "qing3 an4 yi1 huo4 shuo1 shi4"),
    ("星期一到期", "xing1 qi1 yi1 dao4 qi1"),
    ("统一", "tong3 yi1"),
    ("唯一的", "wei2 yi1 de5"),
    ("万一您忘了", "wan4 yi1 nin2 wang4 le5"),
    ("看一看", "kan4 yi5 kan4"),
    ("不是", "bu2 shi4"),
    ("我不去", "wo3 bu2 qu4"),
    ("不对", "bu2 dui4"),
    ("不要再打了", "bu2 yao4 zai4 da3 le5"),
    ("不能", "bu4 neng2"),
    ("不好", "bu4 hao3"),
    ("不还款", "bu4 huan2 kuan3"),
    ("不一样", "bu4 yi2 yang4"),
    ("是不是", "shi4 bu2 shi4"),
    ("差不多", "cha4 bu5 duo1"),
    ("我不。", "wo3 bu4."),
    ("到期日为十二月一日", "dao4 qi1 ri4 wei2 shi2 er4 yue4 yi1 ri4"),
    ("还款金额为两千元", "huan2 kuan3 jin1 e2 wei2 liang3 qian1 yuan2"),
    ("还款期为三个月", "huan2 kuan3 qi1 wei2 san1 ge4 yue4"),
    ("为您服务", "wei4 nin2 fu2 wu4"),
    ("因为", "yin1 wei4"),
    ("作为", "zuo4 wei2"),
    ("还有一笔", "hai2 you3 yi4 bi3"),
    ("您还需还款吗？", "nin2 hai2 xu1 huan2 kuan3 ma5?"),
    ("要还的钱", "yao4 huan2 de5 qian2"),
    ("您还未还款", "nin2 hai2 wei4 huan2 kuan3"),
    ("尚未还款", "shang4 wei4 huan2 kuan3"),
    ("需要还款", "xu1 yao4 huan2 kuan3"),
    ("银行行长", "yin2 hang2 hang2 zhang3"),
    ("进行", "jin4 xing2"),
    ("重新输入", "chong2 xin1 shu1 ru4"),
    ("很重要", "hen3 zhong4 yao4"),
    ("获得", "huo4 de2"),
    ("记得还款", "ji4 de5 huan2 kuan3"),
    ("长期", "chang2 qi1"),
    ("增长", "zeng1 zhang3"),
    ("了解", "liao3 jie3"),
    ("打扰您了", "da3 rao3 nin2 le5"),
    ("与您商量还款计划", "yu3 nin2 shang1 liang5 huan2 kuan3 ji4 hua4"),
    ("您有2000元到期", "nin2 you3 liang3 qian1 yuan2 dao4 qi1"),
    ("共2笔", "gong4 liang3 bi3"),
]


@pytest.mark.parametrize(("text", "expected"), READINGS)
def test_reading(text: str, expected: str) -> None:
    assert zh_reading(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好", "ni3 hao3"),  # the 3-3 change is espeak-ng's own (test_zh_espeak.py)
        ("您好，这是我的电话。", "nin2 hao3, zhe4 shi4 wo3 de5 dian4 hua4."),
        ("请按时还款", "qing3 an4 shi2 huan2 kuan3"),
        ("本期应还金额", "ben3 qi1 ying1 huan2 jin1 e2"),
        ("绿色", "lv4 se4"),
        ("2026年12月1日", "er4 ling2 er4 liu4 nian2 shi2 er4 yue4 yi1 ri4"),
        ("人民币五角", "ren2 min2 bi4 wu3 jiao3"),
        ("共3期", "gong4 san1 qi1"),
        ("请拨打APP客服", "qing3 bo1 da3 APP ke4 fu2"),
        ("例如2 0 2 6 1 2 0 1。", "li4 ru2 er4 ling2 er4 liu4 yi1 er4 ling2 yi1."),
    ],
)
def test_text_around_the_hanzi(text: str, expected: str) -> None:
    assert zh_reading(text) == expected


def test_amount_and_date_fields_read_through() -> None:
    amount, due = spoken_amount(200000, "CNY", "zh-CN"), spoken_date(date(2026, 12, 1), "zh-CN")
    text = f"提醒您，您有一笔{amount}的还款，到期日为{due}。"
    assert zh_reading(text) == (
        "ti2 xing3 nin2, nin2 you3 yi4 bi3 ren2 min2 bi4 liang3 qian1 yuan2 zheng3 de5 huan2 kuan3, "
        "dao4 qi1 ri4 wei2 er4 ling2 er4 liu4 nian2 shi2 er4 yue4 yi1 ri4."
    )
    assert zh_reading(text).isascii()


def test_the_pinyin_voice_gets_the_reading_other_voices_the_text() -> None:
    text = "您有一笔两千元的还款，到期日为十二月一日。"
    assert speakable(text, voice_for("zh-CN")) == zh_reading(text)
    assert speakable("Hello 1", voice_for("en-US")) == "Hello 1"


def test_syllables_say_where_each_reading_came_from() -> None:
    found = {s.char: s for s in syllables("到期日为您有一笔还款")}
    assert (found["为"].pinyin, found["为"].source) == ("wei2", "override")  # pypinyin alone: wei4
    assert (found["一"].pinyin, found["一"].source) == ("yi4", "rule")
    assert (found["到"].pinyin, found["到"].source) == ("dao4", "phrase")  # 到期, pypinyin's phrase


# -- the shipped script --------------------------------------------------------------------------

SCRIPT = PROJECT_ROOT / "ivr" / "scripts" / "reminder-zh-CN.yaml"
# Sample accounts: amounts with 2s in every place and a 一 before each unit; names without polyphones.
ACCOUNTS = [("王小明", 222222, date(2026, 12, 1)), ("李华", 11110001, date(2027, 2, 22))]


def _prompts(script: Script) -> list[tuple[str, str]]:
    texts = list(script.templates())
    if script.voicemail is not None:
        texts.append(("voicemail.say", script.voicemail.say))
    rendered = []
    for name, amount, due in ACCOUNTS:
        fields = {
            "name": name,
            "amount": spoken_amount(amount, "CNY", script.locale),
            "currency": "人民币",
            "due_date": spoken_date(due, script.locale),
            "promised_date": spoken_date(date(2026, 12, 11), script.locale),
            "lender": script.lender,
            "callback": spoken_digits(script.callback, script.locale),
            "agent": script.voicemail.agent if script.voicemail else "",
            "business": script.lender,
        }
        assert set(fields) >= FIELDS | VOICEMAIL_FIELDS  # a new field needs a sample here
        rendered += [(where, text.format_map(fields)) for where, text in texts]
    return rendered


def test_every_shipped_zh_prompt_reads_its_polyphones_by_phrase() -> None:
    prompts = _prompts(load_script(SCRIPT))
    assert len(prompts) > 20
    unresolved = {f"{where}: {problem}" for where, text in prompts for problem in unresolved_polyphones(text)}
    assert sorted(unresolved) == [], "add a phrase to ivr/zh_phrases.yaml for each"
    for where, text in prompts:
        reading = zh_reading(text)
        assert reading.isascii() and all(c not in reading for c in "，。？"), (where, reading)


def test_a_polyphone_left_to_its_single_character_reading_is_reported() -> None:
    found = unresolved_polyphones("这个箱子很重，钱他还了吗？")  # 还 here is huan2: pypinyin says hai2
    assert found == ["重 zhong4 in 箱子很重钱他还", "还 hai2 in 重钱他还了吗"]
    assert unresolved_polyphones("您有一笔还款，到期日为十二月一日，打扰您了。") == []


def test_shipped_overrides_are_well_formed() -> None:
    readings = shipped_readings()
    assert readings.phrases["日为"] == ("ri4", "wei2")
    assert {"为", "还", "行", "重", "得", "长", "了"} <= readings.polyphones
    assert set(readings.defaults) <= readings.polyphones


# -- a bad overrides file is refused, naming the file and the entry -------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("phrases:\n  还款: huan2\n", r"zh\.yaml: phrases: 还款: 'huan2' must be 2 numbered pinyin"),
        ("phrases:\n  还款: huan kuan3\n", r"还款: .*\(not huan\)"),
        ("phrases:\n  还款: huan2 kuan7\n", r"\(not kuan7\)"),
        ("phrases:\n  huan: huan2\n", r"phrases: phrase 'huan' is not a run of Chinese characters"),
        ("phrases:\n  还款: [huan2, kuan3]\n", r"还款: \['huan2', 'kuan3'\] must be"),
        ("polyphones: 为\ndefaults:\n  还: hai2\n", r"defaults: 还 is not listed in polyphones"),
        ("polyphones: abc\n", r"polyphones must be Chinese characters"),
        ("- 还款\n", r"expected a mapping"),
        ("phrases: [1, 2]\n", r"phrases and defaults are mappings"),
        ("phrases: {还款: huan2 kuan3\n", r"not valid YAML"),
        ("phrasse:\n  还款: huan2 kuan3\n", r"expected a mapping"),
    ],
)
def test_bad_overrides_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "zh.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as caught:
        load_readings(path)
    assert str(path) in str(caught.value)


def test_long_text_reads_in_bounded_time() -> None:
    text = ("到期日为十二月一日，您有一笔两千元的还款，不要忘记。" * 400) + "一" * 20_000
    start = time.process_time()
    reading = zh_reading(text)
    elapsed = time.process_time() - start
    assert reading.count("wei2") == 400 and reading.endswith("yi1")
    assert elapsed < 5.0  # about 0.5 s here; linear in the text (no backtracking)
