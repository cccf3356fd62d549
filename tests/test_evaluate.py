"""s2s evaluate: file layouts, matching by QID or position, clear errors, levels, guards,
bootstrap intervals and the paired test of two systems."""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import s2s.metrics
from s2s.cli import main
from s2s.errors import ConfigError, DataError
from s2s.evaluate import compare, evaluate, format_comparison, format_report
from s2s.metrics import ROUGE_NAMES, rouge

from conftest import ROOT

SAMPLE_DEV = ROOT / "data" / "automaster_sample_dev.csv"

REPORTS = {"Q1": "方向机重，检查助力泵", "Q2": "建议更换火花塞", "Q3": "换机油和机滤"}
PREDICTIONS = {"Q1": "检查助力泵", "Q2": "更换火花塞和点火线圈", "Q3": "换机油"}


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def references_csv(path: Path, reports: dict[str, str] = REPORTS) -> Path:
    """An AutoMaster train-layout file."""
    header = ["QID", "Brand", "Model", "Question", "Dialogue", "Report"]
    rows = [[qid, "奔驰", "GL级", "问题，有逗号", "技师说：你好|车主说：好", report] for qid, report in reports.items()]
    return write_csv(path, header, rows)


def predictions_csv(path: Path, predictions: dict[str, str] = PREDICTIONS) -> Path:
    return write_csv(path, ["QID", "Prediction"], [list(item) for item in predictions.items()])


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def expected(level: str, qids: list[str] | None = None) -> dict:
    qids = list(REPORTS) if qids is None else qids
    return rouge([PREDICTIONS[q] for q in qids], [REPORTS[q] for q in qids], level)


def test_csv_matched_by_qid_in_any_order(tmp_path: Path) -> None:
    shuffled = {qid: PREDICTIONS[qid] for qid in ("Q3", "Q1", "Q2")}
    result = evaluate(predictions_csv(tmp_path / "p.csv", shuffled), references_csv(tmp_path / "r.csv"))
    assert result["count"] == 3
    assert result["word"] == expected("word")
    assert result["char"] == expected("char")
    assert list(result) == ["count", "word", "char", "guards"]
    json.dumps(result)  # plain JSON types only


def test_text_against_text_by_position(tmp_path: Path) -> None:
    result = evaluate(
        write_lines(tmp_path / "p.txt", list(PREDICTIONS.values())),
        write_lines(tmp_path / "r.txt", list(REPORTS.values())),
        level="char",
    )
    assert result["char"] == expected("char")


def test_mixed_layouts_match_by_position(tmp_path: Path) -> None:
    text_refs = write_lines(tmp_path / "r.txt", list(REPORTS.values()))
    csv_refs = references_csv(tmp_path / "r.csv")
    result = evaluate(predictions_csv(tmp_path / "p.csv"), text_refs, level="char")
    assert result["char"] == expected("char")
    result = evaluate(write_lines(tmp_path / "p.txt", list(PREDICTIONS.values())), csv_refs, "char")
    assert result["char"] == expected("char")


def test_quoted_newlines_and_commas(tmp_path: Path) -> None:
    reports = {"Q1": '第一行，\n第二行，"引号"', "Q2": "a,b"}
    result = evaluate(
        predictions_csv(tmp_path / "p.csv", reports), references_csv(tmp_path / "r.csv", reports), level="char"
    )
    assert result["char"]["rouge-l"]["f"] == 1.0


@pytest.mark.parametrize("level,present", [("word", {"word"}), ("char", {"char"}), ("both", {"word", "char"})])
def test_only_asked_levels_appear(tmp_path: Path, level: str, present: set[str]) -> None:
    result = evaluate(predictions_csv(tmp_path / "p.csv"), references_csv(tmp_path / "r.csv"), level)
    assert set(result) == {"count", "guards"} | present
    assert set(result["guards"]["repeated_trigrams"]) == present


def test_unknown_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown level 'chars'"):
        evaluate(predictions_csv(tmp_path / "p.csv"), references_csv(tmp_path / "r.csv"), "chars")


