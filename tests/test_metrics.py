"""Chinese ROUGE: agreement with rouge-score on real rows, hand-checkable cases, guards, MBR selection."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from s2s.errors import ConfigError
from s2s.metrics import (
    corpus_rouge,
    example_rouge,
    guards,
    lcs_length,
    mbr_rerank,
    mbr_select,
    mbr_utilities,
    repeated_ngram_rate,
    rouge,
    score,
    segment,
)
from s2s.registry import METRICS

LEVELS = ("word", "char")
TYPES = {"rouge1": "rouge-1", "rouge2": "rouge-2", "rougeL": "rouge-l"}


class _Whitespace:
    """rouge-score tokenizer over pre-segmented text: the tokens are the text's own."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


REFERENCE = rouge_scorer.RougeScorer(list(TYPES), tokenizer=_Whitespace())


def assert_agrees_with_rouge_score(predictions: list[str], references: list[str]) -> None:
    """Per-example and averaged P/R/F equal rouge-score's on the same segmentation, to 1e-6."""
    for level in LEVELS:
        preds, refs = segment(predictions, level), segment(references, level)
        expected = {name: {"p": 0.0, "r": 0.0, "f": 0.0} for name in TYPES.values()}
        for pred, ref in zip(preds, refs):
            theirs = REFERENCE.score(" ".join(ref), " ".join(pred))
            ours = example_rouge(pred, ref)
            for their_name, name in TYPES.items():
                s = theirs[their_name]
                for key, value in zip("prf", (s.precision, s.recall, s.fmeasure)):
                    assert ours[name][key] == pytest.approx(value, abs=1e-6), (level, name, pred)
                    expected[name][key] += value / len(preds)
        averaged = rouge(predictions, references, level)
        for name, expected_score in expected.items():
            for key, value in expected_score.items():
                assert averaged[name][key] == pytest.approx(value, abs=1e-6), (level, name, key)


def test_agrees_with_rouge_score_on_hand_made_chinese() -> None:
    predictions = [
        "奔驰的方向机重，建议检查助力泵。",
        "发动机抖动，可能是点火线圈或火花塞的问题",
        "",
        "换机油 换机油 换机油",
        "ABS灯亮了，检查轮速传感器和ABS泵。",
        "不需要匹配",
    ]
    references = [
        "方向机重，检查助力泵和方向机，更换的部件可能有问题",
        "火花塞老化会导致发动机抖动，建议检查点火线圈",
        "建议到4S店检查",
        "需要换机油和机滤",
        "abs灯亮，检查轮速传感器",
        "",
    ]
    assert_agrees_with_rouge_score(predictions, references)


def _automaster(root: Path, count: int) -> list[dict[str, str]]:
    with open(root / "automaster" / "train.csv", encoding="utf-8-sig", newline="") as f:
        return [row for _, row in zip(range(count), csv.DictReader(f))]


def _lead_turn(dialogue: str) -> str:
    """The first technician turn, without its speaker prefix ('' when there is none)."""
    turns = [t for t in dialogue.split("|") if t.startswith("技师说：")]
    return turns[0].removeprefix("技师说：") if turns else ""


def test_agrees_with_rouge_score_on_automaster(shared_data: Path) -> None:
    rows = _automaster(shared_data, 100)
    reports = [row["Report"] for row in rows]
    assert_agrees_with_rouge_score([_lead_turn(row["Dialogue"]) for row in rows], reports)
    assert_agrees_with_rouge_score([row["Question"] for row in rows], reports)


def test_agrees_with_rouge_score_on_csl(shared_data: Path) -> None:
    with open(shared_data / "csl" / "ts_test.tsv", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for _, line in zip(range(60), f)]
    first_sentences = [abstract.split("。")[0].split(".")[0] for _, abstract, _ in rows]
    assert_agrees_with_rouge_score(first_sentences, [title for _, _, title in rows])


@pytest.mark.parametrize("level", LEVELS)
def test_identical_scores_one_and_disjoint_zero(level: str) -> None:
    same = rouge(["方向机重，检查助力泵"], ["方向机重，检查助力泵"], level)
    assert all(same[name][key] == 1.0 for name in same for key in "prf")
    disjoint = rouge(["发动机抖动"], ["轮胎漏气了"], level)
    assert all(disjoint[name][key] == 0.0 for name in disjoint for key in "prf")


