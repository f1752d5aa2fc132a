"""The planner: a pure function from (desired, live) to a Plan. No I/O.

Secrets are write-only: the API never returns them, so the planner cannot
compare them. A secret shows up as a (sensitive) change only when the tenant's
configuration is created or replaced, when the live config reports no secret
(`passwordExists: false`), when the caller asks to rotate it, or when its
reference or rotation marker moved (`SecretMove`: from the trusted base, or
from the record of the last apply).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from reconciler.engine.trust import SecretMove, Trust
from reconciler.model import (
    PROVIDER_FIELDS,
    SECRET_FIELD,
    Action,
    DesiredEmail,
    FieldChange,
    LiveEmail,
    LiveRead,
    LiveState,
    Plan,
    Provider,
    ReadFailure,
    Scalar,
    TenantPlan,
    TenantSpec,
    fingerprint,
)

PROVIDER_KEY = "provider"


NOT_READ = ReadFailure("not read")


def make_plan(
    tenants: Sequence[TenantSpec],
    live: Mapping[str, LiveRead],
    *,
    rotate: Collection[str] = (),
    shard: str | None = None,
    config_root: str | None = None,
    trust: Trust | None = None,
    planned: Mapping[str, TenantPlan] | None = None,
    paused: Mapping[str, str] | None = None,
) -> Plan:
    """Plan every tenant. `live` maps a tenant name to its LiveState, or to the
    ReadFailure that says why it could not be read; `rotate` names tenants whose
    secret is re-sent; `shard` and `config_root` are recorded in the plan;
    `trust` (under `--base`) names the tenants not read and the secret
    references that moved; `planned` holds what `plan_read` already gave for
    some tenants (with their `live` entry and `rotate`), not worked out again;
    `paused` names the tenants paused in their files (with the pause's text):
    not read, and planned as nothing."""
    trust = trust or Trust()
    planned = planned or {}
    paused = paused or {}
    plans = [
        paused_plan(spec.name, spec.url, desired_fingerprint(spec), paused[spec.name])
        if spec.name in paused
        else _with_moves(
            _unread(spec, trust.not_read[spec.name])
            if spec.name in trust.not_read
            else planned.get(spec.name)
            or plan_read(spec, live.get(spec.name, NOT_READ), rotate=spec.name in rotate),
            trust.secret_moves.get(spec.name),
        )
        for spec in tenants
    ]
    ordered = tuple(sorted(plans, key=lambda p: p.tenant))
    return Plan(tenants=ordered, shard=shard, config_root=config_root, unmanaged=trust.unmanaged)


def plan_tenant(spec: TenantSpec, live: LiveState, *, rotate: bool = False) -> TenantPlan:
    """Plan one tenant whose live state is known."""
    desired, current = spec.email, live.email
    changes: tuple[FieldChange, ...] = ()
    if desired is None:
        action = Action.DELETE if current else Action.NOOP
        changes = _deleted(current) if current else ()
    elif current is None:
        action, changes = Action.CREATE, _created(desired)
    elif current.provider is not desired.provider:
        action, changes = Action.REPLACE, _switched(current, desired)
    else:
        changes = _updated(current, desired, rotate)
        action = Action.UPDATE if changes else Action.NOOP
    return TenantPlan(
        tenant=spec.name,
        url=spec.url,
        action=action,
        changes=changes,
        provider_before=current.provider if current else None,
        provider_after=desired.provider if desired else None,
        live_fingerprint=live.fingerprint,
        desired_fingerprint=desired_fingerprint(spec),
    )


def desired_fingerprint(spec: TenantSpec) -> str:
    """A digest of what the configuration asks for one tenant (secret references
    included, secret values never), to refuse a saved plan when the config moved."""
    email = spec.email
    document = {
        "url": spec.url,
        "email": None
        if email is None
        else {
            "provider": email.provider.value,
            "fields": dict(email.fields),
            "secret": str(email.secret),
            # Only when set, so that configs without a marker keep their digest.
            **({"rotation": email.rotation} if email.rotation is not None else {}),
        },
    }
    return fingerprint(document)


def plan_read(spec: TenantSpec, live: LiveRead, *, rotate: bool = False) -> TenantPlan:
    """Plan one tenant from what reading it gave: its live state, or why it
    could not be read (before `make_plan` adds the secret moves)."""
    if isinstance(live, ReadFailure):
        return TenantPlan(
            tenant=spec.name,
            url=spec.url,
            action=Action.NOOP,
            desired_fingerprint=desired_fingerprint(spec),
            error=live.message,
        )
    return plan_tenant(spec, live, rotate=rotate)


def paused_plan(name: str, url: str, desired: str, pause: str) -> TenantPlan:
    """A tenant paused in its file (`pause`: its reason and end): not contacted,
    nothing to do."""
    return TenantPlan(
        tenant=name, url=url, action=Action.NOOP, desired_fingerprint=desired, paused=pause
    )


def _unread(spec: TenantSpec, reason: str) -> TenantPlan:
    """A tenant not contacted: its desired state, shown as if it were new."""
    desired = spec.email
    return TenantPlan(
        tenant=spec.name,
        url=spec.url,
        action=Action.NOOP,
        changes=_created(desired) if desired else (),
        provider_after=desired.provider if desired else None,
        desired_fingerprint=desired_fingerprint(spec),
        not_read=reason,
    )


def _with_moves(plan: TenantPlan, move: SecretMove | None) -> TenantPlan:
    """`plan` showing that the secret's reference or rotation marker moved: the
    secret change carries both references and markers and where the value goes,
    and a tenant that was otherwise unchanged is updated (every PUT carries the
    secret)."""
    if move is None or plan.error is not None or plan.provider_after is None:
        return plan
    secret = SECRET_FIELD[plan.provider_after]
    change = move.change(secret)
    kept = tuple(c for c in plan.changes if not (c.sensitive and c.field == secret))
    action = Action.UPDATE if plan.action is Action.NOOP and plan.not_read is None else plan.action
    return replace(plan, action=action, changes=(*kept, change))


def _secret_change(provider: Provider) -> FieldChange:
    return FieldChange(SECRET_FIELD[provider], None, None, sensitive=True)


def _created(desired: DesiredEmail) -> tuple[FieldChange, ...]:
    values = desired.as_dict()
    changes = [FieldChange(PROVIDER_KEY, None, desired.provider.value)]
    changes += [
        FieldChange(name, None, values[name])
        for name in PROVIDER_FIELDS[desired.provider]
        if name in values
    ]
    return (*changes, _secret_change(desired.provider))


def _deleted(current: LiveEmail) -> tuple[FieldChange, ...]:
    values = current.as_dict()
    changes = [FieldChange(PROVIDER_KEY, current.provider.value, None)]
    changes += [
        FieldChange(name, values[name], None)
        for name in PROVIDER_FIELDS[current.provider]
        if name in values
    ]
    return tuple(changes)


def _switched(current: LiveEmail, desired: DesiredEmail) -> tuple[FieldChange, ...]:
    before, after = current.as_dict(), desired.as_dict()
    names = _ordered_union(PROVIDER_FIELDS[current.provider], PROVIDER_FIELDS[desired.provider])
    changes = [FieldChange(PROVIDER_KEY, current.provider.value, desired.provider.value)]
    changes += _field_changes(names, before, after)
    return (*changes, _secret_change(desired.provider))


def _updated(current: LiveEmail, desired: DesiredEmail, rotate: bool) -> tuple[FieldChange, ...]:
    changes: list[FieldChange] = []
    if current.legacy:
        # A PATCH-made config has no serviceProvider; PUT migrates it.
        changes.append(FieldChange(PROVIDER_KEY, None, desired.provider.value))
    names = PROVIDER_FIELDS[desired.provider]
    changes += _field_changes(names, current.as_dict(), desired.as_dict())
    if rotate or not current.secret_exists:
        # The API never returns secrets; it only says whether one exists.
        changes.append(_secret_change(desired.provider))
    return tuple(changes)


def _field_changes(
    names: Sequence[str], before: Mapping[str, Scalar], after: Mapping[str, Scalar]
) -> list[FieldChange]:
    return [
        FieldChange(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    ]


def _ordered_union(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))
