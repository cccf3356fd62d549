"""SentencePiece subwords: learned from the training rows only, cached, carried in checkpoints, learned by a model."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest

from s2s.assets import pack_assets
from s2s.checkpoint import Checkpoint
from s2s.config import load_config
from s2s.errors import ConfigError
from s2s.predict import Summarizer
from s2s.prepare import learn_tokenizer, prepare
from s2s.subwords import SentencePieceOptions, SentencePieceTokenizer
from s2s.tokenizers import build_tokenizer

from conftest import ROOT

pytest.importorskip("sentencepiece", reason="the subwords extra (sentencepiece) is not installed")

TEXTS = [
    "奔驰ML500方向机重，检查助力泵和方向机",
    "宝马X5 刹车异响  建议更换刹车片",
    "大众速腾的发动机抖动，检查火花塞和点火线圈",
    "你好 world，方向盘 有点重",
] * 30


def learned(tmp_path: Path, **options) -> SentencePieceTokenizer:
    """A tokenizer with a model learned from TEXTS."""
    cfg = SentencePieceOptions(type="sentencepiece", **options)
    model = tmp_path / "sp.model"
    model.write_bytes(SentencePieceTokenizer.learn(cfg, TEXTS))
    cfg.model = str(model)
    return build_tokenizer(cfg)


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_detokenizing_gives_back_the_text(tmp_path: Path, model_type: str) -> None:
    tokenizer = learned(tmp_path, model_type=model_type, vocab_size=60, character_coverage=1.0)
    for text in [*TEXTS[:4], "方向机 world 没见过的字：龘"]:
        tokens = tokenizer.tokenize(text)
        assert tokens and not any(any(c.isspace() for c in t) for t in tokens)
        assert tokenizer.detokenize(tokens) == " ".join(text.split())
    assert len(tokenizer.tokenize(TEXTS[0])) < len(TEXTS[0])  # pieces, not characters
    clone = pickle.loads(pickle.dumps(tokenizer))  # worker processes rebuild it from its options
    assert clone.cfg == tokenizer.cfg and clone.tokenize(TEXTS[1]) == tokenizer.tokenize(TEXTS[1])


def test_a_vocab_size_the_text_cannot_give_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tokenizer.vocab_size: 5000 pieces .* \(at most \d+\); lower it"):
        learned(tmp_path, vocab_size=5000)
    with pytest.raises(ConfigError, match=r"tokenizer.vocab_size: 20 pieces are fewer than the 56 that"):
        learned(tmp_path, vocab_size=20, character_coverage=1.0)


def test_no_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        build_tokenizer(SentencePieceOptions(type="sentencepiece", model=str(tmp_path / "none.model")))
    with pytest.raises(ConfigError, match="prepare the data first"):
        build_tokenizer(SentencePieceOptions(type="sentencepiece"))


def write_rows(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["QID", "Brand", "Model", "Question", "Dialogue", "Report"])
        for i, (question, report) in enumerate(rows):
            writer.writerow([f"Q{i}", "", "", question, "技师说：你好", report])
    return path


def test_learned_from_the_training_rows_only_and_cached(tmp_path: Path) -> None:
    marks = [chr(0x9F00 + i) for i in range(40)]  # one character of each row's own, in its question and report
    data = write_rows(tmp_path / "train.csv", [(TEXTS[i % 4] + mark, "检查" + mark) for i, mark in enumerate(marks)])
    overrides = [
        f"data.train={data}",
        "data.dev=null",
        "data.dev_split=0",
        "train.patience=0",
        f"data.cache_dir={tmp_path / 'cache'}",
    ]
    overrides += ["tokenizer=sentencepiece", "tokenizer.vocab_size=90", "tokenizer.character_coverage=1.0"]
    base = ROOT / "configs" / "automaster_base.yaml"
    cfg = load_config(base, [*overrides, "data.test_split=8"])
    prepared = prepare(cfg, progress=False)
    assert cfg.tokenizer.model == str(prepared.tokenizer_model)
    processor = build_tokenizer(cfg.tokenizer)._processor
    pieces = "".join(processor.id_to_piece(i) for i in range(processor.get_piece_size()))
    held_out = {int(ident[1:]) for ident in prepared.test_split.ids}
    assert len(held_out) == 8
    assert all((marks[i] in pieces) == (i not in held_out) for i in range(40))  # nothing learned from test rows

    mtime = prepared.tokenizer_model.stat().st_mtime_ns
    again = load_config(base, [*overrides, "data.test_split=8"])
    assert learn_tokenizer(again) == prepared.tokenizer_model and prepared.tokenizer_model.stat().st_mtime_ns == mtime
    other_rows = load_config(base, [*overrides, "data.test_split=8", "train.seed=2"])
    assert learn_tokenizer(other_rows) != prepared.tokenizer_model
    with pytest.raises(ConfigError, match="90 pieces are fewer than the 97 that"):
        learn_tokenizer(load_config(base, [*overrides, "data.test_split=0"]))


def test_a_model_learns_through_subwords_and_its_checkpoint_carries_the_tokenizer(train_toy, tmp_path: Path) -> None:
    """The RNN family reverses number sequences read as learned pieces; the checkpoint alone decodes them."""
    run = train_toy("reverse", "tokenizer=sentencepiece", "tokenizer.vocab_size=40", "tokenizer.character_coverage=1.0")
    best = run.result.best_checkpoint
    (best.parent / "sentencepiece.model").unlink()  # the run's copy and the cached one gone: another machine
    for model in (tmp_path / "cache").glob("*.model"):
        model.unlink()
    summarizer = Summarizer.load(best)
    assert Path(summarizer.cfg.tokenizer.model).parent == tmp_path / "cache" / "assets"
    pairs = [line.rstrip("\n").split("\t") for line in open(run.dev, encoding="utf-8")]
    pieces = [summarizer.tokenize(source) for source, _ in pairs]
    assert sum(map(len, pieces)) < sum(len(source.replace(" ", "")) for source, _ in pairs)  # merged pieces
    outputs = summarizer.summarize([source for source, _ in pairs])
    exact = sum(output == target for output, (_, target) in zip(outputs, pairs)) / len(pairs)
    assert exact >= 0.8, exact
    assert Checkpoint.load(best).assets["tokenizer.model"] == Path(summarizer.cfg.tokenizer.model).read_bytes()


def test_a_resumed_run_keeps_its_learned_model(train_toy) -> None:
    """The config given again says no model ("learn one"): the run's learned model is kept, not learned anew."""
    options = ("tokenizer=sentencepiece", "tokenizer.vocab_size=40", "train.max_steps=10", "train.eval_every=10")
    first = train_toy("reverse", *options)
    resumed = train_toy("reverse", *options[:2], "train.max_steps=20", "train.eval_every=10", "train.resume=auto")
    assert resumed.result.steps == 20
    assert (
        Checkpoint.load(resumed.result.last_checkpoint).assets == Checkpoint.load(first.result.last_checkpoint).assets
    )


def test_checkpoints_carry_a_jieba_user_dictionary(tmp_path: Path) -> None:
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("刹车异响 5 n\n", encoding="utf-8")
    cfg = load_config(
        ROOT / "configs" / "quickstart.yaml", [f"tokenizer.user_dict={user_dict}", f"data.cache_dir={tmp_path}"]
    )
    Checkpoint(cfg, ["a"], ["a"], {}, assets=pack_assets(cfg)).save(tmp_path / "ckpt.pt")
    assert Checkpoint.load(tmp_path / "ckpt.pt").config.tokenizer.user_dict == str(user_dict)  # still there: kept
    user_dict.unlink()
    restored = Path(Checkpoint.load(tmp_path / "ckpt.pt").config.tokenizer.user_dict)
    assert restored.parent == tmp_path / "assets" and restored.read_text(encoding="utf-8") == "刹车异响 5 n\n"
    assert build_tokenizer(Checkpoint.load(tmp_path / "ckpt.pt").config.tokenizer).tokenize("刹车异响") == ["刹车异响"]
