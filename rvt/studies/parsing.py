"""List-valued settings, parsed and checked in one place (``"a,b,c"`` or a sequence)."""

from __future__ import annotations

import math

from rvt.errors import check


def parse_list(value, setting: str, cast: type = str, minimum: float | None = None) -> tuple:
    """A non-empty list setting, from ``"a,b,c"`` or a sequence: each item cast to ``cast`` (int items
    must be whole numbers; float items finite), at least ``minimum`` where given, none listed twice."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    items = [v for v in items if v != ""]
    check(bool(items), setting, "is empty")
    out = []
    for item in items:
        try:
            parsed = cast(item)
            ok = cast is not int or (not isinstance(item, bool) and str(parsed) == str(item).strip())
            ok = ok and (cast is not float or math.isfinite(parsed))
        except (TypeError, ValueError):
            ok = False
        kind = {int: "integers", float: "finite numbers"}.get(cast, "names")
        check(ok, setting, f"must be comma-separated {kind}, got {value!r}")
        check(minimum is None or parsed >= minimum, setting, f"every item must be >= {minimum}, got {item!r}")
        out.append(parsed)
    repeated = sorted({str(v) for v in out if out.count(v) > 1})
    check(not repeated, setting, f"{', '.join(repeated)} listed twice")
    return tuple(out)


def parse_names(value, setting: str) -> tuple[str, ...]:
    return parse_list(value, setting)


def parse_choices(value, setting: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    """A list setting whose every item is one of ``choices``."""
    items = parse_list(value, setting)
    for item in items:
        check(item in choices, setting, f"unknown {item!r}; known: {', '.join(choices)}")
    return items
