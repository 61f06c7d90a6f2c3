"""Arrow tables from row dicts, and Parquet writing, that hold a huge text only once or twice.

``pa.Table.from_pylist`` grows its string buffers by doubling (a 200 MB text passes through several
copies), and Parquet's default dictionary encoding and statistics copy every string value again.
Here a long string becomes its own array over its UTF-8 bytes, and long text columns are written
plain, without statistics.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: Characters in one string column of a batch past which each value gets its own array.
LONG_TEXT = 1 << 20


def _own_array(value: str | None) -> pa.Array:
    if value is None:
        return pa.array([None], type=pa.string())
    data = value.encode("utf-8")
    return pa.StringArray.from_buffers(1, pa.py_buffer(struct.pack("<ii", 0, len(data))), pa.py_buffer(data))


def table_from_rows(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)``, with long string columns built value by value."""
    columns = []
    for field in schema:
        values = [row.get(field.name) for row in rows]
        if field.type == pa.string() and sum(len(v) for v in values if v) > LONG_TEXT:
            columns.append(pa.chunked_array([_own_array(v) for v in values], type=pa.string()))
        else:
            columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def write_table(table: pa.Table, path: str | Path, text_columns: tuple[str, ...], **options: Any) -> None:
    """``pq.write_table`` with the ``text_columns`` stored plain and without min/max statistics."""
    others = [name for name in table.column_names if name not in text_columns]
    pq.write_table(table, path, use_dictionary=others, write_statistics=others, **options)
