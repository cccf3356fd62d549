"""``s2s evaluate``: score a predictions file against a references file (Chinese ROUGE + guards).

A file ending in ``.csv`` (any case) is read as CSV with a header: predictions in the
submission layout (``QID,Prediction``), references in the AutoMaster train layout (``QID`` and
``Report`` columns). Any other file is plain text, one example per line. Two CSV files are
matched by QID; otherwise predictions and references are matched by position.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from s2s.errors import ConfigError, DataError
from s2s.metrics import ROUGE_NAMES, score

LEVELS = {"word": ("word",), "char": ("char",), "both": ("word", "char")}
SHOWN = 5  # mismatches named in an error message


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


@dataclass(frozen=True)
class Entry:
    """One prediction or reference: its QID (None in a text file), text and first line."""

    qid: str | None
    text: str
    line: int


@contextmanager
def _open(path: Path, role: str) -> Iterator[IO[str]]:
    """``path`` opened as UTF-8 text (BOM allowed); unreadable or non-UTF-8 files are DataErrors."""
    try:
        with open(path, encoding="utf-8-sig", newline="" if _is_csv(path) else None) as f:
            yield f
    except OSError as e:
        message = f"{path}: cannot read the {role} file ({e.strerror}); check the path"
        raise DataError(message) from None
    except UnicodeDecodeError as e:
        message = f"{path}: {role} file is not UTF-8 ({e.reason}); save it as UTF-8"
        raise DataError(message) from None


def _read_csv(path: Path, role: str, column: str, layout: str) -> list[Entry]:
    """Rows of a CSV file with a header naming ``QID`` and ``column``."""
    with _open(path, role) as f:
        reader = csv.reader(f, strict=True)
        start = 1  # the line on which the row being read begins
        try:
            header = next(reader, None)
            if header is None or "QID" not in header or column not in header:
                found = ",".join(header) if header else "nothing"
                raise DataError(f"{path}:1: {role} CSV needs a header with QID and {column} "
                                f"columns ({layout}); found {found}")
            qid, text = header.index("QID"), header.index(column)
            entries = []
            start = reader.line_num + 1
            for fields in reader:
                if fields:  # blank lines are skipped
                    if len(fields) != len(header):
                        raise DataError(f"{path}:{start}: row has {len(fields)} fields but the "
                                        f"header has {len(header)}; the row is cut off or badly "
                                        f"quoted, and a {role} file must be whole: fix or remove "
                                        "the row")
                    entries.append(Entry(fields[qid], fields[text], start))
                start = reader.line_num + 1
        except csv.Error as e:
            raise DataError(f"{path}:{start}: malformed CSV row ({e}); the row is cut off or "
                            f"badly quoted, and a {role} file must be whole: fix or remove "
                            "the row") from None
    return entries


def _read_lines(path: Path, role: str) -> list[Entry]:
    """One entry per line of a text file (a final newline does not start an empty entry)."""
    with _open(path, role) as f:
        lines = f.read().split("\n")
    if lines[-1] == "":
        lines.pop()
    return [Entry(None, line, number) for number, line in enumerate(lines, 1)]


def read_predictions(path: str | Path) -> list[Entry]:
    """Predictions from a ``QID,Prediction`` CSV or a text file, one per line."""
    path = Path(path)
    if _is_csv(path):
        return _read_csv(path, "predictions", "Prediction", "the submission layout QID,Prediction")
    return _read_lines(path, "predictions")


def read_references(path: str | Path) -> list[Entry]:
    """References from an AutoMaster CSV (the ``Report`` column) or a text file, one per line."""
    path = Path(path)
    if _is_csv(path):
        entries = _read_csv(path, "references", "Report", "the AutoMaster train layout")
    else:
        entries = _read_lines(path, "references")
    if not entries:
        raise DataError(f"{path}: no references; give a file with one reference per example")
    return entries


def _listed(items: list[str]) -> str:
    more = ", ..." if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _by_qid(entries: list[Entry], path: Path) -> dict[str, Entry]:
    """Entries keyed by QID; a QID given twice is a DataError naming both lines."""
    index: dict[str, Entry] = {}
    for entry in entries:
        assert entry.qid is not None
        if entry.qid in index:
            raise DataError(f"{path}:{entry.line}: QID {entry.qid} was already given on line "
                            f"{index[entry.qid].line}; QIDs must be unique")
        index[entry.qid] = entry
    return index


def _match_by_qid(predictions: list[Entry], references: list[Entry],
                  pred_path: Path, ref_path: Path) -> list[str]:
    """Prediction texts in reference order; QIDs must be the same set on both sides."""
    by_qid = _by_qid(predictions, pred_path)
    wanted = _by_qid(references, ref_path)
    unknown = [qid for qid in by_qid if qid not in wanted]
    missing = [qid for qid in wanted if qid not in by_qid]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} QIDs in predictions are not in references: "
                        f"{_listed(unknown)}")
    if missing:
        problems.append(f"{len(missing)} QIDs in references have no prediction: "
                        f"{_listed(missing)}")
    if problems:
        raise DataError(f"{pred_path} vs {ref_path}: {'; '.join(problems)}; predict on the "
                        "file whose references you evaluate against")
    return [by_qid[qid].text for qid in wanted]


def _match_by_position(predictions: list[Entry], references: list[Entry],
                       pred_path: Path, ref_path: Path) -> list[str]:
    """Prediction texts as given; the counts must agree."""
    if len(predictions) != len(references):
        longer, path = ((predictions, pred_path) if len(predictions) > len(references)
                        else (references, ref_path))
        extra = [str(entry.line) for entry in longer[min(len(predictions), len(references)):]]
        raise DataError(f"{pred_path} has {len(predictions)} predictions but {ref_path} has "
                        f"{len(references)} references; unmatched in {path}: lines "
                        f"{_listed(extra)}; give one prediction per reference, in order")
    return [entry.text for entry in predictions]


def evaluate(predictions_path: str | Path, references_path: str | Path,
             level: str = "both") -> dict[str, Any]:
    """ROUGE of a predictions file against a references file, plus decoding quality guards.

    Returns ``{"count": N, <level>: {"rouge-1": {"p", "r", "f"}, "rouge-2": .., "rouge-l": ..},
    "guards": {...}}`` with only the levels asked for (``word``, ``char`` or ``both``);
    see :func:`s2s.metrics.score`.
    """
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r} (choices: {', '.join(LEVELS)})")
    pred_path, ref_path = Path(predictions_path), Path(references_path)
    predictions, references = read_predictions(pred_path), read_references(ref_path)
    by_qid = _is_csv(pred_path) and _is_csv(ref_path)
    match = _match_by_qid if by_qid else _match_by_position
    texts = match(predictions, references, pred_path, ref_path)
    return score(texts, [entry.text for entry in references], LEVELS[level])


def format_report(result: dict[str, Any]) -> str:
    """A small table of ROUGE F1 in percent, one line per level, then the guards line."""
    levels = [level for level in LEVELS["both"] if level in result]
    lines = [f"ROUGE F1 (%) over {result['count']:,} examples",
             "level  " + "  ".join(f"{name.upper():>7}" for name in ROUGE_NAMES)]
    for level in levels:
        cells = "  ".join(f"{100 * result[level][name]['f']:7.2f}" for name in ROUGE_NAMES)
        lines.append(f"{level:<5}  {cells}")
    g = result["guards"]
    repeats = ", ".join(f"{100 * rate:.2f}% ({level})"
                        for level, rate in g["repeated_trigrams"].items())
    lines.append(f"guards: {g['empty']} empty, {g['unk_outputs']} with <unk> "
                 f"({g['unk_tokens']} <unk> in all), repeated trigrams {repeats}")
    return "\n".join(lines)
