"""Publish an event to an Argo Events webhook EventSource (internal).

A deployed flow's last task runs ``python -m headwater.compute.argo.events --url URL --name NAME
--field key=value ...`` to announce that its run finished (``@trigger_on_finish`` listens for
it). The request is Metaflow's: ``POST {"name": NAME, "payload": {"name": NAME, ...fields}}``.
Publishing is best effort, as in Metaflow: the run has already succeeded, so a webhook that
cannot be reached is reported on stderr and the process still exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Mapping

#: Attempts to reach the webhook (1 s, then 2 s between them).
ATTEMPTS = 3
#: Seconds to wait for the webhook's answer.
TIMEOUT = 30


def event_body(name: str, fields: Mapping[str, str], *, now: float | None = None) -> dict[str, object]:
    """The JSON body of an event: its name, and a payload with the name, the time and ``fields``."""
    now = time.time() if now is None else now
    payload: dict[str, object] = {"name": name, "timestamp": int(now),
                                  "utc_date": datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d"),
                                  "generated-by-headwater": True, **fields}
    return {"name": name, "payload": payload}


def publish(url: str, name: str, fields: Mapping[str, str], *, attempts: int = ATTEMPTS) -> None:
    """POST the event ``name`` with ``fields`` to the webhook ``url``.

    Raises
    ------
    urllib.error.URLError
        The webhook could not be reached after ``attempts`` tries, or it answered with an error.
    """
    data = json.dumps(event_body(name, fields)).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    for i in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT):
                return
        except urllib.error.HTTPError:
            raise  # the webhook answered: trying again would not change its mind
        except urllib.error.URLError:
            if i == attempts - 1:
                raise
            time.sleep(2 ** i)


def main(argv: list[str] | None = None) -> int:
    """Command line: publish one event; failures are reported, never fatal (exit 0)."""
    parser = argparse.ArgumentParser(prog="python -m headwater.compute.argo.events", description=__doc__)
    parser.add_argument("--url", required=True, help="The webhook EventSource's URL.")
    parser.add_argument("--name", required=True, help="The event's name (the payload's 'name').")
    parser.add_argument("--field", action="append", default=[], metavar="KEY=VALUE", help="A payload field.")
    args = parser.parse_args(argv)
    fields = dict(f.split("=", 1) for f in args.field)
    try:
        publish(args.url, args.name, fields)
    except (OSError, ValueError) as e:  # URLError is an OSError; a malformed URL a ValueError
        print(f"Could not publish the event {args.name!r} to {args.url}: {e}", file=sys.stderr)
        return 0
    print(f"Published the event {args.name!r}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
