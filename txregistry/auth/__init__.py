"""
Who is asking: the pieces that check a client's credentials.

Each checker here is a L{twisted.cred.checkers.ICredentialsChecker}, so the
door (a L{twisted.cred.portal.Portal} in front of the API) can use it or a
site's own, found through L{twisted.cred.strcred.ICheckerFactory} plugins.
Nothing here knows HTTP, the API or storage: a checker turns credentials
into an avatar id and nothing more.
"""
