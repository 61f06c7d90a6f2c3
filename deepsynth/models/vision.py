"""The frozen vision encoder (SAM + CLIP) and the projection of its features into the decoder's space.

Training splits ``get_image_features`` in two: :func:`encode_page` runs the frozen encoder (its
output can be cached), :func:`project_page` applies the projector and lays the tokens out exactly as
``UnlimitedOcrModel.get_image_features`` does (tiles row by row, a newline token after every row,
then the global view, then the view separator), so the projector can still be trained.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import nn

from deepsynth.models.preprocessing import PageInputs


def unwrap_model(model: nn.Module) -> nn.Module:
    """The ``*ForConditionalGeneration`` model inside PEFT / DDP wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):  # DDP
            model = model.module
        elif hasattr(model, "get_base_model"):  # PEFT
            model = model.get_base_model()
        else:
            return model


def ocr_core(model: nn.Module) -> nn.Module:
    """The ``UnlimitedOcrModel`` holding vision tower, projector and language model."""
    return unwrap_model(model).model


@dataclass
class PageFeatures:
    """Frozen-encoder output of one page.

    Attributes:
        global_features: ``[n_global, d_vision]``.
        local_features: ``[n_tiles, n_local, d_vision]`` or ``None``.
        grid: ``(columns, rows)`` of the tiles.
    """

    global_features: torch.Tensor
    local_features: torch.Tensor | None
    grid: tuple[int, int]

    def tensors(self) -> dict[str, torch.Tensor]:
        """Tensors for a safetensors file (the grid travels as a 2-element tensor)."""
        out = {"global": self.global_features, "grid": torch.tensor(self.grid)}
        if self.local_features is not None:
            out["local"] = self.local_features
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> PageFeatures:
        """Inverse of :meth:`tensors`."""
        grid = tuple(int(v) for v in tensors["grid"].tolist())
        return cls(tensors["global"], tensors.get("local"), grid)  # type: ignore[arg-type]


@torch.no_grad()
def encode_page(model: nn.Module, page: PageInputs) -> PageFeatures:
    """Run the frozen vision tower on one page's views.

    Args:
        model: The OCR model (possibly wrapped).
        page: From :func:`deepsynth.models.preprocessing.preprocess_page`.

    Returns:
        The page's features, on CPU in float32.
    """
    tower = ocr_core(model).vision_tower
    param = next(tower.parameters())
    views = torch.from_numpy(page.global_view)[None].to(param.device, param.dtype)
    global_features = tower(views).last_hidden_state[0].float().cpu()
    local_features = None
    if page.local_views is not None:
        tiles = torch.from_numpy(page.local_views).to(param.device, param.dtype)
        local_features = tower(tiles).last_hidden_state.float().cpu()
    return PageFeatures(global_features, local_features, page.grid)


def project_page(model: nn.Module, features: PageFeatures) -> torch.Tensor:
    """Project one page's encoder features and lay them out as the decoder's image positions.

    Args:
        model: The OCR model (possibly wrapped).
        features: The page's :class:`PageFeatures`.

    Returns:
        ``[num_image_tokens, hidden]`` in the projector's dtype and device.
    """
    core = ocr_core(model)
    projector = core.multi_modal_projector
    weight = projector.weight
    hidden = core.config.text_config.hidden_size
    newline = core.image_newline.to(weight.device)
    glob = projector(features.global_features.to(weight.device, weight.dtype))
    side = int(glob.shape[0] ** 0.5)
    grid = glob.reshape(side, side, hidden)
    glob_flat = torch.cat([grid, newline.expand(side, 1, hidden).to(grid.dtype)], dim=1).reshape(-1, hidden)
    parts = []
    if features.local_features is not None:
        local = projector(features.local_features.to(weight.device, weight.dtype))
        cols, rows = features.grid
        q = int(local.shape[1] ** 0.5)
        local = local.reshape(rows, cols, q, q, hidden).transpose(1, 2).reshape(rows * q, cols * q, hidden)
        local = torch.cat([local, newline.expand(rows * q, 1, hidden).to(local.dtype)], dim=1)
        parts.append(local.reshape(-1, hidden))
    parts += [glob_flat, core.view_separator.to(weight.device, glob_flat.dtype)[None]]
    return torch.cat(parts, dim=0)


def vision_fingerprint(model: nn.Module, identity: str = "") -> str:
    """Short hash identifying the vision tower's weights (keys the feature cache).

    Hashes ``identity`` (model name and revision), each parameter's name and shape, and a few
    statistics of its values: cheap even at full size, and it changes whenever the weights do.
    """
    digest = hashlib.sha256(identity.encode())
    for name, param in ocr_core(model).vision_tower.named_parameters():
        flat = param.detach().float().flatten()
        digest.update(f"{name}{tuple(param.shape)}".encode())
        digest.update(torch.stack([flat.sum(), flat.abs().sum(), flat[:1].sum()]).cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
