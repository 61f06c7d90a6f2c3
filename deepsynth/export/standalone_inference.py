#!/usr/bin/env python
"""Summarize a text file with this exported DeepSynth model.

Install in a fresh virtualenv (torch first, then public packages only)::

    pip install torch==2.13.0    # CPU-only machine: --index-url https://download.pytorch.org/whl/cpu
    pip install -r requirements.txt

Run from any directory; nothing is written there::

    python inference.py --text-file document.txt [--max-new-tokens 128] [--cache-dir DIR]

The package carries the ``deepsynth`` library it was exported with (``deepsynth/`` beside this
script). Every file is checked against ``manifest.json`` before a weight is read; the adapter
attaches to its base model with a plain ``PeftModel.from_pretrained`` (or the merged model loads
as it is), the text is rendered to pages exactly as the training data was, and the summary is
printed. The base model is cached under ``--cache-dir`` (default ``$DEEPSYNTH_HOME``, else
``~/.cache/deepsynth``); hub downloads go to Hugging Face's cache.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # no __pycache__ inside the package: it stays identical to its manifest

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the carried library (already first on sys.path when run as a script)
    sys.path.insert(0, str(HERE))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: the summary of ``--text-file`` on stdout; an error is one line on stderr.

    Exit codes: 0 ok; 1 the package is tampered with, incomplete or cannot run; 2 bad usage (an option,
    a text file that cannot be read). ``--debug`` shows the traceback of an error.
    """
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv)
    except Exception as exc:  # noqa: BLE001 - one line and an exit code, never a traceback (unless --debug)
        if debug:
            raise
        code, message = _explain(exc)
        print(f"error: {message}", file=sys.stderr)
        return code


def _route_logging(verbose: bool) -> None:
    """On stderr: the library's warnings; other libraries' warnings only with ``--verbose`` (errors always)."""
    if not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # transformers prints through its own handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda r: verbose or r.name.split(".")[0] == "deepsynth" or r.levelno >= logging.ERROR)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    logging.captureWarnings(True)


class _UsageError(Exception):
    """A bad command line (exit code 2)."""


def _explain(exc: Exception) -> tuple[int, str]:
    """The exit code and one-line message for an error of :func:`_run`."""
    if isinstance(exc, _UsageError):
        return 2, str(exc)
    if isinstance(exc, ImportError):
        return 1, (
            f"{HERE}: the package's deepsynth library is missing or incomplete ({exc}); "
            "download or unzip the package again"
        )
    first = (str(exc).strip().splitlines() or [""])[0]
    if type(exc).__module__.startswith("deepsynth."):  # the library's errors: a clear message and their exit code
        return getattr(exc, "exit_code", 1), first
    return 1, f"{type(exc).__name__}: {first}"


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-file", required=True, help="UTF-8 text to summarize")
    parser.add_argument("--instruction", default=None, help="instruction (default: the one used in training)")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="longest summary in tokens (default: the setting recorded in manifest.json)",
    )
    parser.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        default=None,
        help="forbid repeated n-grams of this size, 0: off (default: recorded in manifest.json)",
    )
    parser.add_argument("--base-model", default=None, help="override the base model name or directory")
    parser.add_argument("--cache-dir", default=None, help="where the base model is cached (default: a user cache dir)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of the bare summary")
    parser.add_argument("--verbose", action="store_true", help="also show other libraries' warnings")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    _route_logging(args.verbose or args.debug)
    try:
        text = Path(args.text_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _UsageError(
            f"--text-file {args.text_file}: cannot be read as UTF-8 text ({getattr(exc, 'strerror', None) or exc})"
        ) from None

    from deepsynth.inference.summarizer import Summarizer, recorded_generation
    from deepsynth.paths import inference_cache_dir

    overrides = {"max_new_tokens": args.max_new_tokens, "no_repeat_ngram_size": args.no_repeat_ngram_size}
    generation = dataclasses.replace(recorded_generation(HERE), **{k: v for k, v in overrides.items() if v is not None})
    summarizer = Summarizer.load(
        HERE,
        home=inference_cache_dir(args.cache_dir),
        device=args.device,
        generation=generation,
        base_model=args.base_model,
    )
    summary = summarizer.summarize_text(text, args.instruction)
    print(json.dumps({"file": args.text_file, "summary": summary}) if args.json else summary)
    return 0


if __name__ == "__main__":
    from deepsynth.process_exit import skip_final_collection

    skip_final_collection()
    sys.exit(main())
