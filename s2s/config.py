"""Typed configuration: YAML files and ``key.sub=value`` overrides → validated dataclasses.

    cfg = load_config("configs/quickstart.yaml", ["train.max_steps=100"])
    cfg.model.encoder.hidden_size  # -> 128

A file may start with ``base: other.yaml`` (relative to itself) to inherit; later values win,
mappings merge key by key. Unknown keys and wrong types are errors that name the dotted path
and the file (or the command line), with the closest valid key for a near miss.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from s2s.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Sections. Every field has a default, so a config only names what it changes.
# ---------------------------------------------------------------------------------------------


@dataclass
class CleanConfig:
    """How AutoMaster dialogues are cleaned before tokenization."""

    strip_prefixes: bool = False  # drop the `技师说：` / `车主说：` turn prefixes
    drop_placeholders: bool = True  # drop `[语音]` / `[图片]`, and turns left empty by it
    turn_separator: str = "|"  # placed between dialogue turns (the raw data uses `|`)
    technician_first: bool = False  # technician turns first, then the owner's


@dataclass
class DataConfig:
    train: str | None = None  # path; for `parallel`, the prefix of PREFIX.src / PREFIX.tgt
    dev: str | None = None
    test: str | None = None
    format: str | None = None  # automaster | tsv | parallel | jsonl; None: from the extension
    dev_split: float = 0.0  # without `dev`: a fraction (< 1) or a count (>= 1) of train rows
    source_fields: list[str] = field(default_factory=lambda: ["Question", "Dialogue"])
    target_field: str = "Report"  # csv / jsonl field of the target
    id_field: str = "QID"  # csv / jsonl field that names a row
    field_separator: str = " "  # placed between the source fields
    source_column: int = -2  # tsv: column of the source (negative counts from the end)
    target_column: int = -1  # tsv: column of the target
    clean: CleanConfig = field(default_factory=CleanConfig)
    max_source_len: int = 400  # tokens kept of each source (0: all)
    max_target_len: int = 100  # tokens kept of each target (0: all)
    on_bad_row: Literal["error", "skip"] = "skip"
    cache_dir: str = "~/.cache/s2s"  # tokenized data is cached here, never beside the input
    num_workers: int = 0  # tokenizer processes; 0: one per CPU core


@dataclass
class TokenizerConfig:
    type: str = "jieba"  # jieba | char | whitespace
    user_dict: str | None = None  # jieba: a user dictionary file
    keep_ascii_words: bool = True  # char: keep runs of ASCII letters/digits as one token


@dataclass
class VocabConfig:
    shared: bool = False  # one vocabulary for source and target
    source_size: int = 30000  # most frequent words kept, specials not counted
    target_size: int = 30000
    min_freq: int = 1


@dataclass
class EmbeddingsConfig:
    size: int = 128
    dropout: float = 0.0
    pretrained: str | None = None  # word2vec/GloVe text file; missing words keep random init
    freeze: bool = False
    share_source_target: bool = False  # one table for both sides (needs vocab.shared)
    tie_output: bool = False  # decoder input embedding = output projection weights


@dataclass
class EncoderConfig:
    type: str = "lstm"  # lstm | gru
    hidden_size: int = 256  # per direction
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0  # between stacked layers


@dataclass
class AttentionConfig:
    type: str = "bahdanau"  # bahdanau | luong_dot | luong_general | luong_concat
    hidden_size: int = 0  # additive attention's inner size; 0: the decoder's hidden size


@dataclass
class DecoderConfig:
    type: str = "attention"  # attention | pointer_generator
    rnn: Literal["lstm", "gru"] = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0
    input_feeding: bool = True  # feed the previous attentional vector into the next step
    coverage: bool = False  # See et al. 2017: coverage vector in attention + coverage loss
    coverage_weight: float = 1.0
    coverage_from_step: int = 0  # training step at which coverage switches on


@dataclass
class ModelConfig:
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    bridge: Literal["concat", "linear", "zero"] = "linear"  # encoder state -> decoder state
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)


@dataclass
class OptimizerConfig:
    type: str = "adam"  # adam | adamw | sgd | adagrad
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam, adamw
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd
    initial_accumulator_value: float = 0.1  # adagrad (See et al. use 0.1)


@dataclass
class SchedulerConfig:
    type: str = "constant"  # constant | step | plateau | noam | cosine
    warmup_steps: int = 0  # noam, cosine: linear warm-up to optimizer.lr
    step_size: int = 1000  # step: decay every step_size steps
    gamma: float = 0.5  # step: decay factor
    factor: float = 0.5  # plateau: decay factor
    patience: int = 2  # plateau: evaluations without improvement before decaying
    min_lr: float = 0.0  # plateau, cosine


@dataclass
class TrainConfig:
    output_dir: str = "runs/default"  # the run directory: checkpoints, logs, TensorBoard
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"  # mixed precision, CUDA only
    threads: int = 0  # torch CPU threads; 0: torch's default
    batch_size: int = 32  # sentences per batch, used when batch_tokens is 0
    batch_tokens: int = 0  # token budget per batch (padded source + target tokens)
    max_steps: int = 0  # optimizer updates; 0: no limit (then max_epochs or max_minutes must be set)
    max_epochs: int = 0  # 0: no limit (then max_steps or max_minutes must be set)
    max_minutes: float = 0.0  # stop after this much training time, resumes included (0: no limit)
    accumulate: int = 1  # batches per optimizer update
    clip_grad_norm: float = 5.0  # 0: no clipping
    label_smoothing: float = 0.0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    eval_every: int = 500  # steps between evaluations on the dev set (0: only at the end)
    eval_batch_size: int = 64
    keep_best_by: Literal["rouge-1", "rouge-2", "rouge-l", "loss", "ppl"] = "rouge-l"
    keep_last: int = 3  # step_N.pt checkpoints kept
    patience: int = 0  # evaluations without improvement before stopping; 0: never stop early
    log_every: int = 50  # steps between lines in train.log / metrics.jsonl
    resume: str | None = None  # auto | path of a checkpoint
    overwrite: bool = False  # allow an output_dir that holds another run
    max_bad_steps: int = 5  # NaN/inf losses in a row before the run stops


@dataclass
class PredictConfig:
    search: str = "beam"  # beam | greedy
    beam_size: int = 4
    n_best: int = 1
    batch_size: int = 32  # sentences per batch
    max_length: int = 100  # output tokens at most
    max_length_ratio: float = 0.0  # > 0: also at most ratio x source length
    min_length: int = 0
    alpha: float = 0.0  # length penalty (Wu et al. 2016); 0: none
    beta: float = 0.0  # coverage penalty (OpenNMT-py `summary`); 0: none
    no_repeat_ngram_size: int = 0  # 0: no blocking
    replace_unk: bool = False  # attention models: <unk> -> most-attended source token


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read ``path`` (following its ``base:`` chain), apply ``overrides``, validate."""
    raw = _read_with_bases(Path(path), seen=())
    for override in overrides:
        raw = _merge(raw, parse_override(override))
    cfg = from_dict(raw, source=str(path))
    validate(cfg, source=str(path))
    return cfg


