"""evaluate() on a real trained adapter against both baselines, and the HTML report."""

import base64
import dataclasses
import io
import json
from html.parser import HTMLParser

import pytest
from PIL import Image
from support.adapters import loss_curve

from deepsynth.evaluation import EvaluationResult, assert_finite, evaluate, render_html
from deepsynth.inference import GenerationConfig, generate_with_stats
from deepsynth.inference.loading import load_base_for_inference

GEN = GenerationConfig(max_new_tokens=8, batch_size=3)


@pytest.fixture(scope="module")
def result(loaded_adapter, test_docs, shared_home):
    return evaluate(loaded_adapter, test_docs, generation=GEN, k=1, home=shared_home)


def test_every_system_is_scored_on_the_same_documents(result, test_docs):
    assert list(result.systems) == ["adapter", "base", "lead_1"]
    for system in result.systems:
        assert [r["id"] for r in result.rows_for(system)] == [d.id for d in test_docs]
        assert result.systems[system]["num_docs"] == len(test_docs)
    assert_finite(result.systems)


def test_lead_baseline_scores_what_it_extracts(result, test_docs):
    # Each test document opens with its reference summary, so lead-1 reproduces it exactly.
    assert result.systems["lead_1"]["rouge_l"] == pytest.approx(1.0)
    assert [r["prediction"] for r in result.rows_for("lead_1")] == [d.summary for d in test_docs]


def test_base_baseline_is_the_untrained_model(result, loaded_adapter, test_docs, shared_home):
    fresh = load_base_for_inference("tiny", home=shared_home, trainer_config=loaded_adapter.trainer_config)
    expected = [o.text for o in generate_with_stats(fresh, test_docs, GEN)]
    assert [r["prediction"] for r in result.rows_for("base")] == expected
    adapter = [o.text for o in generate_with_stats(loaded_adapter, test_docs, GEN)]
    assert [r["prediction"] for r in result.rows_for("adapter")] == adapter  # LoRA is back on afterwards


def test_result_round_trips_through_json(result):
    again = EvaluationResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.systems == result.systems and again.rows == result.rows


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_has_table_plots_and_side_by_side_samples(result, test_docs, trained_adapter):
    docs = list(test_docs)
    docs[0] = dataclasses.replace(docs[0], summary="<script>alert(1)</script>")
    page = render_html(result, loss_curve=loss_curve(trained_adapter), documents=docs, max_samples=2)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    parser = _Images()
    parser.feed(page)
    alts = [img["alt"] for img in parser.images]
    assert alts == ["training loss", "ROUGE-L distribution", f"page 1 of {docs[0].id}", f"page 1 of {docs[1].id}"]
    for img in parser.images:
        Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))).verify()
    text = " ".join(parser.text)
    for system in result.systems:
        assert system in text
    assert result.rows_for("adapter")[1]["prediction"] in text


def test_report_says_what_it_is_and_plainly_when_the_adapter_is_worse(result):
    # On these documents lead-1 copies the reference (ROUGE-L 1.0): the tiny adapter cannot beat it.
    context = {
        "run": "training-2026_11_30 (1234)",
        "model version": "deepsynth-summarizer v3 (ZenML)",
        "data source": "aclsum",
        "mode": "tiny",
    }
    parser = _Images()
    parser.feed(render_html(result, context=context))
    text = " ".join(" ".join(parser.text).split())
    for key, value in context.items():
        assert f"{key} {value}" in text
    assert "The adapter scores below" in text and "the lead_1 baseline (1.0000)" in text
    assert "not yet worth deploying" in text


def test_verdict_names_every_system_the_adapter_does_not_beat():
    from deepsynth.evaluation.report import verdict

    scores = EvaluationResult({"adapter": {"rouge_l": 0.2}, "base": {"rouge_l": 0.25}, "lead_3": {"rouge_l": 0.1}})
    good, sentence = verdict(scores)
    assert not good and sentence.startswith("The adapter scores below the untrained base model (0.2500) on rouge_l")
    assert "lead_3" not in sentence
    scores.systems["adapter"]["rouge_l"] = 0.3
    assert verdict(scores) == (True, "The adapter beats every baseline on rouge_l (0.3000).")
