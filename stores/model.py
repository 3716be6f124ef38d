"""What the stores hand back beside the domain's own records: the answer to a request, a
claimed call, a query for a page of tasks."""

from __future__ import annotations

from dataclasses import dataclass

from dialer.model import Attempt, Task, TaskState
from dialer.requests import Risk

__all__ = ["Claim", "NodeInfo", "Pending", "Submitted", "TaskQuery", "TrunkLimits"]


@dataclass(frozen=True)
class Submitted:
    task: Task
    merged: bool  # joined a task already open for the number
    duplicate: bool  # this request id was accepted before: nothing changed

    def sentence(self) -> str:
        t = self.task
        if self.duplicate:
            return f"request already accepted as task {t.id} ({t.masked}, {t.state.value})"
        if self.merged:
            return (f"merged into task {t.id}, already open for {t.masked} "
                    f"(risk {t.risk.value}, cases {', '.join(t.case_ids) or 'none'})")
        return f"queued task {t.id} for {t.masked} ({t.fraud_type}, risk {t.risk.value})"


@dataclass(frozen=True)
class Claim:
    """A due task taken for one call: the task as it is now (``calling``) and its attempt."""

    task: Task
    attempt: Attempt


@dataclass(frozen=True)
class TaskQuery:
    """Which tasks, newest first: every filter is optional; ``before`` is the cursor of the
    page (the ``(created_at, id)`` of the last task of the previous page), so a page stays
    the same when new tasks arrive."""

    states: tuple[TaskState, ...] = ()
    risk: Risk | None = None
    escalated_open: bool = False
    fraud_type: str = ""
    since: float | None = None
    until: float | None = None
    before: tuple[float, str] | None = None
    limit: int = 50
    finished_since: float | None = None  # finished (acknowledged, failed…) at or after


@dataclass(frozen=True)
class Pending:
    """A message in the outbox, waiting for the broker."""

    id: int
    topic: str  # below the prefix: "warning/event"
    payload: str  # JSON text


@dataclass(frozen=True)
class NodeInfo:
    """One engine node as the cluster sees it."""

    name: str
    generation: int  # its lease's generation: a node that lost its lease writes nothing more
    state: str  # alive, left (stopped cleanly), dead (its lease lapsed; its calls were taken)
    age_s: float  # since its last renewal, by the store's clock
    lease_s: float
    beats: int  # renewals since it joined (another node sees it move)
    info: dict[str, object]  # what it said of itself at its last renewal (calls, workers…)


@dataclass(frozen=True)
class TrunkLimits:
    """The trunk's limits, held by every node together when the store is shared."""

    max_channels: int
    max_cps: float
