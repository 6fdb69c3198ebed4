"""
Real clients against the registry: docker (one private dockerd per test
run, L{tests.clients.daemons.dockerDaemon}), skopeo, podman (as root, vfs
storage in temporary directories) and the oras Python SDK.

Each test starts its own registry as a C{twistd} child process
(L{tests.clients.daemons.startRegistry}) and runs the clients as blocking
subprocesses.  Missing programs are installed with
C{apt-get install -y docker.io skopeo podman} when running as root with
apt-get; otherwise those tests are skipped with the reason.  oras comes
from the C{test} extras in setup.py.  No image comes from the internet:
every image, layout and artifact is made here, and all traffic goes to
127.0.0.1.  C{TXREGISTRY_KEEP_DOCKERD=1} keeps dockerd's directory (its
log included) after the run.
"""
