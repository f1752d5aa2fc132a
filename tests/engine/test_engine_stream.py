"""Plan and drift load the tenant files while they read the first tenants
(`Engine.load(..., stream=True)`, what the CLI's plan and drift do): the same
documents as loading everything first, the same errors, and a tenant is only
contacted once its own file has passed every check that is per tenant."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from reconciler.engine import Engine, Phase
from reconciler.engine.selection import SelectionLoad
from reconciler.engine.trust import Trust
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.sandbox import Sandbox

TENANTS = 40


@pytest.fixture(scope="module")
def fleet():
    with Sandbox(tenants=TENANTS, seed=31) as sandbox:
        yield sandbox


@pytest.fixture
def repo(fleet, tmp_path: Path) -> Path:
    repo = fleet.write_config(tmp_path / "config", microsoft365=("tenant-003",))
    _quiet(fleet)
    fleet.reset_stats()
    return repo


def _quiet(fleet) -> None:
    """Wait until the shared fleet hears no more requests: those a previous test
    cancelled in flight may still reach it, on a loaded machine, and must not be
    counted as this test's."""
    deadline = time.monotonic() + 5
    seen = -1
    while len(fleet.request_log) != seen and time.monotonic() < deadline:
        seen = len(fleet.request_log)
        time.sleep(0.05)


def _read(fleet) -> list[str]:
    """The tenants that were sent a GET, in order."""
    return [e.tenant for e in fleet.request_log if e.method == "GET"]


def _spoil(repo: Path, name: str, text: str) -> None:
    path = repo / "tenants" / f"{name}.yaml"
    path.write_text(path.read_text() + text)


def test_a_streamed_plan_is_the_plan_of_the_loaded_configuration(fleet, repo):
    loaded = Engine.load(repo).plan()
    assert sorted(_read(fleet)) == [t.name for t in fleet.tenants]
    fleet.reset_stats()
    streamed = Engine.load(repo, stream=True).plan()
    assert streamed == loaded
    assert sorted(_read(fleet)) == [t.name for t in fleet.tenants]  # each once


def test_a_streamed_drift_and_read_match_the_loaded_ones(fleet, repo):
    today = date(2026, 1, 1)
    assert Engine.load(repo, stream=True).drift(today=today) == Engine.load(repo).drift(today=today)
    assert Engine.load(repo, stream=True).read() == Engine.load(repo).read()


def test_a_bad_file_raises_the_loaders_error_and_no_later_tenant_is_contacted(fleet, repo):
    _spoil(repo, "tenant-020", "serverPort: not-a-port\n")
    with pytest.raises(ConfigError) as loaded:
        Engine.load(repo)
    assert not _read(fleet)
    with pytest.raises(ConfigError) as streamed:
        Engine.load(repo, stream=True).plan()
    assert str(streamed.value) == str(loaded.value)
    assert "tenant-020.yaml" in str(streamed.value)
    # Files load in name order: from the bad one on, nothing is even queued.
    assert all(name < "tenant-020" for name in _read(fleet)), _read(fleet)


def test_a_duplicate_found_across_files_raises_the_loaders_error(fleet, repo):
    copy = (repo / "tenants" / "tenant-005.yaml").read_text()
    (repo / "tenants" / "tenant-005-again.yaml").write_text(copy)
    with pytest.raises(ConfigError) as loaded:
        Engine.load(repo)
    with pytest.raises(ConfigError) as streamed:
        Engine.load(repo, stream=True).drift()
    assert str(streamed.value) == str(loaded.value)
    assert "tenant-005" in str(streamed.value)


def test_a_tenant_pattern_that_matches_nothing_raises_after_the_reads(fleet, repo):
    with pytest.raises(ReconcilerError, match=r"--tenant nobody-\*: no such tenant"):
        Engine.load(repo, tenants=["tenant-01*", "nobody-*"], stream=True).plan()
    assert set(_read(fleet)) <= {f"tenant-01{i}" for i in range(10)}


def test_the_selection_and_the_shard_apply_before_a_tenant_is_read(fleet, repo):
    engine = Engine.load(repo, tenants=["tenant-0[12]*"], shard="2/3", stream=True)
    plan = engine.plan()
    expected = Engine.load(repo, tenants=["tenant-0[12]*"], shard="2/3").tenants
    assert [t.tenant for t in plan.tenants] == [t.name for t in expected]
    assert 0 < len(expected) < 20 and plan.shard == "2/3"
    assert sorted(_read(fleet)) == [t.name for t in expected]


def test_progress_starts_with_the_final_count_and_hears_every_tenant(fleet, repo):
    heard: list[tuple[str, object]] = []

    class Record:
        def begin(self, phase: Phase, total: int) -> None:
            heard.append(("begin", (phase, total)))

        def step(self, tenant: str, word: str, failed: bool) -> None:
            heard.append(("step", tenant))

    Engine.load(repo, progress=Record(), stream=True).plan()
    assert heard[0] == ("begin", (Phase.READ, TENANTS))
    assert sorted(t for kind, t in heard[1:] if kind == "step") == [t.name for t in fleet.tenants]
    assert len(heard) == TENANTS + 1


def test_looking_at_the_tenants_first_loads_them_without_contacting_anyone(fleet, repo):
    engine = Engine.load(repo, stream=True)
    assert [t.name for t in engine.tenants] == [t.name for t in fleet.tenants]
    assert not _read(fleet)
    _spoil(repo, "tenant-030", "url: 7\n")
    with pytest.raises(ConfigError, match="tenant-030"):
        Engine.load(repo, stream=True).check_secrets()
    assert not _read(fleet)


def test_a_selection_source_brings_its_own_trust(repo):
    from reconciler.config.loader import ConfigLoad
    from reconciler.secrets import ResolvePolicy, SecretResolver

    source = SelectionLoad(ConfigLoad(repo))
    resolver = SecretResolver(ResolvePolicy.for_repository(repo, allow_commands=False))
    with pytest.raises(ValueError, match="own base"):
        Engine(source, resolver, trust=Trust())


@pytest.mark.parametrize("stream", [False, True])
def test_each_tenant_is_planned_as_soon_as_it_is_read(fleet, repo, monkeypatch, stream):
    """The plan of a tenant is worked out when its read ends, not after the last one."""
    import reconciler.engine.engine as engine_module

    planned_while_reading: list[int] = []
    plan_read = engine_module.plan_read

    def counting(spec, state, *, rotate=False):
        planned_while_reading.append(len([e for e in fleet.request_log if e.method == "GET"]))
        return plan_read(spec, state, rotate=rotate)

    monkeypatch.setattr(engine_module, "plan_read", counting)
    handed: list[int] = []
    make_plan = engine_module.make_plan

    def checking(tenants, live, **options):
        handed.append(len(options["planned"]))
        return make_plan(tenants, live, **options)

    monkeypatch.setattr(engine_module, "make_plan", checking)
    # Four at a time: the first tenants are answered before the last are asked.
    plan = Engine.load(repo, stream=stream, concurrency=4).plan()
    assert handed == [TENANTS]  # make_plan plans none of them again
    assert len(plan.tenants) == TENANTS
    assert min(planned_while_reading) <= 4  # the first while the others were still to be sent
