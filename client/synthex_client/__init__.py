"""Synthex command line (``synthex``) and Python client over the REST API.

from synthex_client import SynthexClient
with SynthexClient("http://127.0.0.1:8000", token) as api:
    api.search_products(q="census")
"""

__version__ = "0.1.0"

from synthex_client.api import ApiError, ClientError, ServerError, SynthexClient  # noqa: E402

__all__ = ["ApiError", "ClientError", "ServerError", "SynthexClient", "__version__"]
