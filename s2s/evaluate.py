"""``s2s evaluate``: score a predictions file against a references file (Chinese ROUGE + guards).

Predictions are a ``QID,Prediction`` CSV (a file ending in ``.csv``, any case) or plain text,
one per line. References are read through a reader's target field: the reader named by
``fmt`` (``--format``), else by the file's name (``.csv``: the AutoMaster train layout, ``QID``
and ``Report`` columns; ``.tsv``: the last column; ``.jsonl``; a parallel ``PREFIX`` with
``PREFIX.src`` and ``PREFIX.tgt``), else plain text, one per line (a line with tabs is refused: it is a TSV);
``target_field`` and a run's ``config`` (its ``data`` section) choose the field. Predictions and
references that both have QIDs are matched by QID; otherwise by position.

With ``bootstrap`` resamples of the examples each ROUGE F1 also gets its 95% percentile bootstrap
interval, and :func:`compare` tests one system against another with the paired bootstrap
(Koehn 2004); see :mod:`s2s.significance`. Texts are segmented and scored once: resampling
averages the per-example scores.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from s2s.config import DataConfig, load_data_config
from s2s.errors import ConfigError, DataError
from s2s.metrics import ROUGE_NAMES, RougeScores, Score, score_examples, segment_levels
from s2s.options import retype
from s2s.readers import BadRow, CsvReader, FieldsOptions, FieldsReader, TsvOptions, format_from_name, open_reader
from s2s.registry import READERS
from s2s.significance import CONFIDENCE, SEED, paired_p_value, percentile_interval, resampled_means

LEVELS = {"word": ("word",), "char": ("char",), "both": ("word", "char")}
SHOWN = 5  # mismatches named in an error message
COMPARE_SAMPLES = 1000  # resamples of compare() unless told
ALPHA = 0.05  # a p-value below it: the difference is beyond the noise


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


def _read_csv(path: Path, role: str, column: str, layout: str, id_column: str = "QID") -> list[Entry]:
    """Rows of a CSV file with a header naming ``id_column`` and ``column``."""
    with _open(path, role) as f:
        reader = csv.reader(f, strict=True)
        start = 1  # the line on which the row being read begins
        try:
            header = next(reader, None)
            if header is None or id_column not in header or column not in header:
                found = ",".join(header) if header else "nothing"
                raise DataError(
                    f"{path}:1: {role} CSV needs a header with {id_column} and {column} columns ({layout}); "
                    f"found {found}"
                )
            qid, text = header.index(id_column), header.index(column)
            entries = []
            start = reader.line_num + 1
            for fields in reader:
                if fields:  # blank lines are skipped
                    if len(fields) != len(header):
                        raise DataError(
                            f"{path}:{start}: row has {len(fields)} fields but the "
                            f"header has {len(header)}; the row is cut off or badly "
                            f"quoted, and a {role} file must be whole: fix or remove "
                            "the row"
                        )
                    entries.append(Entry(fields[qid], fields[text], start))
                start = reader.line_num + 1
        except csv.Error as e:
            raise DataError(
                f"{path}:{start}: malformed CSV row ({e}); the row is cut off or "
                f"badly quoted, and a {role} file must be whole: fix or remove "
                "the row"
            ) from None
    return entries


def _read_lines(path: Path, role: str, one_column: bool = False) -> list[Entry]:
    """One entry per line of a text file (a final newline does not start an empty entry);
    with ``one_column``, a line with a tab is a DataError (the file is a TSV)."""
    with _open(path, role) as f:
        lines = f.read().split("\n")
    if lines[-1] == "":
        lines.pop()
    entries = [Entry(None, line, number) for number, line in enumerate(lines, 1)]
    if one_column and (tabbed := next((e for e in entries if "\t" in e.text), None)):
        raise DataError(
            f"{path}:{tabbed.line}: {tabbed.text.count(chr(9)) + 1} tab-separated fields, but a text {role} file "
            "holds one per line; give --format tsv (--target-field N picks the column, default the last)"
        )
    return entries


def read_predictions(path: str | Path) -> list[Entry]:
    """Predictions from a ``QID,Prediction`` CSV or a text file, one per line."""
    path = Path(path)
    if _is_csv(path):
        return _read_csv(path, "predictions", "Prediction", "the submission layout QID,Prediction")
    return _read_lines(path, "predictions")


def reference_options(
    path: str | Path, fmt: str | None = None, target_field: str | None = None, config: str | Path | None = None
) -> DataConfig:
    """The reader options references are read with: reader ``fmt``, else the one ``path``'s name
    implies, else ``text``; the values of ``config``'s ``data`` section; the target ``target_field``
    (a field name, or a column number for ``tsv``)."""
    data = load_data_config(config) if config is not None else None
    fmt = fmt or format_from_name(str(path)) or "text"
    READERS.get(fmt)  # an unknown name lists the choices
    options = retype(data, READERS, fmt) if data is not None else READERS.options_type(fmt)(format=fmt)
    if target_field is None:
        return options
    if isinstance(options, FieldsOptions):
        return replace(options, target_field=target_field)
    if isinstance(options, TsvOptions):
        if not target_field.lstrip("-").isdigit():
            raise ConfigError(f"--target-field {target_field}: a tsv file's target is a column number (-1: the last)")
        return replace(options, target_column=int(target_field))
    raise ConfigError(f"--target-field {target_field}: {fmt} references have no fields; leave it out")


def read_references(
    path: str | Path, fmt: str | None = None, target_field: str | None = None, config: str | Path | None = None
) -> list[Entry]:
    """The target of each row of ``path``, read as :func:`reference_options` says.

    CSV (``QID`` and ``Report`` columns unless told otherwise) is read strictly: a cut-off row is
    an error. Other readers' rows are read whole too; QIDs come from the id field where a row has one.
    """
    path = Path(path)
    options = reference_options(path, fmt, target_field, config)
    reader = open_reader(options, path)
    if options.format == "text":
        entries = _read_lines(path, "references", one_column=True)
    elif isinstance(reader, CsvReader):
        layout = "the AutoMaster train layout" if options.format == "automaster" else f"data.format {options.format}"
        entries = _read_csv(path, "references", options.target_field, layout, options.id_field)
    else:
        entries = _read_rows(reader, path)
    if not entries:
        raise DataError(f"{path}: no references; give a file with one reference per example")
    return entries


def _read_rows(reader: Any, path: Path) -> list[Entry]:
    """The targets of a reader's rows (only its target field is needed); a bad row is a DataError."""
    if isinstance(reader, FieldsReader):
        reader.options = replace(reader.options, source_fields=[])
    entries = []
    for row in reader.read(path, need_target=True):
        if isinstance(row, BadRow):
            raise DataError(f"{path}:{row.line}: {row.reason}; a references file must be whole: fix or remove the row")
        qid = row.raw.get(reader.options.id_field) if row.raw is not None else None
        entries.append(Entry(qid or None, row.target or "", row.line))
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
            raise DataError(
                f"{path}:{entry.line}: QID {entry.qid} was already given on line "
                f"{index[entry.qid].line}; QIDs must be unique"
            )
        index[entry.qid] = entry
    return index


