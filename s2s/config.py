"""The config: YAML files and ``key.sub=value`` overrides, checked into one tree of options.

    cfg = load_config("configs/quickstart.yaml", ["train.max_steps=100"])
    cfg.model.encoder.hidden_size  # -> 128

Sections: ``data`` (the reader named by ``data.format``, with its options), ``tokenizer``,
``vocab``, ``model`` (the family named by ``model.type``, and its parts), ``train`` (with its
``optimizer`` and ``scheduler``), ``predict`` (the searcher named by ``predict.search``). Each part
brings its own options (``s2s config --list KIND``; docs/config.md lists every key).

A file may start with ``base: other.yaml`` (relative to itself) to inherit; later values win,
mappings merge key by key. Unknown keys and wrong types are errors that name the file (or the
command-line override) and the dotted key, with the closest valid key for a near miss.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from s2s.errors import ConfigError
from s2s.options import (
    Dropout,
    Layers,
    NonNegativeFloat,
    NonNegativeInt,
    OptionError,
    PartOptions,
    PositiveInt,
    part,
)
from s2s.registry import METRICS, MODELS, OPTIMIZERS, READERS, SAMPLING, SCHEDULERS, SEARCHERS, TOKENIZERS

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Sections. Every option has a default, so a config only names what it changes.
# ---------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """What every reader takes; readers add their own options (``s2s config --list reader``)."""

    format: str | None = None  # the reader (automaster, csv, tsv, jsonl, ...); none: from data.train's name
    train: str | None = None  # path; for `parallel`, the prefix of PREFIX.src / PREFIX.tgt
    dev: str | None = None  # path of the dev set (none: data.dev_split carves one out of train)
    test: str | None = None  # a test set: prepare and train tokenize it (cached) and log its size; nothing reads it
    dev_split: NonNegativeFloat = 0.0  # without `dev`: a fraction (< 1) or a count (>= 1) of train rows
    test_split: NonNegativeFloat = 0.0  # train rows held out of training, selection and tuning: a fraction or a count
    split_seed: int | None = None  # the seed of dev_split and test_split; none: train.seed (ensembles: one split)
    max_source_len: NonNegativeInt = 400  # tokens kept of each source (0: all)
    max_target_len: NonNegativeInt = 100  # tokens kept of each target (0: all)
    on_bad_row: Literal["error", "skip"] = "skip"  # a malformed row stops the run, or is skipped with a warning
    cache_dir: str = "~/.cache/s2s"  # tokenized data is cached here, never beside the input
    num_workers: NonNegativeInt = 0  # tokenizer processes; 0: one per CPU core

    def validate(self, root: Any) -> None:
        for key in ("dev_split", "test_split"):
            size = getattr(self, key)
            if size >= 1 and size != int(size):
                raise OptionError(key, f"a count must be a whole number, got {size}")


@dataclass
class VocabConfig:
    shared: bool = False  # one vocabulary for source and target
    source_size: NonNegativeInt = 30000  # most frequent words kept, specials not counted (0: all)
    target_size: NonNegativeInt = 30000  # the same for the target side
    min_freq: PositiveInt = 1  # words seen fewer times are left out


@dataclass
class TrainConfig:
    output_dir: str = "runs/default"  # the run directory: checkpoints, logs, TensorBoard
    seed: int = 42  # everything random (initialization, batch order, dev split) follows from it
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA where there is one
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision, CUDA only
    threads: NonNegativeInt = 0  # torch CPU threads; 0: torch's default
    batch_size: PositiveInt = 32  # sentences per batch, used when batch_tokens is 0
    batch_tokens: NonNegativeInt = 0  # token budget per batch (padded source + target tokens)
    max_steps: NonNegativeInt = 0  # optimizer updates; 0: no limit (then max_epochs or max_minutes must be set)
    max_epochs: NonNegativeInt = 0  # 0: no limit (then max_steps or max_minutes must be set)
    max_minutes: NonNegativeFloat = 0.0  # stop after this much training time, resumes included (0: no limit)
    accumulate: PositiveInt = 1  # batches per optimizer update
    clip_grad_norm: NonNegativeFloat = 5.0  # 0: no clipping
    label_smoothing: Dropout = 0.0  # share of the target probability spread over the vocabulary
    scheduled_sampling: PartOptions = part(SAMPLING, "none")  # feed the decoder its own predictions (--list sampling)
    optimizer: PartOptions = part(OPTIMIZERS, "adam")  # s2s config --list optimizer
    scheduler: PartOptions = part(SCHEDULERS, "constant")  # s2s config --list scheduler
    eval_every: NonNegativeInt = 500  # steps between evaluations on the dev set (0: only at the end)
    eval_batch_size: PositiveInt = 64  # sentences per batch when evaluating
    keep_best_by: str = "rouge-l"  # the metric that picks best.pt (s2s config --list metric)
    keep_last: NonNegativeInt = 3  # step_N.pt checkpoints kept
    patience: NonNegativeInt = 0  # evaluations without improvement before stopping; 0: never stop early
    log_every: PositiveInt = 50  # steps between lines in train.log / metrics.jsonl
    log_gradient_flow: bool = False  # at each evaluation, ||dL/dh_t|| per source position to TensorBoard (plot extra)
    resume: str | None = None  # auto | path of a checkpoint
    overwrite: bool = False  # allow an output_dir that holds another run
    max_bad_steps: PositiveInt = 5  # NaN/inf losses in a row before the run stops

    def validate(self, root: Any) -> None:
        if self.keep_best_by not in METRICS:
            raise OptionError(
                "keep_best_by", f"unknown metric {self.keep_best_by!r} (choices: {', '.join(METRICS.names())})"
            )


@dataclass
class PredictConfig:
    """Decoding options, shared by the built-in searchers (the CLI and the HTTP API take them
    whatever the search); a searcher of your own may subclass this with options of its own."""

    search: str = "beam"  # the searcher: beam | greedy | sample
    beam_size: PositiveInt = 4  # hypotheses kept per sentence (beam)
    n_best: PositiveInt = 1  # hypotheses returned per sentence (beam: at most beam_size; sample: the samples)
    batch_size: PositiveInt = 32  # sentences per batch
    max_length: PositiveInt = 100  # output tokens at most
    max_length_ratio: NonNegativeFloat = 0.0  # > 0: also at most ratio x source length
    min_length: NonNegativeInt = 0  # output tokens at least (</s> is blocked before)
    alpha: NonNegativeFloat = 0.0  # length penalty (Wu et al. 2016); 0: none
    beta: NonNegativeFloat = 0.0  # coverage penalty (OpenNMT-py `summary`); 0: none
    no_repeat_ngram_size: NonNegativeInt = 0  # never repeat an n-gram of this size; 0: no blocking
    replace_unk: bool = False  # attention models: <unk> -> most-attended source token
    shortlist: NonNegativeInt = 0  # > 0: the output layer computes only the K most frequent target words + the source's

    def validate(self, root: Any) -> None:
        if self.n_best > self.beam_size:
            raise OptionError("n_best", f"{self.n_best} is more than beam_size {self.beam_size}")
        if self.min_length > self.max_length:
            raise OptionError("min_length", f"{self.min_length} is more than max_length {self.max_length}")


def _data_format(section: Mapping[str, Any]) -> str | None:
    """The reader when ``data.format`` is not given: what ``data.train`` implies."""
    from s2s.readers import implied_format

    return implied_format(section.get("train"))


@dataclass
class Config:
    data: DataConfig = part(READERS, "automaster", base=DataConfig, resolve=_data_format)  # s2s config --list reader
    tokenizer: PartOptions = part(TOKENIZERS, "jieba")  # s2s config --list tokenizer
    vocab: VocabConfig = field(default_factory=VocabConfig)
    model: PartOptions = part(MODELS, "rnn")  # the model family (s2s config --list model)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = part(SEARCHERS, "beam", base=PredictConfig)  # s2s config --list searcher


# Keys the closed layout before s2s 0.2 accepted in these sections for every part. Where the
# part now chosen does not take them (momentum for Adam, say), they are dropped with one warning.
V1_KEYS: dict[str, frozenset[str]] = {
    "data": frozenset(
        {"source_fields", "target_field", "id_field", "field_separator", "source_column", "target_column", "clean"}
    ),
    "tokenizer": frozenset({"user_dict", "keep_ascii_words"}),
    "model.attention": frozenset({"hidden_size"}),
    "train.optimizer": frozenset({"betas", "eps", "weight_decay", "momentum", "initial_accumulator_value"}),
    "train.scheduler": frozenset({"warmup_steps", "step_size", "gamma", "factor", "patience", "min_lr"}),
}

# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read ``path`` (following its ``base:`` chain), apply ``overrides``, check everything."""
    layers = Layers(Config, legacy=V1_KEYS)
    for file, raw in _read_with_bases(Path(path), seen=()):
        layers.add(raw, str(file))
    for override in overrides:
        layers.add(parse_override(override), f"command line ({override})")
    return _finish(layers, str(path))


