"""What the record script answered, as Python objects: :class:`BatchResult` (counts at once)
and one :class:`EventOutcome` per event (built on first access).

The script's reply (``ingestion/lua/record.lua``) is ``<terms>\\n<term line>...\\n<codes>``:
per plan term used, ``<i>:<plan>|<upgrade>;<meter>=<limit µ>|<hard>;...``, then one code per
event: a letter (see ``STATUS``), the month quantity in micro-units, and ``@<i>`` when the
event was judged under plan term ``i`` rather than the one in force now (the last).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from ingestion import keys
from ingestion.validation import PreparedBatch

THRESHOLDS = (100, 95, 90, 80)
STATUS = {
    "A": "accepted",
    "O": "accepted",
    "Z": "accepted",
    "D": "duplicate",
    "Q": "rejected",
    "X": "rejected",
}
REASONS = {"Q": "quota_exceeded", "X": "counter_overflow", "Z": "no_effect"}


def micro_to_decimal(micro: int) -> Decimal:
    if micro % keys.MICRO == 0:
        return Decimal(micro // keys.MICRO)
    return Decimal(micro).scaleb(-6).normalize()


_limit_decimal = lru_cache(maxsize=4096)(micro_to_decimal)


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What happened to one event of a batch."""

    index: int
    id: str
    tenant_id: str
    meter: str
    status: str  # accepted | duplicate | rejected
    # quota_exceeded | counter_overflow | tenant_inactive | over_budget | no_effect (accepted)
    reason: str | None = None
    quantity: Decimal | None = None  # the month's quantity after this event
    limit: Decimal | None = None
    hard_limit: bool = False
    remaining: Decimal | None = None
    percent: float | None = None
    warning: int | None = None  # highest soft threshold reached: 80, 90, 95 or 100
    overage: bool = False  # accepted above a limit that allows overage
    term: int = 0  # the plan term it was judged under (0: the one in force now)

    def as_dict(self) -> dict:
        def num(value: Decimal | None):
            if value is None:
                return None
            return int(value) if value == value.to_integral_value() else float(value)

        return {
            "index": self.index,
            "id": self.id,
            "meter": self.meter,
            "status": self.status,
            "reason": self.reason,
            "quantity": num(self.quantity),
            "limit": num(self.limit),
            "remaining": num(self.remaining),
            "percent": None if self.percent is None else round(self.percent, 2),
            "warning": self.warning,
            "overage": self.overage,
        }


@dataclass
class TermInfo:
    plan: str
    upgrade: str
    limits: dict[str, tuple[int | None, bool]] = field(default_factory=dict)


@dataclass
class TenantReply:
    terms: int  # number of cached terms; the last is the plan in force now
    info: dict[int, TermInfo]
    codes: list[str]

    def term(self, index: int) -> TermInfo:
        return self.info.get(index or self.terms) or TermInfo("", "")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_reply(raw) -> TenantReply:
    lines = _text(raw).split("\n")
    info: dict[int, TermInfo] = {}
    for line in lines[1:-1]:
        parts = line.split(";")
        index, _, head = parts[0].partition(":")
        plan, _, upgrade = head.partition("|")
        term = info[int(index)] = TermInfo(plan, upgrade)
        for part in parts[1:]:
            meter, _, rest = part.partition("=")
            limit, _, hard = rest.partition("|")
            term.limits[meter] = (int(limit) if limit else None, hard == "1")
    codes = lines[-1].split(" ") if lines[-1] else []
    return TenantReply(int(lines[0]), info, codes)


class BatchResult:
    """Outcomes of one ``record`` call. Counts are computed at once; the per-event
    :class:`EventOutcome` objects are built on first access of :attr:`outcomes`."""

    def __init__(
        self,
        batch: PreparedBatch,
        replies: dict[str, TenantReply],
        inactive: dict[str, str] | None = None,
    ):
        self._batch = batch
        self._replies = replies
        self._inactive = inactive or {}  # tenant -> reason its events were all refused
        self._outcomes: list[EventOutcome] | None = None
        accepted = duplicates = 0
        for reply in replies.values():
            for code in reply.codes:
                first = code[0]
                if first == "A" or first == "O" or first == "Z":
                    accepted += 1
                elif first == "D":
                    duplicates += 1
        self.accepted = accepted
        self.duplicates = duplicates
        self.rejected = batch.size - accepted - duplicates

    def __len__(self) -> int:
        return self._batch.size

    def __repr__(self) -> str:
        return (
            f"BatchResult(accepted={self.accepted}, duplicates={self.duplicates}, "
            f"rejected={self.rejected})"
        )

    @property
    def outcomes(self) -> list[EventOutcome]:
        if self._outcomes is None:
            self._outcomes = self._build()
        return self._outcomes

    def plan_of(self, tenant_id: str, term: int = 0) -> tuple[str | None, str | None]:
        """(plan id, upgrade plan id) of a tenant as the script saw them: the plan in force
        now, or the one of plan term ``term`` (an outcome's ``term``)."""
        reply = self._replies.get(tenant_id)
        if reply is None:
            return None, None
        info = reply.term(term)
        return info.plan or None, info.upgrade or None

    def _build(self) -> list[EventOutcome]:
        batch = self._batch
        outcomes: list[EventOutcome | None] = [None] * batch.size
        ids, meters = batch.ids, batch.meters
        for tenant, positions in batch.by_tenant.items():
            reply = self._replies.get(tenant)
            if reply is None:
                reason = self._inactive.get(tenant, "tenant_inactive")
                for position in positions:
                    outcomes[position] = EventOutcome(
                        position, ids[position], tenant, meters[position], "rejected", reason
                    )
                continue
            for position, code in zip(positions, reply.codes, strict=True):
                outcomes[position] = _outcome(
                    position, ids[position], tenant, meters[position], code, reply
                )
        return outcomes  # type: ignore[return-value]


def _outcome(
    position: int, event_id: str, tenant: str, meter: str, code: str, reply: TenantReply
) -> EventOutcome:
    kind = code[0]
    if kind == "D":
        return EventOutcome(position, event_id, tenant, meter, "duplicate")
    body, _, term_text = code[1:].partition("@")
    term = int(term_text) if term_text else 0
    limit_micro, hard = reply.term(term).limits.get(meter, (None, False))
    if not body:  # accepted, no limit on this meter: quantity not returned
        return EventOutcome(
            position, event_id, tenant, meter, STATUS[kind], REASONS.get(kind), hard_limit=hard,
            term=term,
        )  # fmt: skip
    qty_micro = int(body)
    remaining = percent = warning = None
    if limit_micro is not None:
        remaining = micro_to_decimal(max(0, limit_micro - qty_micro))
        if limit_micro > 0:
            percent = qty_micro * 100 / limit_micro
            warning = next((t for t in THRESHOLDS if percent >= t), None)
        elif qty_micro > 0:
            percent, warning = 100.0, 100
    return EventOutcome(
        position,
        event_id,
        tenant,
        meter,
        STATUS[kind],
        reason=REASONS.get(kind),
        quantity=micro_to_decimal(qty_micro),
        limit=None if limit_micro is None else _limit_decimal(limit_micro),
        hard_limit=hard,
        remaining=remaining,
        percent=percent,
        warning=warning,
        overage=kind == "O",
        term=term,
    )