def _match_by_qid(predictions: list[Entry], references: list[Entry], pred_path: Path, ref_path: Path) -> list[str]:
    """Prediction texts in reference order; QIDs must be the same set on both sides."""
    by_qid = _by_qid(predictions, pred_path)
    wanted = _by_qid(references, ref_path)
    unknown = [qid for qid in by_qid if qid not in wanted]
    missing = [qid for qid in wanted if qid not in by_qid]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} QIDs in predictions are not in references: {_listed(unknown)}")
    if missing:
        problems.append(f"{len(missing)} QIDs in references have no prediction: {_listed(missing)}")
    if problems:
        raise DataError(
            f"{pred_path} vs {ref_path}: {'; '.join(problems)}; predict on the "
            "file whose references you evaluate against"
        )
    return [by_qid[qid].text for qid in wanted]


def _match_by_position(predictions: list[Entry], references: list[Entry], pred_path: Path, ref_path: Path) -> list[str]:
    """Prediction texts as given; the counts must agree."""
    if len(predictions) != len(references):
        longer, path = (predictions, pred_path) if len(predictions) > len(references) else (references, ref_path)
        extra = [str(entry.line) for entry in longer[min(len(predictions), len(references)) :]]
        raise DataError(
            f"{pred_path} has {len(predictions)} predictions but {ref_path} has "
            f"{len(references)} references; unmatched in {path}: lines "
            f"{_listed(extra)}; give one prediction per reference, in order"
        )
    return [entry.text for entry in predictions]


