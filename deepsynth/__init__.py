"""DeepSynth: render documents to page images and fine-tune DeepSeek-OCR's decoder to summarise them.

This package is the domain library. It never imports ZenML: the pipelines, steps and
materializers packages wrap it.
"""

__version__ = "0.1.0"

from deepsynth.lazy import keep_bitsandbytes_out_of_peft

keep_bitsandbytes_out_of_peft()
