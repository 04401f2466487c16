"""Portfolios beyond one machine: partitioned Parquet processed with Dask.

>>> from npl_disposal.distributed import solve_partitioned
>>> result = solve_partitioned("loans/", "branches.csv", "policy.toml",
...                            out="plan/")  # doctest: +SKIP
>>> print(result.summary())  # doctest: +SKIP

A portfolio is a directory of Parquet files, one per partition (see
:func:`write_partitioned`). Every partition is read, validated, valued and
turned into its own :class:`~npl_disposal.model.problem.AllocationProblem` on a Dask
worker, once, and stays there. The coordinator (this process) holds only the
coupling rows of ``docs/model.md`` (the policy's budgets, one tolerance row per
branch and the wage-pool rows, with their limits and per-branch figures computed
from totals reduced over every partition: ``_layout``, ``_context``) and their
dual prices. Every policy term is supported, also where some partitions are not
offered a channel. The solve is the method of
:mod:`npl_disposal.solvers._pricing`, split along partitions:

1. workers return, for the current prices, each loan's best channel
   (:func:`~npl_disposal.solvers._pricing.reduced_values`), the row usage and value
   of those choices, and the loans within a tie of their best (the *open* loans,
   with their rows of the options grid);
2. the coordinator solves the restricted LP over the open loans, every other
   loan's usage a constant, and sends its duals back;
3. workers price their fixed loans against those duals and return the loans
   whose fixed channel is no longer best; repeat until none is.

When no loan is returned the restricted optimum is the LP optimum over every
loan (complementary slackness), so the fractional optimum equals the
single-machine :func:`~npl_disposal.solvers.solve` one. Whole-loan mode repairs the LP on
the coordinator and proves its bound with reduced-cost fixing, as
:func:`~npl_disposal.solvers._whole_loan.solve_whole_loan` does. The plan is written
back partitioned (one Parquet file per input file: ``loan_id, channel,
share``), checked rule by rule first, and all or nothing.

``client=None`` starts a local cluster (one single-threaded worker process per
core) and closes it afterwards; pass a ``distributed.Client`` (or a scheduler
address such as ``"tcp://scheduler:8786"``) to use an existing cluster. See
``docs/distributed.md``.
"""

from __future__ import annotations

from npl_disposal.distributed._deps import DaskUnavailableError
from npl_disposal.distributed._result import PLAN_COLUMNS as PLAN_COLUMNS
from npl_disposal.distributed._result import PartitionedResult
from npl_disposal.distributed._session import validate_partitioned, value_partitioned
from npl_disposal.distributed._solve import solve_partitioned
from npl_disposal.distributed._storage import write_partitioned

__all__ = [
    "DaskUnavailableError",
    "PartitionedResult",
    "solve_partitioned",
    "validate_partitioned",
    "value_partitioned",
    "write_partitioned",
]
