"""The chain's hashing and the RFC 9162 Merkle tree, against an independent reference."""

from __future__ import annotations

import hashlib

import pytest

from processors.audit_chain import (
    EMPTY_ROOT, MerkleFrontier, inclusion_proof, leaf_hash, merkle_root, verify_inclusion,
)


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 section 2.1.1, written straight from its recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1, from its recursive definition."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return reference_path(m, leaves[:k]) + [reference_root(leaves[k:])]
    return reference_path(m - k, leaves[k:]) + [reference_root(leaves[:k])]


LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(70)]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 70])
def test_frontier_root_matches_reference(size: int) -> None:
    frontier = MerkleFrontier()
    for leaf in LEAVES[:size]:
        frontier.append(leaf)
    assert frontier.size == size
    assert frontier.root() == reference_root(LEAVES[:size])
    assert len(frontier.peaks) == bin(size).count("1")


def test_empty_root_is_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 70])
def test_inclusion_proofs_match_reference_and_verify(size: int) -> None:
    leaves = LEAVES[:size]
    root = merkle_root(leaves)
    for index in range(size):
        proof = inclusion_proof(index, leaves)
        assert proof == reference_path(index, leaves)
        assert verify_inclusion(index, size, leaves[index], proof, root)


def test_inclusion_rejects_wrong_leaf_index_or_root() -> None:
    leaves = LEAVES[:13]
    root = merkle_root(leaves)
    proof = inclusion_proof(6, leaves)
    assert not verify_inclusion(6, 13, leaves[7], proof, root)
    assert not verify_inclusion(7, 13, leaves[6], proof, root)
    assert not verify_inclusion(6, 13, leaves[6], proof, merkle_root(leaves[:12]))
    assert not verify_inclusion(13, 13, leaves[6], proof, root)


def test_proof_for_missing_leaf_raises() -> None:
    with pytest.raises(IndexError, match="outside a tree of 3"):
        inclusion_proof(3, LEAVES[:3])