def _match(predictions: list[Entry], references: list[Entry], pred_path: Path, ref_path: Path) -> list[str]:
    """Prediction texts in reference order: by QID when every entry on both sides has one, else by position."""
    by_qid = all(e.qid is not None for e in predictions) and all(e.qid is not None for e in references)
    match = _match_by_qid if by_qid else _match_by_position
    return match(predictions, references, pred_path, ref_path)


def _levels(level: str) -> tuple[str, ...]:
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r} (choices: {', '.join(LEVELS)})")
    return LEVELS[level]


def _f1_columns(examples: Mapping[str, Sequence[RougeScores]]) -> dict[tuple[str, str], list[float]]:
    """Per-example F1 keyed by (level, ROUGE name)."""
    return {
        (level, name): [scores[name]["f"] for scores in per_example]
        for level, per_example in examples.items()
        for name in ROUGE_NAMES
    }


def _add_intervals(result: dict[str, Any], means: Mapping[tuple[str, str], Sequence[float]]) -> None:
    """Sets ``result[level][name]["f_ci"]`` to the bootstrap interval of that F1."""
    for (level, name), values in means.items():
        result[level][name]["f_ci"] = list(percentile_interval(values, CONFIDENCE))


def _bootstrap_info(samples: int, seed: int) -> dict[str, Any]:
    return {"samples": samples, "seed": seed, "confidence": CONFIDENCE, "interval": "percentile"}


def evaluate(
    predictions_path: str | Path,
    references_path: str | Path,
    level: str = "both",
    bootstrap: int = 0,
    seed: int = SEED,
    **layout: Any,
) -> dict[str, Any]:
    """ROUGE of a predictions file against a references file, plus decoding quality guards.

    ``layout``: how the references are read, :func:`read_references`'s ``fmt``, ``target_field``
    and ``config``.

    Returns ``{"count": N, <level>: {"rouge-1": {"p", "r", "f"}, "rouge-2": .., "rouge-l": ..},
    "guards": {...}}`` with only the levels asked for (``word``, ``char`` or ``both``);
    see :func:`s2s.metrics.score`. With ``bootstrap`` resamples (0: none), each score also has
    ``"f_ci": [low, high]``, the 95% percentile bootstrap interval of its F1, and the result
    ``"bootstrap": {"samples", "seed", "confidence", "interval"}``.
    """
    levels = _levels(level)
    if bootstrap < 0:
        raise ConfigError(f"--bootstrap {bootstrap}: give a number of resamples (0: no intervals)")
    pred_path, ref_path = Path(predictions_path), Path(references_path)
    predictions, references = read_predictions(pred_path), read_references(ref_path, **layout)
    texts = _match(predictions, references, pred_path, ref_path)
    result, examples = score_examples(texts, segment_levels([entry.text for entry in references], levels))
    if bootstrap:
        _add_intervals(result, resampled_means(_f1_columns(examples), bootstrap, seed))
        result["bootstrap"] = _bootstrap_info(bootstrap, seed)
    return result


def compare(
    predictions_path: str | Path,
    compare_path: str | Path,
    references_path: str | Path,
    level: str = "both",
    bootstrap: int = COMPARE_SAMPLES,
    seed: int = SEED,
    **layout: Any,
) -> dict[str, Any]:
    """Paired bootstrap test of system a (``predictions_path``) against system b (``compare_path``).

    Each system is matched to the references as in :func:`evaluate` and resampled with the
    same draws. Returns ``{"count", "predictions", "compare", "bootstrap", "a": .., "b": ..,
    "difference": {level: {name: {"f", "p", "p_reverse", "verdict"}}}}``: ``a`` and ``b`` are
    :func:`evaluate`'s results with intervals; ``f`` is a's F1 minus b's, ``p`` the p-value that
    a is better than b (:func:`s2s.significance.paired_p_value`), ``p_reverse`` that b is better
    than a, and ``verdict`` "a better" or "b better" when that p-value is below 0.05, else
    "within noise".
    """
    levels = _levels(level)
    if bootstrap < 1:
        raise ConfigError(f"--bootstrap {bootstrap}: --compare needs at least 1 resample (default {COMPARE_SAMPLES})")
    paths = {"a": Path(predictions_path), "b": Path(compare_path)}
    ref_path = Path(references_path)
    entries = {system: read_predictions(path) for system, path in paths.items()}
    references = read_references(ref_path, **layout)
    segmented = segment_levels([entry.text for entry in references], levels)
    results, means = {}, {}
    for system, path in paths.items():
        results[system], examples = score_examples(_match(entries[system], references, path, ref_path), segmented)
        # the same seed and number of examples give the same draws: the two systems are paired
        means[system] = resampled_means(_f1_columns(examples), bootstrap, seed)
        _add_intervals(results[system], means[system])
    difference = {lvl: {name: _difference(results, means, lvl, name) for name in ROUGE_NAMES} for lvl in levels}
    return {
        "count": len(references),
        "predictions": str(paths["a"]),
        "compare": str(paths["b"]),
        "bootstrap": _bootstrap_info(bootstrap, seed),
        **results,
        "difference": difference,
    }