def test_unknown_and_missing_qids_are_listed(tmp_path: Path) -> None:
    predictions = {"Q1": "甲", "Q7": "乙", "Q9": "丙", "Q12": "丁"}
    with pytest.raises(DataError) as error:
        evaluate(predictions_csv(tmp_path / "p.csv", predictions), references_csv(tmp_path / "r.csv"))
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
    result = evaluate(
        write_lines(tmp_path / "p.txt", outputs), write_lines(tmp_path / "r.txt", ["参考"] * 4), level="char"
    )
    g = result["guards"]
    assert (g["empty"], g["unk_outputs"], g["unk_tokens"]) == (1, 2, 3)
    # char trigrams: 检查<unk>和<unk> 11 (3 repeats: <un, unk, nk>), 更换<unk> 5, 甲乙丙甲乙丙 4 (1)
    assert g["repeated_trigrams"]["char"] == pytest.approx(4 / 20)
    assert "1 empty, 2 with <unk> (3 <unk> in all), repeated trigrams 20.00% (char)" in format_report(result)


def test_format_report_has_one_line_per_level(tmp_path: Path) -> None:
    result = evaluate(predictions_csv(tmp_path / "p.csv"), references_csv(tmp_path / "r.csv"))
    lines = format_report(result).splitlines()
    assert lines[0] == "ROUGE F1 (%) over 3 examples"
    assert lines[1].split() == ["level", "ROUGE-1", "ROUGE-2", "ROUGE-L"]
    assert lines[2].split() == ["word"] + [
        f"{100 * result['word'][n]['f']:.2f}" for n in ("rouge-1", "rouge-2", "rouge-l")
    ]
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
    result = evaluate(
        predictions_csv(tmp_path / "p.csv", predictions), shared_data / "automaster" / "train.csv", level="char"
    )
    assert result["count"] == len(rows) > 1000
    questions, reports = [row["Question"] for row in rows], [row["Report"] for row in rows]
    assert result["char"] == rouge(questions, reports, "char")


# --------------------------------------------------------------------------------------------
# References read through a reader's target field
# --------------------------------------------------------------------------------------------

TITLES = list(REPORTS.values())  # the targets of the three-field rows below, in order


def csl_tsv(path: Path) -> Path:
    """CSL's layout: a task tag, the source, the target."""
    return write_lines(path, [f"to title\t摘要{i}：{title}，还有别的\t{title}" for i, title in enumerate(TITLES)])


def test_tsv_references_are_their_target_column(tmp_path: Path) -> None:
    predictions = write_lines(tmp_path / "p.txt", list(PREDICTIONS.values()))
    result = evaluate(predictions, csl_tsv(tmp_path / "r.tsv"), level="char")
    assert result["char"] == expected("char")  # the whole line scored lower
    same = evaluate(predictions, csl_tsv(tmp_path / "r.txt"), level="char", fmt="tsv", target_field="2")
    assert same == result
    first = evaluate(predictions, csl_tsv(tmp_path / "r.tsv"), level="char", target_field="0")
    assert first["char"] != result["char"] and first["char"]["rouge-1"]["f"] == 0  # "to title" shares no character


def test_a_text_file_with_several_columns_is_refused(tmp_path: Path) -> None:
    predictions = write_lines(tmp_path / "p.txt", list(PREDICTIONS.values()))
    with pytest.raises(DataError, match=r"r\.txt:1: 3 tab-separated fields.*--format tsv"):
        evaluate(predictions, csl_tsv(tmp_path / "r.txt"))


def test_jsonl_references_by_field_and_qid(tmp_path: Path) -> None:
    rows = [{"QID": qid, "title": report} for qid, report in reversed(REPORTS.items())]
    refs = write_lines(tmp_path / "r.jsonl", [json.dumps(row, ensure_ascii=False) for row in rows])
    with pytest.raises(DataError, match="lacks Report"):
        evaluate(predictions_csv(tmp_path / "p.csv"), refs)
    result = evaluate(predictions_csv(tmp_path / "p.csv"), refs, level="char", target_field="title")
    assert result["char"] == expected("char")  # matched by QID: the references are in reverse order
    by_line = write_lines(tmp_path / "p.txt", list(reversed(PREDICTIONS.values())))
    assert evaluate(by_line, refs, level="char", target_field="title")["char"] == expected("char")


def test_parallel_references_are_the_target_file(tmp_path: Path) -> None:
    write_lines(tmp_path / "dev.src", ["源一", "源二", "源三"])
    write_lines(tmp_path / "dev.tgt", TITLES)
    predictions = write_lines(tmp_path / "p.txt", list(PREDICTIONS.values()))
    assert evaluate(predictions, tmp_path / "dev", level="char")["char"] == expected("char")
    with pytest.raises(ConfigError, match="--target-field x: parallel references have no fields"):
        evaluate(predictions, tmp_path / "dev", target_field="x")


