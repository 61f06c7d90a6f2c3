"""The export's README.md (model card)."""

from __future__ import annotations

import json
import math
from typing import Any

PLAIN_ADAPTER = """With plain transformers + PEFT (the adapter's keys use DeepSeek-OCR's original decoder names,
which PEFT maps onto the native class exactly):

```python
from peft import PeftModel
from transformers import UnlimitedOcrForConditionalGeneration

model = PeftModel.from_pretrained(UnlimitedOcrForConditionalGeneration.from_pretrained(BASE), "<this directory>")
```

`BASE` is the base model's directory (for the `tiny` profile, `<cache dir>/models/tiny`, which
`inference.py` builds on first use)."""
PLAIN_MERGED = """With plain transformers:
`UnlimitedOcrForConditionalGeneration.from_pretrained("<this directory>")`."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def model_card(
    *,
    base_model: str,
    revision: str | None,
    dataset_hash: str | None,
    metrics: dict[str, Any],
    trainer_config: dict[str, Any],
    adapter_sha256: str,
    merged: bool,
) -> str:
    """Markdown model card: what the model is, where it came from, how well it does, how to run it."""
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in sorted(metrics.items()) if not isinstance(v, (dict, list)))
    kind = "merged model (base weights with the LoRA update folded in)" if merged else "LoRA adapter"
    plain = PLAIN_MERGED if merged else PLAIN_ADAPTER
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

In a fresh virtualenv, from any directory (nothing is written there: the base model is cached under
`--cache-dir`, default `$DEEPSYNTH_HOME` or `~/.cache/deepsynth`, and hub downloads under
Hugging Face's cache):

```bash
pip install torch==2.13.0   # first; on a CPU-only machine add --index-url https://download.pytorch.org/whl/cpu
pip install -r requirements.txt
python inference.py --text-file document.txt
```

`requirements.txt` names public packages only; the `deepsynth` library the script runs is carried in
`deepsynth/`. The script verifies every file against `manifest.json` (sha256) before anything is
loaded; weights are safetensors only. From Python, with this directory on `sys.path`:
`Summarizer.load("<this directory or zip>").summarize_text(text)` (`from deepsynth.inference import Summarizer`).

{plain}

## Training configuration## Training configuration

```json
{json.dumps(trainer_config, indent=2, sort_keys=True, default=str)}
```
"""
