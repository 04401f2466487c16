"""The optional dependencies (Dask's ``distributed``, fsspec), imported on first use."""

from __future__ import annotations

from typing import Any

from npl_disposal.exceptions import NplDisposalError


class DaskUnavailableError(NplDisposalError, ImportError):
    """Dask is not installed; partitioned processing needs ``dask[distributed]``."""


def _distributed() -> Any:
    """The ``distributed`` package, imported on first use."""
    try:
        import distributed
    except ImportError as exc:
        raise DaskUnavailableError(
            "partitioned portfolios are processed with Dask, which is not installed; "
            "install it with: pip install 'npl-disposal[dask]'"
        ) from exc
    return distributed


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec comes with dask
        raise DaskUnavailableError(
            "partitioned portfolios need fsspec (it comes with Dask); "
            "install it with: pip install 'npl-disposal[dask]'"
        ) from exc
    return fsspec
