"""A container's entry point (orchestration layer): fetch the run's code package from the
datastore, extract it, and run the flow file's CLI from it.

``python -m headwater.runtime.bootstrap --datastore-root ROOT --package-key KEY --flow-file NAME
[--environment-lock LOCK] -- <the flow's CLI arguments>``. The image needs headwater and the flow's
libraries, not the flow's code: that comes from the package the run (or the deployment) stored, so
every task of a run runs the same code whatever image it starts from. With ``--environment-lock``
(a step with ``@pypi``/``@conda``) the container first builds the stored lock's environment under
its ``HEADWATER_HOME`` (``environments.remote.build_here``; found there when built before) and runs
the flow file with that environment's interpreter instead of the image's.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Parse the bootstrap's arguments, fetch and extract the package, then ``exec`` the flow."""
    args = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, rest = args[:cut], args[cut + 1:]
    parser = argparse.ArgumentParser(prog="python -m headwater.runtime.bootstrap",
                                     description="Fetch a run's code package and run its flow file.")
    parser.add_argument("--datastore-root", required=True, help="The datastore holding the package.")
    parser.add_argument("--package-key", required=True, help="The package's content key.")
    parser.add_argument("--flow-file", required=True, help="The flow file's path inside the package.")
    parser.add_argument("--environment-lock", default=None,
                        help="The content key of the step's stored environment lock: build it, run in it.")
    opts = parser.parse_args(args)
    from ..exceptions import HeadwaterException
    from ..package.stored import fetch_package
    from ..store import Datastore

    info = {"key": opts.package_key, "ref": {"key": opts.package_key}, "script": opts.flow_file}
    content = Datastore(opts.datastore_root).content
    try:
        root = fetch_package(content, info, add_to_path=False)
    except HeadwaterException as e:
        sys.stderr.write(f"Cannot fetch code package {opts.package_key} from {opts.datastore_root}:\n"
                         f"{e.render()}\n")
        raise SystemExit(1) from None
    script = os.path.join(root, opts.flow_file)
    if not os.path.isfile(script):
        sys.stderr.write(f"The code package {opts.package_key} has no file {opts.flow_file!r}.\n")
        raise SystemExit(1)
    python = sys.executable
    if opts.environment_lock:
        python = _environment_python(content, opts.environment_lock)
    sys.stdout.flush()
    sys.stderr.flush()
    # In the package directory, as `python flow.py` run from a checkout: the flow imports its own
    # modules from there and reads relative files (IncludeFile defaults) as it did on the laptop.
    os.chdir(root)
    os.execv(python, [python, script, *rest])


def _environment_python(content: object, lock_key: str) -> str:
    """Build (or find) the environment of the stored lock ``lock_key``; its interpreter. Sets the
    shim and the task metadata of the environment in ``os.environ`` for the flow process."""
    from ..config import load_settings
    from ..environments.remote import METADATA_ENV_VAR, build_here, shim_here
    from ..environments.shim import SHIM_ENV_VAR
    from ..exceptions import HeadwaterException

    settings = load_settings()
    try:
        step_env = build_here(content, lock_key, settings, where="this container")
        shim = shim_here(settings)
    except HeadwaterException as e:
        sys.stderr.write(f"Cannot prepare the step's environment {lock_key[:12]}:\n{e.render()}\n")
        raise SystemExit(1) from None
    os.environ[SHIM_ENV_VAR] = shim
    os.environ[METADATA_ENV_VAR] = step_env.metadata()
    return step_env.python


if __name__ == "__main__":
    main()
