"""Segments, the greedy oracle and the extractive family's picking."""

from __future__ import annotations

from s2s.oracle import OracleStats, best_segment, greedy_oracle
from s2s.segments import SegmentOptions, pick_segments, split_segments


def test_sentences_split_on_end_marks_and_a_source_without_one_is_one_segment() -> None:
    tokens = ["发动机", "异响", "。", "怎么", "办", "？", "谢谢"]
    assert [tuple(s) for s in split_segments(tokens, SegmentOptions())] == [(0, 3, 0), (3, 6, 0), (6, 7, 0)]
    assert [tuple(s) for s in split_segments(["没有", "句号"], SegmentOptions())] == [(0, 2, 0)]


def test_turns_keep_their_speaker_and_drop_the_prefix() -> None:
    tokens = ["问题", "|", "技师", "说", "：", "换", "油", "|", "|", "车主说：", "好"]
    spans = split_segments(tokens, SegmentOptions(unit="turns"))
    assert [tuple(s) for s in spans] == [(0, 1, 0), (5, 7, 1), (10, 11, 2)]


def test_greedy_oracle_picks_what_raises_char_rouge_l_and_stops() -> None:
    picked, f1 = greedy_oracle(["天气很好", "更换机油", "检查刹车"], "更换机油检查刹车", max_picks=3)
    assert picked == [1, 2] and f1 == 1.0
    assert greedy_oracle(["甲乙"], "丙丁", max_picks=3) == ([], 0.0)
    assert best_segment(["天气", "机油"], "换机油") == 1
    assert best_segment(["天气"], "  ") is None


def test_oracle_stats_count_rows_without_a_reference() -> None:
    stats = OracleStats()
    stats.add(3, [1], 0.5)
    stats.add(2, None, 0.0)
    assert stats.unlabelled == 1 and "1 rows without a reference" in stats.describe("train")


def test_pick_segments_keeps_the_budget_and_source_order_and_falls_back_below_one_segment() -> None:
    scores, lengths = [0.2, 0.9, 0.8], [3, 4, 5]
    assert pick_segments(scores, lengths, max_segments=2, min_score=0.0, budget=9) == [(1, 4), (2, 5)]
    assert pick_segments(scores, lengths, max_segments=2, min_score=0.0, budget=8) == [(0, 3), (1, 4)]
    assert pick_segments(scores, lengths, max_segments=3, min_score=0.5, budget=99) == [(1, 4), (2, 5)]
    assert pick_segments(scores, lengths, max_segments=1, min_score=0.0, budget=2) == [(1, 2)]  # cut to the budget
