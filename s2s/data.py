"""Readers: raw files → ``Example`` (id, source text, target text), streamed row by row.

    for ex in read_examples("train.csv", cfg.data):
        ex.id, ex.source, ex.target, ex.line

A reader (registry ``READERS``) yields ``Example``s and ``BadRow``s; ``read_examples`` applies
the policy for the bad ones (``data.on_bad_row``), skips rows with an empty side when targets
are needed, and logs one warning line per kind of skipped row. AutoMaster dialogues are cleaned
here (turn prefixes, placeholders, turn order), before any tokenizer sees them.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

from s2s.config import CleanConfig, DataConfig
from s2s.errors import DataError
from s2s.registry import Registry

logger = logging.getLogger(__name__)

READERS: Registry[Callable[..., Iterator["Example | BadRow"]]] = Registry("reader")

DIALOGUE_FIELD = "Dialogue"  # the AutoMaster field that cleaning applies to
TECHNICIAN, OWNER = "技师说：", "车主说："
PLACEHOLDERS = ("[语音]", "[图片]", "[视频]")  # voice, picture, video messages
EXTENSIONS = {".csv": "automaster", ".tsv": "tsv", ".jsonl": "jsonl"}
# a sentence ends at 。！？!? or a newline, or at a "." before a non-ASCII character (CSL writes
# Chinese with half-width periods: "...的问题.为了..."), but not at "3.5" or "e.g. this"
_SENTENCE_END = re.compile(r"[。！？!?\n]|\.(?=[^\x00-\x7f])")
_LINES_LISTED = 5  # line numbers named in a warning about skipped rows


@dataclass(frozen=True)
class Example:
    """One row: the texts a model sees (``target`` is None where the input has none)."""

    id: str
    source: str
    target: str | None
    line: int  # 1-based line of the file where the row starts
    raw: dict[str, str] | None = None  # the row's named fields (CSV, JSONL), before cleaning


@dataclass(frozen=True)
class BadRow:
    """A row a reader could not use: where it starts and why."""

    line: int
    reason: str


@dataclass
class ReadStats:
    """What ``read_examples`` kept and skipped (line numbers of the skipped rows)."""

    rows: int = 0
    malformed: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)  # empty source or target (training only)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def read_examples(
    path: str | Path,
    cfg: DataConfig,
    *,
    need_target: bool = True,
    stats: ReadStats | None = None,
) -> Iterator[Example]:
    """Stream the examples of ``path`` with the reader of ``cfg.format`` or the extension.

    With ``need_target`` (training, dev), rows with an empty source or target are skipped and
    counted; without it (prediction) every row comes out, ``target`` None where there is none.
    ``stats``, when given, is filled in as the rows go by.
    """
    path = Path(path)
    fmt = resolve_format(path, cfg)
    stats = stats if stats is not None else ReadStats()
    if fmt != "parallel":
        check_file(path)
    first_reason = ""
    for item in READERS.get(fmt)(path, cfg, need_target=need_target):
        if isinstance(item, BadRow):
            if cfg.on_bad_row == "error":
                raise DataError(
                    f"{path}:{item.line}: {item.reason} "
                    "(fix the row, or set data.on_bad_row: skip to skip such rows)"
                )
            first_reason = first_reason or item.reason
            stats.malformed.append(item.line)
        elif need_target and not (item.source.strip() and (item.target or "").strip()):
            stats.empty.append(item.line)
        else:
            stats.rows += 1
            yield item
    if stats.malformed:
        _warn_skipped(stats.malformed, "malformed row{s}", path, f"; first: {first_reason}")
    if stats.empty:
        _warn_skipped(stats.empty, "row{s} with an empty source or target", path)


def resolve_format(path: Path, cfg: DataConfig) -> str:
    """The reader name for ``path``: ``cfg.format``, else from the extension or PREFIX.src."""
    if cfg.format is not None:
        READERS.get(cfg.format)  # an unknown name lists the choices
        return cfg.format
    if path.suffix.lower() in EXTENSIONS:
        return EXTENSIONS[path.suffix.lower()]
    if Path(f"{path}.src").is_file():
        return "parallel"
    check_file(path)
    raise DataError(
        f"{path}: cannot tell the format from the name (.csv: automaster, .tsv: tsv, "
        f".jsonl: jsonl, PREFIX with PREFIX.src/.tgt: parallel); set data.format to one of "
        f"{', '.join(READERS.names())}"
    )


def check_file(path: Path) -> None:
    """``DataError`` unless ``path`` is a file with something in it."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found (check the path in data.train/dev/test or --input)"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")


