"""Issue 27, item 19: `render --png` gives every document its own safe file name (`a/b` vs `a_b`, `1` vs `"1"`,
a 100,000-character id), and `png/index.json` maps each file back to its id."""

from __future__ import annotations

import json
import os

from deepsynth.data.file_names import MAX_STEM, file_stem
from deepsynth.data.page_files import write_page_pngs
from deepsynth_cli import main


def test_safe_ids_keep_their_name_and_any_other_gets_a_sanitized_stem_and_a_hash():
    assert file_stem("doc-0") == "doc-0" and file_stem("P06-1112.v2") == "P06-1112.v2"
    stems = {i: file_stem(i) for i in ["a/b", "a_b", "a\\b", "..", ".hidden", "-rf", "", "é", "a b", "A_B"]}
    assert stems["a_b"] == "a_b" and stems["A_B"] == "A_B"
    assert stems["a/b"].startswith("a_b-") and stems["a\\b"].startswith("a_b-") and stems["a/b"] != stems["a\\b"]
    assert stems[".."].startswith("_.-") and stems["-rf"].startswith("_rf-") and stems[""].startswith("doc-")
    assert len(set(stems.values())) == len(stems)
    assert all(not s.startswith((".", "-")) and "/" not in s and "\\" not in s and s.isascii() for s in stems.values())
    huge = file_stem("x" * 100_000)
    assert len(huge) == MAX_STEM + 11 and huge != file_stem("x" * 99_999)


def _rows(ids, modes=("tiny",), pages=2):
    return [
        {"id": doc_id, "mode": mode, "pages": [f"{n}:{mode}:{p}".encode() for p in range(pages)]}
        for n, doc_id in enumerate(ids)
        for mode in modes
    ]


def test_colliding_repeated_and_case_only_ids_get_distinct_files_recorded_in_the_index(tmp_path):
    ids = ["a/b", "a_b", "1", "1", "Doc", "doc", "1-2"]
    rows = _rows(ids, modes=("tiny", "small"))
    index_path = write_page_pngs(rows, tmp_path / "png")
    index = json.loads(index_path.read_text())["pages"]
    files = [entry["file"] for entry in index]
    assert len(files) == len(ids) * 2 * 2 and len({f.casefold() for f in files}) == len(files)
    on_disk = sorted(p.name for p in (tmp_path / "png").glob("*.png"))
    assert on_disk == sorted(files)
    for entry in index:  # every file holds the page of the document the index names
        doc = [n for n, i in enumerate(ids) if i == entry["id"]][entry["occurrence"] - 1]
        expected = f"{doc}:{entry['mode']}:{entry['page']}".encode()
        assert (tmp_path / "png" / entry["file"]).read_bytes() == expected
    by_id = {(e["id"], e["occurrence"]): e["file"] for e in index if e["mode"] == "tiny" and e["page"] == 0}
    assert by_id[("1", 1)] == "1-tiny-0.png" and by_id[("1", 2)] == "1-2-tiny-0.png"
    assert by_id[("1-2", 1)] == "1-2-2-tiny-0.png"  # the id "1-2" comes after the second "1" took that name
    assert by_id[("Doc", 1)] == "Doc-tiny-0.png" and by_id[("doc", 1)] == "doc-2-tiny-0.png"
    # a second call replaces the earlier pages and index
    write_page_pngs(_rows(["only"]), tmp_path / "png")
    assert sorted(os.listdir(tmp_path / "png")) == ["index.json", "only-tiny-0.png", "only-tiny-1.png"]


def test_render_png_with_colliding_and_100k_character_ids_writes_every_document(tmp_path, capsys):
    long_id = "L" * 100_000
    lines = [
        {"id": "a/b", "text": "The first document.", "summary": "One."},
        {"id": "a_b", "text": "The second document.", "summary": "Two."},
        {"id": 1, "text": "The third document.", "summary": "Three."},
        {"id": "1", "text": "The fourth document.", "summary": "Four."},
        {"id": long_id, "text": "The fifth document.", "summary": "Five."},
    ]
    source = tmp_path / "ids.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    argv = ["render", str(source), "--out", str(out), "--mode", "tiny", "--max-pages", "1", "--png", "--json"]
    assert main([*argv, "--set", "render.workers=1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["documents"] == 5 and result["png_index"] == str(out / "png" / "index.json")
    index = json.loads((out / "png" / "index.json").read_text())["pages"]
    assert [(e["id"], e["occurrence"]) for e in index] == [("a/b", 1), ("a_b", 1), ("1", 1), ("1", 2), (long_id, 1)]
    files = [e["file"] for e in index]
    assert len(set(files)) == 5 and sorted(p.name for p in (out / "png").glob("*.png")) == sorted(files)
    assert all(len(f.encode()) < 120 for f in files)
    pages = [(out / "png" / f).read_bytes() for f in files]
    assert len(set(pages)) == 5  # five different documents, five different images


def test_a_generation_job_id_names_one_file_inside_the_state_folder(tmp_path):
    from deepsynth.data import StateManager

    state = StateManager(tmp_path / "state")
    for job_id in ["job-1", "../escaped", "/etc/passwd-like", "a/b", "a_b", "J" * 10_000]:
        state.save(job_id, {"status": job_id[:20]})
    files = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert len(files) == 6 and "job-1.json" in files  # a safe id keeps its file (and older state files)
    assert list(tmp_path.iterdir()) == [tmp_path / "state"]  # nothing written beside the folder
    assert state.load("../escaped") == {"status": "../escaped"} and state.load("a_b") == {"status": "a_b"}
    assert state.load("J" * 10_000) == {"status": "J" * 20} and state.load("a\\b") is None