def test_references_read_with_a_run_config(tmp_path: Path, capsys) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("data:\n  format: tsv\n  source_column: 1\n  target_column: 2\nmodel:\n  type: rnn\n")
    predictions = write_lines(tmp_path / "p.txt", list(PREDICTIONS.values()))
    swapped = write_lines(tmp_path / "s.tsv", [f"{title}\t源\t错" for title in TITLES])
    assert evaluate(predictions, swapped, level="char", config=config)["char"]["rouge-1"]["f"] == 0
    config.write_text("data:\n  format: tsv\n  source_column: 1\n  target_column: 0\n")
    assert evaluate(predictions, swapped, level="char", config=config)["char"] == expected("char")
    args = ["evaluate", "--predictions", str(predictions), "--references", str(swapped), "--level", "char"]
    assert main([*args, "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["char"] == expected("char")
    assert main([*args, "--target-field", "title"]) == 2
    assert "--target-field title: a tsv file's target is a column number" in capsys.readouterr().err


def test_real_csl_references_are_the_titles(shared_data: Path, tmp_path: Path) -> None:
    rows = [line.split("\t") for line in (shared_data / "csl" / "ts_dev.tsv").read_text(encoding="utf-8").splitlines()]
    leads = [abstract[:20] for _, abstract, _ in rows]
    result = evaluate(write_lines(tmp_path / "p.txt", leads), shared_data / "csl" / "ts_dev.tsv", level="char")
    assert result["count"] == len(rows) == 1000
    assert result["char"] == rouge(leads, [title for _, _, title in rows], "char")


# --------------------------------------------------------------------------------------------
# Bootstrap intervals and the paired test
# --------------------------------------------------------------------------------------------


def questions_csv(path: Path) -> Path:
    """The Question of each row of the shipped dev sample as its prediction (a weak system)."""
    with open(SAMPLE_DEV, encoding="utf-8-sig", newline="") as f:
        return predictions_csv(path, {row["QID"]: row["Question"] for row in csv.DictReader(f)})


def scores(result: dict) -> list[tuple[str, str, dict]]:
    return [(level, name, result[level][name]) for level in ("word", "char") if level in result for name in ROUGE_NAMES]


def synthetic(directory: Path, count: int = 100) -> tuple[list[str], dict[str, Path]]:
    """References (random 20-character strings) and text files of systems that garble some of
    their characters: "good" 2 of them, "bad" 8, "good2" 2 others."""
    rng = random.Random(0)
    references = ["".join(rng.choice("检查更换助力泵机油滤轮胎方向火花塞") for _ in range(20)) for _ in range(count)]

    def garbled(text: str, k: int) -> str:
        chars = list(text)
        for i in rng.sample(range(len(chars)), k):
            chars[i] = "某"
        return "".join(chars)

    systems = {"good": 2, "bad": 8, "good2": 2}
    paths = {
        name: write_lines(directory / f"{name}.txt", [garbled(r, k) for r in references]) for name, k in systems.items()
    }
    return references, {"refs": write_lines(directory / "refs.txt", references), **paths}


def test_bootstrap_interval_of_identical_files_is_a_point(tmp_path: Path) -> None:
    refs = references_csv(tmp_path / "r.csv")
    result = evaluate(predictions_csv(tmp_path / "p.csv", REPORTS), refs, bootstrap=200)
    for _, _, score in scores(result):
        assert score["f"] == 1.0 and score["f_ci"] == [1.0, 1.0]
    assert result["bootstrap"] == {"samples": 200, "seed": 12345, "confidence": 0.95, "interval": "percentile"}
    assert "100.00 [100.00, 100.00]" in format_report(result)


def test_bootstrap_interval_contains_the_score_and_seeds_repeat(tmp_path: Path) -> None:
    predictions = questions_csv(tmp_path / "q.csv")
    plain = evaluate(predictions, SAMPLE_DEV)
    result = evaluate(predictions, SAMPLE_DEV, bootstrap=500)
    for level, name, score in scores(result):
        low, high = score["f_ci"]
        assert low < score["f"] < high and high - low > 0.01, (level, name)
        assert {k: score[k] for k in "prf"} == plain[level][name]  # resampling leaves the scores alone
    assert evaluate(predictions, SAMPLE_DEV, bootstrap=500) == result
    other = evaluate(predictions, SAMPLE_DEV, bootstrap=500, seed=1)
    assert all(a["f_ci"] != b["f_ci"] for (_, _, a), (_, _, b) in zip(scores(result), scores(other)))
    assert "bootstrap" not in plain and "f_ci" not in plain["char"]["rouge-l"]


def test_bootstrap_table_prints_each_interval(tmp_path: Path) -> None:
    result = evaluate(questions_csv(tmp_path / "q.csv"), SAMPLE_DEV, level="char", bootstrap=100, seed=3)
    lines = format_report(result).splitlines()
    assert lines[0] == ("ROUGE F1 (%) over 30 examples, 95% percentile bootstrap intervals (100 resamples, seed 3)")
    cells = re.findall(r"(\d+\.\d\d) \[(\d+\.\d\d), (\d+\.\d\d)\]", lines[2])
    assert lines[2].startswith("char") and len(cells) == 3
    for (f, low, high), name in zip(cells, ROUGE_NAMES):
        score = result["char"][name]
        assert (f, low, high) == tuple(f"{100 * v:.2f}" for v in (score["f"], *score["f_ci"]))


def test_texts_are_segmented_and_scored_once(tmp_path: Path, monkeypatch) -> None:
    calls = {"segment": 0, "score": 0}

    def counted(function, key):
        def wrapper(*args):
            calls[key] += 1
            return function(*args)

        return wrapper

    for level, split in list(s2s.metrics.SEGMENTERS.items()):
        monkeypatch.setitem(s2s.metrics.SEGMENTERS, level, counted(split, "segment"))
    monkeypatch.setattr(s2s.metrics, "example_rouge", counted(s2s.metrics.example_rouge, "score"))
    evaluate(questions_csv(tmp_path / "q.csv"), SAMPLE_DEV, bootstrap=50)
    assert calls == {"segment": 2 * 2 * 30, "score": 2 * 30}  # 2 levels, predictions and references
    calls.update(segment=0, score=0)
    compare(questions_csv(tmp_path / "q.csv"), questions_csv(tmp_path / "q2.csv"), SAMPLE_DEV, bootstrap=50)
    assert calls == {"segment": 2 * 3 * 30, "score": 2 * 2 * 30}  # references once for both systems


def test_a_clearly_better_system_wins_the_paired_test(tmp_path: Path) -> None:
    _, files = synthetic(tmp_path)
    result = compare(files["good"], files["bad"], files["refs"], bootstrap=1000)
    assert result["count"] == 100
    for level, name, d in [(lvl, n, result["difference"][lvl][n]) for lvl in ("word", "char") for n in ROUGE_NAMES]:
        assert d["f"] > 0.05 and d["p"] < 0.05 and d["p_reverse"] > 0.95 and d["verdict"] == "a better", (level, name)
    reverse = compare(files["bad"], files["good"], files["refs"], bootstrap=1000)
    assert {d["verdict"] for diffs in reverse["difference"].values() for d in diffs.values()} == {"b better"}
    assert all(d["p"] > 0.95 for diffs in reverse["difference"].values() for d in diffs.values())


def test_equal_systems_are_within_the_noise(tmp_path: Path) -> None:
    _, files = synthetic(tmp_path)
    result = compare(files["good"], files["good2"], files["refs"], level="char")
    differences = result["difference"]["char"]
    assert {d["verdict"] for d in differences.values()} == {"within noise"}
    assert all(d["p"] >= 0.05 and d["p_reverse"] >= 0.05 for d in differences.values())
    # the same number of garbled characters: equal unigram overlap and LCS in every example
    assert differences["rouge-1"]["f"] == pytest.approx(0) and differences["rouge-1"]["p"] == 1.0
    same = compare(files["good"], files["good"], files["refs"], level="char", bootstrap=100)
    assert all(
        d["f"] == 0 and d["p"] == 1.0 and d["verdict"] == "within noise" for d in same["difference"]["char"].values()
    )


def test_compare_reports_both_systems_with_the_intervals_evaluate_gives(tmp_path: Path) -> None:
    _, files = synthetic(tmp_path, count=40)
    result = compare(files["good"], files["bad"], files["refs"], bootstrap=300, seed=9)
    alone = evaluate(files["good"], files["refs"], bootstrap=300, seed=9)
    assert result["a"] == {key: value for key, value in alone.items() if key != "bootstrap"}
    assert result["bootstrap"]["samples"] == 300 and result["compare"] == str(files["bad"])
    assert compare(files["good"], files["bad"], files["refs"], bootstrap=300, seed=9) == result
    json.dumps(result)
    lines = format_comparison(result).splitlines()
    assert lines[0] == f"ROUGE F1 (%) over 40 examples; a: {files['good']}, b: {files['bad']}"
    assert lines[2].split()[:4] == ["level", "score", "a", "b"]
    word_r1 = lines[3].split()
    d = result["difference"]["word"]["rouge-1"]
    assert word_r1[:3] == ["word", "ROUGE-1", f"{100 * result['a']['word']['rouge-1']['f']:.2f}"]
    assert word_r1[-4:] == [f"{100 * d['f']:+.2f}", f"{d['p']:.3f}", "a", "better"]
    assert lines[-2].startswith("guards a:") and lines[-1].startswith("guards b:")


def test_compare_names_the_qids_that_differ(tmp_path: Path) -> None:
    refs = references_csv(tmp_path / "r.csv")
    other = predictions_csv(tmp_path / "b.csv", {"Q1": "甲", "Q2": "乙", "Q9": "丙"})
    with pytest.raises(DataError) as error:
        compare(predictions_csv(tmp_path / "a.csv"), other, refs)
    message = str(error.value)
    assert f"{other} vs {refs}" in message
    assert "1 QIDs in predictions are not in references: Q9" in message
    assert "1 QIDs in references have no prediction: Q3" in message


def test_bad_resample_counts(tmp_path: Path) -> None:
    predictions, refs = predictions_csv(tmp_path / "p.csv"), references_csv(tmp_path / "r.csv")
    with pytest.raises(ConfigError, match="--bootstrap -1"):
        evaluate(predictions, refs, bootstrap=-1)
    with pytest.raises(ConfigError, match="--compare needs at least 1 resample"):
        compare(predictions, predictions, refs, bootstrap=0)


def test_cli_bootstrap_and_compare(tmp_path: Path, capsys) -> None:
    _, files = synthetic(tmp_path, count=30)
    common = ["--references", str(files["refs"]), "--level", "char"]
    assert main(["evaluate", "--predictions", str(files["good"]), *common, "--bootstrap", "100"]) == 0
    assert "100 resamples, seed 12345" in capsys.readouterr().out
    assert main(["evaluate", "--predictions", str(files["good"]), "--compare", str(files["bad"]), *common]) == 0
    out = capsys.readouterr().out
    assert "1,000 resamples, seed 12345" in out and out.count("a better") == 3
    assert (
        main(
            [
                "evaluate",
                "--predictions",
                str(files["good"]),
                "--compare",
                str(files["bad"]),
                *common,
                "--bootstrap",
                "50",
                "--seed",
                "4",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["bootstrap"]["samples"] == 50 and result["bootstrap"]["seed"] == 4
    assert result == compare(files["good"], files["bad"], files["refs"], "char", bootstrap=50, seed=4)


def test_evaluate_never_imports_torch(tmp_path: Path) -> None:
    """The modules of s2s evaluate, and the command itself, stay torch- and numpy-free.

    The package's own __init__ is bypassed (today it imports the model parts); what is checked
    is what s2s.metrics, s2s.significance, s2s.evaluate and s2s.cli import themselves.
    """
    references, files = synthetic(tmp_path, count=10)
    tsv = write_lines(tmp_path / "refs.tsv", [f"源\t{reference}" for reference in references])
    config = tmp_path / "config.yaml"
    config.write_text("data:\n  format: tsv\nmodel:\n  type: transformer\n", encoding="utf-8")
    script = f"""
import sys, types
package = types.ModuleType("s2s")
package.__path__ = [{str(ROOT / "s2s")!r}]
sys.modules["s2s"] = package
import s2s.metrics, s2s.significance, s2s.evaluate
from s2s.cli import main
assert main(["evaluate", "--predictions", {str(files["good"])!r}, "--compare", {str(files["bad"])!r},
             "--references", {str(files["refs"])!r}, "--bootstrap", "20"]) == 0
assert main(["evaluate", "--predictions", {str(files["good"])!r}, "--references", {str(tsv)!r},
             "--config", {str(config)!r}, "--format", "tsv"]) == 0
assert s2s.metrics.mbr_select(["检查助力泵", "检查助力泵和方向机"], level="word") == 0
imported = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "numpy"))
assert not imported, imported
"""
    process = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    assert "a better" in process.stdout
