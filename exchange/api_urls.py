"""REST routes of the exchange (ledger, and orders and delivery as they land), included under /api/v1/."""

from django.urls import path

from exchange.delivery import api as delivery_api
from exchange.downloads import api as downloads_api
from exchange.downloads import set_api as downloads_set_api
from exchange.downloads import verification as downloads_verification
from exchange.ledger import api as ledger_api
from exchange.orders import api as orders_api

urlpatterns = [
    path("ledger/head/", ledger_api.LedgerHead.as_view(), name="api-ledger-head"),
    path("ledger/heads/", ledger_api.LedgerHeads.as_view(), name="api-ledger-heads"),
    path("ledger/counts/", ledger_api.LedgerCounts.as_view(), name="api-ledger-counts"),
    path("ledger/entries/<int:index>/", ledger_api.LedgerEntry.as_view(), name="api-ledger-entry"),
    path("ledger/entries/<int:index>/proof/", ledger_api.LedgerProof.as_view(), name="api-ledger-proof"),
    path("ledger/consistency/", ledger_api.LedgerConsistency.as_view(), name="api-ledger-consistency"),
    path("ledger/export/", ledger_api.LedgerExport.as_view(), name="api-ledger-export"),
    path("orders/", orders_api.OrderListCreate.as_view(), name="api-orders"),
    path("orders/<str:order_id>/", orders_api.OrderDetail.as_view(), name="api-order"),
    path("orders/<str:order_id>/confirm/", orders_api.OrderConfirm.as_view(), name="api-order-confirm"),
    path(
        "orders/<str:order_id>/authenticate/",
        orders_api.OrderAuthenticate.as_view(),
        name="api-order-authenticate",
    ),
    path("orders/<str:order_id>/refund/", orders_api.OrderRefund.as_view(), name="api-order-refund"),
    path("receipts/<str:order_id>/", orders_api.ReceiptDetail.as_view(), name="api-receipt"),
    path("stripe/webhook/", orders_api.stripe_webhook, name="api-stripe-webhook"),
    path("entitlements/", delivery_api.EntitlementList.as_view(), name="api-entitlements"),
    path(
        "entitlements/<str:entitlement_id>/links/",
        downloads_api.EntitlementLinks.as_view(),
        name="api-entitlement-links",
    ),
    path(
        "entitlements/<str:entitlement_id>/sets/",
        downloads_set_api.EntitlementSetLinks.as_view(),
        name="api-entitlement-sets",
    ),
    path(
        "entitlements/<str:entitlement_id>/sets/<int:number>.<str:fmt>",
        downloads_set_api.EntitlementSet.as_view(),
        name="api-entitlement-set",
    ),
    path(
        "entitlements/<str:entitlement_id>/files/<int:file_id>.<str:fmt>",
        downloads_api.EntitlementFile.as_view(),
        name="api-entitlement-file",
    ),
    path("downloads/<str:token>/", downloads_api.DownloadFile.as_view(), name="api-download"),
    path(
        "deliveries/by-sha256/<str:sha256>/receipt/",
        downloads_verification.DeliveryReceiptByHash.as_view(),
        name="api-delivery-receipt-by-hash",
    ),
    path(
        "deliveries/<str:delivery_id>/receipt/",
        downloads_api.DeliveryReceipt.as_view(),
        name="api-delivery-receipt",
    ),
    path(
        "entitlements/<str:entitlement_id>/samples/",
        delivery_api.EntitlementSamples.as_view(),
        name="api-entitlement-samples",
    ),
    path(
        "entitlements/<str:entitlement_id>/samples/<str:draw_id>/",
        delivery_api.SampleDetail.as_view(),
        name="api-entitlement-sample",
    ),
]
