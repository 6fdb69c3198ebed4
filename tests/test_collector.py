"""
L{txregistry.collector}: a serving process's collector settings, tried
in a fresh interpreter (they are the whole process's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from twisted.trial.unittest import TestCase

from tests.support import _repositoryRoot

_SCRIPT = textwrap.dedent("""
    import gc, weakref
    from txregistry.collector import YOUNG_THRESHOLD, settle

    class Cycle:
        pass

    settle()
    assert gc.get_freeze_count() > 0, "nothing frozen"
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD, gc.get_threshold()
    freed = []
    for i in range(50_000):
        a, b = Cycle(), Cycle()
        a.other, b.other = b, a
        weakref.finalize(a, freed.append, i)
        del a, b
    # No gc.collect(): the cycles go as allocations go on.
    print(len(freed))
""")


class SettleTests(TestCase):
    def test_cyclesStillFreed(self) -> None:
        """
        After L{settle}, what start-up made is frozen, the youngest
        generation is collected every L{YOUNG_THRESHOLD} allocations, and
        cyclic garbage made afterwards is still freed without anyone
        asking: nearly all of 50 000 cycles, at most the last
        threshold's worth waiting.
        """
        output = subprocess.run(
            [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([_repositoryRoot()] + sys.path)},
        ).stdout
        self.assertGreater(int(output), 50_000 - 10_000)
