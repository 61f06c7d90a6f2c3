#!/usr/bin/env python
"""Summarize a text file with this exported DeepSynth adapter.

Usage (from anywhere, in an environment with requirements.txt installed)::

    python inference.py --text-file document.txt [--max-new-tokens 128] [--base-model NAME_OR_DIR]

The package is checked against manifest.json first; then the base model is loaded and the LoRA
adapter attached with ``PeftModel.from_pretrained`` (or the merged model is loaded as it is), the
text is rendered to pages exactly as the training data was, and the summary is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(base_model: str | None = None, device: str = "cpu"):
    """Verify this package and load it; returns a ``deepsynth.inference.LoadedModel``."""
    from peft import PeftModel

    from deepsynth.adapter_files import ADAPTER_CONFIG
    from deepsynth.export.package import verify_directory
    from deepsynth.inference.loading import KEY_MAPPING, complete_model, read_trainer_config, verify_adapter_loaded
    from deepsynth.models.dtypes import DTYPES
    from deepsynth.models.loading import load_base_model

    verify_directory(HERE)  # every sha256 matches before a single weight is read
    config = read_trainer_config(HERE)
    dtype = DTYPES[config.get("model_dtype", "float32")]
    if (HERE / ADAPTER_CONFIG).is_file():
        base, tokenizer, source = load_base_model(base_model or config["model_name"], config.get("model_revision"),
                                                  dtype=dtype)
        # key_mapping: see deepsynth.inference.loading (peft's v5 key conversion would drop the weights).
        model = PeftModel.from_pretrained(base, str(HERE), key_mapping=KEY_MAPPING, is_trainable=False)
        verify_adapter_loaded(model, HERE)
    else:  # include_base_model: the merged model is stored here
        model, tokenizer, source = load_base_model(str(HERE), dtype=dtype)
    return complete_model(model, tokenizer, source, HERE, device)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-file", required=True, help="UTF-8 text to summarize")
    parser.add_argument("--instruction", default=None, help="instruction (default: the one used in training)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="longest summary in tokens")
    parser.add_argument("--no-repeat-ngram-size", type=int, default=3, help="forbid repeated n-grams (0: off)")
    parser.add_argument("--base-model", default=None, help="override the base model name or directory")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of the bare summary")
    args = parser.parse_args(argv)

    from deepsynth.inference.generation import GenerationConfig
    from deepsynth.inference.summarizer import Summarizer

    text = Path(args.text_file).read_text(encoding="utf-8")
    generation = GenerationConfig(max_new_tokens=args.max_new_tokens, no_repeat_ngram_size=args.no_repeat_ngram_size)
    summarizer = Summarizer(load(args.base_model, args.device), generation=generation)
    summary = summarizer.summarize_text(text, args.instruction)
    print(json.dumps({"file": args.text_file, "summary": summary}) if args.json else summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
