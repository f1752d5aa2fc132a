"""`paths.is_inside`: a prefix test that must say what `os.path.commonpath` says
for real paths, since it confines the files secrets are read from."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.paths import is_inside

# Components that make near misses likely: shared prefixes, dots, a separator-less root.
_PART = st.sampled_from(["a", "ab", "a.b", "b", "..a", "a-", "secrets", "é", "a b"])
_REAL = st.lists(_PART, max_size=4).map(lambda parts: "/" + "/".join(parts))


def _by_commonpath(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


@given(path=_REAL, root=_REAL)
def test_is_inside_agrees_with_commonpath(path: str, root: str) -> None:
    assert is_inside(path, root) == _by_commonpath(path, root)


@pytest.mark.parametrize(
    ("path", "root", "inside"),
    [
        ("/repo", "/repo", True),
        ("/repo/.secrets/key", "/repo", True),
        ("/repository/key", "/repo", False),  # a longer name is not below
        ("/repo-other", "/repo", False),
        ("/anything", "/", True),
        ("/", "/repo", False),
    ],
)
def test_is_inside_on_the_shapes_that_matter(path: str, root: str, inside: bool) -> None:
    assert is_inside(path, root) is inside
    assert _by_commonpath(path, root) is inside
