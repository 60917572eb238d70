"""What ingest read, skipped and did not understand, and the error that names a bad resource.

With an `IngestReport`, readers record each problem (file:line, resource, field) and go
on; without one the first problem is raised as `FhirInputError`, which suits a single
request (CDS Hooks).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass


class FhirInputError(ValueError):
    """A resource (or file) that cannot be read, naming where and which field.

    str() reads like
    ``data/Encounter.ndjson:17: Encounter/abc field period.start: 'not-a-date' is not a FHIR dateTime``.
    """

    def __init__(self, message: str, *, resource_type: str | None = None,
                 resource_id: str | None = None, field: str | None = None,
                 source: str | None = None):
        super().__init__(message)
        self.message = message
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.field = field
        self.source = source

    def with_source(self, source: str | None) -> "FhirInputError":
        return FhirInputError(self.message, resource_type=self.resource_type,
                              resource_id=self.resource_id, field=self.field,
                              source=source or self.source)

    def __str__(self) -> str:
        what = self.resource_type or "resource"
        if self.resource_id:
            what = f"{what}/{self.resource_id}"
        text = f"{what} field {self.field}: {self.message}" if self.field else f"{what}: {self.message}"
        return f"{self.source}: {text}" if self.source else text

    def __reduce__(self):  # keep keyword attributes across pickling (multiprocessing)
        return (_rebuild_error, (self.message, self.resource_type, self.resource_id,
                                 self.field, self.source))


def _rebuild_error(message, resource_type, resource_id, field, source):
    return FhirInputError(message, resource_type=resource_type, resource_id=resource_id,
                          field=field, source=source)


@dataclass
class Problem:
    source: str | None
    resource_type: str | None
    resource_id: str | None
    field: str | None
    message: str
    kept: bool = False   # True for full-validation sample failures: the resource was still used

    def __str__(self) -> str:
        return str(FhirInputError(self.message, resource_type=self.resource_type,
                                  resource_id=self.resource_id, field=self.field,
                                  source=self.source))


class IngestReport:
    """What was read, what was skipped and why, and which codes were not understood."""

    #: problems beyond this many are counted but not kept (a broken export can have millions)
    max_problems_kept = 1000
    #: example codes kept per system in `unknown_code_examples`
    max_examples = 20

    def __init__(self) -> None:
        self.resources: Counter = Counter()        # accepted resources by type
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.skipped: Counter = Counter()          # reason -> count
        self.unknown_codes: Counter = Counter()    # system URL (or raw system) -> count
        self.unknown_code_examples: dict[str, Counter] = {}
        self.events: Counter = Counter()           # things worth knowing that are not skips
        self.files: list[str] = []
        self.validation: Counter = Counter()       # mode -> resources checked; "full-sample" too

    # -- recording ---------------------------------------------------------
    def add_problem(self, error: FhirInputError, *, skipped: str | None = "invalid resource",
                    kept: bool = False) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems_kept:
            self.problems.append(Problem(error.source, error.resource_type, error.resource_id,
                                         error.field, error.message, kept))
        if skipped:
            self.skipped[skipped] += 1

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def note(self, event: str, n: int = 1) -> None:
        self.events[event] += n

    def unknown_code(self, system: str | None, code: str | None) -> None:
        key = system or "(no system)"
        self.unknown_codes[key] += 1
        examples = self.unknown_code_examples.setdefault(key, Counter())
        if code is not None and (code in examples or len(examples) < self.max_examples):
            examples[code] += 1

    def merge(self, other: "IngestReport") -> None:
        """Add another report's counts into this one (e.g. from a worker process)."""
        self.resources.update(other.resources)
        room = self.max_problems_kept - len(self.problems)
        self.problems.extend(other.problems[:max(room, 0)])
        self.problem_count += other.problem_count
        self.skipped.update(other.skipped)
        self.unknown_codes.update(other.unknown_codes)
        for system, codes in other.unknown_code_examples.items():
            mine = self.unknown_code_examples.setdefault(system, Counter())
            for code, n in codes.items():
                if code in mine or len(mine) < self.max_examples:
                    mine[code] += n
        self.events.update(other.events)
        self.files.extend(other.files)
        self.validation.update(other.validation)

    # -- output ------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "files": len(self.files),
            "resources": dict(sorted(self.resources.items())),
            "resources_total": sum(self.resources.values()),
            "validation": dict(self.validation),
            "problem_count": self.problem_count,
            "problems": [asdict(p) for p in self.problems],
            "skipped": dict(self.skipped.most_common()),
            "unknown_codes": dict(self.unknown_codes.most_common()),
            "unknown_code_examples": {s: [c for c, _ in codes.most_common()]
                                      for s, codes in self.unknown_code_examples.items()},
            "events": dict(self.events.most_common()),
        }

    def summary(self, max_problems: int = 10) -> str:
        total = sum(self.resources.values())
        lines = [f"read {total} resources from {len(self.files)} file(s)"]
        if self.resources:
            lines.append("  " + ", ".join(f"{t} {n}" for t, n in self.resources.most_common()))
        if self.problem_count:
            lines.append(f"{self.problem_count} problem(s):")
            for p in self.problems[:max_problems]:
                lines.append(f"  {p}" + ("  (kept)" if p.kept else ""))
            if self.problem_count > max_problems:
                lines.append(f"  … and {self.problem_count - max_problems} more")
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{r} {n}" for r, n in self.skipped.most_common()))
        if self.unknown_codes:
            parts = []
            for system, n in self.unknown_codes.most_common():
                examples = [c for c, _ in self.unknown_code_examples.get(system, Counter()).most_common(3)]
                parts.append(f"{system} {n}" + (f" (e.g. {', '.join(examples)})" if examples else ""))
            lines.append("unknown codes: " + "; ".join(parts))
        if self.events:
            lines.append("notes: " + ", ".join(f"{e} {n}" for e, n in self.events.most_common()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"IngestReport(resources={sum(self.resources.values())}, "
                f"problems={self.problem_count}, skipped={sum(self.skipped.values())})")


def record_problem(error: FhirInputError, report: IngestReport | None, **kwargs) -> None:
    """Count `error` in `report`, or raise it when there is no report to keep it."""
    if report is None:
        raise error
    report.add_problem(error, **kwargs)
