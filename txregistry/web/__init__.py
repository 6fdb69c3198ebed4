# -*- test-case-name: tests.web -*-
"""
The HTTP layer under the API: a request path that routes a request as soon
as its headers are in and streams its body to whatever the route chooses.
"""
