"""The `argo-workflows create --only-json` output of the examples, kept in docs/argo-examples/.

``python tests/compute/argo_examples.py --write`` compiles each example in EXAMPLES against a
local S3 server (moto, started here: `create` stores the code package even with --only-json)
and writes what it prints to docs/argo-examples/<example>.json, after two substitutions so the
files do not depend on the machine that made them: the S3 server's loopback endpoint becomes
ENDPOINT and the datastore bucket is BUCKET; the Argo Events
settings are EVENTS. ``test_argo_examples.py`` compiles them again
and fails when a file differs from today's output (the code package key aside: it is a hash
of the examples directory, so any edit there changes it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).parents[2]
DOCS = REPO / "docs" / "argo-examples"
# Not shown: examples/switch.py (a recursive switch, which the compiler refuses).
EXAMPLES = ("branch.py", "foreach.py", "nested_foreach.py", "parameters.py", "production.py")
ENDPOINT = "https://s3.example.com"
BUCKET = "my-bucket"
USER = "alice"
#: The Argo Events installation a flow with a trigger is compiled for.
EVENTS = {"HEADWATER_ARGO_EVENTS_EVENT": "headwater-events", "HEADWATER_ARGO_EVENTS_EVENT_SOURCE": "argo-events-webhook",
          "HEADWATER_ARGO_EVENTS_SERVICE_ACCOUNT": "operate-workflow-sa"}
_PACKAGE_KEY = re.compile(r'("--package-key",\s*")[0-9a-f]+(")')


def compile_example(example: str, endpoint_env: dict[str, str]) -> str:
    """What ``create --only-json`` prints for ``examples/<example>``, made machine-independent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(endpoint_env)
    env.update({"HEADWATER_USER": USER, "HEADWATER_DATASTORE_SYSROOT_S3": f"s3://{BUCKET}/headwater",
                "HEADWATER_HOME": str(Path(tempfile.gettempdir()) / "headwater-docs-home"), **EVENTS})
    p = subprocess.run([sys.executable, str(REPO / "examples" / example), "--datastore=s3",
                        "argo-workflows", "create", "--only-json"],
                       capture_output=True, text=True, env=env, cwd=REPO / "examples", timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"{example}: create --only-json failed:\n{p.stderr}")
    doc = json.loads(p.stdout)
    return json.dumps(doc, indent=2).replace(endpoint_env["HEADWATER_S3_ENDPOINT_URL"], ENDPOINT) + "\n"


def without_package_key(text: str) -> Any:
    return json.loads(_PACKAGE_KEY.sub(r"\1KEY\2", text))


def _main() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from s3server import start_s3_server

    server = start_s3_server()
    try:
        server.boto3().create_bucket(Bucket=BUCKET)
        DOCS.mkdir(parents=True, exist_ok=True)
        for example in EXAMPLES:
            out = DOCS / (Path(example).stem + ".json")
            out.write_text(compile_example(example, server.env()))
            print(f"wrote {out.relative_to(REPO)}")
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/compute/argo_examples.py --write")
    _main()
