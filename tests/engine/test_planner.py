from dataclasses import replace

from helpers import basic, live_basic, live_m365, live_none, m365, spec
from hypothesis import given
from hypothesis import strategies as st

from reconciler.client.live import normalize
from reconciler.engine.planner import desired_fingerprint, make_plan, plan_read, plan_tenant
from reconciler.engine.trust import SecretMove, Trust
from reconciler.model import Action, FieldChange, Provider, ReadFailure


def test_identical_config_is_noop():
    result = plan_tenant(spec("acme", basic()), live_basic())
    assert result.action is Action.NOOP
    assert result.changes == ()


def test_missing_tenant_config_is_created_with_sensitive_secret():
    result = plan_tenant(spec("acme", basic()), live_none())
    assert result.action is Action.CREATE
    assert result.changes[0] == FieldChange("provider", None, "BasicAuth")
    assert FieldChange("serverPort", None, 587) in result.changes
    assert result.changes[-1] == FieldChange("password", None, None, sensitive=True)


def test_changed_field_is_an_update_without_secret():
    result = plan_tenant(spec("acme", basic(serverPort=465)), live_basic())
    assert result.action is Action.UPDATE
    assert result.changes == (FieldChange("serverPort", 587, 465),)


def test_field_removed_from_desired_is_shown_as_removed():
    desired = basic()
    desired = type(desired).of(
        Provider.BASIC_AUTH, {k: v for k, v in desired.fields if k != "senderName"}
    )
    result = plan_tenant(spec("acme", desired), live_basic())
    assert result.changes == (FieldChange("senderName", "Qlik", None),)


def test_missing_live_password_is_a_change():
    result = plan_tenant(spec("acme", basic()), live_basic(password_exists=False))
    assert result.action is Action.UPDATE
    assert result.changes == (FieldChange("password", None, None, sensitive=True),)


def test_rotate_resends_secret_of_unchanged_tenant():
    result = plan_tenant(spec("acme", basic()), live_basic(), rotate=True)
    assert result.action is Action.UPDATE
    assert result.changes == (FieldChange("password", None, None, sensitive=True),)


def test_provider_switch_is_a_replacement():
    result = plan_tenant(spec("acme", m365()), live_basic())
    assert result.action is Action.REPLACE
    assert result.provider_before is Provider.BASIC_AUTH
    assert result.provider_after is Provider.MICROSOFT365
    assert result.changes[0] == FieldChange("provider", "BasicAuth", "Microsoft365")
    assert FieldChange("serverAddress", "smtp.example.com", None) in result.changes
    assert result.changes[-1] == FieldChange("clientSecret", None, None, sensitive=True)


def test_absent_deletes_existing_config():
    result = plan_tenant(spec("acme", None), live_m365())
    assert result.action is Action.DELETE
    assert result.changes[0] == FieldChange("provider", "Microsoft365", None)


def test_absent_with_no_config_is_noop():
    assert plan_tenant(spec("acme", None), live_none()).action is Action.NOOP


def test_legacy_config_is_migrated_by_an_update():
    legacy = normalize(
        {**{k: v for k, v in basic().fields if k != "senderName"}, "passwordExists": True}
    )
    desired = type(basic()).of(
        Provider.BASIC_AUTH, {k: v for k, v in basic().fields if k != "senderName"}
    )
    result = plan_tenant(spec("acme", desired), legacy)
    assert result.action is Action.UPDATE
    assert result.changes == (FieldChange("provider", None, "BasicAuth"),)


def test_plan_is_sorted_and_keeps_read_errors():
    tenants = [spec("zeta", basic()), spec("alpha", basic())]
    result = make_plan(tenants, {"zeta": live_basic(), "alpha": ReadFailure("could not reach it")})
    assert [t.tenant for t in result.tenants] == ["alpha", "zeta"]
    assert result.errors[0].error == "could not reach it"
    assert not result.has_changes


def test_counts_by_action():
    tenants = [
        spec("a", basic()),
        spec("b", basic(serverPort=25)),
        spec("c", None),
        spec("d", basic()),
    ]
    live = {"a": live_none(), "b": live_basic(), "c": live_basic(), "d": live_basic()}
    result = make_plan(tenants, live)
    assert [
        result.count(a) for a in (Action.CREATE, Action.UPDATE, Action.DELETE, Action.NOOP)
    ] == [1, 1, 1, 1]
    assert result.has_changes


def test_plan_records_fingerprints():
    live = live_basic()
    result = plan_tenant(spec("acme", basic()), live)
    assert result.live_fingerprint == live.fingerprint
    assert result.desired_fingerprint == desired_fingerprint(spec("acme", basic()))
    assert desired_fingerprint(spec("acme", basic(serverPort=1))) != result.desired_fingerprint


def test_tenants_planned_as_read_give_the_same_plan():
    tenants = [spec("a", basic()), spec("b", basic(serverPort=25)), spec("c", None)]
    live = {"a": live_none(), "b": live_basic(), "c": ReadFailure("timed out")}
    planned = {t.name: plan_read(t, live[t.name], rotate=t.name == "b") for t in tenants}
    together = make_plan(tenants, live, rotate={"b"})
    assert make_plan(tenants, live, rotate={"b"}, planned=planned) == together
    assert make_plan(tenants, live, rotate={"b"}, planned={"a": planned["a"]}) == together


def test_a_tenant_planned_as_read_is_not_planned_again():
    tenants = [spec("a", basic())]
    marked = replace(plan_read(tenants[0], live_basic()), url="https://planned.example.com")
    result = make_plan(tenants, {"a": live_basic()}, planned={"a": marked})
    assert result.tenants[0].url == "https://planned.example.com"


def test_secret_moves_and_unread_tenants_apply_to_tenants_planned_as_read():
    tenants = [spec("a", basic()), spec("b", basic())]
    live = {"a": live_basic(), "b": live_basic()}
    planned = {t.name: plan_read(t, live[t.name]) for t in tenants}
    move = SecretMove(before="${env:OLD}", after="${env:NEW}", sent_to="acme")
    trust = Trust(not_read={"b": "changed by the pull request"}, secret_moves={"a": move})
    result = make_plan(tenants, live, trust=trust, planned=planned)
    assert result == make_plan(tenants, live, trust=trust)
    first, second = result.tenants
    assert first.action is Action.UPDATE and first.changes[-1].after_ref == "${env:NEW}"
    assert second.not_read == "changed by the pull request"


def test_a_fingerprint_is_the_digest_of_the_canonical_json_it_always_was() -> None:
    """Saved plans carry fingerprints: their text must not change with the encoder."""
    import hashlib
    import json

    from reconciler.model import fingerprint

    for document in (
        {"url": "https://a.example", "email": None},
        {"b": [1, 2.5, None, True], "a": {"z": "Zoë", "y": "\u2028"}},
        {"email": {"fields": {"senderName": "Ünïcode ✓", "serverPort": 587}}},
    ):
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
        assert fingerprint(document) == "sha256:" + digest


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too, which orjson refuses
    st.text(),  # controls, DEL, lone surrogates, beyond ASCII
    st.text(alphabet=st.characters(max_codepoint=0x7F)),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(_DOCUMENTS)
def test_a_fingerprint_is_the_digest_of_the_json_text_whatever_the_strings_hold(document) -> None:
    """orjson writes the canonical text where it writes json's (`fingerprint`)."""
    import hashlib
    import json

    from reconciler.model import fingerprint

    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert fingerprint(document) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
