"""Merkle log hashing and proofs as defined by RFC 6962 / RFC 9162 (SHA-256).

Pure standard library. Every hash is 32 raw bytes. Sizes and indexes count leaves from 0.

- ``leaf_hash(data) = SHA-256(0x00 || data)``, ``node_hash(left, right) = SHA-256(0x01 || left || right)``.
- The root of the empty tree is ``SHA-256(b"")``.
- Proofs are lists of hashes ordered from the leaf towards the root, exactly as RFC 9162 §2.1.3.1 ``PATH``
  and §2.1.4.1 ``PROOF`` produce them, and as Certificate Transparency / transparency-dev verifiers read them.

Two ways to keep a growing log without rehashing it:

- :class:`CompactRange` keeps only the O(log n) perfect-subtree roots of the frontier: append in amortized
  O(1), root in O(log n); its state (size + hashes) is small enough to store next to the latest head.
- :class:`MerkleTree` keeps every perfect-subtree hash in one contiguous ``bytearray`` per level (about
  64 bytes per leaf in all), so it answers the root at any earlier size, inclusion and consistency proofs in
  O(log² n) hash look-ups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

SubtreeHash = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data): the RFC 6962 hash of one leaf's bytes."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right): the RFC 6962 hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 Merkle tree hash (MTH) of the given leaf hashes; the empty tree gives SHA-256(b"").

    Runs in O(n) node hashes. Carrying an unpaired last node up a level unchanged is equivalent to RFC 6962's
    split at the largest power of two, and needs no recursion.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _sequence_subtree_hash(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    def subtree(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(leaf_hashes[start:end])

    return subtree


def _check_index(index: int, size: int, available: int) -> None:
    if size > available:
        raise ValueError(f"tree size {size} exceeds the {available} leaves available")
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")


def _inclusion_path(index: int, start: int, end: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[start:end]) with index relative to start."""
    path: list[bytes] = []
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
            index -= k
    path.reverse()
    return path


