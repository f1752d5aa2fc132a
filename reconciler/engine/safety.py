"""Safety: what a plan needs before apply may carry it out.

A plan that deletes a configuration needs `--allow-delete`; one that changes
or deletes more tenants than `settings.safety` allows needs `--force`. `plan`
says so ahead (`needs`), and `apply` refuses without them (`check_safety`).
"""

from __future__ import annotations

from reconciler.errors import UnsafePlanError
from reconciler.model import Action, ApplyNeed, Plan, Safety


def needs(plan: Plan, safety: Safety, *, fleet_size: int) -> tuple[ApplyNeed, ...]:
    """The flags apply will need for `plan`, each with the reason."""
    found = []
    deletes = plan.count(Action.DELETE)
    if deletes:
        names = ", ".join(
            t.tenant for t in plan.tenants if t.action is Action.DELETE and not t.error
        )
        found.append(
            ApplyNeed(
                "--allow-delete",
                f"the plan deletes the e-mail configuration of {deletes} tenant(s) "
                f"({_short(names)})",
            )
        )
    changes = sum(1 for t in plan.tenants if t.error is None and t.action is not Action.NOOP)
    problems = _over(changes, fleet_size, safety.max_changes, safety.max_changes_percent, "change")
    problems += _over(deletes, fleet_size, safety.max_deletes, safety.max_deletes_percent, "delete")
    if problems:
        found.append(ApplyNeed("--force", "; ".join(problems) + " (settings.safety)"))
    return tuple(found)


def check_safety(
    plan: Plan, safety: Safety, *, fleet_size: int, allow_delete: bool, force: bool
) -> None:
    """Refuse (UnsafePlanError) a plan that deletes without --allow-delete, or that
    changes more tenants than the thresholds allow without --force."""
    given = {"--allow-delete": allow_delete, "--force": force}
    for need in needs(plan, safety, fleet_size=fleet_size):
        if not given[need.flag]:
            advice = (
                "re-run with --allow-delete to allow it"
                if need.flag == "--allow-delete"
                else "review the plan and re-run with --force"
            )
            raise UnsafePlanError(f"{need.reason}: {advice}")


def _over(count: int, total: int, limit: int | None, percent: float | None, verb: str) -> list[str]:
    key = "maxChanges" if verb == "change" else "maxDeletes"
    problems = []
    if limit is not None and count > limit:
        problems.append(f"the plan would {verb} {count} tenants, more than {key} {limit}")
    if percent is not None and total and count * 100 / total > percent:
        problems.append(
            f"the plan would {verb} {count} of {total} tenants ({count * 100 / total:.0f}%), "
            f"more than {key}Percent {percent:g}%"
        )
    return problems


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + ", ..."
