"""s2s evaluate: file layouts, matching by QID or position, clear errors, levels, guards."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from s2s.errors import ConfigError, DataError
from s2s.evaluate import evaluate, format_report
from s2s.metrics import rouge

REPORTS = {"Q1": "方向机重，检查助力泵", "Q2": "建议更换火花塞", "Q3": "换机油和机滤"}
PREDICTIONS = {"Q1": "检查助力泵", "Q2": "更换火花塞和点火线圈", "Q3": "换机油"}


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def references_csv(path: Path, reports: dict[str, str] = REPORTS) -> Path:
    """An AutoMaster train-layout file."""
    header = ["QID", "Brand", "Model", "Question", "Dialogue", "Report"]
    rows = [[qid, "奔驰", "GL级", "问题，有逗号", "技师说：你好|车主说：好", report]
            for qid, report in reports.items()]
    return write_csv(path, header, rows)


def predictions_csv(path: Path, predictions: dict[str, str] = PREDICTIONS) -> Path:
    return write_csv(path, ["QID", "Prediction"], [list(item) for item in predictions.items()])


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def expected(level: str, qids: list[str] = list(REPORTS)) -> dict:
    return rouge([PREDICTIONS[q] for q in qids], [REPORTS[q] for q in qids], level)


def test_csv_matched_by_qid_in_any_order(tmp_path: Path) -> None:
    shuffled = {qid: PREDICTIONS[qid] for qid in ("Q3", "Q1", "Q2")}
    result = evaluate(predictions_csv(tmp_path / "p.csv", shuffled),
                      references_csv(tmp_path / "r.csv"))
    assert result["count"] == 3
    assert result["word"] == expected("word")
    assert result["char"] == expected("char")
    assert list(result) == ["count", "word", "char", "guards"]
    json.dumps(result)  # plain JSON types only


def test_text_against_text_by_position(tmp_path: Path) -> None:
    result = evaluate(write_lines(tmp_path / "p.txt", list(PREDICTIONS.values())),
                      write_lines(tmp_path / "r.txt", list(REPORTS.values())), level="char")
    assert result["char"] == expected("char")


def test_mixed_layouts_match_by_position(tmp_path: Path) -> None:
    text_refs = write_lines(tmp_path / "r.txt", list(REPORTS.values()))
    csv_refs = references_csv(tmp_path / "r.csv")
    result = evaluate(predictions_csv(tmp_path / "p.csv"), text_refs, level="char")
    assert result["char"] == expected("char")
    result = evaluate(write_lines(tmp_path / "p.txt", list(PREDICTIONS.values())), csv_refs, "char")
    assert result["char"] == expected("char")


def test_quoted_newlines_and_commas(tmp_path: Path) -> None:
    reports = {"Q1": "第一行，\n第二行，\"引号\"", "Q2": "a,b"}
    result = evaluate(predictions_csv(tmp_path / "p.csv", reports),
                      references_csv(tmp_path / "r.csv", reports), level="char")
    assert result["char"]["rouge-l"]["f"] == 1.0


@pytest.mark.parametrize("level,present", [("word", {"word"}), ("char", {"char"}),
                                           ("both", {"word", "char"})])
def test_only_asked_levels_appear(tmp_path: Path, level: str, present: set[str]) -> None:
    result = evaluate(predictions_csv(tmp_path / "p.csv"), references_csv(tmp_path / "r.csv"),
                      level)
    assert set(result) == {"count", "guards"} | present
    assert set(result["guards"]["repeated_trigrams"]) == present


def test_unknown_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown level 'chars'"):
        evaluate(predictions_csv(tmp_path / "p.csv"), references_csv(tmp_path / "r.csv"), "chars")


def test_unknown_and_missing_qids_are_listed(tmp_path: Path) -> None:
    predictions = {"Q1": "甲", "Q7": "乙", "Q9": "丙", "Q12": "丁"}
    with pytest.raises(DataError) as error:
        evaluate(predictions_csv(tmp_path / "p.csv", predictions),
                 references_csv(tmp_path / "r.csv"))
    message = str(error.value)
    assert "3 QIDs in predictions are not in references: Q7, Q9, Q12" in message
    assert "2 QIDs in references have no prediction: Q2, Q3" in message


def test_duplicate_qid_names_both_lines(tmp_path: Path) -> None:
    rows = [["Q1", "a"], ["Q2", "b"], ["Q1", "c"]]
    path = write_csv(tmp_path / "p.csv", ["QID", "Prediction"], rows)
    with pytest.raises(DataError, match=r"p\.csv:4: QID Q1 was already given on line 2"):
        evaluate(path, references_csv(tmp_path / "r.csv"))


def test_count_mismatch_lists_unmatched_lines(tmp_path: Path) -> None:
    predictions = write_lines(tmp_path / "p.txt", ["甲"])
    unmatched = r"1 predictions but .* 3 references; unmatched in .*r\.txt: lines 2, 3"
    with pytest.raises(DataError, match=unmatched):
        evaluate(predictions, write_lines(tmp_path / "r.txt", list(REPORTS.values())))


def test_empty_predictions_score_zero_and_are_counted(tmp_path: Path) -> None:
    predictions = write_lines(tmp_path / "p.txt", ["", REPORTS["Q2"], "  "])
    result = evaluate(predictions, write_lines(tmp_path / "r.txt", list(REPORTS.values())))
    assert result["count"] == 3
    for level in ("word", "char"):
        assert result[level]["rouge-l"]["f"] == pytest.approx(1 / 3)
    assert result["guards"]["empty"] == 2


def test_guards_on_crafted_outputs(tmp_path: Path) -> None:
    outputs = ["检查<unk>和<unk>", "更换<unk>", "甲乙丙甲乙丙", ""]
    result = evaluate(write_lines(tmp_path / "p.txt", outputs),
                      write_lines(tmp_path / "r.txt", ["参考"] * 4), level="char")
    g = result["guards"]
    assert (g["empty"], g["unk_outputs"], g["unk_tokens"]) == (1, 2, 3)
    # char trigrams: 检查<unk>和<unk> 11 (3 repeats: <un, unk, nk>), 更换<unk> 5, 甲乙丙甲乙丙 4 (1)
    assert g["repeated_trigrams"]["char"] == pytest.approx(4 / 20)
    assert "1 empty, 2 with <unk> (3 <unk> in all), repeated trigrams 20.00% (char)" in \
        format_report(result)


def test_format_report_has_one_line_per_level(tmp_path: Path) -> None:
    result = evaluate(predictions_csv(tmp_path / "p.csv"), references_csv(tmp_path / "r.csv"))
    lines = format_report(result).splitlines()
    assert lines[0] == "ROUGE F1 (%) over 3 examples"
    assert lines[1].split() == ["level", "ROUGE-1", "ROUGE-2", "ROUGE-L"]
    assert lines[2].split() == ["word"] + [f"{100 * result['word'][n]['f']:.2f}"
                                           for n in ("rouge-1", "rouge-2", "rouge-l")]
    assert lines[3].startswith("char") and lines[4].startswith("guards:")


def test_cut_off_reference_row_is_reported_with_its_line(tmp_path: Path) -> None:
    whole = references_csv(tmp_path / "whole.csv").read_text(encoding="utf-8")
    cut = tmp_path / "cut.csv"
    cut.write_text(whole + 'Q4,奔驰,GL级,"问题,还没', encoding="utf-8")
    with pytest.raises(DataError, match=r"cut\.csv:5: malformed CSV row .*must be whole"):
        evaluate(predictions_csv(tmp_path / "p.csv"), cut)
    cut.write_text(whole + "Q4,奔驰,GL级\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"cut\.csv:5: row has 3 fields but the header has 6"):
        evaluate(predictions_csv(tmp_path / "p.csv"), cut)


def test_header_errors_say_what_layout_is_needed(tmp_path: Path) -> None:
    test_layout = write_csv(tmp_path / "test.csv", ["QID", "Question"], [["Q1", "问"]])
    needs = r"test\.csv:1: references CSV needs .*Report.*found QID,Question"
    with pytest.raises(DataError, match=needs):
        evaluate(predictions_csv(tmp_path / "p.csv"), test_layout)
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="QID,Prediction.*found nothing"):
        evaluate(tmp_path / "empty.csv", references_csv(tmp_path / "r.csv"))


def test_unreadable_files(tmp_path: Path) -> None:
    refs = references_csv(tmp_path / "r.csv")
    with pytest.raises(DataError, match="cannot read the predictions file .No such file"):
        evaluate(tmp_path / "missing.csv", refs)
    (tmp_path / "gbk.txt").write_bytes("检查助力泵\n".encode("gbk"))
    with pytest.raises(DataError, match="gbk.txt: predictions file is not UTF-8"):
        evaluate(tmp_path / "gbk.txt", refs)
    (tmp_path / "none.txt").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="none.txt: no references"):
        evaluate(write_lines(tmp_path / "p.txt", ["甲"]), tmp_path / "none.txt")


def test_real_automaster_references(shared_data: Path, tmp_path: Path) -> None:
    with open(shared_data / "automaster" / "train.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    predictions = {row["QID"]: row["Question"] for row in reversed(rows)}
    result = evaluate(predictions_csv(tmp_path / "p.csv", predictions),
                      shared_data / "automaster" / "train.csv", level="char")
    assert result["count"] == len(rows) > 1000
    questions, reports = [row["Question"] for row in rows], [row["Report"] for row in rows]
    assert result["char"] == rouge(questions, reports, "char")
