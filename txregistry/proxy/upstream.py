# -*- test-case-name: tests.proxy.test_layer -*-
"""
One upstream registry as the pull-through cache sees it: which local
repository names are its (a prefix), what each is called there (Docker
Hub's C{library/}), and its answers in the model's terms, with a time
limit, so that an upstream that is down, slow or rate-limiting is one
error (L{UpstreamUnavailable}) the cache can serve stale content on.

It is reached through the client library
(L{txregistry.client.registry.Registry}: Basic and Bearer logins,
retries); the cache retries less than a command would, since a client
is waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, ensureDeferred
from twisted.web.client import _HTTP11ClientFactory

from txregistry import errors as model
from txregistry.client.auth import Credentials
from txregistry.client.errors import AuthenticationFailed, ClientError
from txregistry.client.http import Session, TLSOptions
from txregistry.client.registry import Registry, RemoteRepository
from txregistry.proxy.budget import Budget
from txregistry.proxy.config import UpstreamConfig

__all__ = ["Upstream", "UpstreamUnavailable", "UpstreamDenied", "ATTEMPTS"]

T = TypeVar("T")

#: Tries of one upstream request: one retry, since a client is waiting and
#: the cache has stale content or a quick 503 to give instead.
ATTEMPTS = 2


class _QuietFactory(_HTTP11ClientFactory):
    noisy = False


class UpstreamUnavailable(model.StorageUnavailable):
    """
    The upstream did not answer in time, could not be reached, or said it
    is overloaded (429, 5xx): the API answers 503 C{UNAVAILABLE}, and the
    cache serves what it holds instead when it can.
    """


class UpstreamDenied(model.Denied):
    """
    The upstream refused the cache's credentials (or asked for some and
    there are none).
    """


class Upstream:
    """
    An upstream registry and the local repositories that are its.

    @ivar config: its L{UpstreamConfig}.
    @ivar registry: the client library's L{Registry} there.
    """

    def __init__(self, config: UpstreamConfig, reactor: Any) -> None:
        self.config = config
        self.reactor = reactor
        #: What its cached repositories may hold (C{maxbytes}).
        self.budget = Budget(config.prefix, config.maxBytes)
        tls = TLSOptions(config.caFile or None, config.certFile or None, config.keyFile or None,
                         config.insecure)
        session = Session(reactor, tls)
        # Not a log line per connection to the upstream.
        session.pool._factory = _QuietFactory
        session.attempts = ATTEMPTS
        session.backoff = 0.1
        credentials = Credentials(config.username, config.password) if config.username else None
        self.registry = Registry(config.host, credentials, tls, plainHTTP=config.plainHTTP,
                                 session=session, reactor=reactor)

    def __repr__(self) -> str:
        return f"<Upstream {self.config.label} at {self.config.url}>"

    @property
    def label(self) -> str:
        return self.config.label

    def owns(self, name: str) -> bool:
        """
        Whether the local repository C{name} is one of this upstream's.
        """
        prefix = self.config.prefix
        return not prefix or name.startswith(prefix + "/")

    def remoteName(self, name: str) -> str:
        """
        What the local repository C{name} is called upstream: without the
        prefix, and a bare Docker Hub name as C{library/<name>}.
        """
        prefix = self.config.prefix
        remote = name[len(prefix) + 1:] if prefix else name
        if self.config.dockerHub and "/" not in remote:
            remote = "library/" + remote
        return remote

    def localName(self, name: str) -> str:
        """
        Where the local repository C{name} is cached: one name for both
        C{docker.io/alpine} and C{docker.io/library/alpine}.
        """
        remote = self.remoteName(name)
        return f"{self.config.prefix}/{remote}" if self.config.prefix else remote

    def repository(self, name: str) -> RemoteRepository:
        """
        The upstream's repository for the local repository C{name}.
        """
        return self.registry.repository(self.remoteName(name))

    def call(self, what: str, work: Callable[[], Awaitable[T]]) -> Deferred[T]:
        """
        C{work}'s result within the upstream's C{timeout}, its failures as
        the model's errors: a definite answer (unknown, invalid) as it
        is; an upstream that is down, slow or overloaded as
        L{UpstreamUnavailable}; a refused login as L{UpstreamDenied}.

        @param what: what is asked, for the error's message.
        """
        d: Deferred[T] = ensureDeferred(work())  # type: ignore[arg-type]
        d.addTimeout(self.config.timeout, self.reactor)
        return d.addErrback(self._translate, what)

    def _translate(self, failure: Any, what: str) -> Any:
        error = failure.value
        where = f"upstream {self.label} ({self.config.url})"
        if isinstance(error, (TimeoutError, CancelledError)):
            raise UpstreamUnavailable(
                f"{where} did not answer {what} within {self.config.timeout:g}s") from None
        if isinstance(error, AuthenticationFailed):
            raise UpstreamDenied(f"{where} refused the cache's login for {what}: {error}") from None
        if isinstance(error, (ClientError, model.InsufficientStorage, model.StorageUnavailable)):
            raise UpstreamUnavailable(f"{where}: {what}: {error}") from None
        if isinstance(error, model.RegistryModelError):
            return failure
        if isinstance(error, (OSError, ConnectionError)):
            raise UpstreamUnavailable(f"{where}: {what}: {error}") from None
        return failure

    def close(self) -> Deferred[None]:
        return self.registry.close()
