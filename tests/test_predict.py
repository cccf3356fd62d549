"""Prediction on trained toy models: order, QIDs, copying, search quality, bad input."""

from __future__ import annotations

import csv
import io
import random
import statistics
import sys

import pytest
import torch

from s2s.errors import CheckpointError, ConfigError, DataError
from s2s.predict import Summarizer, predict_file

from conftest import train_toy_model


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    return train_toy_model(tmp_path_factory.mktemp("reverse"), "reverse", "train.max_steps=300")


@pytest.fixture(scope="module")
def copy_runs(tmp_path_factory):
    """Models trained to copy rare 'names' their target vocabulary lacks: (pointer-generator, plain)."""
    directory = tmp_path_factory.mktemp("copy")
    common = ("vocab.target_size=10", "vocab.source_size=20", "train.max_steps=400")
    return (
        train_toy_model(directory, "copy_names", "model.decoder.type=pointer_generator", *common, name="pgn"),
        train_toy_model(directory, "copy_names", "model.decoder.type=attention", *common, name="plain"),
    )


def test_csv_predictions_keep_input_order_and_qids(reverse_run, tmp_path) -> None:
    rng = random.Random(0)
    rows = [(f"Q{i}", " ".join(str(rng.randrange(20)) for _ in range(rng.randint(3, 10)))) for i in range(60)]
    path = tmp_path / "input.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["QID", "Brand", "Model", "Question", "Dialogue"])
        writer.writerows((qid, "b", "m", source, "") for qid, source in rows)
    output = tmp_path / "out.csv"
    assert predict_file(reverse_run.result.best_checkpoint, path, output) == 60
    with open(output, encoding="utf-8", newline="") as f:
        predicted = list(csv.reader(f))
    assert predicted[0] == ["QID", "Prediction"]
    assert [row[0] for row in predicted[1:]] == [qid for qid, _ in rows]  # batched by length, restored
    correct = sum(p[1].split() == s.split()[::-1] for p, (_, s) in zip(predicted[1:], rows))
    assert correct >= 50  # each line is the reverse of its own source


def test_a_bare_string_is_one_input(pointer_generator) -> None:
    summarizer = Summarizer.load(pointer_generator)
    one = summarizer.summarize("刹车异响怎么办", search="greedy", max_length=5)
    assert len(one) == 1  # was seven summaries, one per character
    assert one == summarizer.summarize(["刹车异响怎么办"], search="greedy", max_length=5)


def test_the_api_keys_name_the_source_fields_and_unknown_keys_are_refused(pointer_generator) -> None:
    from s2s.errors import DataError

    summarizer = Summarizer.load(pointer_generator)
    row = {"Question": "刹车异响", "Dialogue": "技师说：检查刹车片|车主说：好的"}
    as_sent = {"question": row["Question"], "dialogue": row["Dialogue"]}  # the HTTP API's keys
    assert summarizer.source_text(as_sent) == summarizer.source_text(row)  # were ignored: an empty source
    assert "刹车异响" in summarizer.source_text(as_sent) and "检查刹车片" in summarizer.source_text(as_sent)
    assert summarizer.summarize([as_sent], search="greedy") == summarizer.summarize([row], search="greedy")
    with pytest.raises(DataError, match="unknown field 'title': this model reads "):
        summarizer.summarize([{"title": "刹车异响", "question": "刹车"}])