def _difference(
    results: Mapping[str, dict[str, Any]],
    means: Mapping[str, Mapping[tuple[str, str], Sequence[float]]],
    level: str,
    name: str,
) -> dict[str, Any]:
    """a - b of one F1, the p-values of the paired test both ways, and the verdict."""
    a, b = means["a"][level, name], means["b"][level, name]
    p, p_reverse = paired_p_value(a, b), paired_p_value(b, a)
    verdict = "a better" if p < ALPHA else "b better" if p_reverse < ALPHA else "within noise"
    f = results["a"][level][name]["f"] - results["b"][level][name]["f"]
    return {"f": f, "p": p, "p_reverse": p_reverse, "verdict": verdict}


def _cell(score: Score) -> str:
    """An F1 in percent, with its interval when it has one: ``28.21 [26.90, 29.55]``."""
    text = f"{100 * score['f']:.2f}"
    if "f_ci" in score:
        low, high = score["f_ci"]
        text += f" [{100 * low:.2f}, {100 * high:.2f}]"
    return text


def _bootstrap_line(info: Mapping[str, Any]) -> str:
    return (
        f"{100 * info['confidence']:g}% {info['interval']} bootstrap intervals "
        f"({info['samples']:,} resamples, seed {info['seed']})"
    )


def _guards_line(g: Mapping[str, Any]) -> str:
    repeats = ", ".join(f"{100 * rate:.2f}% ({level})" for level, rate in g["repeated_trigrams"].items())
    return (
        f"{g['empty']} empty, {g['unk_outputs']} with <unk> ({g['unk_tokens']} <unk> in all), "
        f"repeated trigrams {repeats}"
    )


def format_report(result: dict[str, Any]) -> str:
    """A small table of ROUGE F1 in percent (with intervals if any), one line per level, then the guards."""
    levels = [level for level in LEVELS["both"] if level in result]
    title = f"ROUGE F1 (%) over {result['count']:,} examples"
    width = 7
    if "bootstrap" in result:
        title += f", {_bootstrap_line(result['bootstrap'])}"
        width = 22
    lines = [title, "level  " + "  ".join(f"{name.upper():>{width}}" for name in ROUGE_NAMES)]
    for level in levels:
        cells = "  ".join(f"{_cell(result[level][name]):>{width}}" for name in ROUGE_NAMES)
        lines.append(f"{level:<5}  {cells}")
    lines.append(f"guards: {_guards_line(result['guards'])}")
    return "\n".join(lines)


def format_comparison(result: dict[str, Any]) -> str:
    """:func:`compare`'s table: per level and score, both systems, a - b, p and the verdict."""
    title = f"ROUGE F1 (%) over {result['count']:,} examples; a: {result['predictions']}, b: {result['compare']}"
    test = "p: the p-value that a is better than b (paired bootstrap: resamples in which a is not better)"
    lines = [
        title,
        f"{_bootstrap_line(result['bootstrap'])}; {test}",
        f"level  score    {'a':<22}  {'b':<22}  {'a - b':>6}  {'p':>5}  verdict",
    ]
    for level, differences in result["difference"].items():
        for name, d in differences.items():
            a, b = _cell(result["a"][level][name]), _cell(result["b"][level][name])
            lines.append(
                f"{level:<5}  {name.upper():<7}  {a:<22}  {b:<22}  {100 * d['f']:+6.2f}  {d['p']:5.3f}  {d['verdict']}"
            )
    lines += [f"guards a: {_guards_line(result['a']['guards'])}", f"guards b: {_guards_line(result['b']['guards'])}"]
    return "\n".join(lines)
