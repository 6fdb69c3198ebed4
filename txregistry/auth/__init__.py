"""
Authentication and access control.

The checkers here are L{twisted.cred.checkers.ICredentialsChecker}s, so
the door (a L{twisted.cred.portal.Portal} in front of the API) can use
them or a site's own, found through L{twisted.cred.strcred.ICheckerFactory}
plugins.  Nothing here knows HTTP, the API, the model or storage.
"""