def _warn_skipped(lines: list[int], what: str, path: Path, detail: str = "") -> None:
    """One line: ``skipped 2 malformed rows in train.csv (lines 5, 9; first: ...)``."""
    n = len(lines)
    listed = ", ".join(map(str, lines[:_LINES_LISTED])) + (", ..." if n > _LINES_LISTED else "")
    where = f"line {listed}" if n == 1 else f"lines {listed}"
    what = what.format(s="" if n == 1 else "s")
    logger.warning("skipped %d %s in %s (%s%s)", n, what, path.name, where, detail)


# ---------------------------------------------------------------------------------------------
# Decoding: every reader reads lines through this, so non-UTF-8 input fails the same way
# ---------------------------------------------------------------------------------------------


def read_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` decoded as UTF-8 (line endings kept, a leading BOM dropped).

    Bad bytes raise ``DataError`` naming their byte offset and line.
    """
    offset = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}:{number}: not UTF-8 (byte offset {offset + err.start}: "
                    f"{raw[err.start:err.start + 4]!r}); re-save the file as UTF-8"
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            offset += len(raw)
            yield text


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------


@READERS.register("automaster")
def read_csv(path: Path, cfg: DataConfig, *, need_target: bool) -> Iterator[Example | BadRow]:
    """CSV with a header (AutoMaster: QID,Brand,Model,Question,Dialogue[,Report])."""
    reader = csv.reader(read_lines(path))
    header = next(reader, None)
    if not header:
        raise DataError(f"{path}: no header line (expected {', '.join(cfg.source_fields)}, ...)")
    columns = _FieldPicker(path, header, cfg, need_target, what="header")
    start = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:  # e.g. a quoted field that swallowed too many lines
            yield BadRow(start, f"unreadable CSV ({err})")
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not fields:  # a blank line
            continue
        if len(fields) != len(header):
            yield BadRow(line, f"{len(fields)} fields, expected {len(header)} ({','.join(header)})")
            continue
        yield columns.example(dict(zip(header, fields)), line)


@READERS.register("jsonl")
def read_jsonl(path: Path, cfg: DataConfig, *, need_target: bool) -> Iterator[Example | BadRow]:
    """One JSON object per line; the fields of the first object are checked like a header."""
    columns = None
    for line, text in enumerate(read_lines(path), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            yield BadRow(line, f"not JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(record, dict):
            yield BadRow(line, f"expected a JSON object, got {type(record).__name__}")
            continue
        row = {str(k): "" if v is None else str(v) for k, v in record.items()}
        if columns is None:
            columns = _FieldPicker(path, list(row), cfg, need_target, what="first record")
        missing = [f for f in columns.required if f not in row]
        if missing:
            yield BadRow(line, f"missing field {', '.join(missing)}")
            continue
        yield columns.example(row, line)


@READERS.register("tsv")
def read_tsv(path: Path, cfg: DataConfig, *, need_target: bool) -> Iterator[Example | BadRow]:
    """Tab-separated, no header, quoting off; ``data.source_column``/``target_column`` pick sides.

    Without ``need_target``, a one-column file is all source.
    """
    width = None
    for line, text in enumerate(read_lines(path), start=1):
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        fields = text.split("\t")
        if width is None:
            width = len(fields)
            src_col, tgt_col = _tsv_columns(path, width, cfg, need_target)
        if len(fields) != width:
            yield BadRow(line, f"{len(fields)} tab-separated fields, expected {width} (as line 1)")
            continue
        target = fields[tgt_col] if tgt_col is not None else None
        yield Example(str(line), fields[src_col], target, line)


def _tsv_columns(
    path: Path, width: int, cfg: DataConfig, need_target: bool
) -> tuple[int, int | None]:
    if width == 1 and not need_target:
        return 0, None
    columns = []
    for key in ("source_column", "target_column"):
        index = getattr(cfg, key)
        if not -width <= index < width:
            raise DataError(
                f"{path}: data.{key} is {index} but the rows have {width} tab-separated "
                f"field(s); set data.{key} to a column from 0 to {width - 1} (or -1 for the last)"
            )
        columns.append(index % width)
    if columns[0] == columns[1]:
        raise DataError(f"{path}: data.source_column and data.target_column name the same column")
    return columns[0], columns[1]


@READERS.register("parallel")
def read_parallel(path: Path, cfg: DataConfig, *, need_target: bool) -> Iterator[Example | BadRow]:
    """``PATH.src`` and ``PATH.tgt``: line k of one is the summary of line k of the other."""
    src_path, tgt_path = Path(f"{path}.src"), Path(f"{path}.tgt")
    check_file(src_path)
    if not tgt_path.is_file() and not need_target:
        for line, source in enumerate(read_lines(src_path), start=1):
            yield Example(str(line), source.rstrip("\r\n"), None, line)
        return
    check_file(tgt_path)
    n_src, n_tgt = count_lines(src_path), count_lines(tgt_path)
    if n_src != n_tgt:
        raise DataError(
            f"{src_path} has {n_src} lines but {tgt_path} has {n_tgt}; "
            "parallel files need one target line per source line"
        )
    pairs = zip(read_lines(src_path), read_lines(tgt_path))
    for line, (source, target) in enumerate(pairs, start=1):
        yield Example(str(line), source.rstrip("\r\n"), target.rstrip("\r\n"), line)


@READERS.register("text")
def read_text(path: Path, cfg: DataConfig, *, need_target: bool) -> Iterator[Example | BadRow]:
    """Plain text for prediction: one source per line (blank lines too), no targets."""
    if need_target:
        raise DataError(
            f"{path}: plain text holds sources only; for training use a csv, tsv, jsonl "
            "or parallel (PREFIX.src + PREFIX.tgt) file"
        )
    for line, source in enumerate(read_lines(path), start=1):
        yield Example(str(line), source.rstrip("\r\n"), None, line)


def count_lines(path: Path) -> int:
    """Lines in ``path``, a last line without a newline included."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


class _FieldPicker:
    """Checks the named fields once (against a header), then builds examples from rows."""

    def __init__(self, path: Path, names: list[str], cfg: DataConfig, need_target: bool, what: str):
        self.cfg = cfg
        self.required = list(cfg.source_fields) + ([cfg.target_field] if need_target else [])
        missing = [f for f in self.required if f not in names]
        if missing:
            raise DataError(
                f"{path}: the {what} lacks {', '.join(missing)} (expected "
                f"{', '.join(self.required)}; found {', '.join(names) or 'nothing'}); "
                "set data.source_fields / data.target_field to the names the file uses"
            )
        self.has_target = cfg.target_field in names

    def example(self, row: dict[str, str], line: int) -> Example:
        cfg = self.cfg
        source = compose_source(row, cfg)
        target = row.get(cfg.target_field) if self.has_target else None
        ident = row.get(cfg.id_field) or str(line)  # no id: the line number
        return Example(ident, source, target, line, row)


# ---------------------------------------------------------------------------------------------
# Cleaning and the lead baseline
# ---------------------------------------------------------------------------------------------


def compose_source(fields: Mapping[str, str], cfg: DataConfig) -> str:
    """The source text of a row: ``cfg.source_fields`` joined, the Dialogue field cleaned."""
    parts = (
        clean_dialogue(fields.get(name) or "", cfg.clean) if name == DIALOGUE_FIELD else fields.get(name) or ""
        for name in cfg.source_fields
    )
    return cfg.field_separator.join(p for p in parts if p)


def split_turns(dialogue: str) -> list[tuple[str, str]]:
    """``"技师说：a|车主说：b"`` → ``[("技师说：", "a"), ("车主说：", "b")]`` (speaker "" if none)."""
    turns = []
    for turn in dialogue.split("|"):
        speaker = turn[:4] if turn.startswith((TECHNICIAN, OWNER)) else ""
        turns.append((speaker, turn[len(speaker) :]))
    return turns


def drop_placeholders(text: str) -> str:
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, "")
    return text


def clean_dialogue(dialogue: str, cfg: CleanConfig) -> str:
    """Apply ``cfg`` to one AutoMaster dialogue (``|``-separated, prefixed turns)."""
    turns = split_turns(dialogue)
    if cfg.drop_placeholders:
        turns = [(who, drop_placeholders(body)) for who, body in turns]
        turns = [(who, body) for who, body in turns if body.strip()]
    if cfg.technician_first:
        turns.sort(key=lambda turn: turn[0] != TECHNICIAN)  # stable: order kept within each side
    return cfg.turn_separator.join(
        body if cfg.strip_prefixes else who + body for who, body in turns
    )


def lead_summary(example: Example) -> str:
    """The lead baseline: AutoMaster's first technician turn with words in it, else the
    first sentence of the source ("" when there is none)."""
    if example.raw is not None and DIALOGUE_FIELD in example.raw:
        for who, body in split_turns(example.raw[DIALOGUE_FIELD]):
            body = drop_placeholders(body).strip()
            if who == TECHNICIAN and body:
                return body
        return ""
    return first_sentence(example.source)


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` with words in it, its end mark kept ("" when none)."""
    start = 0
    for end in _SENTENCE_END.finditer(text):
        sentence, start = text[start : end.end()].strip(), end.end()
        if any(c.isalnum() for c in sentence):
            return sentence
    rest = text[start:].strip()
    return rest if any(c.isalnum() for c in rest) else ""
