"""``s2s predict``: its arguments and the command (the rest of the command line is in ``cli.py``)."""

from __future__ import annotations

import argparse
from typing import Any

from s2s.errors import ConfigError


def cmd_predict(args: argparse.Namespace) -> int:
    from s2s.predict import predict_file

    if args.baseline is None and args.checkpoint is None:
        raise ConfigError("predict needs --checkpoint CKPT (or --baseline lead / oracle)")
    options = {
        "search": args.search,
        "beam_size": args.beam_size,
        "batch_size": args.batch_size,
        "n_best": args.n_best,
        "max_length": args.max_length,
        "min_length": args.min_length,
        "alpha": args.alpha,
        "beta": args.beta,
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "replace_unk": args.replace_unk,
    }
    sampling = {"temperature": args.temperature, "seed": args.seed}  # of --sample N, else of --search sample
    if not args.sample and args.search != "sample" and any(v is not None for v in sampling.values()):
        raise ConfigError("--temperature and --seed are options of sampling: add --sample N (or --search sample)")
    sample = {"n_best": args.sample, **sampling} if args.sample else None
    predict_file(
        args.checkpoint,
        args.input,
        args.output,
        input_format=args.format,
        options={k: v for k, v in (options if sample else options | sampling).items() if v is not None},
        overrides=args.overrides,
        baseline=args.baseline,
        device=args.device,
        plot_attention=args.plot_attention,
        sample={k: v for k, v in sample.items() if v is not None} if sample else None,
        rerank=args.rerank,
        on_bad_row=args.on_bad_row,
        quantize=args.quantize,
    )
    return 0


def add_quantize(parser: argparse.ArgumentParser) -> None:
    """``--quantize int8`` (``s2s predict`` and ``s2s serve``)."""
    parser.add_argument(
        "--quantize",
        choices=["fp32", "int8"],
        help="int8: the linear layers (output layer first) in int8, faster on CPUs (default: fp32)",
    )


def add_predict(commands: Any) -> None:
    predict = commands.add_parser(
        "predict",
        help="Summarize a CSV, TSV, JSONL or text file (or stdin) with a checkpoint.",
        description="Summarize each input with a trained checkpoint (or a baseline). CSV input "
        "(AutoMaster layout) gives a QID,Prediction CSV; other inputs give one summary per line.",
    )
    predict.add_argument(
        "--checkpoint",
        nargs="+",
        metavar="CKPT",
        help="a checkpoint, e.g. runs/x/best.pt; several: an ensemble (their probabilities averaged)",
    )
    predict.add_argument(
        "--input", required=True, metavar="FILE", help="input file, or - for stdin (one text per line)"
    )
    predict.add_argument("--output", metavar="FILE", help="where to write the summaries (default: stdout)")
    predict.add_argument(
        "--format",
        metavar="READER",
        help="input format: a reader (automaster, csv, tsv, jsonl, parallel, text, ...; "
        "default: from the extension: .csv, .tsv, .jsonl, else text)",
    )
    predict.add_argument(
        "--baseline",
        choices=["lead", "oracle"],
        help="no model. lead: the first technician turn (AutoMaster) or the first sentence; oracle: the turn "
        "or sentence with the best char ROUGE-L against the row's reference (the ceiling of picking one)",
    )
    predict.add_argument(
        "--search", metavar="SEARCHER", help="beam, greedy, ... (default: the checkpoint's predict.search)"
    )
    predict.add_argument("--beam-size", type=int, metavar="N")
    predict.add_argument("--batch-size", type=int, metavar="N", help="sentences per batch")
    predict.add_argument("--n-best", type=int, metavar="N", help="candidates per input, as JSONL (--output X.jsonl)")
    predict.add_argument("--sample", type=int, metavar="N", help="add N sampled candidates per input (seeded)")
    predict.add_argument("--temperature", type=float, metavar="T", help="sampling temperature (default: 1)")
    predict.add_argument("--seed", type=int, metavar="N", help="sampling seed (default: 0)")
    predict.add_argument(
        "--rerank", choices=["mbr"], help="pick each input's candidate by expected ROUGE-L against the others"
    )
    predict.add_argument("--max-length", type=int, metavar="N", help="output tokens at most")
    predict.add_argument("--min-length", type=int, metavar="N", help="output tokens at least")
    predict.add_argument("--alpha", type=float, help="length penalty (Wu et al.)")
    predict.add_argument("--beta", type=float, help="coverage penalty")
    predict.add_argument("--no-repeat-ngram-size", type=int, metavar="N", help="block repeated n-grams")
    predict.add_argument(
        "--replace-unk",
        action="store_true",
        default=None,
        help="attention models: replace <unk> by the most-attended source word",
    )
    predict.add_argument(
        "--plot-attention",
        metavar="DIR",
        help="write an attention heatmap PNG per input into DIR (needs s2s-summarizer[plot])",
    )
    predict.add_argument(
        "--on-bad-row",
        choices=["error", "skip", "empty"],
        default="error",
        help="a row that cannot be read: stop before decoding (default), skip it, or give it an empty prediction",
    )
    predict.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_quantize(predict)
    predict.add_argument(
        "overrides",
        nargs="*",
        metavar="predict.key=value",
        help="other search options, e.g. predict.max_length_ratio=1.5",
    )
    predict.set_defaults(command=cmd_predict)
