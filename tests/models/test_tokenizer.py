from deepsynth.models.tokenizer import OCR_SPECIAL_TOKENS, build_deepseek_ocr_tokenizer, load_tokenizer


def test_special_token_ids_match_deepseek_ocr():
    tok = build_deepseek_ocr_tokenizer()
    assert tok.convert_tokens_to_ids("<image>") == 128815
    assert (tok.bos_token_id, tok.eos_token_id) == (0, 1)
    # DeepSeek-OCR's ten added tokens follow each other from <image> on.
    assert [tok.convert_tokens_to_ids(t) for t in OCR_SPECIAL_TOKENS] == list(range(128815, 128825))


def test_image_token_is_atomic_and_round_trips(tmp_path):
    tok = build_deepseek_ocr_tokenizer()
    ids = tok("<image>\nSummarize this text:", add_special_tokens=False)["input_ids"]
    assert ids[0] == 128815 and ids.count(128815) == 1
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again("<image>\nSummarize this text:", add_special_tokens=False)["input_ids"] == ids
    assert again.decode(ids[1:]) == "\nSummarize this text:"
