"""
Webhook notifications: events for what clients push, pull, mount and
delete, journaled in a durable outbox before the response and delivered
to every configured endpoint at least once.

    layer (events from the model's calls) -> outbox.journal (append, fsync)
        -> dispatcher (one ordered queue per endpoint, treq, signed)

The pieces know the service model (L{txregistry.interfaces}) and nothing
of the HTTP API above it.
"""
