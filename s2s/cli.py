"""The command line: ``s2s config | prepare | embeddings | train | average | predict | evaluate | serve | info``.

Thin by design: each command parses its arguments and calls the library function that does the
work (usable from Python too). A user error prints one line and exits with code 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from s2s.cli_predict import add_predict, add_quantize
from s2s.errors import ConfigError, S2SError
from s2s.version import __version__

log = logging.getLogger("s2s")


def main(argv: Sequence[str] | None = None) -> int:
    debug = False
    try:  # the parser too: a Ctrl-C in the first instant is no traceback either
        args = _parser().parse_args(argv)
        debug = args.debug
        _setup_logging(debug)
        for module in args.plugin or []:
            _import_plugin(module)
        return args.command(args) or 0
    except S2SError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def cmd_config(args: argparse.Namespace) -> int:
    from s2s import reference
    from s2s.config import check_training, config_yaml, load_config

    if args.list:
        print(reference.list_parts(args.list))
    elif args.markdown:
        print(reference.markdown(), end="")
    elif args.config:
        cfg = load_config(args.config, args.overrides)
        check_training(cfg)
        print(config_yaml(cfg), end="")
    else:
        raise ConfigError("config needs a CONFIG file, --list KIND or --markdown")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from s2s.config import load_config
    from s2s.prepare import prepare, write_splits
    from s2s.rundir import RunDirectory

    cfg = load_config(args.config, args.overrides)
    data = prepare(cfg)
    run_dir = RunDirectory(cfg.train.output_dir)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    paths = run_dir.save_vocabularies(data.src_vocab, data.tgt_vocab)
    log.info("vocabularies written to %s", ", ".join(str(p) for p in paths))
    for name, path in write_splits(cfg, data, run_dir.path).items():
        log.info("%s split written to %s", name, path)
    return 0


def cmd_embeddings(args: argparse.Namespace) -> int:
    from s2s.config import load_config
    from s2s.word2vec import Word2VecOptions, format_report, train_vectors

    names = ("algorithm", "size", "window", "min_count", "epochs", "workers", "seed")
    options = Word2VecOptions(**{k: getattr(args, k) for k in names if getattr(args, k) is not None})
    cfg = load_config(args.config, args.overrides)
    report = train_vectors(cfg, args.output, args.extra or (), options, extra_format=args.extra_format)
    print(format_report(report))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from s2s.config import load_config
    from s2s.trainer import TrainingInterrupted, train

    cfg = load_config(args.config, args.overrides)
    try:
        train(cfg)
    except TrainingInterrupted as stop:
        resume = " ".join(["s2s train", args.config, *args.overrides, "train.resume=auto"])
        saved = f"saved {stop.checkpoint}" if stop.checkpoint else "nothing saved"
        print(f"interrupted at step {stop.step}: {saved}; resume with: {resume}", file=sys.stderr)
        return 128 + stop.signal_number
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from s2s.average import average_files, last_checkpoints

    if args.last is not None:
        if len(args.checkpoints) != 1:
            raise ConfigError("average --last N takes one RUN_DIR, not checkpoint files")
        paths = last_checkpoints(args.checkpoints[0], args.last)
    else:
        paths = args.checkpoints
    average_files(paths, args.output)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from s2s.evaluate import compare, evaluate, format_comparison, format_report

    options = {
        "bootstrap": args.bootstrap,
        "seed": args.seed,
        "fmt": args.format,
        "target_field": args.target_field,
        "config": args.config,
    }
    options = {k: v for k, v in options.items() if v is not None}
    if args.compare:
        result = compare(args.predictions, args.compare, args.references, level=args.level, **options)
        text = format_comparison(result)
    else:
        result = evaluate(args.predictions, args.references, level=args.level, **options)
        text = format_report(result)
    print(json.dumps(result, ensure_ascii=False) if args.json else text)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from s2s.info import describe_checkpoint

    print(describe_checkpoint(args.checkpoint))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from s2s.serve import serve

    serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        device=args.device,
        examples=args.examples,
        allow_hosts=args.allow_host or (),
        api_docs=args.api_docs,
        quantize=args.quantize,
    )
    return 0


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2s",
        description="Train, run and score sequence-to-sequence summarizers from YAML configs.",
        epilog="Run `s2s COMMAND --help` for a command's options. Docs: README.md.",
    )
    parser.add_argument("--version", action="version", version=f"s2s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument(
        "--plugin",
        action="append",
        metavar="MODULE",
        help="import MODULE first (it may register its own parts); repeatable",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in (
        _add_config,
        _add_prepare,
        _add_embeddings,
        _add_train,
        _add_average,
        add_predict,
        _add_evaluate,
        _add_serve,
        _add_info,
    ):
        add(commands)
    return parser


def _config_command(
    commands: Any, name: str, func: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    """A command that reads CONFIG and its overrides."""
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.add_argument("config", metavar="CONFIG", help="YAML config file")
    sub.add_argument(
        "overrides",
        nargs="*",
        metavar="key.sub=value",
        help="override config values, e.g. train.max_steps=1000 model.encoder.type=gru",
    )
    sub.set_defaults(command=func)
    return sub


def _add_config(commands: Any) -> None:
    config = commands.add_parser(
        "config",
        help="Print the resolved config of CONFIG, or list the parts a config can name.",
        description="Print CONFIG (with overrides) as it resolves, every default filled in and every key "
        "checked as `s2s train` checks it; or list the registered parts of a kind with their options.",
    )
    config.add_argument("config", metavar="CONFIG", nargs="?", help="YAML config file")
    config.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override config values")
    config.add_argument(
        "--list", metavar="KIND", help=f"list the parts of KIND ({', '.join(_kinds())}) with their options"
    )
    config.add_argument(
        "--markdown", action="store_true", help="print the reference of every section and part (docs/config.md)"
    )
    config.set_defaults(command=cmd_config)


def _add_prepare(commands: Any) -> None:
    _config_command(
        commands,
        "prepare",
        cmd_prepare,
        "Read, clean and tokenize the data of CONFIG (cached), build the vocabularies.",
    )


def _add_embeddings(commands: Any) -> None:
    embeddings = _config_command(
        commands,
        "embeddings",
        cmd_embeddings,
        "Train word2vec vectors (needs s2s-summarizer[vectors]) on the training split of CONFIG and unlabelled "
        "--extra files, for model.embeddings.pretrained.",
    )
    embeddings.add_argument("--output", required=True, metavar="FILE", help="the vectors, word2vec text format")
    embeddings.add_argument(
        "--extra",
        nargs="+",
        metavar="FILE",
        help="more text: the sources of these files, read like data.train (a test set's dialogues, say)",
    )
    embeddings.add_argument(
        "--extra-format", metavar="READER", help="the reader of the --extra files (text: a line each)"
    )
    embeddings.add_argument("--algorithm", choices=["skipgram", "cbow"], help="default: skipgram")
    embeddings.add_argument("--size", type=int, metavar="N", help="vector size (default: the model's embedding size)")
    embeddings.add_argument("--window", type=int, metavar="N", help="context words each side (default: 5)")
    embeddings.add_argument("--min-count", type=int, metavar="N", help="rarer words get no vector (default: 1)")
    embeddings.add_argument("--epochs", type=int, metavar="N", help="passes over the text (default: 10)")
    embeddings.add_argument("--workers", type=int, metavar="N", help="threads (default: 1, the only reproducible)")
    embeddings.add_argument("--seed", type=int, help="default: train.seed")


def _add_train(commands: Any) -> None:
    _config_command(
        commands,
        "train",
        cmd_train,
        "Train the model of CONFIG; checkpoints, logs and TensorBoard go to train.output_dir.",
    )


def _add_average(commands: Any) -> None:
    average = commands.add_parser(
        "average",
        help="Average the weights of checkpoints of one run into one checkpoint.",
        description="The parameter mean of checkpoints of one run (as OpenNMT-py's average_models): "
        "CKPT files, or with --last N the N newest step_N.pt of RUN_DIR. The result predicts (weights only).",
    )
    average.add_argument("checkpoints", nargs="+", metavar="CKPT", help="checkpoint files (with --last: RUN_DIR)")
    average.add_argument("--output", required=True, metavar="FILE", help="where to write the averaged checkpoint")
    average.add_argument("--last", type=int, metavar="N", help="average the N newest step_N.pt of RUN_DIR")
    average.set_defaults(command=cmd_average)


def _add_evaluate(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="ROUGE-1/2/L (word and character level) of predictions against references.",
        description="Score predictions (QID,Prediction CSV or text) against references (the target "
        "field of any file a reader reads: AutoMaster CSV, TSV, JSONL, parallel, or text, one per "
        "line; matched by QID where both sides have one, else by line): ROUGE F1 averaged over "
        "examples, plus counts of empty outputs, <unk> and repeated trigrams. --bootstrap adds 95% "
        "confidence intervals; --compare tests whether the predictions (a) score better than a second system (b).",
    )
    evaluate.add_argument("--predictions", required=True, metavar="FILE", help="the system's outputs (a)")
    evaluate.add_argument("--references", required=True, metavar="FILE", help="the reference summaries")
    evaluate.add_argument(
        "--format",
        metavar="READER",
        help="references format: a reader (automaster, csv, tsv, jsonl, parallel, text, ...; "
        "default: from the extension: .csv, .tsv, .jsonl, PREFIX with PREFIX.src/.tgt, else text)",
    )
    evaluate.add_argument(
        "--target-field",
        metavar="NAME",
        help="the references' field (csv, jsonl: a name, default Report; tsv: a column number, default -1)",
    )
    evaluate.add_argument(
        "--config",
        metavar="CONFIG",
        help="read the references with the data options of this config (a run's config.yaml)",
    )
    evaluate.add_argument(
        "--level",
        choices=["word", "char", "both"],
        default="both",
        help="word: jieba words; char: characters (default: both)",
    )
    evaluate.add_argument(
        "--compare",
        metavar="FILE",
        help="a second system's outputs (b), matched like --predictions: prints both "
        "systems, a - b and the paired bootstrap p-value that a is better, per score",
    )
    evaluate.add_argument(
        "--bootstrap",
        type=int,
        metavar="N",
        help="resample the examples N times for a 95%% percentile interval of every "
        "score (default: none; 1000 with --compare)",
    )
    evaluate.add_argument(
        "--seed", type=int, help="seed of the resampling (default: a fixed one, printed with the figures)"
    )
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON alone")
    evaluate.set_defaults(command=cmd_evaluate)


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="A web page and JSON API to try a checkpoint (needs s2s-summarizer[serve]).",
        description="Serve a checkpoint: a page with attention heatmaps, POST /summarize, GET /health.",
    )
    serve.add_argument("--checkpoint", required=True, metavar="CKPT")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (default: 8000)")
    serve.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_quantize(serve)
    serve.add_argument(
        "--examples",
        metavar="FILE",
        help="CSV/TSV/JSONL rows the page offers to try (default: the run's dev_split.* beside the "
        "checkpoint, if present)",
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        metavar="NAME",
        help="also answer requests for this host name (default: the bound ones); repeatable; * for any",
    )
    serve.add_argument("--api-docs", action="store_true", help="serve FastAPI's /docs and /openapi.json")
    serve.set_defaults(command=cmd_serve)


def _add_info(commands: Any) -> None:
    info = commands.add_parser(
        "info",
        help="what a checkpoint holds",
        description="Print a checkpoint's model family and sizes, vocabularies, tokenizer, training step, "
        "best score and the config it was trained with.",
    )
    info.add_argument("checkpoint", metavar="CKPT", help="an s2s checkpoint (.pt)")
    info.set_defaults(command=cmd_info)


def _kinds() -> list[str]:
    from s2s.registry import KINDS

    return list(KINDS)


def _port(text: str) -> int:
    """``--port``: a TCP port number, 1 to 65535 (argparse turns the error into one line and exit 2)."""
    port = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: give one from 1 to 65535")
    return port


def _setup_logging(debug: bool) -> None:
    """Log lines of the s2s package to stderr, once however often ``main`` runs in a process."""
    for handler in [h for h in log.handlers if getattr(h, "_s2s_console", False)]:
        log.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._s2s_console = True
    handler.setFormatter(logging.Formatter("%(message)s" if not debug else "%(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO)


def _import_plugin(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(f"--plugin {module}: cannot import it ({err})") from None


if __name__ == "__main__":
    sys.exit(main())
