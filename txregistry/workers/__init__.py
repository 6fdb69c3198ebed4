"""
Several worker processes serving one listening socket (C{http.workers}).

The supervising parent (L{txregistry.workers.supervisor}) listens, as the
single process does, before twistd daemonises, so that a port in use is
one line at the start; it never accepts.  Each worker
(L{txregistry.workers.worker}) is spawned with that socket as its file
descriptor 3 and adopts it (C{IReactorSocket.adoptStreamPort}): the
workers share the kernel's one accept queue, and whichever is idle takes
the next connection.  C{SO_REUSEPORT} was not chosen: it gives each worker
its own queue, filled by a hash of the client's address whether that
worker is busy or not, drops what is queued on a worker that dies, and
does not balance unix sockets at all.

Each worker is a whole L{txregistry.service.RegistryService} over the
same storage, so what holds for two registries over one root holds for
the workers (uploads, their locks and hashes are in storage); what one
process would keep in memory between requests is either not kept (tags:
see L{txregistry.workers.combinations}) or refused at start.  Worker 0
alone runs the background services (online collection, upload purging);
each worker has its own notifications outbox (see
L{txregistry.workers.worker.outboxFor}).  Workers send their log events
to the parent, which writes the one log in the configured format.
"""
