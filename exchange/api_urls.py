"""REST routes of the exchange (ledger, and orders and delivery as they land), included under /api/v1/."""

from django.urls import path

from exchange.ledger import api as ledger_api

urlpatterns = [
    path("ledger/head/", ledger_api.LedgerHead.as_view(), name="api-ledger-head"),
    path("ledger/heads/", ledger_api.LedgerHeads.as_view(), name="api-ledger-heads"),
    path("ledger/counts/", ledger_api.LedgerCounts.as_view(), name="api-ledger-counts"),
    path("ledger/entries/<int:index>/", ledger_api.LedgerEntry.as_view(), name="api-ledger-entry"),
    path("ledger/entries/<int:index>/proof/", ledger_api.LedgerProof.as_view(), name="api-ledger-proof"),
    path("ledger/consistency/", ledger_api.LedgerConsistency.as_view(), name="api-ledger-consistency"),
    path("ledger/export/", ledger_api.LedgerExport.as_view(), name="api-ledger-export"),
]
