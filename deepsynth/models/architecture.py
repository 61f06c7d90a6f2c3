"""Model configurations: DeepSeek-OCR v1 at full size, and the ``tiny`` profile for CPU and tests.

DeepSeek-OCR's hub ``config.json`` names a remote-code class (``deepseek_vl_v2``), so the full-size
config is written out here for transformers' native ``UnlimitedOcr`` classes, which share its
architecture and read its original weight names.
"""

from __future__ import annotations

from transformers import DeepseekOcr2Config, UnlimitedOcrConfig

DEEPSEEK_OCR = "deepseek-ai/DeepSeek-OCR"
DEEPSEEK_OCR_2 = "deepseek-ai/DeepSeek-OCR-2"
TINY = "tiny"
TINY_PROFILE_VERSION = 2

HUB_MODELS = (DEEPSEEK_OCR, DEEPSEEK_OCR_2)

# The image size DeepSeek-OCR's SAM encoder was trained at; mode sizes scale with it.
NATIVE_IMAGE_SIZE = 1024


def deepseek_ocr_config(max_position_embeddings: int = 8192) -> UnlimitedOcrConfig:
    """Config of DeepSeek-OCR v1 for ``UnlimitedOcrForConditionalGeneration``.

    SAM-B (768 wide, 12 layers, global attention at 2/5/8/11, neck 256 → 512 → 1024), CLIP-L/14
    (1024 wide, 24 layers) fed by SAM's features, a linear projector 2048 → 1280, and a
    DeepSeek-V2 MoE decoder without MLA (12 layers, hidden 1280, 10 heads, first layer dense,
    64 routed experts of width 896, top-6 greedy routing, 2 shared experts), vocab 129280.

    Args:
        max_position_embeddings: Decoder context length (DeepSeek-OCR uses 8192).

    Returns:
        The config; its decoder uses full causal attention, as DeepSeek-OCR's does.
    """
    return UnlimitedOcrConfig(
        vision_config={
            "sam_config": {
                "hidden_size": 768,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "mlp_dim": 3072,
                "image_size": NATIVE_IMAGE_SIZE,
                "patch_size": 16,
                "output_channels": 256,
                "window_size": 14,
                "global_attn_indexes": [2, 5, 8, 11],
                "downsample_channels": [512, 1024],
            },
            "encoder_config": {
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "image_size": 224,
                "patch_size": 14,
                "hidden_act": "quick_gelu",
            },
        },
        text_config=_deepseek_ocr_decoder(12, max_position_embeddings),
        image_token_id=128815,
    )


def full_width_slice_config(layers: int = 2, max_position_embeddings: int = 4096) -> UnlimitedOcrConfig:
    """DeepSeek-OCR's decoder at its real width and expert shapes, cut to ``layers`` layers, on the tiny vision tower.

    The first layer is dense, the others MoE with 64 experts of the real shapes, the vocabulary is the
    real one: what quantization and memory do to 2.5B fused expert parameters shows on this slice at a
    size a CPU can train.
    """
    return UnlimitedOcrConfig(
        vision_config=tiny_config().vision_config.to_dict(),
        text_config=_deepseek_ocr_decoder(layers, max_position_embeddings),
        image_token_id=128815,
    )


def _deepseek_ocr_decoder(layers: int, max_position_embeddings: int) -> dict:
    return {
        "vocab_size": 129280,
        "hidden_size": 1280,
        "intermediate_size": 6848,
        "moe_intermediate_size": 896,
        "num_hidden_layers": layers,
        "num_attention_heads": 10,
        "num_key_value_heads": 10,
        "n_routed_experts": 64,
        "num_experts_per_tok": 6,
        "n_shared_experts": 2,
        "first_k_dense_replace": 1,
        "topk_method": "greedy",
        "n_group": 1,
        "topk_group": 1,
        "routed_scaling_factor": 1.0,
        "max_position_embeddings": max_position_embeddings,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        # DeepSeek-OCR attends causally over the whole context: no sliding window.
        "layer_types": ["full_attention"] * layers,
        "sliding_window": max_position_embeddings,
    }


def tiny_config(max_position_embeddings: int = 4096) -> UnlimitedOcrConfig:
    """Same architecture at toy size: hidden 64, 2 decoder layers (1 dense, 1 MoE of 4 experts), 128-px SAM.

    Bump :data:`TINY_PROFILE_VERSION` whenever this changes, so cached builds are replaced.

    Args:
        max_position_embeddings: Decoder context length.

    Returns:
        A config that builds in well under a second; the vocabulary stays DeepSeek's 129280.
    """
    layers = 2
    return UnlimitedOcrConfig(
        vision_config={
            "sam_config": {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "mlp_dim": 64,
                "image_size": 128,
                "patch_size": 16,
                "output_channels": 16,
                "window_size": 4,
                "global_attn_indexes": [1],
                "downsample_channels": [32, 64],
            },
            "encoder_config": {
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 224,
                "patch_size": 14,
            },
        },
        text_config={
            "vocab_size": 129280,
            "hidden_size": 64,
            "intermediate_size": 128,
            "moe_intermediate_size": 32,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "n_shared_experts": 1,
            "first_k_dense_replace": 1,
            "max_position_embeddings": max_position_embeddings,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "layer_types": ["full_attention"] * layers,
            "sliding_window": max_position_embeddings,
            # 5x the default init spread: at hidden 64 the default head gives logits within about +-1.3,
            # which caps how far any training can lower the loss; this keeps learning visible.
            "initializer_range": 0.1,
        },
        image_token_id=128815,
    )


def deepseek_ocr2_config() -> DeepseekOcr2Config:
    """Config of DeepSeek-OCR-2 (transformers' defaults for ``DeepseekOcr2Config`` are that checkpoint)."""
    return DeepseekOcr2Config()
