"""Config and registry: every mistake a user can make is named, located and explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2s.config import Config, load_config, save_config, to_dict
from s2s.errors import ConfigError
from s2s.registry import Registry


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_values(tmp_path) -> None:
    cfg = load_config(write(tmp_path / "c.yaml", "train:\n  max_steps: 10\n  optimizer: {lr: 1e-3}\n"))
    assert isinstance(cfg, Config)
    assert cfg.train.max_steps == 10
    assert cfg.train.optimizer.lr == 0.001  # PyYAML reads `1e-3` as a string; a float field takes it
    assert cfg.model.encoder.type == "lstm"  # untouched keys keep their defaults


def test_unknown_key_names_file_path_and_near_miss(tmp_path) -> None:
    path = write(tmp_path / "c.yaml", "model:\n  encoder:\n    hiden_size: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (
        str(err.value)
        == f"{path}: model.encoder.hiden_size: unknown option of encoder 'lstm' (did you mean 'hidden_size'?)"
    )


def test_unknown_key_without_near_miss_lists_the_keys(tmp_path) -> None:
    path = write(tmp_path / "c.yaml", "vocab:\n  flavour: 3\n")
    with pytest.raises(
        ConfigError, match=r"vocab.flavour: unknown key \(valid keys: shared, source_size, target_size, min_freq\)"
    ):
        load_config(path)


@pytest.mark.parametrize(
    "text,message",
    [
        ("train:\n  max_steps: ten\n", r"train.max_steps: expected an integer, got 'ten' \(str\)"),
        ("train:\n  max_steps: 1.5\n", r"train.max_steps: expected an integer, got 1.5"),
        ("train:\n  overwrite: 1\n", r"train.overwrite: expected true or false, got 1"),
        ("train:\n  amp: fp32\n", r"train.amp: expected one of none, bf16, fp16, got 'fp32'"),
        ("data:\n  source_fields: Question\n", r"data.source_fields: expected a list"),
        ("data:\n  source_fields: [Question, 3]\n", r"data.source_fields\[1\]: expected a string, got 3"),
        ("model: 3\n", r"model: expected a mapping, got 3"),
        ("train:\n  optimizer:\n    lr: fast\n", r"train.optimizer.lr: expected a number, got 'fast'"),
    ],
)
def test_wrong_types(tmp_path, text: str, message: str) -> None:
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError, match=f"^{path}: {message}"):
        load_config(path)


@pytest.mark.parametrize(
    "text,message",
    [
        ("train:\n  batch_size: 0\n", "train.batch_size: must be at least 1, got 0"),
        ("train:\n  label_smoothing: 1.0\n", r"train.label_smoothing: must be in \[0, 1\), got 1.0"),
        ("predict:\n  beam_size: 2\n  n_best: 3\n", "predict.n_best: 3 is more than beam_size 2"),
        ("model:\n  embeddings:\n    share_source_target: true\n", "needs vocab.shared: true"),
        ("data:\n  dev_split: 2.5\n", "data.dev_split: a count must be a whole number"),
    ],
)
def test_values_out_of_range(tmp_path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "c.yaml", text))


def test_overrides_parse_yaml_scalars_and_win(tmp_path) -> None:
    path = write(tmp_path / "c.yaml", "train:\n  max_steps: 10\n")
    cfg = load_config(
        path,
        [
            "train.max_steps=20",
            "model.encoder.type=gru",
            "data.source_fields=[Question]",
            "train.resume=",
            "data.clean.turn_separator=。",
            "train.optimizer.lr=3e-4",
        ],
    )
    assert cfg.train.max_steps == 20 and cfg.model.encoder.type == "gru"
    assert cfg.data.source_fields == ["Question"] and cfg.train.resume is None
    assert cfg.data.clean.turn_separator == "。" and cfg.train.optimizer.lr == 3e-4


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.max_steps", "bad override 'train.max_steps' \\(expected key.sub=value\\)"),
        ("=3", "bad override"),
        ("train..max_steps=3", "bad override"),
        (
            "train.max_step=3",
            r"command line \(train.max_step=3\): train.max_step: unknown key \(did you mean 'max_steps'\?\)",
        ),
        ("train.max_steps=many", r"command line \(train.max_steps=many\): train.max_steps: expected an integer"),
        ("train.max_steps=[1", "cannot parse"),
    ],
)
def test_bad_overrides(tmp_path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "c.yaml", ""), [override])


def test_base_chain_merges_and_later_values_win(tmp_path) -> None:
    write(
        tmp_path / "root.yaml", "train:\n  max_steps: 1\n  seed: 7\nmodel:\n  encoder: {type: gru, hidden_size: 64}\n"
    )
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "middle.yaml", "base: ../root.yaml\ntrain:\n  max_steps: 2\n")
    top = write(tmp_path / "sub" / "top.yaml", "base: middle.yaml\nmodel:\n  encoder: {hidden_size: 32}\n")
    cfg = load_config(top, ["train.seed=9"])
    assert cfg.train.max_steps == 2  # middle over root
    assert cfg.train.seed == 9  # command line over all files
    assert cfg.model.encoder.type == "gru" and cfg.model.encoder.hidden_size == 32  # mappings merge


def test_base_errors(tmp_path) -> None:
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="`base` chain loops"):
        load_config(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", "base: missing.yaml\n")
    with pytest.raises(ConfigError, match="config file not found: .*missing.yaml"):
        load_config(tmp_path / "c.yaml")
    write(tmp_path / "d.yaml", "base: c2.yaml\n")
    write(tmp_path / "c2.yaml", "train:\n  max_step: 1\n")
    with pytest.raises(ConfigError, match=r"c2.yaml: train.max_step: unknown key"):  # the file that has it
        load_config(tmp_path / "d.yaml")


def test_file_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "bad.yaml", "train: [\n"))
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(write(tmp_path / "list.yaml", "- 1\n"))


def test_saved_config_loads_back_identically(tmp_path) -> None:
    cfg = load_config(
        write(tmp_path / "c.yaml", "model:\n  decoder: {type: pointer_generator}\n"), ["train.max_steps=5"]
    )
    save_config(cfg, tmp_path / "resolved.yaml")
    assert to_dict(load_config(tmp_path / "resolved.yaml")) == to_dict(cfg)


def test_every_shipped_config_loads() -> None:
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert len(configs) >= 3
    for path in configs:
        load_config(path)


def test_registry() -> None:
    parts = Registry("encoder")

    @parts.register("lstm")
    def lstm(cfg, size):
        return ("lstm", cfg, size)

    @parts.register("gru")
    def gru(cfg, size):
        return ("gru", cfg, size)

    class Section:
        type = "gru"

    section = Section()
    assert parts.build(section, size=3) == ("gru", section, 3)  # factory(cfg, **kwargs)
    assert parts.names() == ["gru", "lstm"] and "lstm" in parts
    with pytest.raises(ConfigError) as err:
        parts.get("lsmt")
    assert str(err.value) == "unknown encoder 'lsmt' (choices: gru, lstm)"
    with pytest.raises(ValueError, match="registered twice"):
        parts.register("gru")(gru)
