"""RFC 6962 / RFC 9162 Merkle hashing and proofs, checked against the transparency-dev reference vectors,
against pymerkle as an independent implementation, and by property tests."""

import hashlib
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from exchange.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# Reference vectors of transparency-dev/merkle (proof/verify_test.go), the successor of the Certificate
# Transparency and Trillian RFC 6962 test data. Leaf numbers there are 1-based; here they are 0-based.
LEAVES = [
    bytes.fromhex(value)
    for value in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(value)
    for value in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
INCLUSION_VECTORS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
HASHES = [leaf_hash(value) for value in LEAVES]


def _hashes(count: int, seed: int = 0) -> list[bytes]:
    generator = random.Random(seed)
    return [leaf_hash(generator.randbytes(generator.randrange(0, 40))) for _ in range(count)]


def test_leaf_and_node_hash_use_the_rfc_6962_prefixes():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()


def test_empty_tree_root_is_sha256_of_nothing():
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert MerkleTree().root() == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_reference_vectors(size):
    assert root_from_leaf_hashes(HASHES[:size]) == ROOTS[size - 1]
    assert MerkleTree(HASHES).root(size) == ROOTS[size - 1]
    compact = CompactRange()
    for value in HASHES[:size]:
        compact.append(value)
    assert compact.root() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_VECTORS)
def test_inclusion_proofs_match_reference_vectors(index, size, expected):
    proof = [bytes.fromhex(value) for value in expected]
    assert inclusion_proof(index, size, HASHES) == proof
    assert MerkleTree(HASHES).inclusion_proof(index, size) == proof
    assert verify_inclusion(HASHES[index], index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "expected"), CONSISTENCY_VECTORS)
def test_consistency_proofs_match_reference_vectors(first, second, expected):
    proof = [bytes.fromhex(value) for value in expected]
    assert consistency_proof(first, second, HASHES) == proof
    assert MerkleTree(HASHES).consistency_proof(first, second) == proof
    assert verify_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], proof)


def _corrupted_inclusion(index, size, proof, root, leaf):
    """The corruptions transparency-dev applies to each reference inclusion proof."""
    probes = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]),
        (index, size, root, leaf, [root, *proof]),
    ]
    for position in range(len(proof)):
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 8]) + flipped[position][1:]
        probes.append((index, size, root, leaf, flipped))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [SOME_HASH, proof[0], *proof[1:]]))
    return probes


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_VECTORS)
def test_corrupted_reference_inclusion_proofs_fail(index, size, expected):
    proof = [bytes.fromhex(value) for value in expected]
    for probe in _corrupted_inclusion(index, size, proof, ROOTS[size - 1], HASHES[index]):
        assert not verify_inclusion(probe[3], probe[0], probe[1], probe[4], probe[2]), probe[:2]


def _corrupted_consistency(first, second, first_root, second_root, proof):
    """The corruptions transparency-dev applies to each reference consistency proof."""
    probes = [
        (first - 1, second, first_root, second_root, proof),
        (first + 1, second, first_root, second_root, proof),
        (first ^ 2, second, first_root, second_root, proof),
        (first, second * 2, first_root, second_root, proof),
        (first, second // 2, first_root, second_root, proof),
        (first, second, b"WrongRoot", second_root, proof),
        (first, second, first_root, b"WrongRoot", proof),
        (first, second, second_root, first_root, proof),
        (first, second, first_root, second_root, []),
        (first, second, first_root, second_root, [*proof, b""]),
        (first, second, first_root, second_root, [*proof, first_root]),
        (first, second, first_root, second_root, [*proof, second_root]),
        (first, second, first_root, second_root, [b"", *proof]),
        (first, second, first_root, second_root, [first_root, *proof]),
        (first, second, first_root, second_root, [second_root, *proof]),
        (first, second, first_root, second_root, [proof[0], *proof]),
        (first, second, first_root, second_root, proof[:-1]),
    ]
    for position in range(len(proof)):
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 16]) + flipped[position][1:]
        probes.append((first, second, first_root, second_root, flipped))
    return probes


@pytest.mark.parametrize(
    ("first", "second", "expected"), [vector for vector in CONSISTENCY_VECTORS if vector[2]]
)
def test_corrupted_reference_consistency_proofs_fail(first, second, expected):
    proof = [bytes.fromhex(value) for value in expected]
    for probe in _corrupted_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], proof):
        assert not verify_consistency(*probe), probe[:2]