@dataclass
class _DataSection:
    """A config's ``data`` section alone (nothing else is built, so no model part is imported)."""

    data: DataConfig = part(READERS, "automaster", base=DataConfig, resolve=_data_format)


def load_data_config(path: str | Path) -> DataConfig:
    """The ``data`` section of config ``path`` (its ``base:`` chain followed), checked; torch-free."""
    layers = Layers(_DataSection, legacy={"data": V1_KEYS["data"]})
    for file, raw in _read_with_bases(Path(path), seen=()):
        layers.add({"data": raw.get("data") or {}}, str(file))
    return layers.build().data


def from_dict(
    raw: Mapping[str, Any], source: str = "<dict>", changes: Mapping[str, Any] | None = None, changes_source: str = ""
) -> Config:
    """A ``Config`` from nested mappings (missing keys take their defaults), with ``changes``
    merged on top as a layer of their own (errors in them name ``changes_source``)."""
    layers = Layers(Config, legacy=V1_KEYS)
    layers.add(dict(raw), source)
    if changes:
        layers.add(dict(changes), changes_source or "changes")
    return _finish(layers, source)


def override(cfg: Config, *overrides: str) -> Config:
    """``cfg`` with ``key.sub=value`` overrides, checked as on the command line."""
    layers = Layers(Config, legacy=V1_KEYS)
    layers.add(to_dict(cfg), "config")
    for text in overrides:
        layers.add(parse_override(text), f"command line ({text})")
    return _finish(layers, "config")


