"""Ledger API under /api/v1/ledger/ (names in DESIGN.md).

Public: signed heads, head history, counts, inclusion proofs and consistency proofs (hashes only: they
reveal nothing about an entry to someone who does not already hold its bytes). Auditors and staff: entry
bytes and the full export (the leaves carry no personal data, but amounts per provider account are the
providers' business). Buyers get their own entries inside their receipts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.ledger import selectors
from exchange.ledger.models import LogLeaf, TreeHead
from exchange.ledger.services import ledger_origin
from marketplace.core.api import ApiError


class IsAuditorOrStaff(BasePermission):
    """Signed-in users with ``is_auditor`` or ``is_staff``."""

    message = "Only auditors and staff may read ledger entries."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (getattr(user, "is_auditor", False) or user.is_staff))


class TreeHeadSerializer(serializers.ModelSerializer):
    # DRF moves declared fields off the class, so this does not shadow Serializer.root at run time.
    root = serializers.SerializerMethodField()  # type: ignore[assignment]

    class Meta:
        model = TreeHead
        fields = ["id", "size", "root", "checkpoint", "key_id", "created_at"]

    def get_root(self, head: TreeHead) -> str:
        return bytes(head.root).hex()


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ApiError(f"The query parameter {name!r} is required.", "missing_parameter")
        return default
    if not raw.isascii() or not raw.isdigit():
        raise ApiError(f"{name!r} must be a non-negative integer, got {raw!r}.", "bad_parameter")
    return int(raw)


def _latest_size() -> int:
    head = selectors.latest_head()
    if head is None:
        raise ApiError("No tree head has been published yet.", "no_tree_head", 404)
    return head.size


class LedgerHead(APIView):
    """The latest signed tree head (C2SP checkpoint text, size, hex root)."""

    permission_classes = [AllowAny]

    @extend_schema(responses=TreeHeadSerializer)
    def get(self, request: Request) -> Response:
        head = selectors.latest_head()
        if head is None:
            raise ApiError("No tree head has been published yet.", "no_tree_head", 404)
        return Response(TreeHeadSerializer(head).data)


class LedgerHeads(generics.ListAPIView):
    """Every signed tree head in publication order (oldest first), paginated."""

    permission_classes = [AllowAny]
    serializer_class = TreeHeadSerializer
    queryset = TreeHead.objects.order_by("id")


class LedgerEntry(APIView):
    """One leaf: its canonical bytes (base64) and leaf hash. Auditors and staff."""

    permission_classes = [IsAuditorOrStaff]

    @extend_schema(
        responses=inline_serializer(
            "LedgerEntry",
            {
                "index": serializers.IntegerField(),
                "entry_type": serializers.CharField(),
                "leaf": serializers.CharField(),
                "leaf_hash": serializers.CharField(),
            },
        )
    )
    def get(self, request: Request, index: int) -> Response:
        leaf = LogLeaf.objects.filter(index=index, index__lt=selectors.log_size()).first()
        if leaf is None:
            raise ApiError(f"There is no ledger entry {index}.", "not_found", 404)
        return Response(
            {
                "index": leaf.index,
                "entry_type": leaf.entry_type,
                "leaf": base64.b64encode(bytes(leaf.canonical)).decode("ascii"),
                "leaf_hash": bytes(leaf.leaf_hash).hex(),
            }
        )


class LedgerProof(APIView):
    """The RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries (default: the latest
    signed head's size, whose checkpoint is returned with it)."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("size", int, required=False)],
        responses=inline_serializer(
            "LedgerInclusionProof",
            {
                "index": serializers.IntegerField(),
                "size": serializers.IntegerField(),
                "leaf_hash": serializers.CharField(help_text="hex"),
                "proof": serializers.ListField(child=serializers.CharField(), help_text="hex node hashes"),
                "root": serializers.CharField(help_text="hex"),
                "checkpoint": serializers.CharField(allow_null=True),
            },
        ),
    )
    def get(self, request: Request, index: int) -> Response:
        size = _int_param(request, "size", None if request.query_params.get("size") else _latest_size())
        tree = selectors.log_tree()
        if not 0 <= index < size <= tree.size:
            raise ApiError(
                f"Entry {index} is not in a tree of {size} entries (the log holds {tree.size}).", "bad_size"
            )
        head = TreeHead.objects.filter(size=size).order_by("-id").first()
        return Response(
            {
                "index": index,
                "size": size,
                "leaf_hash": tree.leaf_hash(index).hex(),
                "proof": [value.hex() for value in tree.inclusion_proof(index, size)],
                "root": tree.root(size).hex(),
                "checkpoint": head.checkpoint if head else None,
            }
        )


class LedgerConsistency(APIView):
    """The RFC 9162 consistency proof between the trees of ``first`` and ``second`` entries (default second:
    the latest signed head's size)."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter("first", int, required=True),
            OpenApiParameter("second", int, required=False),
        ],
        responses=inline_serializer(
            "LedgerConsistencyProof",
            {
                "first": serializers.IntegerField(),
                "second": serializers.IntegerField(),
                "first_root": serializers.CharField(help_text="hex"),
                "second_root": serializers.CharField(help_text="hex"),
                "proof": serializers.ListField(child=serializers.CharField(), help_text="hex node hashes"),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        first = _int_param(request, "first")
        second = _int_param(request, "second", None if request.query_params.get("second") else _latest_size())
        tree = selectors.log_tree()
        if not first <= second <= tree.size:
            raise ApiError(
                f"Consistency needs first <= second <= {tree.size}, got {first} and {second}.", "bad_size"
            )
        return Response(
            {
                "first": first,
                "second": second,
                "first_root": tree.root(first).hex(),
                "second_root": tree.root(second).hex(),
                "proof": [value.hex() for value in tree.consistency_proof(first, second)],
            }
        )


def _export_stream(size: int, checkpoints: list[str]) -> Iterator[bytes]:
    yield b'{"origin":' + json.dumps(ledger_origin()).encode() + b',"checkpoints":'
    yield json.dumps(checkpoints).encode() + b',"leaves":['
    first = True
    for chunk in selectors.leaf_export_chunks(size):
        encoded = ",".join('"' + base64.b64encode(leaf).decode("ascii") + '"' for leaf in chunk)
        yield (encoded if first else "," + encoded).encode()
        first = False
    yield b"]}"


class LedgerExport(APIView):
    """The full log for ``python -m exchange.ledger.verify export`` (docs/ledger-format.md), streamed.
    Auditors and staff."""

    permission_classes = [IsAuditorOrStaff]

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> StreamingHttpResponse:
        size = selectors.log_size()
        checkpoints = list(
            TreeHead.objects.filter(size__lte=size).order_by("id").values_list("checkpoint", flat=True)
        )
        response = StreamingHttpResponse(_export_stream(size, checkpoints), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="synthex-ledger.json"'
        return response


class LedgerCounts(APIView):
    """Public counts: entries, accounts, transactions, events, signed heads."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(selectors.counts())
