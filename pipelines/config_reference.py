"""The configuration reference: every key with its type, default and help, from the knobs themselves.

``python -m pipelines.config_reference`` writes ``docs/configuration.md`` (``--check``: exit 1 if
the committed file is stale); ``deepsynth config keys [SECTION]`` prints the same reference. The
sections are the run configuration's top-level keys (``run`` holds the plain ones: pipeline,
run_name, …) and the server's ``serve`` section.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from deepsynth.configuration import KeyDoc, key_docs
from deepsynth.errors import ConfigError
from deepsynth.serving.config import ServeConfig
from pipelines.config import RunConfig

#: Where the generated reference lives, and the command that regenerates it.
DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
REGENERATE = "python -m pipelines.config_reference"
RUN_FILES = "configs/*.yaml (deepsynth run --config FILE; --set section.key=value overrides one key)"


@dataclasses.dataclass(frozen=True)
class ReferenceSection:
    """One section of the reference.

    Attributes:
        name: The section's key (``train``); ``run`` for the run configuration's plain top-level keys.
        title: What the section is for (its knob's help).
        file: Where its keys are written.
        keys: Its keys, dotted from the top of the file.
    """

    name: str
    title: str
    file: str
    keys: list[KeyDoc]

    def to_dict(self) -> dict[str, Any]:
        """JSON view (``deepsynth config keys --json``)."""
        return dataclasses.asdict(self)


def sections() -> list[ReferenceSection]:
    """Every section: ``run`` (plain top-level keys), each section of :class:`RunConfig`, then ``serve``."""
    docs = key_docs(RunConfig)
    found = [
        ReferenceSection(
            "run", "Top-level keys of the run configuration", RUN_FILES, [d for d in docs if "." not in d.key]
        )
    ]
    for field in dataclasses.fields(RunConfig):
        keys = [d for d in docs if d.key.startswith(field.name + ".")]
        if keys:
            found.append(ReferenceSection(field.name, field.metadata["help"], RUN_FILES, keys))
    found.append(
        ReferenceSection(
            "serve",
            "The model server (deepsynth serve; its options override these)",
            "configs/serving/serve.yaml (deepsynth serve --config FILE)",
            key_docs(ServeConfig, "serve"),
        )
    )
    return found


def select(name: str | None) -> list[ReferenceSection]:
    """All sections, one section by name, or the keys under a dotted key (``train.optimizer``, ``pipeline``).

    Raises:
        ConfigError: Nothing is called ``name``; the message lists the sections (exit code 2).
    """
    every = sections()
    if not name:
        return every
    for section in every:
        if section.name == name:
            return [section]
    for section in every:
        keys = [k for k in section.keys if k.key == name or k.key.startswith(name + ".")]
        if keys:
            return [dataclasses.replace(section, keys=keys)]
    names = [s.name for s in every]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"no configuration section or key {name!r}{hint}; sections: {', '.join(names)}")


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_text(chosen: list[ReferenceSection]) -> str:
    """The reference for a terminal: per section a heading, then ``key  type = default`` and the help."""
    lines: list[str] = []
    for section in chosen:
        lines += [f"[{section.name}] {section.title}", f"  in {section.file}"]
        for doc in section.keys:
            lines += [f"  {doc.key}: {doc.type} = {_value(doc.default)}", f"      {doc.help}"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(chosen: list[ReferenceSection] | None = None) -> str:
    """``docs/configuration.md``: a table of key, type, default and description per section."""
    chosen = sections() if chosen is None else chosen
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated from the help text of every knob by `{REGENERATE}`: do not edit by hand. "
        "tests/test_config_reference.py fails when this file is stale. -->",
        "",
        "Every key of a run configuration (`configs/*.yaml`, read by `deepsynth run --config FILE`; "
        "`--set section.key=value` overrides one key) and of the model server's configuration "
        "(`configs/serving/serve.yaml`). Unknown keys are errors that list the keys of their section. "
        "`deepsynth config keys [SECTION]` prints this reference (`--json`: one JSON document).",
        "",
        "Sections: " + " · ".join(f"[`{s.name}`](#{s.name})" for s in chosen),
    ]
    for section in chosen:
        lines += [
            "",
            f"## {section.name}",
            "",
            f"{section.title}. Written in {section.file}.",
            "",
            "| Key | Type | Default | Description |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{doc.key}` | `{_cell(doc.type)}` | `{_cell(_value(doc.default))}` | {_cell(doc.help)} |"
            for doc in section.keys
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``docs/configuration.md`` (or, with ``--check``, exit 1 if it differs from what would be written)."""
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if the file is stale; write nothing.")
    parser.add_argument("--output", type=Path, default=DOC_PATH, help="Where to write (default: %(default)s).")
    args = parser.parse_args(argv)
    text = render_markdown()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
        if current != text:
            print(f"error: {args.output} is stale: regenerate it with `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
