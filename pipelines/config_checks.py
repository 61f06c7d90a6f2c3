"""Checks across the sections of a run configuration, done before any pipeline or ZenML run exists.

A run that cannot succeed should fail in a second with exit code 2, not after rendering and
training: training and evaluation use pages of a mode that is rendered; the splits they read
will hold documents given the source, the split ratios and ``ingest.max_documents``; a local
source file exists and has the configured columns. Messages name each key where it was set
(:class:`~pipelines.config_source.ConfigSource`) and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepsynth.errors import ConfigError, InputError

if TYPE_CHECKING:
    from deepsynth.data.documents import DocumentDataset
    from pipelines.config import RunConfig
    from pipelines.config_source import ConfigSource


def check_modes(config: RunConfig, source: ConfigSource) -> None:
    """Training and evaluation read pages of ``train.mode``: it must be among ``render.modes``."""
    mode, rendered = config.train.mode, list(config.render.modes)
    if config.pipeline != "training" or mode is None or mode in rendered:
        return
    raise ConfigError(
        f"{source.where('render.modes')}: renders {rendered}, but {source.label('train.mode')} is {mode!r}, and "
        f"training and evaluation read only the pages of train.mode. Render that mode too "
        f"({source.fix('render.modes', '[' + ', '.join(rendered + [mode]) + ']')}) or train on a rendered one "
        f"(--set train.mode={rendered[0]})",
        key="render.modes",
    )


def needed_splits(config: RunConfig) -> dict[str, str]:
    """The splits the run reads, each with the key that names it (training: train and evaluate)."""
    if config.pipeline != "training":
        return {}
    return {config.train.train_split: "train.train_split", config.evaluate.split: "evaluate.split"}


def read_documents(config: RunConfig, source: ConfigSource) -> DocumentDataset:
    """Ingest the configured source with the run's own code; errors name the setting to fix.

    Raises:
        ConfigError: The file does not exist, has an unknown extension or lacks a configured column.
    """
    from deepsynth.data.ingest import ingest

    try:
        return ingest(config.ingest)
    except InputError as exc:
        column_keys = {
            config.ingest.text_column: "ingest.text_column",
            config.ingest.summary_column: "ingest.summary_column",
        }
        key = column_keys.get(exc.location.field or "")
        if key is None:
            raise
        raise ConfigError(f"{exc}; name the right column with {source.fix(key, 'COLUMN')}", key=key) from None
    except ConfigError as exc:  # the file does not exist or has an unknown extension
        raise source.explain(exc) from None


def check_source(config: RunConfig, source: ConfigSource) -> None:
    """A local file is readable with its columns; every split that training and evaluation read will hold documents.

    Local files and the bundled sample are read now; hub datasets only the run can read.
    """
    needed = needed_splits(config)
    readable_now = config.ingest.source == "file" or (needed and config.ingest.source == "aclsum")
    if not readable_now:
        return
    documents = read_documents(config, source)
    counts = documents.rows_per_split
    for split, key in needed.items():
        if counts.get(split, 0) > 0:
            continue
        ratios = config.ingest.split_ratios
        raise ConfigError(
            f"{source.where(key)}: split {split!r} would hold no documents (documents per split: {counts}; "
            f"{source.label('ingest.split_ratios')} = {ratios}, {source.label('ingest.max_documents')} = "
            f"{config.ingest.max_documents}). Add documents or a split column to the source, give {split!r} a larger "
            f"share ({source.fix('ingest.split_ratios', '{train: 0.7, validation: 0.1, test: 0.2}')}), or read another "
            f"split ({source.fix(key, 'SPLIT')})",
            key=key,
        )
    check_adapter_data(config, source, documents)


def check_adapter_data(config: RunConfig, source: ConfigSource, documents: DocumentDataset) -> None:
    """Every adapter's data selector matches at least one document of the training split."""
    split = config.train.train_split
    rows = [row for row in documents.table.to_pylist() if row["split"] == split]
    tasks = sorted({row["task"] for row in rows if row["task"] is not None})
    for variant in config.train.variants():
        if variant.data is None or any(variant.data.matches(row) for row in rows):
            continue
        key = "train.adapters"
        if variant.data.column != "task":
            found = ""
        elif tasks:
            found = f"; their tasks: {', '.join(tasks[:20])}" + (", ..." if len(tasks) > 20 else "")
        else:
            column = config.ingest.task_column
            found = "; no document has a task: " + (
                f"ingest.task_column {column!r} names no column of the source"
                if column
                else "ingest.task_column is off"
            )
        raise ConfigError(
            f"{source.where(key)}: adapter {variant.name!r} ({variant.key}.data) selects no document of split "
            f"{split!r}: none has {variant.data.describe()} ({len(rows)} documents in that split{found}). Fix the "
            "selector's column or value, or drop its data key to train on the whole split",
            key=key,
        )


def check_processes(config: RunConfig, source: ConfigSource) -> None:
    """The training ranks and the GPUs the train step's pod gets agree (none idle, none missing)."""
    deploy, wanted = config.deployment, config.train.num_processes
    if config.pipeline == "training" and deploy.nodes > 1:
        raise ConfigError(
            f"{source.where('deployment.nodes')}: the pipeline's train_lora runs on one machine; for {deploy.nodes} "
            f"nodes run the data pipeline ({source.fix('pipeline', 'data')}) and submit the training as a PyTorchJob "
            f"(python -m pipelines.pytorchjob --config ... --dataset /shared/...)"
        )
    if config.pipeline != "training" or deploy.gpu_count <= 0 or "train_lora" not in deploy.gpu_steps:
        return
    if wanted > deploy.gpu_count:
        raise ConfigError(
            f"{source.where('train.num_processes')}: {wanted} training processes need one GPU each, but "
            f"{source.label('deployment.gpu_count')} gives train_lora {deploy.gpu_count}; "
            f"{source.fix('train.num_processes', '0')} starts one per GPU"
        )
    if wanted == 1 and deploy.gpu_count > 1:
        raise ConfigError(
            f"{source.where('deployment.gpu_count')}: train_lora gets {deploy.gpu_count} GPUs, but "
            f"{source.label('train.num_processes')} is 1, so {deploy.gpu_count - 1} would stay idle; "
            f"{source.fix('train.num_processes', '0')} starts one data-parallel process per GPU"
        )


def check_run_config(config: RunConfig, source: ConfigSource) -> None:
    """All checks above, cheapest first.

    Raises:
        ConfigError: Naming the key, where it was set and the fix (exit code 2).
    """
    check_modes(config, source)
    check_processes(config, source)
    check_source(config, source)