def parse_override(text: str) -> dict[str, Any]:
    """``"train.max_steps=300"`` -> ``{"train": {"max_steps": 300}}`` (the value read as YAML)."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"command line: bad override {text!r} (expected key.sub=value)")
    try:
        parsed = yaml.safe_load(value) if value else None
    except yaml.YAMLError as err:
        raise ConfigError(f"command line: {key}: cannot parse {value!r}: {err}") from None
    nested: Any = parsed
    for name in reversed(key.split(".")):
        nested = {name: nested}
    return nested


def to_dict(cfg: Any) -> dict[str, Any]:
    """The plain nested mapping of a config (what is saved in run directories and checkpoints)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (readable, and loadable by ``load_config``)."""
    Path(path).write_text(config_yaml(cfg), encoding="utf-8")


def config_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)


def validate(cfg: Config, where: str | Callable[[str], str] = "<config>") -> None:
    """Checks across sections (each part checks its own options as it is built)."""
    source = where if callable(where) else (lambda key: where)
    if not cfg.data.dev and cfg.data.dev_split == 0:
        needs = [
            k
            for k, v in (
                ("train.patience", cfg.train.patience),
                ("train.scheduler.type: plateau", cfg.train.scheduler.type == "plateau"),
            )
            if v
        ]
        if needs:
            key = needs[0].split(":")[0]
            raise ConfigError(f"{source(key)}: {', '.join(needs)} needs a dev set: set data.dev or data.dev_split")


def check_training(cfg: Config) -> None:
    """What only training needs: a limit on its length."""
    t = cfg.train
    if not t.max_steps and not t.max_epochs and not t.max_minutes:
        raise ConfigError("train: set train.max_steps, train.max_epochs or train.max_minutes (all are 0)")
    if not cfg.data.train:
        raise ConfigError("data.train is not set: name the training file (or parallel prefix)")


def _finish(layers: Layers, source: str) -> Config:
    cfg = layers.build()
    validate(cfg, layers.where)
    if layers.ignored:
        log.warning(
            "%s: ignored %d option(s) that the chosen parts do not take (the layout before s2s 0.2 accepted them): %s",
            source,
            len(layers.ignored),
            ", ".join(layers.ignored),
        )
    return cfg


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> list[tuple[Path, dict[str, Any]]]:
    """The files of ``path``'s ``base:`` chain, the root first, each as a mapping."""
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ConfigError(f"{path}: `base` chain loops: {chain}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 (byte {err.start})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return [(path, raw)]
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a file name, got {base!r}")
    return [*_read_with_bases(path.parent / base, seen=(*seen, resolved)), (path, raw)]
