"""Connecting to a cluster: URL from options or ``ODQA_ES_URL``, secrets from the environment only.

Credentials never come from command-line arguments (those end up in shell history, logs and
``run_info.json``): ``ODQA_ES_API_KEY``, or ``ODQA_ES_USERNAME`` + ``ODQA_ES_PASSWORD``. TLS
certificates are verified unless the user turns it off explicitly. Every failure the user can fix
(unreachable server, bad credentials, missing index, missing plugin) becomes one line that says
what to check, through :func:`translate_errors`.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from odqa.errors import ConfigError, ODQAError

URL_ENV = "ODQA_ES_URL"
API_KEY_ENV = "ODQA_ES_API_KEY"
USERNAME_ENV = "ODQA_ES_USERNAME"
PASSWORD_ENV = "ODQA_ES_PASSWORD"
DEFAULT_URL = "http://localhost:9200"
INSTALL_HINT = 'the Elasticsearch client is not installed: pip install "odqa[elasticsearch]"'
NORI_HINT = ("the cluster has no nori plugin (analysis-nori): install it on every node with "
             "`bin/elasticsearch-plugin install analysis-nori` and restart, or index with --es_analyzer standard "
             "(no Korean morphology).")


class ElasticsearchError(ODQAError):
    """The cluster refused or could not be reached; the message says what to check."""


def strip_credentials(url: str) -> str:
    """``https://user:pw@host:9200`` -> ``https://host:9200`` (what may be saved or logged)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class EsConnection:
    """Where the cluster is and how patient to be with it (no secrets: those come from the environment).

    ``url``: explicit URL (without credentials); ``None`` = ``$ODQA_ES_URL``, else localhost:9200.
    """

    url: str | None = None
    request_timeout: float = 30.0
    max_retries: int = 3
    verify_certs: bool = True
    ca_certs: str | None = None
    bulk_chunk_size: int = 500  # documents per _bulk request
    initial_backoff: float = 2.0  # seconds before the first retry of rejected (429) documents; doubles each time

    def check(self) -> None:
        if self.url is not None and strip_credentials(self.url) != self.url:
            raise ConfigError(f"--es_url {strip_credentials(self.url)}: do not put credentials in the URL (it is "
                              f"logged and saved); set {API_KEY_ENV}, or {USERNAME_ENV} and {PASSWORD_ENV}.")
        if self.request_timeout <= 0 or self.max_retries < 0 or self.bulk_chunk_size < 1 or self.initial_backoff < 0:
            raise ConfigError("--es_timeout must be positive, --es_max_retries at least 0 and --es_chunk_size at "
                              "least 1.")

    def resolved_url(self) -> str:
        return self.url or os.environ.get(URL_ENV) or DEFAULT_URL

    def display_url(self) -> str:
        return strip_credentials(self.resolved_url())


def auth_from_environment() -> dict[str, Any]:
    """Client keyword arguments for the credentials in the environment (none: an open cluster)."""
    api_key = os.environ.get(API_KEY_ENV)
    user, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if api_key:
        return {"api_key": api_key}
    if user or password:
        if not (user and password):
            raise ConfigError(f"set both {USERNAME_ENV} and {PASSWORD_ENV} (only one is set).")
        return {"basic_auth": (user, password)}
    return {}


def client_major_version() -> int:
    import elasticsearch

    return int(elasticsearch.__version__[0])


def connect(connection: EsConnection) -> Any:
    """An ``elasticsearch.Elasticsearch`` client (nothing is sent until the first request)."""
    try:
        from elasticsearch import Elasticsearch
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    if client_major_version() < 8:
        raise ConfigError("odqa needs the Elasticsearch client 8.x or 9.x (its error types and kNN search); install "
                          "the one matching your cluster: pip install \"elasticsearch>=8,<9\" (or >=9,<10).")
    connection.check()
    options: dict[str, Any] = {"request_timeout": connection.request_timeout, "max_retries": connection.max_retries,
                               "retry_on_timeout": True, "retry_on_status": (429, 502, 503, 504),
                               **auth_from_environment()}
    url = connection.resolved_url()
    if url.startswith("https"):
        options["verify_certs"] = connection.verify_certs
        if connection.ca_certs:
            options["ca_certs"] = connection.ca_certs
        if not connection.verify_certs:
            options["ssl_show_warn"] = False
    return Elasticsearch(url, **options)


def _reason(err: Any) -> str:
    """The server's own reason (``error.root_cause[0].reason``) when the body has one."""
    body = getattr(err, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        causes = error.get("root_cause") or [error]
        return str(causes[0].get("reason") or error.get("reason") or error.get("type") or "")
    return str(getattr(err, "message", "") or err)


@contextlib.contextmanager
def translate_errors(connection: EsConnection, index: str | None = None) -> Iterator[None]:
    """Turn client exceptions into one-line :class:`ElasticsearchError` messages that say what to check."""
    try:
        import elasticsearch
        from elastic_transport import ConnectionError as TransportConnectionError
        from elastic_transport import ConnectionTimeout, TlsError
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    url = connection.display_url()
    try:
        yield
    except ConnectionTimeout:
        raise ElasticsearchError(f"{url}: the cluster did not answer within {connection.request_timeout:g} s "
                                 f"(after {connection.max_retries} retries); raise --es_timeout or check its load."
                                 ) from None
    except TlsError:
        raise ElasticsearchError(f"{url}: TLS verification failed; give the cluster's CA with --es_ca_certs, or "
                                 "--es_verify_certs false on a trusted network.") from None
    except TransportConnectionError as err:
        raise ElasticsearchError(f"{url}: cannot reach Elasticsearch ({type(err).__name__}); is it running, and "
                                 f"is --es_url / ${URL_ENV} right?") from None
    except elasticsearch.AuthenticationException:
        raise ElasticsearchError(f"{url}: authentication failed (401); set {API_KEY_ENV}, or {USERNAME_ENV} and "
                                 f"{PASSWORD_ENV}, to valid credentials.") from None
    except elasticsearch.AuthorizationException as err:
        raise ElasticsearchError(f"{url}: permission denied (403) on index {index!r}: {_reason(err)}; the "
                                 "credentials need read (and, to index, write/manage) rights on it.") from None
    except elasticsearch.NotFoundError as err:
        raise ElasticsearchError(f"{url}: index {index!r} not found ({_reason(err)}); build it with "
                                 f"`odqa index --retriever elasticsearch --es_index {index} ...`.") from None
    except elasticsearch.ApiError as err:
        reason = _reason(err)
        if "nori" in reason:
            raise ElasticsearchError(f"{url}: {reason}: {NORI_HINT}") from None
        status = getattr(getattr(err, "meta", None), "status", "?")
        raise ElasticsearchError(f"{url}: Elasticsearch refused the request on {index!r} ({status}): {reason}"
                                 ) from None
    except elasticsearch.UnsupportedProductError:
        raise ElasticsearchError(f"{url}: the server does not identify itself as Elasticsearch (OpenSearch and "
                                 "proxies that drop the X-Elastic-Product header are not supported).") from None
