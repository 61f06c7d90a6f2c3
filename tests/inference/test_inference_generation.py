"""Inference on a real trained adapter: exact loading, generation matching training inputs, batching."""

import dataclasses

import pytest
import torch
from peft import PeftModel
from support.adapters import prompt_logits

from deepsynth.adapter_layout import native_key
from deepsynth.errors import DeepSynthError
from deepsynth.inference import GenerationConfig, generate_summaries, generate_with_stats, load_adapter_model
from deepsynth.inference.loading import load_base_for_inference


def test_adapter_is_attached_with_peft_from_pretrained_and_exact(loaded_adapter, trained_adapter):
    from safetensors.torch import load_file

    assert isinstance(loaded_adapter.model, PeftModel)
    saved = load_file(str(trained_adapter / "adapter_model.safetensors"))
    params = dict(loaded_adapter.model.named_parameters())
    lora_b = [k for k in saved if "lora_B" in k]
    assert lora_b and all(saved[k].abs().sum() > 0 for k in lora_b)  # trained, not the zero init
    for key in lora_b:
        assert torch.equal(params[native_key(key).replace(".lora_B.", ".lora_B.default.")], saved[key])


def test_batched_generation_equals_one_by_one(loaded_adapter, test_docs):
    docs = list(test_docs)
    docs[1] = dataclasses.replace(
        docs[1], instruction="Summarize this short news item in one sentence please:"
    )  # a longer prompt: padding
    config = GenerationConfig(max_new_tokens=8, batch_size=1)
    single = [o.token_ids for o in generate_with_stats(loaded_adapter, docs, config)]
    config.batch_size = 3
    batched = [o.token_ids for o in generate_with_stats(loaded_adapter, docs, config)]
    assert batched == single
    assert all(len(ids) > 0 for ids in single)


def test_first_generated_token_matches_the_training_forward(loaded_adapter, rendered_dataset):
    """Generation's prompt is the training prompt: greedy token 1 = argmax of the teacher-forced logits."""
    doc = rendered_dataset.documents(split="train")[0]
    tok = loaded_adapter.tokenizer
    logits, prompt_len = prompt_logits(loaded_adapter, doc)
    expected = int(logits[0, prompt_len - 1].argmax())
    out = generate_with_stats(loaded_adapter, [doc], GenerationConfig(max_new_tokens=1))[0]
    if expected == tok.eos_token_id:
        assert out.token_ids == []
    else:
        assert out.token_ids == [expected]


def test_adapter_changes_what_the_base_generates(loaded_adapter, test_docs, shared_home):
    base = load_base_for_inference("tiny", home=shared_home, trainer_config=loaded_adapter.trainer_config)
    config = GenerationConfig(max_new_tokens=8)
    tuned = [o.token_ids for o in generate_with_stats(loaded_adapter, test_docs, config)]
    untrained = [o.token_ids for o in generate_with_stats(base, test_docs, config)]
    assert tuned != untrained


def test_no_repeat_ngram_size_is_applied(loaded_adapter, test_docs):
    out = generate_with_stats(loaded_adapter, test_docs, GenerationConfig(max_new_tokens=24, no_repeat_ngram_size=2))
    for o in out:
        bigrams = list(zip(o.token_ids, o.token_ids[1:]))
        assert len(bigrams) == len(set(bigrams))
        assert o.latency_s > 0


def test_page_images_and_documents_give_the_same_summary(loaded_adapter, test_docs):
    doc = test_docs[0]
    from_doc = generate_summaries(loaded_adapter, documents=[doc], max_new_tokens=8)
    from_pages = generate_summaries(
        loaded_adapter.model,
        loaded_adapter.tokenizer,
        [doc.page_images()],
        max_new_tokens=8,
        mode="tiny",
        instruction=loaded_adapter.instruction,
    )
    assert from_doc == from_pages


def test_missing_adapter_weights_are_an_error(tmp_path, trained_adapter):
    (tmp_path / "adapter_config.json").write_text((trained_adapter / "adapter_config.json").read_text())
    with pytest.raises(DeepSynthError, match="adapter_model.safetensors"):
        load_adapter_model(tmp_path, base_model="tiny")


def test_per_row_limits_cut_a_batch_to_what_each_limit_alone_gives(loaded_adapter, test_docs):
    """The one decode loop: a batch decoded to the longest limit, each row cut to its own, equals lone runs."""
    from deepsynth.inference.generation import as_document, decode, prompt_embeddings

    device = next(loaded_adapter.model.parameters()).device
    rows = [prompt_embeddings(loaded_adapter, as_document(d, "tiny"), device) for d in test_docs[:3]]
    limits = [2, 8, 5]
    config = GenerationConfig(max_new_tokens=8)
    cut = decode(loaded_adapter.model, loaded_adapter.tokenizer, rows, config, limits=limits)
    alone = [
        generate_with_stats(loaded_adapter, [d], GenerationConfig(max_new_tokens=n))[0].token_ids
        for d, n in zip(test_docs[:3], limits)
    ]
    assert cut == alone
    assert len(cut[1]) > 2  # the limits made a difference
