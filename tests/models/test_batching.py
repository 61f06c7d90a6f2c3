"""The fused LM-head cross-entropy and the header-only page token count match the plain computations."""

import io

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepsynth.models import batching
from deepsynth.models.preprocessing import preprocess_page, view_spec


def _reference(hidden, weight, targets, dtype=torch.float32):
    h = hidden.detach().to(dtype).requires_grad_()
    loss = F.cross_entropy(F.linear(h, weight.to(dtype)), targets)  # what supervised_loss computed before
    loss.backward()
    return loss.detach(), h.grad


@pytest.mark.parametrize("scale", [0.02, 0.5])
@pytest.mark.parametrize("chunk", [7, 64, 1000])  # partial last chunk, many chunks, one chunk
def test_fused_head_loss_matches_cross_entropy(monkeypatch, scale, chunk):
    monkeypatch.setattr(batching, "HEAD_CHUNK", chunk)
    torch.manual_seed(0)
    vocab, hidden_size, n = 300, 16, 23
    weight = torch.randn(vocab, hidden_size) * scale
    hidden = torch.randn(n, hidden_size)
    targets = torch.randint(0, vocab, (n,))
    targets[0], targets[1] = 0, vocab - 1  # both ends of the vocabulary

    h = hidden.clone().requires_grad_()
    loss = batching.HeadCrossEntropy.apply(h, weight, targets, True)
    (loss * 3.0).backward()
    ref_loss, ref_grad = _reference(hidden, weight, targets)
    f64_loss, f64_grad = _reference(hidden, weight, targets, torch.float64)

    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-5)
    scale_of_grad = 3.0 * ref_grad.abs().max().item()  # the upstream gradient scales it
    torch.testing.assert_close(h.grad, 3.0 * ref_grad, rtol=1e-5, atol=1e-6 * scale_of_grad)
    assert abs(loss.double() - f64_loss) <= abs(ref_loss.double() - f64_loss) + 1e-6
    assert (h.grad.double() / 3.0 - f64_grad).abs().max() <= (ref_grad.double() - f64_grad).abs().max() + 1e-9
    with torch.no_grad():  # no gradient work, same value
        torch.testing.assert_close(batching.HeadCrossEntropy.apply(hidden, weight, targets, False), loss.detach())


def test_fused_head_is_used_only_for_frozen_float32_linear_heads():
    hidden = torch.randn(4, 8)
    head = torch.nn.Linear(8, 50, bias=False).requires_grad_(False)
    assert batching.fused_head_applies(head, hidden)
    assert not batching.fused_head_applies(torch.nn.Linear(8, 50, bias=False), hidden)  # trainable head
    assert not batching.fused_head_applies(torch.nn.Linear(8, 50).requires_grad_(False), hidden)  # bias
    assert not batching.fused_head_applies(head, hidden.bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not batching.fused_head_applies(head, hidden)


def _png(size):
    buf = io.BytesIO()
    Image.new("RGB", size, "white").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["tiny", "small", "base", "large", "gundam"])
@pytest.mark.parametrize("sam", [128, 1024])
@pytest.mark.parametrize("size", [(100, 90), (512, 512), (1280, 1920), (2000, 700), (640, 641)])
def test_page_token_count_reads_only_the_header_and_matches_preprocessing(mode, sam, size):
    spec = view_spec(mode, sam)
    png = _png(size)
    expected = preprocess_page(Image.open(io.BytesIO(png)).convert("RGB"), spec).num_image_tokens
    assert batching.page_token_count(png, spec) == expected
