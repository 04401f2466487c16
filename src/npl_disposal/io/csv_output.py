"""CSV files written for people and programs: the encodings, and a fast writer.

UTF-8 with a byte-order mark by default (Excel on a Chinese desktop needs the mark to
read Chinese text), plain UTF-8 or GB18030 on request.
"""

from __future__ import annotations

import codecs
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CSV_ENCODINGS", "OUTPUT_ENCODING", "check_encoding", "recode", "write_csv"]


#: Encodings of CSV outputs: UTF-8 with a byte-order mark (what Excel needs to read a
#: UTF-8 file's Chinese text; every reader here and pandas skip the mark), plain UTF-8,
#: and GB18030 (Chinese Windows' own).
CSV_ENCODINGS = ("utf-8-sig", "utf-8", "gb18030")
#: The encoding of the CSV files the command line and ``AllocationResult.write`` write.
OUTPUT_ENCODING = "utf-8-sig"


def check_encoding(encoding: str) -> str:
    """``encoding`` if CSV outputs can be written in it, else a ValueError naming the choices."""
    if encoding not in CSV_ENCODINGS:
        raise ValueError(
            f"encoding {encoding!r}: CSV files are written as one of {', '.join(CSV_ENCODINGS)}"
        )
    return encoding


def recode(path: Path, encoding: str) -> None:
    """Re-encode the UTF-8 file at ``path`` (as :func:`write_csv` writes) into ``encoding``.

    ``"utf-8"``: nothing to do; ``"utf-8-sig"``: the byte-order mark is put in front;
    ``"gb18030"``: the text is re-encoded. The file is replaced whole.
    """
    check_encoding(encoding)
    if encoding == "utf-8":
        return
    recoded = path.with_name(path.name + ".recode")
    try:
        with open(path, "rb") as source, open(recoded, "wb") as target:
            if encoding == "utf-8-sig":
                target.write(codecs.BOM_UTF8)
                shutil.copyfileobj(source, target, 1 << 20)
            else:
                target.write(source.read().decode("utf-8").encode(encoding))
        os.replace(recoded, path)
    finally:
        recoded.unlink(missing_ok=True)


def write_csv(frame: pd.DataFrame, path: Path, encoding: str = "utf-8") -> None:
    """Write ``frame`` to CSV without its index, as ``frame.to_csv(path, index=False)``.

    ``encoding`` is one of :data:`CSV_ENCODINGS` (``"utf-8-sig"``: UTF-8 starting with a
    byte-order mark). Where pyarrow is installed, a UTF-8 file of text and number columns
    is written by Arrow's CSV writer, several times faster (benchmarks/README.md, design
    measurements). A whole float keeps pandas' ``1.0`` (so the column reads back as
    float); other floats may be spelled differently (``0.00001`` for ``1e-05``) but read
    back to the same number. Text that needs quoting, other column types, GB18030 or no
    pyarrow: pandas writes the file.
    """
    check_encoding(encoding)
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pa_csv
    except ImportError:  # pragma: no cover - pyarrow ships with the test extra
        frame.to_csv(path, index=False, encoding=encoding)
        return
    names = [str(name) for name in frame.columns]
    columns = [_csv_column(frame[name], pa, pc) for name in frame.columns]
    if (encoding == "gb18030" or any(c is None for c in columns)
            or len(set(names)) < len(names) or _needs_quotes(names)):  # fmt: skip
        frame.to_csv(path, index=False, encoding=encoding)
        return
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    try:
        with open(path, "w", encoding=encoding, newline="") as out:  # utf-8-sig: the mark
            out.write(",".join(names) + "\n")
        with open(path, "ab") as binary:
            pa_csv.write_csv(pa.table(columns, names=names), binary, options)
    except pa.ArrowInvalid:  # text with a comma, quote or line break: pandas quotes it
        frame.to_csv(path, index=False, encoding=encoding)


def _needs_quotes(names: list[str]) -> bool:
    return any(c in name for name in names for c in ',"\n\r')


def _csv_column(column: pd.Series, pa: Any, pc: Any) -> Any:
    """The column as an Arrow array spelled as pandas would write it, or None."""
    dtype = column.dtype
    if pd.api.types.is_float_dtype(dtype):
        values = pa.array(column.to_numpy(dtype=np.float64), from_pandas=True)
        text = pc.cast(values, pa.string())
        whole = pc.and_(pc.equal(values, pc.floor(values)), pc.less(pc.abs(values), 1e16))
        return pc.if_else(
            pc.fill_null(whole, False), pc.binary_join_element_wise(text, ".0", ""), text
        )
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return pa.array(column.to_numpy()) if not column.isna().any() else None
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        text = column.astype(object) if isinstance(dtype, pd.CategoricalDtype) else column
        try:
            return pa.array(text, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. objects that are not text
            return None
    return None