def parse_override(text: str) -> dict[str, Any]:
    """``"train.lr=3e-4"`` → ``{"train": {"lr": 3e-4}}``, checked against the schema."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"command line: bad override {text!r} (expected key.sub=value)")
    try:
        parsed = yaml.safe_load(value) if value else None
    except yaml.YAMLError as err:
        raise ConfigError(f"command line: {key}: cannot parse {value!r}: {err}") from None
    nested: dict[str, Any] = parsed
    for part in reversed(key.split(".")):
        nested = {part: nested}
    from_dict(nested, source=f"command line ({text})")  # report errors against the override
    return nested


def from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Build a ``Config`` from nested mappings; missing keys take their defaults."""
    return _build(Config, raw, path="", source=source)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The plain nested mapping of a config (what is saved in run directories and checkpoints)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (readable, and loadable by ``load_config``)."""
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")


def validate(cfg: Config, source: str = "<config>") -> None:
    """Checks that involve values, not only types."""

    def fail(key: str, message: str) -> None:
        raise ConfigError(f"{source}: {key}: {message}")

    positive = {
        "model.embeddings.size": cfg.model.embeddings.size,
        "model.encoder.hidden_size": cfg.model.encoder.hidden_size,
        "model.encoder.num_layers": cfg.model.encoder.num_layers,
        "model.decoder.hidden_size": cfg.model.decoder.hidden_size,
        "model.decoder.num_layers": cfg.model.decoder.num_layers,
        "train.batch_size": cfg.train.batch_size,
        "train.accumulate": cfg.train.accumulate,
        "train.eval_batch_size": cfg.train.eval_batch_size,
        "train.log_every": cfg.train.log_every,
        "train.max_bad_steps": cfg.train.max_bad_steps,
        "predict.beam_size": cfg.predict.beam_size,
        "predict.n_best": cfg.predict.n_best,
        "predict.batch_size": cfg.predict.batch_size,
        "predict.max_length": cfg.predict.max_length,
        "vocab.min_freq": cfg.vocab.min_freq,
    }
    for key, value in positive.items():
        if value < 1:
            fail(key, f"must be at least 1, got {value}")
    non_negative = {
        "data.dev_split": cfg.data.dev_split,
        "data.max_source_len": cfg.data.max_source_len,
        "data.max_target_len": cfg.data.max_target_len,
        "data.num_workers": cfg.data.num_workers,
        "train.batch_tokens": cfg.train.batch_tokens,
        "train.max_steps": cfg.train.max_steps,
        "train.max_epochs": cfg.train.max_epochs,
        "train.max_minutes": cfg.train.max_minutes,
        "train.eval_every": cfg.train.eval_every,
        "train.clip_grad_norm": cfg.train.clip_grad_norm,
        "train.patience": cfg.train.patience,
        "train.keep_last": cfg.train.keep_last,
        "train.threads": cfg.train.threads,
        "predict.min_length": cfg.predict.min_length,
        "predict.max_length_ratio": cfg.predict.max_length_ratio,
        "predict.no_repeat_ngram_size": cfg.predict.no_repeat_ngram_size,
        "predict.alpha": cfg.predict.alpha,
        "predict.beta": cfg.predict.beta,
    }
    for key, value in non_negative.items():
        if value < 0:
            fail(key, f"must not be negative, got {value}")
    for key, value in {
        "model.embeddings.dropout": cfg.model.embeddings.dropout,
        "model.encoder.dropout": cfg.model.encoder.dropout,
        "model.decoder.dropout": cfg.model.decoder.dropout,
        "train.label_smoothing": cfg.train.label_smoothing,
    }.items():
        if not 0.0 <= value < 1.0:
            fail(key, f"must be in [0, 1), got {value}")
    if cfg.data.dev_split >= 1 and cfg.data.dev_split != int(cfg.data.dev_split):
        fail("data.dev_split", f"a count must be a whole number, got {cfg.data.dev_split}")
    if cfg.predict.n_best > cfg.predict.beam_size:
        fail("predict.n_best", f"{cfg.predict.n_best} is more than beam_size {cfg.predict.beam_size}")
    if cfg.model.embeddings.share_source_target and not cfg.vocab.shared:
        fail("model.embeddings.share_source_target", "needs vocab.shared: true")


# ---------------------------------------------------------------------------------------------
# Internals: reading, merging, type checking
# ---------------------------------------------------------------------------------------------


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
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
    from_dict(raw, source=str(path))  # report errors against the file that has them
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a file name, got {base!r}")
    parent = _read_with_bases(path.parent / base, seen=(*seen, resolved))
    return _merge(parent, raw)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value in ``update`` replaces the base's."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(cls: type, raw: Any, path: str, source: str) -> Any:
    """Instantiate dataclass ``cls`` from mapping ``raw``, checking keys and types."""
    where = path or "top level"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping, got {_describe(raw)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{path}.{key}" if path else str(key)
        if key not in names:
            hint = difflib.get_close_matches(str(key), names, n=1)
            near = f" (did you mean {hint[0]!r}?)" if hint else f" (valid keys: {', '.join(names)})"
            raise ConfigError(f"{source}: {dotted}: unknown key{near}")
        kwargs[key] = _coerce(value, hints[key], dotted, source)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, path: str, source: str) -> Any:
    """Check ``value`` against type ``hint``; convert where YAML is ambiguous (``1e-3``)."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, source)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, path, source)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise ConfigError(f"{source}: {path}: expected one of {choices}, got {_describe(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {path}: expected a list, got {_describe(value)}")
        return [_coerce(item, args[0], f"{path}[{i}]", source) for i, item in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {path}: expected true or false, got {_describe(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {path}: expected an integer, got {_describe(value)}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads `1e-3` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{source}: {path}: expected a number, got {_describe(value)}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{source}: {path}: expected a string, got {_describe(value)}")
    raise TypeError(f"config field {path} has an unsupported type {hint!r}")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return f"{value!r} ({type(value).__name__})"
