"""Several candidates per input: n-best JSONL, samples, MBR reranking, and what is refused."""

from __future__ import annotations

import json

import pytest
from test_average import tiny_checkpoint

from s2s.cli import main
from s2s.predict import Summary, mbr_order


@pytest.fixture
def run(tmp_path):
    """predict(*args) -> exit code, with an untrained beam-search checkpoint and a 3-line input."""
    tiny_checkpoint(tmp_path / "a.pt", 0, "predict.search=beam", "predict.beam_size=4")
    (tmp_path / "input.txt").write_text("1 2 3\n4 5 6 7 8\n9\n", encoding="utf-8")
    base = ["predict", "--checkpoint", str(tmp_path / "a.pt"), "--input", str(tmp_path / "input.txt")]
    return lambda *args: main([*base, *map(str, args)])


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def summary(text: str) -> Summary:
    return Summary(text, text.split(), [], 0.0)


def test_mbr_over_one_candidate_returns_it() -> None:
    only = summary("a b")
    assert mbr_order([only]) == [(only, 0.0)]


def test_mbr_picks_the_consensus() -> None:
    candidates = [summary("xyz"), summary("abcd"), summary("abce"), summary("abcf")]
    assert mbr_order(candidates)[0][0].text == "abcd"  # agrees most with the others; earliest of equals


def test_n_best_jsonl(run, tmp_path) -> None:
    assert run("--output", tmp_path / "one.txt") == 0
    assert run("--n-best", 3, "--output", tmp_path / "cands.jsonl") == 0
    rows = read_jsonl(tmp_path / "cands.jsonl")
    assert [row["id"] for row in rows] == ["1", "2", "3"]
    for row, best in zip(rows, (tmp_path / "one.txt").read_text(encoding="utf-8").splitlines()):
        scores = [c["score"] for c in row["candidates"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        assert row["prediction"] == row["candidates"][0]["text"] == best  # the 1-best is the plain output
        assert {c["search"] for c in row["candidates"]} == {"beam"}


def test_n_best_into_a_csv_or_with_greedy_is_refused(run, tmp_path, capsys) -> None:
    assert run("--n-best", 3, "--output", tmp_path / "out.csv") == 2
    assert (
        "3 candidates per input (3 from beam; predict.n_best, --sample) are written as JSONL" in capsys.readouterr().err
    )
    assert run("predict.n_best=2", "--output", tmp_path / "out.csv") == 2  # from a config: no longer ignored
    assert "give --output FILE.jsonl, not" in capsys.readouterr().err
    assert run("--search", "greedy", "--n-best", 2, "--output", tmp_path / "c.jsonl") == 2
    assert "greedy search finds one hypothesis per input" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_rerank_mbr_writes_the_mbr_candidate(run, tmp_path) -> None:
    assert run("--n-best", 4, "--rerank", "mbr", "--output", tmp_path / "mbr.txt") == 0
    assert run("--n-best", 4, "--rerank", "mbr", "--output", tmp_path / "mbr.jsonl") == 0
    rows = read_jsonl(tmp_path / "mbr.jsonl")
    for row, chosen in zip(rows, (tmp_path / "mbr.txt").read_text(encoding="utf-8").splitlines()):
        utilities = [c["mbr"] for c in row["candidates"]]
        assert utilities == sorted(utilities, reverse=True) and row["prediction"] == chosen


def test_rerank_of_one_candidate_changes_nothing(run, tmp_path, caplog) -> None:
    assert run("--output", tmp_path / "plain.txt") == 0
    assert run("--rerank", "mbr", "--output", tmp_path / "mbr.txt") == 0
    assert (tmp_path / "mbr.txt").read_text() == (tmp_path / "plain.txt").read_text()
    assert "changes nothing" in caplog.text


def test_samples_join_the_candidates_seeded(run, tmp_path, capsys) -> None:
    args = ("--sample", 5, "--temperature", 0.7, "--seed", 1)
    assert run(*args, "--output", tmp_path / "a.jsonl") == 0
    assert run(*args, "--output", tmp_path / "b.jsonl") == 0
    rows = read_jsonl(tmp_path / "a.jsonl")
    assert rows == read_jsonl(tmp_path / "b.jsonl")  # seeded
    assert [[c["search"] for c in row["candidates"]] for row in rows] == [["beam"] + ["sample"] * 5] * 3
    assert run("--search", "sample", "--n-best", 6, "--rerank", "mbr", "--output", tmp_path / "s.txt") == 0
    assert run("--temperature", 0.7, "--output", tmp_path / "t.txt") == 2  # beam search has no temperature
    assert "--temperature and --seed are options of sampling: add --sample N" in capsys.readouterr().err
