"""``s2s`` and ``python -m s2s``: the command line (``s2s.cli``), entered so that a Ctrl-C while
its modules are still importing ends with one line, not a traceback."""

import sys


def run() -> int:
    try:
        from s2s.cli import main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as the commands return
    return main()


if __name__ == "__main__":
    sys.exit(run())
