"""Readers, cleaning and the lead baseline: real rows, and malformed rows in tmp files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from s2s.automaster import CleanConfig, clean_dialogue
from s2s.config import DataConfig
from s2s.errors import ConfigError, DataError
from s2s.readers import (
    Example,
    ReadStats,
    first_sentence,
    format_from_name,
    open_reader,
    read_examples,
    reader_options,
    resolve_format,
)

HEADER = "QID,Brand,Model,Question,Dialogue,Report\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def read(path: Path, need_target: bool = True, **cfg) -> list[Example]:
    fmt = cfg.pop("format", None) or format_from_name(str(path)) or "text"
    return list(read_examples(path, reader_options(fmt, **cfg), need_target=need_target))


def lead_summary(example: Example, fmt: str = "automaster") -> str:
    return open_reader(reader_options(fmt)).lead(example)


# ---------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------


def test_automaster_real_rows(shared_data: Path) -> None:
    stats = ReadStats()
    rows = list(read_examples(shared_data / "automaster/train.csv", DataConfig(), stats=stats))
    assert len(rows) == stats.rows == 1101 and not stats.malformed and not stats.empty
    first = rows[0]
    assert (first.id, first.line, first.target) == ("Q1", 2, "随时联系")
    assert first.source.startswith("方向机重，助力泵，方向机都换了还是一样 车主说：新的都换了|")
    assert "[语音]" not in first.source and "[图片]" not in first.source  # dropped by default
    assert first.raw["Dialogue"].startswith("技师说：[语音]|")  # raw stays as read
    assert rows[-1].id == "Q1301" and rows[-1].line == 1102
    assert all(r.source and r.target for r in rows)


def test_automaster_test_layout(shared_data: Path) -> None:
    path = shared_data / "automaster/test_sample.csv"
    with pytest.raises(DataError, match="header lacks Report"):
        read(path)
    rows = read(path, need_target=False)
    assert [r.id for r in rows] == ["Q1", "Q2", "Q3", "Q4"]
    assert all(r.target is None for r in rows)


def test_csl_tsv_real_rows_keep_quotes(shared_data: Path) -> None:
    rows = read(shared_data / "csl/ts_dev.tsv")
    assert len(rows) == 1000
    assert rows[0].id == "1" and rows[0].source.startswith("采用修正的Rodrigues参数")
    quoted = [r for r in rows if r.source.startswith('"') or r.target.startswith('"')]
    assert len(quoted) == 8  # a CSV dialect would have eaten these quotes
    assert rows[12].target == '"外部性"问题与"科斯定理"的伦理追问'
    assert all("to title" not in r.source for r in rows)


def test_lead_baseline_on_real_rows(shared_data: Path) -> None:
    rows = read(shared_data / "automaster/train.csv")
    assert lead_summary(rows[0]) == "不需要"  # its first technician turns are all [语音]
    assert lead_summary(rows[1]) == "你这个有没有电脑检测故障代码。"
    csl = read(shared_data / "csl/ts_dev.tsv")
    assert (
        lead_summary(csl[0]) == "采用修正的Rodrigues参数(MRP),建立了飞行器姿态控制系统的数学模型；"
        "利用刚体姿态动力学方程和运动学方程建立了带有转动惯量体坐标系各轴间耦合量的非线性控制系统模型；"
        "在镇定控制器设计中,用消去法建立了控制器与Lyapunov函数之间的关系,减少了在迭代算法求解过程中的"
        "迭代次数,提出了基于平方和(SOS)方法的一种新的设计方法."
    )


# ---------------------------------------------------------------------------------------------
# CSV: quoting, bad rows, headers, encodings
# ---------------------------------------------------------------------------------------------


def test_csv_quoted_newlines_and_commas(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "q.csv",
        HEADER + 'Q1,b,m,"问题,有逗号","技师说：第一行\n第二行|车主说：好",报告\n' + "Q2,b,m,q2,技师说：d,r\n",
    )
    rows = read(path)
    assert rows[0].source == "问题,有逗号 技师说：第一行\n第二行|车主说：好"
    assert [r.line for r in rows] == [2, 4]  # Q2 starts after the quoted newline


def test_csv_truncated_last_row_skip_and_error(tmp_path: Path, caplog) -> None:
    path = write(tmp_path, "t.csv", HEADER + "Q1,b,m,q,技师说：d,r\nQ2,b,m,q,技师说：被截")
    with caplog.at_level(logging.WARNING):
        rows = read(path)
    assert [r.id for r in rows] == ["Q1"]
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith("skipped 1 malformed row in t.csv (line 3; first: 5 fields, expected 6")
    with pytest.raises(DataError, match=r"t\.csv:3: 5 fields, expected 6 .*on_bad_row"):
        read(path, on_bad_row="error")


def test_csv_open_quote_swallowing_the_rest_is_malformed(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", HEADER + 'Q1,b,m,q,技师说：d,r\nQ2,b,m,q,"技师说：被截\nQ3,b,m,q,d,r\n')
    stats = ReadStats()
    rows = list(read_examples(path, DataConfig(), stats=stats))
    assert [r.id for r in rows] == ["Q1"] and stats.malformed == [3]


def test_csv_wrong_field_count_counted_and_located(tmp_path: Path, caplog) -> None:
    bad = "".join(f"Q{i},b,m,q,d\n" for i in range(7))
    path = write(tmp_path, "w.csv", HEADER + "Q0,b,m,q,d,r\n" + bad + "Q9,b,m,q,d,r,extra\n")
    stats = ReadStats()
    with caplog.at_level(logging.WARNING):
        rows = list(read_examples(path, DataConfig(), stats=stats))
    assert len(rows) == 1 and stats.malformed == list(range(3, 11))
    [message] = [r.getMessage() for r in caplog.records]
    assert "skipped 8 malformed rows in w.csv (lines 3, 4, 5, 6, 7, ...;" in message


def test_empty_target_skipped_for_training_kept_for_prediction(tmp_path: Path, caplog) -> None:
    path = write(tmp_path, "e.csv", HEADER + "Q1,b,m,q,d,r\nQ2,b,m,q,d,\nQ3,b,m,q,d,  \n")
    stats = ReadStats()
    with caplog.at_level(logging.WARNING):
        rows = list(read_examples(path, DataConfig(), stats=stats))
    assert [r.id for r in rows] == ["Q1"] and stats.empty == [3, 4]
    assert "skipped 2 rows with an empty source or target in e.csv (lines 3, 4)" in caplog.text
    assert len(read(path, need_target=False)) == 3


def test_missing_empty_and_wrong_header(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not found"):
        read(tmp_path / "nope")
    with pytest.raises(DataError, match="empty"):
        read(write(tmp_path, "empty.csv", ""))
    path = write(tmp_path, "h.csv", "id,question,dialogue,report\n1,q,d,r\n")
    with pytest.raises(DataError) as err:
        read(path)
    message = str(err.value)
    assert "header lacks Question, Dialogue, Report" in message
    assert "found id, question, dialogue, report" in message and "data.source_fields" in message
    rows = read(path, source_fields=["question", "dialogue"], target_field="report", id_field="id")
    assert (rows[0].id, rows[0].source, rows[0].target) == ("1", "q d", "r")


def test_non_utf8_names_byte_offset(tmp_path: Path) -> None:
    good = (HEADER + "Q1,b,m,q,d,r\n").encode()
    path = write(tmp_path, "gbk.csv", good + "Q2,b,m,问题,d,r\n".encode("gbk"))
    with pytest.raises(DataError, match=rf"gbk\.csv:3: not UTF-8 \(byte offset {len(good) + 7}"):
        read(path)


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + (HEADER + "Q1,b,m,q,d,r\n").encode())
    assert read(path)[0].id == "Q1"


def test_format_from_config_extension_or_prefix(tmp_path: Path) -> None:
    assert resolve_format(Path("x.CSV"), DataConfig()) == "automaster"
    assert resolve_format(Path("x.csv"), DataConfig(format="tsv")) == "tsv"
    write(tmp_path, "p.src", "a\n")
    assert resolve_format(tmp_path / "p", DataConfig()) == "parallel"
    with pytest.raises(
        DataError, match="set data.format to one of automaster, automaster_jsonl, csv, jsonl, parallel, text, tsv"
    ):
        resolve_format(write(tmp_path, "x.txt", "a\n"), DataConfig())
    with pytest.raises(ConfigError, match="unknown reader 'xml'"):
        resolve_format(Path("x.csv"), DataConfig(format="xml"))


# ---------------------------------------------------------------------------------------------
# TSV, parallel, JSONL, text
# ---------------------------------------------------------------------------------------------


def test_tsv_quoting_off_columns_and_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "d.tsv", '"引号"开头的源\t标题\n源二\t"标题"二\n只有一列\n\n源三\t标题三\r\n')
    stats = ReadStats()
    rows = list(read_examples(path, DataConfig(), stats=stats))
    assert [(r.id, r.source, r.target) for r in rows] == [
        ("1", '"引号"开头的源', "标题"),
        ("2", "源二", '"标题"二'),
        ("5", "源三", "标题三"),
    ]
    assert stats.malformed == [3]
    swapped = read(path, source_column=1, target_column=0)
    assert swapped[0].source == "标题"
    with pytest.raises(DataError, match="data.source_column is 5 but the rows have 2"):
        read(path, source_column=5)


def test_tsv_sources_only_for_prediction(tmp_path: Path) -> None:
    rows = read(write(tmp_path, "s.tsv", "一\n二\n"), need_target=False)
    assert [(r.source, r.target) for r in rows] == [("一", None), ("二", None)]


def test_parallel_reader_and_count_mismatch(tmp_path: Path) -> None:
    write(tmp_path, "train.src", "源 一\n源 二\n")
    write(tmp_path, "train.tgt", "目标一\n目标二")  # no newline at the end: still two lines
    rows = read(tmp_path / "train")
    assert [(r.id, r.source, r.target) for r in rows] == [
        ("1", "源 一", "目标一"),
        ("2", "源 二", "目标二"),
    ]
    write(tmp_path, "bad.src", "a\nb\nc\n")
    write(tmp_path, "bad.tgt", "x\ny\n")
    with pytest.raises(DataError, match=r"bad\.src has 3 lines but .*bad\.tgt has 2"):
        read(tmp_path / "bad")
    write(tmp_path, "only.src", "a\nb\n")
    assert [r.target for r in read(tmp_path / "only", need_target=False)] == [None, None]
    with pytest.raises(DataError, match=r"only\.tgt: file not found"):
        read(tmp_path / "only")


def test_jsonl_reader(tmp_path: Path) -> None:
    records = [
        {"QID": "a", "Question": "问", "Dialogue": "技师说：[图片]|技师说：答", "Report": "报告"},
        "not json",
        {"QID": "b", "Question": "问二"},
        {"QID": "c", "Question": 3, "Dialogue": None, "Report": "r"},
    ]
    text = "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records)
    path = write(tmp_path, "x.jsonl", text + "\n\n")
    stats = ReadStats()
    rows = list(read_examples(path, reader_options("automaster_jsonl"), stats=stats))  # AutoMaster rows: cleaned
    assert [(r.id, r.source, r.target) for r in rows] == [
        ("a", "问 技师说：答", "报告"),
        ("c", "3", "r"),
    ]
    plain = read(path)  # the generic reader leaves the fields as they are
    assert [(r.id, r.source) for r in plain] == [("a", "问 技师说：[图片]|技师说：答"), ("c", "3")]
    assert stats.malformed == [2, 3]
    with pytest.raises(DataError, match=r"x\.jsonl:2: not JSON"):
        read(path, on_bad_row="error")
    with pytest.raises(DataError, match="first record lacks Body"):
        read(path, source_fields=["Body"])


def test_text_reader_is_for_prediction(tmp_path: Path) -> None:
    path = write(tmp_path, "in.txt", "第一\n\n第三")
    rows = read(path, need_target=False, format="text")
    assert [(r.id, r.source, r.target) for r in rows] == [
        ("1", "第一", None),
        ("2", "", None),
        ("3", "第三", None),
    ]
    with pytest.raises(DataError, match="sources only"):
        read(path, format="text")


# ---------------------------------------------------------------------------------------------
# Cleaning and the lead baseline
# ---------------------------------------------------------------------------------------------

DIALOGUE = "技师说：[语音]|车主说：[图片]|车主说：车抖|技师说：换火花塞[图片]|技师说：好的"


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, "车主说：车抖|技师说：换火花塞|技师说：好的"),
        ({"drop_placeholders": False}, DIALOGUE),
        ({"strip_prefixes": True, "turn_separator": "。"}, "车抖。换火花塞。好的"),
        ({"technician_first": True}, "技师说：换火花塞|技师说：好的|车主说：车抖"),
    ],
)
def test_clean_dialogue(options: dict, expected: str) -> None:
    assert clean_dialogue(DIALOGUE, CleanConfig(**options)) == expected


def test_cleaning_touches_only_the_dialogue(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", HEADER + f"Q1,b,m,问题|[图片],{DIALOGUE},报告|[语音]\n")
    [row] = read(path, clean=CleanConfig(strip_prefixes=True, turn_separator=" "))
    assert row.source == "问题|[图片] 车抖 换火花塞 好的"
    assert row.target == "报告|[语音]"


def test_lead_summary_rules() -> None:
    automaster = Example(
        "Q",
        "ignored",
        None,
        2,
        {"Dialogue": "车主说：你好|技师说：[语音]|技师说： 换刹车片 |车主说：哦"},
    )
    assert lead_summary(automaster) == "换刹车片"
    assert lead_summary(Example("Q", "", None, 2, {"Dialogue": "技师说：[语音]"})) == ""
    assert lead_summary(Example("1", "  第一句。第二句！", None, 1)) == "第一句。"
    assert first_sentence("排量3.5升.很好") == "排量3.5升."
    assert first_sentence("。。") == ""
