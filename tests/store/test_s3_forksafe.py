"""obstore in forked processes (store/s3/forksafe.py): a child forked after its parent used
obstore gets a private copy of the library with a runtime of its own; one forked before
any use keeps the installed module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")

# A fresh interpreter: the test process has obstore loaded already.
_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    from headwater.store.s3.forksafe import obstore_api

    home = sys.argv[1]

    def in_child():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.alarm(30)  # a dead runtime hangs: SIGALRM ends the child instead
            api = obstore_api(home)
            store = api._store.MemoryStore()
            api.put(store, "k", b"v")  # needs a working runtime
            os.write(w, json.dumps([api.__name__, bytes(api.get(store, "k").bytes()).decode()]).encode())
            os._exit(0)
        os.close(w)
        out = os.read(r, 4096)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), json.loads(out or "null")

    before = in_child()
    api = obstore_api(home)
    api.put(api._store.MemoryStore(), "k", b"v")  # the parent's runtime now runs
    after = in_child()
    print(json.dumps({"before": before, "after": after, "parent": api.__name__}))
""")


def test_children_forked_after_use_get_a_private_obstore(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["parent"] == "obstore._obstore"
    assert out["before"] == [0, ["obstore._obstore", "v"]]  # nothing to copy before any use
    assert out["after"] == [0, ["_headwater_obstore_g1._obstore", "v"]]
    copies = list(tmp_path.glob("cache/obstore/*/g1/_obstore*"))
    assert len(copies) == 1  # made once per machine and generation, under HEADWATER_HOME
