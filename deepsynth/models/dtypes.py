"""Config names of torch dtypes (``model_dtype`` in trainer configs and adapter folders)."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
