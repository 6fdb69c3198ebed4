"""
The web UI: repositories, tags, manifests and referrers in a browser,
served by the registry beside its API (C{ui.enabled}, C{ui.path}).

It reads through the service model only (the L{INamespace} the API uses,
acting for the visitor), so what it shows is what the API would serve
the same caller; it logs in through the door's L{twisted.cred} portal.
"""