def test_text_and_stdin_input(reverse_run, tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "input.txt"
    path.write_text("1 2 3\n\n4 5 6 7\n", encoding="utf-8")
    predict_file(reverse_run.result.best_checkpoint, path, tmp_path / "out.txt")
    lines = (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and lines[0] == "3 2 1" and lines[2] == "7 6 5 4"
    monkeypatch.setattr(sys, "stdin", io.StringIO("8 9 10\n"))
    predict_file(reverse_run.result.best_checkpoint, "-", None, options={"search": "beam"})
    assert capsys.readouterr().out == "10 9 8\n"


def test_summarizer_api_and_truncation_warning(reverse_run, caplog) -> None:
    summarizer = Summarizer.load(reverse_run.result.best_checkpoint)
    assert summarizer.summarize(["5 6 7"], beam_size=2) == ["7 6 5"]
    summarizer.cfg.data.max_source_len = 4
    summaries = summarizer.summaries(["1 2 3 4 5 6", "1 2", "9 8 7 6 5"])
    assert [len(s.source_tokens) for s in summaries] == [4, 2, 4]
    assert "2 inputs longer than data.max_source_len=4 tokens truncated" in caplog.text


def test_beam_finds_more_probable_hypotheses_than_greedy(reverse_run) -> None:
    """Beam search's best hypothesis has mean log-probability >= greedy's on a trained model."""
    summarizer = Summarizer.load(reverse_run.result.best_checkpoint)
    sources = [source for source, _ in reverse_run.pairs()]
    greedy = summarizer.decode(sources, summarizer.options(search="greedy"))
    beam = summarizer.decode(sources, summarizer.options(search="beam", beam_size=5))
    assert statistics.mean(b.score for b in beam) >= statistics.mean(g.score for g in greedy)
    assert sum(b.score > g.score + 1e-6 for b, g in zip(beam, greedy)) > 0  # and beam finds better ones


def test_pointer_generator_writes_copied_words_it_cannot_generate(copy_runs) -> None:
    pgn, plain = (Summarizer.load(run.result.best_checkpoint) for run in copy_runs)
    texts = ["w1 n4242 w3 n17 w0", "n999 w2 w2 n3"]
    assert not {"n4242", "n17", "n999", "n3"} & set(pgn.tgt_vocab.tokens)
    assert pgn.summarize(texts, search="beam") == ["n4242 n17", "n999 n3"]
    assert all("<unk>" in text for text in plain.summarize(texts))
    repaired = plain.summarize(texts, replace_unk=True)  # <unk> -> the most-attended source word
    assert "<unk>" not in " ".join(repaired) and all(w.startswith(("n", "w")) for t in repaired for w in t.split())


def test_lead_baseline_needs_no_checkpoint(tmp_path) -> None:
    path = tmp_path / "dialogues.csv"
    path.write_text(
        "QID,Brand,Model,Question,Dialogue\n"
        "Q1,b,m,车不着火,技师说：[语音]|车主说：怎么办|技师说：检查火花塞。再看油泵\n"
        'Q2,b,m,"刹车,异响",车主说：在吗|技师说：更换刹车片\n',
        encoding="utf-8",
    )
    predict_file(None, path, tmp_path / "lead.csv", baseline="lead")
    assert (tmp_path / "lead.csv").read_text(encoding="utf-8").splitlines() == [
        "QID,Prediction",
        "Q1,检查火花塞。再看油泵",
        "Q2,更换刹车片",
    ]


def test_oracle_baseline_picks_the_turn_closest_to_the_reference_and_leaves_rows_without_one_empty(tmp_path) -> None:
    path = tmp_path / "dialogues.csv"
    path.write_text(
        "QID,Brand,Model,Question,Dialogue,Report\n"
        "Q1,b,m,车不着火,技师说：检查火花塞|车主说：怎么办|技师说：更换油泵试试,建议更换油泵\n"
        "Q2,b,m,刹车异响,技师说：更换刹车片,\n",
        encoding="utf-8",
    )
    predict_file(None, path, tmp_path / "oracle.csv", baseline="oracle")
    assert (tmp_path / "oracle.csv").read_text(encoding="utf-8").splitlines() == [
        "QID,Prediction",
        "Q1,更换油泵试试",
        "Q2,",
    ]


def test_checkpoint_from_another_version_is_refused(reverse_run, tmp_path) -> None:
    ckpt = torch.load(reverse_run.result.best_checkpoint, weights_only=True)
    old = {**ckpt, "version": 0}
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="checkpoint format version 0; this s2s reads versions 1, 2"):
        Summarizer.load(tmp_path / "old.pt")
    broken = {**ckpt, "config": {**ckpt["config"], "model": {**ckpt["config"]["model"], "dropout_everywhere": 0.1}}}
    torch.save(broken, tmp_path / "other.pt")
    with pytest.raises(
        CheckpointError, match="model.dropout_everywhere: unknown option of model 'rnn'.*another version of s2s"
    ):
        Summarizer.load(tmp_path / "other.pt")


def truncated_csv(path, n: int = 40) -> list[str]:
    """An AutoMaster-layout CSV of ``n`` rows whose last row a kill cut short; returns the QIDs."""
    qids = [f"Q{i}" for i in range(n)]
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["QID", "Brand", "Model", "Question", "Dialogue"])
        writer.writerows((qid, "b", "m", "1 2 3", "") for qid in qids)
    path.write_text(path.read_text(encoding="utf-8").rstrip("\r\n").rsplit(",", 2)[0] + "\n", encoding="utf-8")
    return qids


def test_predict_has_a_row_for_every_qid_or_stops_before_decoding(reverse_run, tmp_path, monkeypatch) -> None:
    qids = truncated_csv(tmp_path / "input.csv")
    ckpt, output = reverse_run.result.best_checkpoint, tmp_path / "out.csv"
    decode = Summarizer.decode
    monkeypatch.setattr(Summarizer, "decode", lambda *a, **k: pytest.fail("decoded despite a bad row"))
    with pytest.raises(DataError, match=r"input.csv:41: 3 fields, expected 5 .*--on-bad-row empty"):
        predict_file(ckpt, tmp_path / "input.csv", output)
    assert not output.exists()
    monkeypatch.setattr(Summarizer, "decode", decode)
    assert predict_file(ckpt, tmp_path / "input.csv", output, on_bad_row="skip") == 39
    predict_file(ckpt, tmp_path / "input.csv", output, on_bad_row="empty")
    with open(output, encoding="utf-8", newline="") as f:
        predicted = list(csv.reader(f))[1:]
    assert [qid for qid, _ in predicted] == qids and predicted[-1] == ["Q39", ""] and predicted[0][1] == "3 2 1"


def test_an_unwritable_output_is_an_error_before_any_work(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Summarizer, "load", lambda *a, **k: pytest.fail("loaded the model first"))
    with pytest.raises(ConfigError, match="--output no/such/dir/x: the folder no/such/dir does not exist"):
        predict_file("best.pt", tmp_path / "input.csv", "no/such/dir/x")
    with pytest.raises(ConfigError, match="is a directory"):
        predict_file("best.pt", tmp_path / "input.csv", tmp_path)
