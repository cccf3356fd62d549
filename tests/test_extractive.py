"""Segments, the greedy oracle and the extractive family's picking."""

from __future__ import annotations

import pytest

from s2s.oracle import OracleStats, best_segment, greedy_oracle, soft_labels
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


def test_soft_labels_grade_segments_by_rouge_l_over_the_best() -> None:
    labels = soft_labels(["天气很好", "更换机油", "机油"], "更换机油")
    assert labels[1] == 1.0 and labels[0] == 0.0 and 0.0 < labels[2] < 1.0
    assert labels[2] == greedy_oracle(["机油"], "更换机油", 1)[1]  # the best scores 1, so the others keep their F1
    assert soft_labels(["甲乙", "丙"], "丁") == [0.0, 0.0]


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


def _write_pick_task(path, rows: int, seed: int) -> None:
    """Sources of 4 sentences; the reference is the one that starts with "key" (anywhere in the source)."""
    import random

    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(rows):
            sentences = [[f"w{rng.randrange(30)}" for _ in range(rng.randint(2, 5))] + ["。"] for _ in range(4)]
            k = rng.randrange(4)
            sentences[k] = ["key", *sentences[k]]
            out.write(" ".join(w for s in sentences for w in s) + "\t" + " ".join(sentences[k]) + "\n")


def _train_on_pick_task(tmp_path, model: dict, max_steps: int, predict: dict):
    """A model of ``model``'s options trained on the pick task (600 rows, seed 0); its summarizer and the
    40 dev rows (source, reference)."""
    import torch

    from s2s.config import from_dict
    from s2s.predict import Summarizer
    from s2s.trainer import train

    _write_pick_task(tmp_path / "train.tsv", 600, 0)
    _write_pick_task(tmp_path / "dev.tsv", 40, 1)
    cfg = from_dict(
        {
            "data": {
                "format": "tsv",
                "train": str(tmp_path / "train.tsv"),
                "dev": str(tmp_path / "dev.tsv"),
                "cache_dir": str(tmp_path / "cache"),
                "max_source_len": 0,
                "max_target_len": 0,
            },
            "tokenizer": {"type": "whitespace"},
            "model": model,
            "train": {
                "output_dir": str(tmp_path / "run"),
                "batch_size": 32,
                "max_steps": max_steps,
                "eval_every": 0,
                "log_every": 50,
                "threads": 1,
                "optimizer": {"type": "adam", "lr": 0.01},
            },
            "predict": predict,
        }
    )
    torch.manual_seed(0)
    result = train(cfg, show_progress=False)
    rows = [line.rstrip("\n").split("\t") for line in open(tmp_path / "dev.tsv", encoding="utf-8")]
    return Summarizer.load(result.last_checkpoint, device="cpu"), rows


@pytest.mark.parametrize("soft", [False, True])
def test_extractive_learns_to_pick_the_marked_sentence_and_refuses_beam(tmp_path, soft: bool) -> None:

    from s2s.errors import ConfigError

    model = {
        "type": "extractive",
        "embeddings": {"size": 16},
        "word_encoder": {"type": "gru", "hidden_size": 16},
        "segment_encoder": {"type": "gru", "hidden_size": 16},
        "dropout": 0.0,
        "soft_labels": soft,
        "speaker_positions": 2,  # sentences have no speaker: their rank is their position
    }
    summarizer, rows = _train_on_pick_task(
        tmp_path, model, 150, {"search": "select", "max_length": 10, "max_segments": 1}
    )
    summaries = summarizer.summaries([source for source, _ in rows])
    right = sum(s.text.split() == reference.split() for s, (_, reference) in zip(summaries, rows))
    assert right >= 0.9 * len(rows), right
    assert len(summaries[0].segments) == 4 and sum(s["picked"] for s in summaries[0].segments) == 1
    with pytest.raises(ConfigError, match="select"):
        summarizer.summarize([rows[0][0]], search="beam")


def test_hybrid_learns_to_copy_the_marked_sentence_from_what_its_selector_picks(tmp_path) -> None:
    model = {
        "type": "hybrid",
        "embeddings": {"size": 16},
        "encoder": {"type": "gru", "hidden_size": 16},
        "decoder": {"type": "pointer_generator", "rnn": "gru", "hidden_size": 32},
        "selector": {"word_encoder": {"hidden_size": 16}, "segment_encoder": {"hidden_size": 16}},
        "attend_segments": 1,
    }
    summarizer, rows = _train_on_pick_task(tmp_path, model, 200, {"search": "greedy", "max_length": 10})
    summaries = summarizer.summarize([source for source, _ in rows])
    right = sum(s.split() == reference.split() for s, (_, reference) in zip(summaries, rows))
    assert right >= 0.7 * len(rows), right
    assert summarizer.summarize([rows[0][0]], search="beam", beam_size=2)[0]  # beam works unchanged


def test_extractive_checkpoints_ensemble_on_their_mean_segment_probabilities(tmp_path) -> None:
    from s2s.errors import ConfigError
    from s2s.extractive import SegmentEnsemble
    from s2s.predict import Summarizer

    model = {
        "type": "extractive",
        "embeddings": {"size": 8},
        "word_encoder": {"type": "gru", "hidden_size": 8},
        "segment_encoder": {"type": "gru", "hidden_size": 8},
    }
    single, rows = _train_on_pick_task(tmp_path, model, 20, {"search": "select", "max_length": 10})
    checkpoint = tmp_path / "run" / "last.pt"
    ensemble = Summarizer.load([checkpoint, checkpoint], device="cpu")
    assert isinstance(ensemble.model, SegmentEnsemble)
    shifted = Summarizer.load(checkpoint, device="cpu")
    for scorer in (shifted.model.scorer, ensemble.model.members[1].scorer):
        scorer.content.bias.data += 2.0  # one member scores every segment higher
    sources = [source for source, _ in rows[:8]]
    a, b, mean = (s.summaries(sources) for s in (single, shifted, ensemble))
    for x, y, m in zip(a, b, mean):
        scores = [(p["score"] + q["score"]) / 2 for p, q in zip(x.segments, y.segments)]
        assert [s["score"] for s in m.segments] == pytest.approx(scores, abs=1e-6)
        assert x.segments[0]["score"] != pytest.approx(y.segments[0]["score"], abs=1e-3)
    single.model.options.segments.unit = "turns"
    with pytest.raises(ConfigError, match="segments differently"):
        SegmentEnsemble([ensemble.model.members[0], single.model])


def test_speaker_positions_index_each_turn_by_its_speaker_and_its_rank_among_their_turns() -> None:
    from types import SimpleNamespace

    import torch

    from s2s.embeddings import Embeddings
    from s2s.extractive import SegmentScorer, SelectorOptions

    assert SegmentScorer(SelectorOptions(), Embeddings(10, 8, 0.0, 0)).speaker_rank is None  # off by default
    scorer = SegmentScorer(SelectorOptions(speaker_positions=3), Embeddings(10, 8, 0.0, 0))
    assert scorer.speaker_rank.num_embeddings == 3 * 3  # no speaker, technician, owner; 3 ranks each
    speakers = torch.tensor([[0, 1, 2, 1, 1, 1], [0, 2, 2, 0, 0, 0]])  # (batch, S)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    index = scorer.speaker_rank_index(SimpleNamespace(speakers=speakers, segment_mask=mask))
    assert index.tolist() == [[0, 3, 6, 4, 5, 5], [0, 6, 7, 0, 0, 0]]  # the 4th technician turn shares the 3rd's