def _consistency_path(first: int, start: int, end: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(first, D[start:end], true) for 0 < first < end - start."""
    path: list[bytes] = []
    complete_subtree = True
    while first != end - start:
        k = _largest_power_of_two_below(end - start)
        if first <= k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
            first -= k
            complete_subtree = False
    if not complete_subtree:
        path.append(subtree(start, end))
    path.reverse()
    return path


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the RFC 9162 inclusion proof of leaf ``index`` in the tree of the first ``size`` leaf hashes.

    O(size) hashing; use :meth:`MerkleTree.inclusion_proof` for large logs. Raises ValueError when the index
    is outside the tree or the tree is larger than the given leaves.
    """
    _check_index(index, size, len(leaf_hashes))
    return _inclusion_path(index, 0, size, _sequence_subtree_hash(leaf_hashes))


def consistency_proof(first: int, second: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the RFC 9162 consistency proof between the trees of the first ``first`` and ``second`` leaves.

    The proof is empty when ``first`` is 0 or equals ``second`` (nothing to prove). Raises ValueError when
    ``first > second`` or ``second`` exceeds the given leaves.
    """
    if not 0 <= first <= second:
        raise ValueError(f"consistency needs 0 <= first <= second, got {first} and {second}")
    if second > len(leaf_hashes):
        raise ValueError(f"tree size {second} exceeds the {len(leaf_hashes)} leaves available")
    if first in (0, second):
        return []
    return _consistency_path(first, 0, second, _sequence_subtree_hash(leaf_hashes))


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """Return the root implied by an inclusion proof (RFC 9162 §2.1.3.2), or None if the proof is malformed."""
    if not 0 <= index < size or len(leaf) != HASH_SIZE:
        return None
    if any(len(element) != HASH_SIZE for element in proof):
        return None
    fn, sn = index, size - 1
    result = leaf
    for element in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = node_hash(element, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return result


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Return True only when ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``."""
    return root_from_inclusion_proof(leaf, index, size, proof) == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return True only when ``proof`` shows the tree ``(first, first_root)`` is a prefix of ``(second, second_root)``.

    RFC 9162 §2.1.4.2, with the two cases it leaves to the caller: equal sizes need equal roots and an empty
    proof; an empty first tree is consistent with any tree and needs an empty proof.
    """
    decided = _consistency_edge_case(first, second, first_root, second_root, proof)
    if decided is not None:
        return decided
    return _consistency_roots(first, second, first_root, proof) == (first_root, second_root)


def _consistency_edge_case(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool | None:
    """The answer for malformed input and the cases RFC 9162 leaves to the caller; None for the others."""
    if not 0 <= first <= second:
        return False
    if any(len(element) != HASH_SIZE for element in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    return None


def _consistency_roots(
    first: int, second: int, first_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes] | None:
    """RFC 9162 §2.1.4.2's walk (0 < first < second, proof not empty): the (first, second) roots the proof
    yields, or None when the proof's length does not fit the two sizes."""
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first_result = second_result = path[0]
    for element in path[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            first_result = node_hash(element, first_result)
            second_result = node_hash(element, second_result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            second_result = node_hash(second_result, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return first_result, second_result


class CompactRange:
    """The frontier of a log: the roots of the perfect subtrees covering leaves [0, size).

    ``hashes`` lists those roots from the largest (leftmost) subtree to the smallest, one per set bit of
    ``size``. Appending costs amortized O(1) node hashes; :meth:`root` costs at most log2(size) node hashes.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        stored = list(hashes)
        if size < 0 or len(stored) != size.bit_count():
            raise ValueError(
                f"a compact range of size {size} holds {size.bit_count()} hashes, got {len(stored)}"
            )
        for value in stored:
            _check_hash(value, "compact range hash")
        self._size = size
        self._hashes = stored

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Perfect-subtree roots, largest first: with ``size`` this is the whole state to persist."""
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (already ``leaf_hash``-ed) to the right edge of the log."""
        _check_hash(leaf, "leaf hash")
        value = leaf
        size = self._size
        while size & 1:
            value = node_hash(self._hashes.pop(), value)
            size >>= 1
        self._hashes.append(value)
        self._size += 1

    def root(self) -> bytes:
        """Return the RFC 6962 root of the covered leaves (SHA-256(b"") when empty)."""
        if not self._hashes:
            return EMPTY_ROOT
        value = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            value = node_hash(left, value)
        return value

    def copy(self) -> CompactRange:
        """Return an independent copy (appending to one leaves the other unchanged)."""
        return CompactRange(self._size, self._hashes)


class MerkleTree:
    """An in-memory log of leaf hashes that keeps every perfect-subtree hash for fast proofs.

    Level ``h`` stores, contiguously, the hash of each complete aligned block of ``2**h`` leaves. Memory is
    about 64 bytes per leaf (64 MB at 1M leaves). Roots at any earlier size and all proofs take O(log² n)
    look-ups and O(log n) node hashes; nothing is rehashed from the leaves.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        for value in leaf_hashes:
            self.append(value)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (already ``leaf_hash``-ed)."""
        _check_hash(leaf, "leaf hash")
        self._levels[0] += leaf
        level = 0
        while len(self._levels[level]) // HASH_SIZE % 2 == 0:
            stored = self._levels[level]
            parent = node_hash(bytes(stored[-2 * HASH_SIZE : -HASH_SIZE]), bytes(stored[-HASH_SIZE:]))
            level += 1
            if level == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level] += parent

    def leaf_hash(self, index: int) -> bytes:
        """Return the stored hash of leaf ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} is outside a log of size {self.size}")
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def subtree_hash(self, start: int, end: int) -> bytes:
        """Return MTH(D[start:end]) for a range that occurs in the RFC 6962 split of some tree of this log.

        Such a range starts at a multiple of the largest power of two not above ``end - start``; any
        ``start == 0`` range qualifies.
        """
        if not 0 <= start < end <= self.size:
            raise ValueError(f"range [{start}, {end}) is outside a log of size {self.size}")
        right: list[bytes] = []
        while True:
            width = end - start
            height = width.bit_length() - 1
            if width == 1 << height:
                if start % width:
                    raise ValueError(f"range [{start}, {end}) is not aligned to a subtree")
                position = (start >> height) * HASH_SIZE
                value = bytes(self._levels[height][position : position + HASH_SIZE])
                break
            k = 1 << height
            if start % k:
                raise ValueError(f"range [{start}, {end}) is not aligned to a subtree")
            right.append(self.subtree_hash(start, start + k))
            start += k
        for left in reversed(right):
            value = node_hash(left, value)
        return value

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the tree of the first ``size`` leaves (default: all of them)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} exceeds the log size {self.size}")
        return EMPTY_ROOT if size == 0 else self.subtree_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves."""
        size = self.size if size is None else size
        _check_index(index, size, self.size)
        return _inclusion_path(index, 0, size, self.subtree_hash)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """Return the consistency proof between the trees of the first ``first`` and ``second`` leaves."""
        second = self.size if second is None else second
        if not 0 <= first <= second <= self.size:
            raise ValueError(f"consistency needs 0 <= {first} <= {second} <= {self.size}")
        if first in (0, second):
            return []
        return _consistency_path(first, 0, second, self.subtree_hash)
