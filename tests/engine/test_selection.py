from pathlib import Path

import pytest
from helpers import basic, spec

from reconciler.client import ApiKeyCredentials, OAuthCredentials
from reconciler.engine.fleet import credentials_for
from reconciler.engine.selection import parse_shard, select_tenants
from reconciler.engine.selection import shards as shard_map
from reconciler.errors import ReconcilerError
from reconciler.model import OAuthAuth
from reconciler.secrets import ResolvePolicy, SecretRef, SecretResolver


def resolver(**env: str) -> SecretResolver:
    return SecretResolver(ResolvePolicy(base_dir=Path("."), env=env))


def test_api_key_credentials_are_resolved():
    creds = credentials_for(spec("a", basic()).auth, resolver(QLIK_API_KEY="k-1"))
    assert isinstance(creds, ApiKeyCredentials)
    assert creds.key.reveal() == "k-1"


def test_oauth_client_id_may_be_a_reference_or_a_literal():
    auth = OAuthAuth("${env:CLIENT_ID}", SecretRef("env", "CLIENT_SECRET"), "admin_classic")
    creds = credentials_for(auth, resolver(CLIENT_ID="id-1", CLIENT_SECRET="s-1"))
    assert isinstance(creds, OAuthCredentials)
    assert (creds.client_id, creds.client_secret.reveal(), creds.scope) == (
        "id-1",
        "s-1",
        "admin_classic",
    )
    literal = credentials_for(
        OAuthAuth("id-2", SecretRef("env", "CLIENT_SECRET")), resolver(CLIENT_SECRET="s")
    )
    assert literal.client_id == "id-2"


def test_shards_are_balanced_disjoint_and_complete():
    tenants = [spec(f"tenant-{i:04d}", basic()) for i in range(500)]
    shards = [select_tenants(tenants, shard=(i, 4)) for i in range(1, 5)]
    names = [t.name for shard in shards for t in shard]
    assert sorted(names) == sorted(t.name for t in tenants)
    assert len(names) == len(set(names))
    assert [len(s) for s in shards] == [125, 125, 125, 125]
    assert select_tenants(tenants, shard=(2, 4)) == shards[1]  # the same every run


@pytest.mark.parametrize(("count", "shards"), [(6, 3), (7, 3), (5, 5), (2, 4), (301, 8)])
def test_shards_differ_by_at_most_one_tenant(count, shards):
    tenants = [spec(f"t{i}", basic()) for i in range(count)]
    sizes = [len(select_tenants(tenants, shard=(i, shards))) for i in range(1, shards + 1)]
    assert sum(sizes) == count and max(sizes) - min(sizes) <= 1, sizes


def test_a_new_tenant_moves_few_others_between_shards():
    names = [f"tenant-{i:04d}" for i in range(300)]
    before = shard_map(names, 8)
    after = shard_map([*names, "tenant-new"], 8)
    moved = [name for name in names if before[name] != after[name]]
    assert len(moved) <= 7


def test_shards_are_cut_from_the_tenants_the_patterns_name():
    tenants = [spec(f"{kind}-{i}", basic()) for kind in ("eu", "us") for i in range(6)]
    eu = [select_tenants(tenants, ["eu-*"], shard=(i, 3)) for i in range(1, 4)]
    assert [len(s) for s in eu] == [2, 2, 2]
    assert all(t.name.startswith("eu-") for s in eu for t in s)


def test_tenant_patterns_select_by_name_or_glob():
    tenants = [spec(n, basic()) for n in ("acme", "acme-eu", "beta")]
    assert [t.name for t in select_tenants(tenants, ["acme*"])] == ["acme", "acme-eu"]
    with pytest.raises(ReconcilerError, match="no such tenant"):
        select_tenants(tenants, ["gamma"])


@pytest.mark.parametrize("text", ["0/4", "5/4", "1", "a/b", "1/0"])
def test_bad_shard_is_refused(text):
    with pytest.raises(ReconcilerError, match="--shard"):
        parse_shard(text)
