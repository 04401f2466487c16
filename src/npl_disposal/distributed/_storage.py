"""Partitioned Parquet datasets: listing, reading, writing, all-or-nothing output."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.distributed._deps import _fsspec

_SUFFIX = ".parquet"


@dataclass(frozen=True)
class _Dataset:
    """The Parquet files of a partitioned table: full URLs and bare file names."""

    urls: tuple[str, ...]
    names: tuple[str, ...]


def _list_parquet(path: str | os.PathLike[str], storage: Mapping[str, Any] | None) -> _Dataset:
    fs, root = _fsspec().core.url_to_fs(str(path), **dict(storage or {}))
    if fs.isfile(root):
        files = [root]
    elif fs.isdir(root):
        files = sorted(f for f in fs.find(root, maxdepth=1) if f.endswith(_SUFFIX))
    else:
        raise FileNotFoundError(
            f"{path}: no such directory; give a directory of Parquet files, one per partition"
        )
    if not files:
        raise FileNotFoundError(
            f"{path}: no *{_SUFFIX} files; write one file per partition "
            "(npl_disposal.distributed.write_partitioned does)"
        )
    return _Dataset(
        tuple(fs.unstrip_protocol(f) for f in files), tuple(f.rsplit("/", 1)[-1] for f in files)
    )


def _read_parquet(url: str, storage: Mapping[str, Any] | None) -> pd.DataFrame:
    with _fsspec().open(url, "rb", **dict(storage or {})) as handle:
        return pd.read_parquet(handle)


def _write_parquet(frame: pd.DataFrame, url: str, storage: Mapping[str, Any] | None) -> None:
    with _fsspec().open(url, "wb", **dict(storage or {})) as handle:
        frame.to_parquet(handle, index=False)


class _Output:
    """A directory written all or nothing: files go to a sibling temporary directory first."""

    def __init__(self, path: str | os.PathLike[str], storage: Mapping[str, Any] | None) -> None:
        self.path = str(path)
        self.storage = dict(storage or {})
        self.fs, self.root = _fsspec().core.url_to_fs(self.path, **self.storage)
        self.root = self.root.rstrip("/")
        if self.fs.exists(self.root):
            if not self.fs.isdir(self.root):
                raise FileExistsError(f"{self.path} is a file; give a directory for the output")
            others = [f for f in self.fs.ls(self.root, detail=False) if not f.endswith(_SUFFIX)]
            if others:
                raise FileExistsError(
                    f"{self.path} holds other files than a previous output "
                    f"({others[0].rsplit('/', 1)[-1]}...); give a new or an empty directory"
                )
        self.tmp = f"{self.root}.tmp-{uuid.uuid4().hex[:12]}"
        self.fs.makedirs(self.tmp, exist_ok=True)

    def url(self, name: str) -> str:
        """Where a worker writes file ``name``."""
        return str(self.fs.unstrip_protocol(f"{self.tmp}/{name}"))

    def commit(self) -> None:
        """Move the finished files into place, replacing an earlier output."""
        old = None
        if self.fs.exists(self.root):
            old = f"{self.root}.old-{uuid.uuid4().hex[:12]}"
            self.fs.mv(self.root, old, recursive=True)
        self.fs.mv(self.tmp, self.root, recursive=True)
        if old is not None:
            self.fs.rm(old, recursive=True)

    def abort(self) -> None:
        """Remove the temporary directory (nothing is written)."""
        if self.fs.exists(self.tmp):
            self.fs.rm(self.tmp, recursive=True)


def write_partitioned(
    loans: pd.DataFrame,
    path: str | os.PathLike[str],
    partitions: int = 4,
    options: pd.DataFrame | None = None,
    options_path: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write a loan table as a Parquet dataset of ``partitions`` files (and its options).

    The loans are cut into consecutive, nearly equal parts named
    ``part-00000.parquet``...; each option row goes to the file of the same
    name under ``options_path`` as its loan (rows of unknown loans go to the
    first file, where validation reports them). Returns the loan files' URLs.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if (options is None) != (options_path is None):
        raise ValueError("give both options and options_path, or neither")
    n = len(loans)
    edges = np.linspace(0, n, partitions + 1).round().astype(np.int64)
    names = [f"part-{i:05d}{_SUFFIX}" for i in range(partitions)]
    target = _Output(path, storage_options)
    side = _Output(options_path, storage_options) if options_path is not None else None
    try:
        for i, name in enumerate(names):
            chunk = loans.iloc[edges[i] : edges[i + 1]].reset_index(drop=True)
            _write_parquet(chunk, target.url(name), storage_options)
        if side is not None and options is not None:
            pos = pd.Index(loans["loan_id"]).get_indexer(options["loan_id"])
            part = np.clip(np.searchsorted(edges, pos, side="right") - 1, 0, partitions - 1)
            part[pos < 0] = 0
            for i, name in enumerate(names):
                chunk = options[part == i].reset_index(drop=True)
                _write_parquet(chunk, side.url(name), storage_options)
    except BaseException:
        target.abort()
        if side is not None:
            side.abort()
        raise
    target.commit()
    if side is not None:
        side.commit()
    return [str(target.fs.unstrip_protocol(f"{target.root}/{name}")) for name in names]
