"""Score trained s2s runs on their dev split, greedy and beam, as the rows of docs/quality.md.

    PYTHONPATH=. python scripts/quality_s2s.py RUN_DIR [RUN_DIR ...] [--beam-size 4] [--lead]

For each run directory (``train.output_dir`` of a preset): ``best.pt`` decodes the run's
``dev_split.csv`` (or ``--references``) greedily and with beam search (the checkpoint's own
search options otherwise), predictions are written beside the checkpoint
(``dev_greedy.csv``, ``dev_beam.csv``) and scored with ``s2s evaluate`` at word and char level.
``--lead`` adds the lead baseline on the same rows. Prints one markdown row per decode.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from s2s.evaluate import evaluate
from s2s.predict import predict_file

HEADER = (
    "| system | word R-1 | word R-2 | word R-L | char R-1 | char R-2 | char R-L "
    "| outputs with <unk> | repeated word trigrams |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def markdown_row(name: str, predictions: Path, references: Path) -> str:
    """ROUGE F1 (%) at word and char level and the guards of ``predictions``, as a table row."""
    r = evaluate(predictions, references, level="both")
    cells = [f"{100 * r[level][n]['f']:.1f}" for level in ("word", "char") for n in ("rouge-1", "rouge-2", "rouge-l")]
    g = r["guards"]
    return f"| {name} | " + " | ".join(cells) + f" | {g['unk_outputs']} | {100 * g['repeated_trigrams']['word']:.1f}% |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories holding best.pt and dev_split.csv")
    parser.add_argument("--references", type=Path, help="rows to decode and score (default: RUN/dev_split.csv)")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--lead", action="store_true", help="also score the lead baseline")
    args = parser.parse_args()

    rows = []
    for run in args.runs:
        references = args.references or run / "dev_split.csv"
        if args.lead and run == args.runs[0]:
            lead = predict_file(None, references, run / "dev_lead.csv", baseline="lead")
            rows.append(markdown_row(f"lead baseline ({lead} rows)", run / "dev_lead.csv", references))
        for search, options in (
            ("greedy", {"search": "greedy"}),
            ("beam", {"search": "beam", "beam_size": args.beam_size}),
        ):
            out = run / f"dev_{search}.csv"
            predict_file(run / "best.pt", references, out, options=options)
            rows.append(markdown_row(f"{run.name}, {search}", out, references))
    print(HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
