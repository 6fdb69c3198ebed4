"""
The pull-through cache: repositories under an upstream's prefix (or, in
the reference's mode, every repository) served from a local cache that
fills from the upstream registry on demand.

    config (proxy:) -> upstream (client library, time limit, errors)
        -> layer (cache first, fetch once, stale-if-error) -> fetch (tee)

A layer of the service model: it knows neither the API nor storage.
"""