@pytest.mark.parametrize("level", LEVELS)
def test_empty_prediction_or_reference_scores_zero(level: str) -> None:
    for prediction, reference in [("", "检查助力泵"), ("检查助力泵", ""), ("", ""), (" \t", "检查")]:
        scores = rouge([prediction], [reference], level)
        assert all(scores[name][key] == 0.0 for name in scores for key in "prf")
    assert rouge([], [], level)["rouge-l"] == {"p": 0.0, "r": 0.0, "f": 0.0}


def test_known_lcs() -> None:
    assert lcs_length("ABCBDAB", "BDCABA") == 4  # the CLRS example: BCBA
    assert lcs_length("", "ABC") == 0
    scores = rouge(["甲乙丙丁"], ["乙丁甲"], "char")["rouge-l"]  # LCS 乙丁
    assert (scores["p"], scores["r"]) == (pytest.approx(2 / 4), pytest.approx(2 / 3))


def test_bit_parallel_lcs_equals_dynamic_programming() -> None:
    def table_lcs(a: str, b: str) -> int:
        row = [0] * (len(b) + 1)
        for x in a:
            diagonal, row[0] = 0, 0
            for j, y in enumerate(b, 1):
                diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
        return row[-1]

    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("车油机泵") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("车油机泵") for _ in range(rng.randint(0, 90)))
        assert lcs_length(a, b) == table_lcs(a, b), (a, b)


def test_whitespace_ignored_punctuation_kept_case_kept() -> None:
    assert rouge(["检查 助力泵"], ["检查助力泵"], "char")["rouge-2"]["f"] == 1.0
    [spaced] = segment(["检查 助力泵\t 方向机\u3000重 "], "word")
    assert spaced[-2:] == ["方向机", "重"] and "".join(spaced) == "检查助力泵方向机重"
    assert list(segment(["A B，c！"], "char")[0]) == ["A", "B", "，", "c", "！"]
    assert rouge(["，。！"], ["，。！"], "char")["rouge-1"]["f"] == 1.0
    assert rouge(["ABS"], ["abs"], "word")["rouge-1"]["f"] == 0.0
    assert list(segment(["ABS泵"], "char")[0]) == ["A", "B", "S", "泵"]  # ASCII not grouped


def test_unknown_words_never_match_each_other() -> None:
    """Rare characters a model vocabulary would map to one <unk> stay distinct strings."""
    for level in LEVELS:
        assert rouge(["犇骉"], ["羴猋"], level)["rouge-1"]["f"] == 0.0
        assert rouge(["<unk>"], ["犇"], level)["rouge-1"]["f"] == 0.0


def test_corpus_score_is_mean_of_examples() -> None:
    preds, refs = segment(["检查助力泵", "换机油"], "char"), segment(["检查助力泵", "更换轮胎"], "char")
    p, r = 1 / 3, 1 / 4  # 换 is the one shared character of the second pair
    mean_f1 = (1.0 + 2 * p * r / (p + r)) / 2
    assert corpus_rouge(preds, refs)["rouge-1"]["f"] == pytest.approx(mean_f1)


def test_unknown_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown ROUGE level 'chars'"):
        rouge(["a"], ["a"], "chars")


def test_registry_gives_the_metrics_best_checkpoints_are_kept_by() -> None:
    assert METRICS.names() == ["loss", "ppl", "rouge-1", "rouge-2", "rouge-l"]
    result = {"loss": 2.0, "ppl": 7.39, "scores": score(["甲乙丙丁"], ["乙丁甲"], levels=("char",))}
    rouge_l = METRICS.get("rouge-l")
    assert rouge_l.read(result) == pytest.approx(rouge(["甲乙丙丁"], ["乙丁甲"], "char")["rouge-l"]["f"])
    assert rouge_l.better(0.3, 0.2) and not rouge_l.better(0.2, 0.3) and rouge_l.better(0.1, None)
    loss = METRICS.get("loss")
    assert loss.read(result) == 2.0 and loss.lower_is_better and loss.better(1.0, 2.0)
    assert rouge_l.format(0.2871) == "ROUGE-L 28.71 (char)" and loss.format(3.2) == "loss 3.200"
    with pytest.raises(ConfigError, match="unknown metric 'bleu'"):
        METRICS.get("bleu")