@pytest.mark.parametrize(
    ("first", "second", "first_root", "second_root", "proof", "expected"),
    [
        (0, 0, b"r1", b"r2", [], False),
        (1, 1, b"r1", b"r2", [], False),
        (0, 0, b"r1", b"r1", [], True),
        (0, 1, b"r1", b"r2", [], True),
        (1, 1, b"r2", b"r2", [], True),
        (1, 0, b"r1", b"r2", [], False),
        (2, 1, b"r1", b"r2", [], False),
        (1, 2, b"r1", b"r2", [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases_follow_the_reference(first, second, first_root, second_root, proof, expected):
    assert verify_consistency(first, second, first_root, second_root, proof) is expected


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_with_bad_sizes_or_hash_lengths_fails(index, size):
    assert not verify_inclusion(SOME_HASH, index, size, [], b"")
    assert not verify_inclusion(b"", index, size, [], EMPTY_ROOT)
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_single_entry_tree_has_empty_proof_and_root_equal_to_leaf():
    value = leaf_hash(b"data")
    assert verify_inclusion(value, 0, 1, [], value)
    assert not verify_inclusion(value, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inclusion_proof(3, 3, HASHES), "leaf index 3 is outside a tree of size 3"),
        (lambda: inclusion_proof(0, 9, HASHES), "tree size 9 exceeds the 8 leaves available"),
        (lambda: consistency_proof(5, 4, HASHES), "consistency needs 0 <= first <= second, got 5 and 4"),
        (lambda: MerkleTree(HASHES).root(9), "tree size 9 exceeds the log size 8"),
        (lambda: MerkleTree(HASHES).subtree_hash(1, 3), r"range \[1, 3\) is not aligned to a subtree"),
        (lambda: CompactRange(3, [SOME_HASH]), "a compact range of size 3 holds 2 hashes, got 1"),
        (lambda: MerkleTree().append(b"short"), "leaf hash must be 32 bytes, got 5"),
    ],
)
def test_bad_arguments_raise_plain_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("size", [*range(0, 70), 127, 128, 129, 255, 256, 257, 1000, 1023, 1025])
def test_root_equals_pymerkle_for_many_sizes(size):
    hashes_and_data = random.Random(size)
    entries = [hashes_and_data.randbytes(hashes_and_data.randrange(0, 50)) for _ in range(size)]
    reference = InmemoryTree(algorithm="sha256")
    for entry in entries:
        reference.append_entry(entry)
    hashes = [leaf_hash(entry) for entry in entries]
    expected = reference.get_root() if size else EMPTY_ROOT
    assert root_from_leaf_hashes(hashes) == expected
    assert MerkleTree(hashes).root() == expected
    compact = CompactRange()
    for value in hashes:
        compact.append(value)
    assert compact.root() == expected
    if size:
        assert reference.get_leaf(size) == hashes[-1]


def test_merkle_tree_earlier_roots_match_pymerkle():
    entries = [index.to_bytes(4, "big") for index in range(300)]
    reference = InmemoryTree(algorithm="sha256")
    for entry in entries:
        reference.append_entry(entry)
    tree = MerkleTree(leaf_hash(entry) for entry in entries)
    for size in range(1, 301):
        assert tree.root(size) == reference.get_root(size)


def test_compact_range_state_round_trips_and_copies_are_independent():
    compact = CompactRange()
    for value in HASHES[:7]:
        compact.append(value)
    assert compact.size == 7
    assert len(compact.hashes) == 3
    restored = CompactRange(compact.size, compact.hashes)
    copy = restored.copy()
    restored.append(HASHES[7])
    assert restored.root() == ROOTS[7]
    assert copy.root() == ROOTS[6]
    assert copy.size == 7


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=200), data=st.data())
def test_every_inclusion_proof_verifies_and_tampering_fails(size, data):
    hashes = _hashes(size, seed=size)
    tree = MerkleTree(hashes)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    root = tree.root()
    proof = tree.inclusion_proof(index)
    assert proof == inclusion_proof(index, size, hashes)
    assert verify_inclusion(hashes[index], index, size, proof, root)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=255))
        tampered = list(proof)
        tampered[position] = bytes([tampered[position][0] ^ (1 << (bit % 8))]) + tampered[position][1:]
        assert not verify_inclusion(hashes[index], index, size, tampered, root)
    other = data.draw(st.integers(min_value=0, max_value=size - 1))
    if hashes[other] != hashes[index]:
        assert not verify_inclusion(hashes[other], index, size, proof, root)


@settings(max_examples=60, deadline=None)
@given(second=st.integers(min_value=1, max_value=200), data=st.data())
def test_every_consistency_proof_verifies_and_tampering_fails(second, data):
    hashes = _hashes(second, seed=second + 1000)
    tree = MerkleTree(hashes)
    first = data.draw(st.integers(min_value=1, max_value=second))
    proof = tree.consistency_proof(first, second)
    assert proof == consistency_proof(first, second, hashes)
    assert verify_consistency(first, second, tree.root(first), tree.root(second), proof)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        tampered = list(proof)
        tampered[position] = bytes([tampered[position][0] ^ 1]) + tampered[position][1:]
        assert not verify_consistency(first, second, tree.root(first), tree.root(second), tampered)
    if first < second:
        forked = [*hashes[: first - 1], leaf_hash(b"forked"), *hashes[first:]]
        forked_root = root_from_leaf_hashes(forked[:first])
        assert not verify_consistency(first, second, forked_root, tree.root(second), proof)


def test_proof_at_one_million_leaves_is_small_and_fast():
    size = 1_000_000
    tree = MerkleTree(hashlib.sha256(index.to_bytes(8, "big")).digest() for index in range(size))
    root = tree.root()
    index = 654_321
    proof = tree.inclusion_proof(index)
    assert sum(len(element) for element in proof) == 20 * 32
    leaf = tree.leaf_hash(index)
    started = time.perf_counter()
    for _ in range(100):
        assert verify_inclusion(leaf, index, size, proof, root)
    assert (time.perf_counter() - started) / 100 < 0.001
