"""@secrets: the sources come from HW_SECRET_SOURCES (JSON) so one file serves every test."""
import hashlib
import json
import os

from headwater import FlowSpec, secrets, step

SOURCES = json.loads(os.environ.get("HW_SECRET_SOURCES", "[]"))
ALLOW = os.environ.get("HW_ALLOW_OVERRIDE") == "1"
EXPECT = json.loads(os.environ.get("HW_EXPECT", "[]"))


def digest(name):
    value = os.environ.get(name)
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


class SecretsFlow(FlowSpec):
    @secrets(sources=SOURCES, allow_override=ALLOW)
    @step
    def start(self):
        # Only digests are stored: the test checks the values never reach the store.
        self.digests = {name: digest(name) for name in EXPECT}
        self.next(self.end)

    @step
    def end(self):
        self.visible_after = [name for name in EXPECT if name in os.environ and name not in os.environ.get(
            "HW_PRESET", "")]


if __name__ == "__main__":
    SecretsFlow()
