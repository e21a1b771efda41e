"""Circuit breakers: a wrong list must not empty a customer's bucket.

Lists are made by people and pipelines, and they go wrong (a CMS's default image listed by mistake, a
compromised feed). So the power of one reference is capped: each reference may act (quarantine, and
in `move` mode delete from the customer's bucket) on at most `max_objects` objects, of at most
`max_tenants` customers, per window (a listed picture spreads through few hands; a CMS default image
is everywhere). The next object past either limit trips its breaker: that object and every later hit
of the reference are held instead (tagged `review`, so blocked from reads; nothing moved, nothing
reported; a case for a person), and one alert names the reference and its list, never a hash value.
A person then looks at the reference and releases the breaker (`hashcheck list release`: the
reference acts again, without a cap) or has it withdrawn from the list; the held objects' cases are
confirmed or released one by one as any review.

The re-match adds a breaker per list update (`update_is_suspect`): an update whose new references
would act on more stored objects than a list update plausibly should is held as a whole: every match
it found held for review, the references behind them held as above, and one alert.

Counting lives in the ReferenceTable (`acted#` and `hold#` items): the scan functions run in
parallel, and a conditional update is the one count they all agree on.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from hashcheck.matching.matcher import Result
from hashcheck.objects import ObjectRef
from hashcheck.status import BreakerState
from hashcheck.tables.reference_table import ReferenceTable

log = logging.getLogger(__name__)

HELD_EVENT = "HashCheck Reference Held"
UPDATE_HELD_EVENT = "HashCheck List Update Held"


@dataclass(frozen=True)
class BreakerLimits:
    max_objects: int = 5  # objects one reference may act on per window before it is held
    max_tenants: int = 3  # tenants (or buckets, without a tenant rule) whose objects it may act on
    window_hours: int = 24
    # a list update is held as a whole when its new references would act on more objects than this,
    # or on more than `update_max_share` of the stored objects (once that is over `update_min_objects`)
    update_max_objects: int = 1000
    update_max_share: float = 0.01
    update_min_objects: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> BreakerLimits:
        defaults = cls()
        return cls(
            max_objects=int(env.get("BREAKER_MAX_OBJECTS", defaults.max_objects)),
            max_tenants=int(env.get("BREAKER_MAX_TENANTS", defaults.max_tenants)),
            window_hours=int(env.get("BREAKER_WINDOW_HOURS", defaults.window_hours)),
            update_max_objects=int(env.get("UPDATE_BREAKER_MAX_OBJECTS", defaults.update_max_objects)),
            update_max_share=float(env.get("UPDATE_BREAKER_PERCENT", 100 * defaults.update_max_share)) / 100,
        )

    def window(self, now: float | None = None) -> str:
        """The fixed window `now` falls in, as the hour it started (UTC epoch hours)."""
        hours = int((time.time() if now is None else now) // 3600)
        return str(hours - hours % self.window_hours)


Announce = Callable[[str, dict], None]  # (event name, detail): SNS and EventBridge


class Breaker:
    """Decides, before a match acts, whether one of its references is held (and counts it if not)."""

    def __init__(
        self, table: ReferenceTable, limits: BreakerLimits = BreakerLimits(), announce: Announce | None = None
    ):
        self.table, self.limits, self.announce = table, limits, announce
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # when a shadow period is over

    def held(self, obj: ObjectRef, result: Result, tenant: str | None = None) -> list[tuple[str, str]]:
        """The acting references (list, id) of `result` that may not act on `obj` (of `tenant`; its bucket
        without one); empty if all may. Each reference not held counts `obj` against its caps; the one
        that passes one trips."""
        refs = sorted({(m.list, m.ref_id) for m in result.matches if m.acts})
        states = self.table.breaker_states(refs)
        held = [ref for ref in refs if states.get(ref, {}).get("state") == BreakerState.HELD]
        window = self.limits.window()
        for ref in refs:
            if states.get(ref, {}).get("state") in (BreakerState.HELD, BreakerState.RELEASED):
                continue  # held (above), or released by a person: not counted (out of shadow: counted)
            limits = (self.limits.max_objects, self.limits.max_tenants)
            if not self.table.count_acted(*ref, window, obj.identity(), tenant or obj.bucket, limits):
                held.append(ref)
                self._trip(ref)
        return held

    def in_shadow(self, result: Result) -> dict[tuple[str, str], str]:
        """The references of `result` in shadow rollout now, each with the end of its period; each
        counts this object as one it would have acted on."""
        refs = sorted({(m.list, m.ref_id) for m in result.matches})
        now = self.clock().isoformat(timespec="seconds")
        shadow = {
            ref: str(state["until"])
            for ref, state in self.table.breaker_states(refs).items()
            if state.get("state") == BreakerState.SHADOW and str(state.get("until", "")) > now
        }
        for ref in shadow:
            self.table.count_shadow_hit(*ref)
        return shadow

    def hold_update(self, version: int | None, acting: list[Result], stored: int) -> str | None:
        """A list update whose matches (`acting`, one per stored object) are more than an update should
        bring: its references are held (on new uploads too) and one alert names the ten busiest. Why
        every match is to be held, or None."""
        why = update_is_suspect(self.limits, len(acting), stored)
        if not why:
            return None
        log.warning("list update held by its circuit breaker", extra={"version": version, "acting": len(acting)})
        per_ref = Counter(ref for result in acting for ref in {(m.list, m.ref_id) for m in result.matches if m.acts})
        for list_id, ref_id in per_ref:
            self.table.set_breaker(list_id, ref_id, BreakerState.HELD, "its list update was held", "hashcheck", True)
        if self.announce:  # ids, never hashes
            top = [{"list": lst, "ref_id": ref, "objects": n} for (lst, ref), n in per_ref.most_common(10)]
            self.announce(
                UPDATE_HELD_EVENT, {"version": version, "objects": len(acting), "reason": why, "references": top}
            )
        return why

    def reason(self, held: list[tuple[str, str]]) -> str:
        names = ", ".join(f"{ref_id} of list {list_id}" for list_id, ref_id in held)
        return f"held by the circuit breaker: reference {names} {self._limits_text()}"

    def _limits_text(self) -> str:
        return (
            f"acted on more than {self.limits.max_objects} objects or {self.limits.max_tenants} tenants "
            f"in {self.limits.window_hours} h"
        )

    def _trip(self, ref: tuple[str, str]) -> None:
        list_id, ref_id = ref
        why = self._limits_text()
        if not self.table.set_breaker(list_id, ref_id, BreakerState.HELD, why, "hashcheck", if_undecided=True):
            return  # another scan tripped it first and alerted
        log.warning("reference held by its circuit breaker", extra={"list": list_id, "ref_id": ref_id})
        if self.announce:
            detail = {
                "list": list_id,
                "ref_id": ref_id,
                "max_objects": self.limits.max_objects,
                "max_tenants": self.limits.max_tenants,
                "window_hours": self.limits.window_hours,
                "reason": why,
            }
            self.announce(HELD_EVENT, detail)


def update_is_suspect(limits: BreakerLimits, acting: int, stored: int) -> str | None:
    """Why a list update whose new references would act on `acting` of `stored` objects is held, or None."""
    if acting > limits.update_max_objects:
        return f"the update would act on {acting} stored objects, more than {limits.update_max_objects}"
    share = limits.update_max_share * stored
    if acting > max(limits.update_min_objects, share):
        return (
            f"the update would act on {acting} of {stored} stored objects, more than "
            f"{limits.update_max_share:.0%} of them"
        )
    return None
