"""The same flows on every datastore: a local directory and S3 (a real moto server on
127.0.0.1). Branch, foreach + join, @retry, switch, @catch, IncludeFile, cards, logs and
resume run through the CLI; the client reads them back, in this process and in a second
process that has only the root configured and an empty local index cache ("another
machine")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flowrun import FLOWS, USER
from s3server import S3Server

FLOW = FLOWS / "datastore_flow.py"
NOTES = "line one\nline two: ünïcode\n"


@dataclass
class Store:
    """A datastore under test: its root, the env that reaches it, a working directory."""

    kind: str
    root: str
    env: dict[str, str]
    cwd: Path
    runs: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        env.update({"HEADWATER_DATASTORE_ROOT": self.root, "HEADWATER_USER": USER, "PYTHONUNBUFFERED": "1",
                    **self.env, **(extra_env or {})})
        return subprocess.run([sys.executable, str(FLOW), *args], capture_output=True, text=True, env=env,
                              cwd=self.cwd, timeout=180)


@pytest.fixture(scope="module", params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    base = tmp_path_factory.mktemp(f"ds-{request.param}")
    env = {"HEADWATER_HOME": str(base / "home")}
    if request.param == "local":
        root = str(base / ".headwater")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        env.update(server.env())
        root = f"s3://{server.new_bucket()}/team/hw"
    s = Store(request.param, root, env, base)
    (base / "notes.txt").write_text(NOTES, encoding="utf-8")
    ok = s.run("run", "--notes", "notes.txt", "--run-id-file", "ok.id")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    s.runs["ok"] = (base / "ok.id").read_text()
    s.runs["ok_console"] = ok.stdout + ok.stderr
    failed = s.run("run", "--run-id-file", "failed.id", extra_env={"HW_FAIL_AFTER": "1"})
    assert failed.returncode == 1, failed.stdout + failed.stderr
    s.runs["failed"] = (base / "failed.id").read_text()
    resumed = s.run("resume", "--origin-run-id", s.runs["failed"], "--run-id-file", "resumed.id")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    s.runs["resumed"] = (base / "resumed.id").read_text()
    return s


@pytest.fixture
def client(store: Store, monkeypatch: pytest.MonkeyPatch):
    for k in [k for k in os.environ if k.startswith("HEADWATER_")]:
        monkeypatch.delenv(k)
    for k, v in {**store.env, "HEADWATER_DATASTORE_ROOT": store.root, "HEADWATER_USER": USER}.items():
        monkeypatch.setenv(k, v)
    import headwater

    headwater.default_namespace()
    return headwater


def test_everything_the_flow_did_reads_back(store: Store, client) -> None:
    run = client.Run(f"DatastoreFlow/{store.runs['ok']}")
    assert run.successful and run.finished
    end = run["end"].task.data
    assert end.notes == NOTES and end.n == 4
    assert run["meet"].task.data.sides == ["left", "right"]
    assert end.squares == [0, 1, 4, 9] and end.parity == "even"
    assert end.total == float(sum(range(100_000))) and end.done
    assert len(end.big) == 3 * 1024 * 1024 and end.big == run["start"].task.data.big
    assert "caught by @catch" in str(run["risky"].task.data.caught)
    square_1 = [t for t in run["square"] if t.data.sq == 1][0]
    assert square_1.current_attempt == 1  # the @retry attempt
    assert "square of 1" in square_1.stdout


def test_logs_reach_the_store_and_the_console(store: Store, client) -> None:
    start = client.Run(f"DatastoreFlow/{store.runs['ok']}")["start"].task
    assert "hello from start, n=4" in start.stdout
    assert "a warning on stderr" in start.stderr
    assert "hello from start, n=4" in store.runs["ok_console"]  # the scheduler tailed it
    r = store.run("logs", f"{store.runs['ok']}/start")
    assert r.returncode == 0 and "hello from start, n=4" in r.stdout, r.stdout + r.stderr


def test_cards_are_stored(store: Store, client) -> None:
    from headwater.cards import get_cards

    cards = get_cards(client.Run(f"DatastoreFlow/{store.runs['ok']}")["start"].task)
    assert len(cards) == 1
    html = cards[0].get()
    assert "<html" in html.lower() and "array" in html


def test_resume_clones_what_succeeded(store: Store, client) -> None:
    failed = client.Run(f"DatastoreFlow/{store.runs['failed']}")
    resumed = client.Run(f"DatastoreFlow/{store.runs['resumed']}")
    assert not failed.successful and resumed.successful
    assert resumed["end"].task.data.total == float(sum(range(100_000)))
    origin = resumed["square"].task.metadata_dict.get("origin-task-id")
    assert origin is not None  # cloned from the failed run, not re-executed
    assert resumed["after"].task.metadata_dict.get("origin-task-id") is None  # the failed step ran again


def test_the_store_holds_the_data(store: Store) -> None:
    """Nothing of the run lives anywhere but under the root (for S3: in the bucket)."""
    if store.kind == "local":
        keys = [str(p.relative_to(store.root)) for p in Path(store.root).rglob("*") if p.is_file()]
    else:
        bucket, _, prefix = store.root[len("s3://"):].partition("/")
        client = boto3_client(store)
        keys = [o["Key"][len(prefix) + 1:] for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix + "/") for o in page.get("Contents", ())]
        assert not (store.cwd / ".headwater").exists()
    run = store.runs["ok"]
    assert f"runs/DatastoreFlow/{run}/_run.json" in keys
    assert f"runs/DatastoreFlow/{run}/start/1/0.json" in keys
    assert f"runs/DatastoreFlow/{run}/start/1/0.stdout" in keys
    assert any(k.startswith("blobs/") for k in keys)
    assert not any(".part/" in k for k in keys)  # log chunks replaced by complete logs


def boto3_client(store: Store):
    import boto3

    return boto3.client("s3", endpoint_url=store.env["HEADWATER_S3_ENDPOINT_URL"],
                        region_name=store.env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=store.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=store.env["AWS_SECRET_ACCESS_KEY"])


READER = textwrap.dedent('''
    import json, sys
    from headwater import Flow, namespace
    from headwater.cards import get_cards
    namespace(None)
    flow = Flow("DatastoreFlow")
    runs = [r.id for r in flow.runs()]
    run = flow[sys.argv[1]]
    start = run["start"].task
    print(json.dumps({"runs": runs, "squares": run["end"].task.data.squares, "notes": run.data.notes,
                      "stdout": start.stdout, "cards": len(get_cards(start)),
                      "card_has_array": "array" in get_cards(start)[0].get()}))
''')


def test_another_machine_with_only_the_root(store: Store, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(store.env)
    env.update({"HEADWATER_DATASTORE_ROOT": store.root, "HEADWATER_HOME": str(tmp_path / "empty-home")})
    p = subprocess.run([sys.executable, "-c", READER, store.runs["ok"]], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout)
    assert sorted(seen["runs"]) == sorted([store.runs["ok"], store.runs["failed"], store.runs["resumed"]])
    assert seen["squares"] == [0, 1, 4, 9] and seen["notes"] == NOTES
    assert "hello from start, n=4" in seen["stdout"]
    assert seen["cards"] == 1 and seen["card_has_array"]


def test_include_file_from_an_s3_url(s3_bucket: str, s3_env: S3Server, tmp_path: Path, use_root) -> None:
    s3_env.boto3().put_object(Bucket=s3_bucket, Key="in/notes.txt", Body=NOTES.encode())
    s = Store("local", str(tmp_path / ".headwater"), s3_env.env(), tmp_path)
    r = s.run("run", "--notes", f"s3://{s3_bucket}/in/notes.txt", "--n", "2", "--run-id-file", "id")
    assert r.returncode == 0, r.stderr
    use_root(Path(s.root))
    import headwater

    assert headwater.Run(f"DatastoreFlow/{(tmp_path / 'id').read_text()}").data.notes == NOTES
    r = s.run("run", "--notes", f"s3://{s3_bucket}/in/missing.txt")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"IncludeFile '--notes': cannot read 's3://{s3_bucket}/in/missing.txt'" in r.stderr
    assert "no such key" in r.stderr
