"""Readers: raw files -> ``Example`` (id, source text, target text), streamed row by row.

    for ex in read_examples("train.tsv", cfg.data):
        ex.id, ex.source, ex.target, ex.line

A reader (registry ``READERS``, named by ``data.format``) yields ``Example``s and ``BadRow``s;
``read_examples`` applies the policy for the bad ones (``data.on_bad_row``), skips rows with an
empty side when targets are needed, and logs one warning line per kind of skipped row. A reader
also knows its layout's conventions: how a raw input becomes a source (``source_text``), the
lead baseline, how predictions are written. Task adapters (``s2s.automaster``) subclass these.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from s2s.config import DataConfig
from s2s.errors import DataError
from s2s.options import retype
from s2s.registry import READERS

logger = logging.getLogger(__name__)

EXTENSIONS = {".csv": "automaster", ".tsv": "tsv", ".jsonl": "jsonl"}
# a sentence ends at 。！？!? or a newline, or at a "." before a non-ASCII character (CSL writes
# Chinese with half-width periods: "...的问题.为了..."), but not at "3.5" or "e.g. this"
_SENTENCE_END = re.compile(r"[。！？!?\n]|\.(?=[^\x00-\x7f])")
_SEGMENT_END = re.compile(r"[。！？；!?;\n]|\.(?=[^\x00-\x7f])")  # the segments of --baseline oracle: ； too
_LINES_LISTED = 5  # line numbers named in a warning about skipped rows
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a dialogue may be longer than csv's 128 KB default


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
    id: str | None = None  # the row's id where it can be read (``s2s predict --on-bad-row empty``)


@dataclass
class ReadStats:
    """What ``read_examples`` kept and skipped (line numbers of the skipped rows)."""

    rows: int = 0
    malformed: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)  # empty source or target (training only)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def read_examples(
    path: str | Path, cfg: DataConfig, *, need_target: bool = True, stats: ReadStats | None = None
) -> Iterator[Example]:
    """Stream the examples of ``path`` with the reader of ``cfg.format`` or the file's name.

    With ``need_target`` (training, dev), rows with an empty source or target are skipped and
    counted; without it (prediction) every row comes out, ``target`` None where there is none.
    ``stats``, when given, is filled in as the rows go by.
    """
    path = Path(path)
    reader = open_reader(cfg, path)
    stats = stats if stats is not None else ReadStats()
    first_reason = ""
    for item in reader.read(path, need_target=need_target):
        if isinstance(item, BadRow):
            if cfg.on_bad_row == "error":
                raise DataError(
                    f"{path}:{item.line}: {item.reason} (fix the row, or set data.on_bad_row: skip to skip such rows)"
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


def open_reader(cfg: DataConfig, path: str | Path | None = None) -> Reader:
    """The reader for ``path`` (its options: ``cfg``'s, as far as that reader has them)."""
    name = (
        resolve_format(Path(path), cfg) if path is not None else cfg.format or implied_format(cfg.train) or "automaster"
    )
    wanted = READERS.options_type(name)
    return READERS.build(cfg if isinstance(cfg, wanted) and cfg.format == name else retype(cfg, READERS, name))


def reader_options(fmt: str, **values: object) -> DataConfig:
    """The options of reader ``fmt``: its defaults, with ``values`` (an unknown name lists the choices)."""
    return READERS.options_type(fmt)(format=fmt, **values)


def format_from_name(path: str | None) -> str | None:
    """The reader a file's name implies: by extension, ``parallel`` for a PREFIX with PREFIX.src."""
    if not path:
        return None
    suffix = Path(path).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    return "parallel" if Path(f"{path}.src").is_file() else None


def implied_format(train: str | None) -> str | None:
    """The reader ``data.train`` implies when ``data.format`` is not given: by its name (``text``,
    which cannot train, when the name says nothing); None without ``data.train``."""
    return (format_from_name(train) or "text") if train else None


def resolve_format(path: Path, cfg: DataConfig) -> str:
    """The reader name for ``path``: ``cfg.format``, else from the file's name."""
    if cfg.format is not None:
        READERS.get(cfg.format)  # an unknown name lists the choices
        return cfg.format
    if (fmt := format_from_name(str(path))) is not None:
        return fmt
    check_file(path)
    raise DataError(
        f"{path}: cannot tell the format from the name (.csv: automaster, .tsv: tsv, .jsonl: jsonl, "
        f"PREFIX with PREFIX.src/.tgt: parallel); set data.format to one of {', '.join(READERS.names())}"
    )


def check_file(path: Path) -> None:
    """``DataError`` unless ``path`` is a file with something in it."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory; name a file (data.train/dev/test or --input)")
    if not path.is_file():
        raise DataError(f"{path}: file not found (check the path in data.train/dev/test or --input)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")


def _warn_skipped(lines: list[int], what: str, path: Path, detail: str = "") -> None:
    """One line: ``skipped 2 malformed rows in train.csv (lines 5, 9; first: ...)``."""
    n = len(lines)
    listed = ", ".join(map(str, lines[:_LINES_LISTED])) + (", ..." if n > _LINES_LISTED else "")
    where = f"line {listed}" if n == 1 else f"lines {listed}"
    logger.warning("skipped %d %s in %s (%s%s)", n, what.format(s="" if n == 1 else "s"), path.name, where, detail)


def read_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` decoded as UTF-8 (line endings kept, a leading BOM dropped).

    Every reader reads through this, so bad bytes fail the same way: a ``DataError`` naming
    their byte offset and line.
    """
    offset = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}:{number}: not UTF-8 (byte offset {offset + err.start}: "
                    f"{raw[err.start : err.start + 4]!r}); re-save the file as UTF-8"
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            offset += len(raw)
            yield text


def count_lines(path: Path) -> int:
    """Lines in ``path``, a last line without a newline included."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` with words in it, its end mark kept ("" when none)."""
    return next(_sentences(text, _SENTENCE_END), "")


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` with words in them, end marks kept: split after 。！？；!?; and
    newlines, and after a "." before a non-ASCII character (CSL's half-width periods)."""
    return list(_sentences(text, _SEGMENT_END))


def _sentences(text: str, ends: re.Pattern[str]) -> Iterator[str]:
    start = 0
    for end in ends.finditer(text):
        sentence, start = text[start : end.end()].strip(), end.end()
        if any(c.isalnum() for c in sentence):
            yield sentence
    rest = text[start:].strip()
    if any(c.isalnum() for c in rest):
        yield rest


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------


class Reader:
    """A layout without named fields: one source (and target) per row."""

    suffix = ".tsv"  # the layout in which rows of this reader are written back (the dev split)
    input_fields: tuple[str, ...] = ("text",)  # what a raw input consists of (the page's form)

    def __init__(self, options: DataConfig) -> None:
        self.options = options

    def read(self, path: Path, *, need_target: bool) -> Iterator[Example | BadRow]:
        raise NotImplementedError

    def source_text(self, item: str | Mapping[str, str]) -> str:
        """One raw input as the model's source text: a string, or ``{"text": ...}``."""
        if isinstance(item, str):
            return item
        unknown = sorted(set(item) - {"text"})
        if unknown or "text" not in item:
            raise DataError(
                f"expected a text (a string or {{'text': ...}}), got the fields {', '.join(map(repr, item))}"
            )
        return item["text"]

    def lead(self, example: Example) -> str:
        """The lead baseline: the first sentence of the source."""
        return first_sentence(example.source)

    def segments(self, example: Example) -> list[str]:
        """What ``--baseline oracle`` picks from: the sentences of the source."""
        return sentences(example.source)

    def write_predictions(self, ids: Sequence[str], texts: Sequence[str], out: IO[str]) -> None:
        """One summary per line (whitespace inside a summary becomes single spaces)."""
        out.writelines(" ".join(text.split()) + "\n" for text in texts)

    def write_rows(self, examples: Sequence[Example], out: IO[str]) -> None:
        """Rows as this reader reads them back (``suffix``): source TAB target."""
        out.writelines(f"{_one_line(ex.source)}\t{_one_line(ex.target or '')}\n" for ex in examples)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class TsvOptions(DataConfig):
    source_column: int = -2  # column of the source (negative counts from the end)
    target_column: int = -1  # column of the target


@READERS.register("tsv", options=TsvOptions)
class TsvReader(Reader):
    """Tab-separated, no header, quoting off; ``source_column``/``target_column`` pick the sides."""

    options: TsvOptions

    def read(self, path: Path, *, need_target: bool) -> Iterator[Example | BadRow]:
        """Without ``need_target``, a one-column file is all source."""
        check_file(path)
        width, columns = None, (0, None)
        for line, text in enumerate(read_lines(path), start=1):
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            fields = text.split("\t")
            if width is None:
                width = len(fields)
                columns = self._columns(path, width, need_target)
            if len(fields) != width:
                yield BadRow(line, f"{len(fields)} tab-separated fields, expected {width} (as line 1)")
                continue
            src_col, tgt_col = columns
            yield Example(str(line), fields[src_col], fields[tgt_col] if tgt_col is not None else None, line)

    def _columns(self, path: Path, width: int, need_target: bool) -> tuple[int, int | None]:
        if width == 1 and not need_target:
            return 0, None
        columns = []
        for key in ("source_column", "target_column"):
            index = getattr(self.options, key)
            if not -width <= index < width:
                raise DataError(
                    f"{path}: data.{key} is {index} but the rows have {width} tab-separated field(s); "
                    f"set data.{key} to a column from 0 to {width - 1} (or -1 for the last)"
                )
            columns.append(index % width)
        if columns[0] == columns[1]:
            raise DataError(f"{path}: data.source_column and data.target_column name the same column")
        return columns[0], columns[1]


@READERS.register("parallel", options=DataConfig)
class ParallelReader(Reader):
    """``PATH.src`` and ``PATH.tgt``: line k of one is the summary of line k of the other."""

    def read(self, path: Path, *, need_target: bool) -> Iterator[Example | BadRow]:
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
        for line, (source, target) in enumerate(zip(read_lines(src_path), read_lines(tgt_path)), start=1):
            yield Example(str(line), source.rstrip("\r\n"), target.rstrip("\r\n"), line)


@READERS.register("text", options=DataConfig)
class TextReader(Reader):
    """Plain text for prediction: one source per line (blank lines too), no targets."""

    def read(self, path: Path, *, need_target: bool) -> Iterator[Example | BadRow]:
        check_file(path)
        if need_target:
            raise DataError(
                f"{path}: plain text holds sources only; for training use a csv, tsv, jsonl "
                "or parallel (PREFIX.src + PREFIX.tgt) file"
            )
        for line, source in enumerate(read_lines(path), start=1):
            yield Example(str(line), source.rstrip("\r\n"), None, line)


# ---------------------------------------------------------------------------------------------
# Layouts with named fields: CSV with a header, JSON lines
# ---------------------------------------------------------------------------------------------


@dataclass
class FieldsOptions(DataConfig):
    source_fields: list[str] = field(default_factory=lambda: ["Question", "Dialogue"])  # fields joined into the source
    target_field: str = "Report"  # field of the target
    id_field: str = "QID"  # field that names a row (none in a row: its line number)
    field_separator: str = " "  # placed between the source fields


class FieldsReader(Reader):
    """Rows of named fields; the source is ``source_fields`` joined by ``field_separator``."""

    options: FieldsOptions

    @property
    def input_fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(name.lower() for name in self.options.source_fields)

    def clean_field(self, name: str, value: str) -> str:
        """A field's text as it goes into the source (task adapters clean theirs here)."""
        return value

    def compose(self, row: Mapping[str, str]) -> str:
        """The source text of a row: the source fields, cleaned and joined."""
        parts = (self.clean_field(name, row.get(name) or "") for name in self.options.source_fields)
        return self.options.field_separator.join(p for p in parts if p)

    def source_text(self, item: str | Mapping[str, str]) -> str:
        """A string is taken as the source text; a mapping names the source fields (case aside)."""
        if isinstance(item, str):
            return item
        wanted = {name.lower(): name for name in self.options.source_fields}
        unknown = [key for key in item if str(key).lower() not in wanted]
        if unknown:
            raise DataError(
                f"unknown field {', '.join(map(repr, unknown))}: "
                f"this model reads {', '.join(self.options.source_fields)}"
            )
        return self.compose({wanted[str(key).lower()]: value for key, value in item.items()})

    def example(self, row: dict[str, str], line: int, has_target: bool) -> Example:
        target = row.get(self.options.target_field) if has_target else None
        return Example(row.get(self.options.id_field) or str(line), self.compose(row), target, line, row)

    def check_names(self, path: Path, names: Sequence[str], need_target: bool, what: str) -> list[str]:
        """The required fields, checked against a header (or first record); returns them."""
        required = list(self.options.source_fields) + ([self.options.target_field] if need_target else [])
        missing = [f for f in required if f not in names]
        if missing:
            fix = (
                "set data.source_fields / data.target_field to the names it uses"
                if need_target
                else "give the input those columns (the ones the model was trained on)"
            )
            raise DataError(
                f"{path}: the {what} lacks {', '.join(missing)} (expected {', '.join(required)}; found "
                f"{', '.join(names) or 'nothing'}); {fix}"
            )
        return required


@READERS.register("csv", options=FieldsOptions)
class CsvReader(FieldsReader):
    """CSV with a header line; predictions are written as ``<id_field>,Prediction`` CSV."""

    suffix = ".csv"

    def read(self, path: Path, *, need_target: bool) -> Iterator[Example | BadRow]:
        check_file(path)
        reader = csv.reader(read_lines(path))
        header = next(reader, None)
        if not header:
            raise DataError(f"{path}: no header line (expected {', '.join(self.options.source_fields)}, ...)")
        self.check_names(path, header, need_target, "header")
        has_target = self.options.target_field in header
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
                ident = dict(zip(header, fields)).get(self.options.id_field)
                yield BadRow(line, f"{len(fields)} fields, expected {len(header)} ({','.join(header)})", ident)
                continue
            yield self.example(dict(zip(header, fields)), line, has_target)

    def write_predictions(self, ids: Sequence[str], texts: Sequence[str], out: IO[str]) -> None:
        writer = csv.writer(out)
        writer.writerow([self.options.id_field, "Prediction"])
        writer.writerows(zip(ids, texts))

    def write_rows(self, examples: Sequence[Example], out: IO[str]) -> None:
        """The rows whole, in the input's layout."""
        writer = csv.DictWriter(out, fieldnames=list(examples[0].raw) if examples else [])
        writer.writeheader()
        writer.writerows(ex.raw for ex in examples)


@READERS.register("jsonl", options=FieldsOptions)
class JsonlReader(FieldsReader):
    """One JSON object per line; the fields of the first object are checked like a header."""

    suffix = ".jsonl"

    def read(self, path: Path, *, need_target: bool) -> Iterator[Example | BadRow]:
        check_file(path)
        required: list[str] | None = None
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
            if required is None:
                required = self.check_names(path, list(row), need_target, "first record")
                has_target = self.options.target_field in row
            missing = [f for f in required if f not in row]
            if missing:
                yield BadRow(line, f"missing field {', '.join(missing)}", row.get(self.options.id_field))
                continue
            yield self.example(row, line, has_target)

    def write_rows(self, examples: Sequence[Example], out: IO[str]) -> None:
        out.writelines(json.dumps(ex.raw, ensure_ascii=False) + "\n" for ex in examples)
