import pytest
from helpers import basic, live_basic, live_none, spec

from reconciler.engine.planner import make_plan
from reconciler.engine.safety import check_safety, needs
from reconciler.errors import UnsafePlanError
from reconciler.model import Safety


def plan_with(creates: int, deletes: int, unchanged: int):
    tenants, live = [], {}
    for i in range(creates):
        tenants.append(spec(f"c{i}", basic()))
        live[f"c{i}"] = live_none()
    for i in range(deletes):
        tenants.append(spec(f"d{i}", None))
        live[f"d{i}"] = live_basic()
    for i in range(unchanged):
        tenants.append(spec(f"u{i}", basic()))
        live[f"u{i}"] = live_basic()
    return make_plan(tenants, live), len(tenants)


def test_deletes_need_allow_delete():
    plan, size = plan_with(0, 2, 0)
    with pytest.raises(UnsafePlanError, match="--allow-delete"):
        check_safety(plan, Safety(), fleet_size=size, allow_delete=False, force=False)
    check_safety(plan, Safety(), fleet_size=size, allow_delete=True, force=False)


def test_absolute_change_threshold_refuses_without_force():
    plan, size = plan_with(3, 0, 7)
    with pytest.raises(UnsafePlanError, match="more than maxChanges 2"):
        check_safety(plan, Safety(max_changes=2), fleet_size=size, allow_delete=False, force=False)
    check_safety(plan, Safety(max_changes=3), fleet_size=size, allow_delete=False, force=False)
    check_safety(plan, Safety(max_changes=2), fleet_size=size, allow_delete=False, force=True)


def test_percentage_thresholds():
    plan, size = plan_with(3, 1, 6)
    with pytest.raises(
        UnsafePlanError, match=r"4 of 10 tenants \(40%\), more than maxChangesPercent 30%"
    ):
        check_safety(
            plan, Safety(max_changes_percent=30), fleet_size=size, allow_delete=True, force=False
        )
    with pytest.raises(UnsafePlanError, match="maxDeletesPercent 5%"):
        check_safety(
            plan, Safety(max_deletes_percent=5), fleet_size=size, allow_delete=True, force=False
        )
    check_safety(
        plan, Safety(max_changes_percent=40), fleet_size=size, allow_delete=True, force=False
    )


def test_delete_threshold_counts_only_deletes():
    plan, size = plan_with(5, 1, 0)
    check_safety(plan, Safety(max_deletes=1), fleet_size=size, allow_delete=True, force=False)
    with pytest.raises(UnsafePlanError, match="maxDeletes 0"):
        check_safety(plan, Safety(max_deletes=0), fleet_size=size, allow_delete=True, force=False)


def test_needs_say_ahead_what_apply_will_refuse_without():
    tenants = [spec("a", basic()), spec("b", None), spec("c", basic())]
    live = {"a": live_none(), "b": live_basic(), "c": live_basic()}
    plan = make_plan(tenants, live)
    found = needs(plan, Safety(max_changes=1), fleet_size=3)
    assert [n.flag for n in found] == ["--allow-delete", "--force"]
    assert "deletes the e-mail configuration of 1 tenant(s) (b)" in found[0].reason
    assert "more than maxChanges 1" in found[1].reason
    assert needs(plan, Safety(), fleet_size=3)[0].flag == "--allow-delete"