def test_repeated_trigram_rate_is_pooled() -> None:
    # 换机油换机油: 4 trigrams, 1 repeated (换机油); 检查: none; 甲甲甲甲甲: 3 trigrams, 2 repeated
    assert repeated_ngram_rate(["换机油换机油", "检查", "甲甲甲甲甲"]) == pytest.approx(3 / 7)
    assert repeated_ngram_rate(["", "ab"]) == 0.0


def test_guards_count_empty_and_unk() -> None:
    predictions = ["", "  ", "检查<unk>和<unk>", "换<unk>", "正常输出"]
    found = guards(predictions, {"char": segment(predictions, "char")})
    assert (found["empty"], found["unk_outputs"], found["unk_tokens"]) == (2, 2, 3)
    assert set(found["repeated_trigrams"]) == {"char"}


@pytest.mark.parametrize("level", LEVELS)
def test_mbr_utility_is_mean_rouge_l_against_the_others(level: str) -> None:
    rng = random.Random(1)
    candidates = ["".join(rng.choice("检查更换助力泵机油") for _ in range(rng.randint(0, 12))) for _ in range(7)]
    candidates[3] = candidates[5]  # a duplicate
    tokens = segment(candidates, level)
    for i, utility in enumerate(mbr_utilities(candidates, level)):
        others = [example_rouge(tokens[i], tokens[j])["rouge-l"]["f"] for j in range(7) if j != i]
        assert utility == pytest.approx(sum(others) / 6)


def test_mbr_picks_the_consensus() -> None:
    candidates = ["检查助力泵", "更换轮胎", "检查助力泵和方向机", "建议检查助力泵"]
    assert mbr_select(candidates) == 0
    assert mbr_select(candidates, level="word") == 0
    assert mbr_select(["甲乙丙丁", "子丑寅卯", "甲乙丙戊"]) == 0


def test_mbr_over_one_candidate_returns_it() -> None:
    assert mbr_select(["检查助力泵"]) == 0
    assert mbr_utilities([""]) == [0.0]
    with pytest.raises(ValueError, match="at least one candidate"):
        mbr_select([])


def test_mbr_duplicates_count_and_ties_go_to_the_earlier() -> None:
    assert mbr_select(["甲乙丙", "子丑寅"]) == 0  # a tie
    assert mbr_select(["子丑寅", "甲乙丙"]) == 0
    assert mbr_select(["甲乙丙", "子丑寅", "子丑寅"]) == 1  # the duplicate agrees with it fully
    assert mbr_utilities(["甲乙丙", "子丑寅", "子丑寅"]) == [0.0, 0.5, 0.5]
    ranked = mbr_rerank(["甲乙丙", "子丑寅", "甲乙丁", "子丑寅"])
    assert [index for index, _ in ranked] == [1, 3, 0, 2]  # 1 and 3 tie, as do 0 and 2
    assert ranked[0][1] == pytest.approx(1 / 3) and ranked[2][1] == pytest.approx(2 / 9)


def test_mbr_weights_shift_the_choice() -> None:
    candidates = ["甲乙丙丁", "甲乙丙戊", "子丑寅卯", "子丑寅辰"]
    assert mbr_select(candidates) == 0  # both pairs agree alike: a tie
    assert mbr_select(candidates, weights=[1, 1, 1, 3]) == 2  # 3 makes its look-alike likelier
    assert mbr_select(candidates, weights=[1, 1, 1, 1]) == mbr_select(candidates)
    assert mbr_utilities(candidates, weights=[0, 0, 0, 1]) == [0.0, 0.0, 0.75, 0.0]
    with pytest.raises(ValueError, match="3 weights for 4 candidates"):
        mbr_select(candidates, weights=[1, 1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        mbr_select(candidates, weights=[1, 1, -1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        mbr_select(candidates, weights=[1, 1, float("nan"), 1])
