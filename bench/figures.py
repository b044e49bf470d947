"""One measured figure: its samples' summary, the target and whether it is met."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.stats import Summary


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    loop: str
    unit: str
    target: str
    met: bool | None
    summary: Summary | None = None
    # For a figure that is one number (e.g. the largest scale that holds).
    value: float | None = None
    detail: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "loop": self.loop,
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
            "summary": self.summary.as_dict() if self.summary else None,
            "value": self.value,
            "detail": self.detail,
        }
