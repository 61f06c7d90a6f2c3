"""Text-to-image rendering for DeepSeek-OCR's resolution modes."""

from deepsynth.rendering.config import RenderSettings
from deepsynth.rendering.modes import MODES, Mode, get_mode
from deepsynth.rendering.renderer import DocumentRenderer, render_documents

__all__ = ["MODES", "Mode", "get_mode", "DocumentRenderer", "RenderSettings", "render_documents"]
