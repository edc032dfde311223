"""@secrets with the inline and aws-secrets-manager providers, against a real moto server."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flowrun import run_flow

from headwater.flow.decorators import InvalidDecoratorAttribute, parse_decospec
from headwater.secret_providers.base import SecretsError, UnknownSecretsBackendError, get_provider
from headwater.secret_providers.decorator import SecretsDecorator
from headwater.secret_providers.spec import SecretSpec, parse_source

boto3 = pytest.importorskip("boto3")
REGION = "eu-west-1"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start")
                time.sleep(0.1)
        client = boto3.client("secretsmanager", endpoint_url=url, region_name=REGION,
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_secret(Name="db-creds", SecretString=json.dumps({"DB-USER": "alice", "DB.PASS": "pw-7f3a9c"}))
        client.create_secret(Name="api/token", SecretString="tok-5e1d", Description="plain string")
        client.create_secret(Name="other-creds", SecretString=json.dumps({"DB_USER": "bob"}))
        client.create_secret(Name="not-an-object", SecretString="[1, 2]")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _run(tmp_path, sources, expect, *, url=None, extra_env=None, launcher="fork"):
    env = {"HW_SECRET_SOURCES": json.dumps(sources), "HW_EXPECT": json.dumps(expect), **(extra_env or {})}
    if url is not None:
        env.update(AWS_ENV, AWS_ENDPOINT_URL=url, HEADWATER_AWS_SECRETS_MANAGER_DEFAULT_REGION=REGION)
    return run_flow("secrets_flow.py", "run", root=tmp_path / ".headwater", env=env, launcher=launcher)


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _start(use_root, r):
    from headwater import Flow

    use_root(r.root)
    return Flow("SecretsFlow").latest_run


def _store_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "index.sqlite")


def test_aws_and_inline_secrets_become_env_vars_of_the_task(tmp_path, moto_url, launcher, use_root):
    sources = [
        "aws-secrets-manager.db-creds",
        {"type": "aws-secrets-manager", "id": "api/token", "options": {"json": False, "env_var_name": "API_TOKEN"}},
        {"type": "inline", "id": "local", "options": {"env_vars": {"LOCAL_KEY": "inline-9d2b"}}},
    ]
    expect = ["DB_USER", "DB_PASS", "API_TOKEN", "LOCAL_KEY"]
    r = _run(tmp_path, sources, expect, url=moto_url, launcher=launcher)
    assert r.returncode == 0, r.output
    run = _start(use_root, r)
    assert run["start"].task.data.digests == {
        "DB_USER": _sha("alice"), "DB_PASS": _sha("pw-7f3a9c"), "API_TOKEN": _sha("tok-5e1d"),
        "LOCAL_KEY": _sha("inline-9d2b")}
    assert run["end"].task.data.visible_after == []  # only the @secrets step's tasks see them
    stored = _store_bytes(r.root)
    for value in ("pw-7f3a9c", "tok-5e1d", "inline-9d2b"):
        assert value.encode() not in stored and value not in r.output


def test_default_backend_type_for_bare_ids(tmp_path, moto_url, use_root):
    r = _run(tmp_path, ["db-creds"], ["DB_USER"], url=moto_url,
             extra_env={"HEADWATER_DEFAULT_SECRETS_BACKEND_TYPE": "aws-secrets-manager"})
    assert r.returncode == 0, r.output
    assert _start(use_root, r)["start"].task.data.digests == {"DB_USER": _sha("alice")}


def test_bare_id_without_default_backend(tmp_path):
    r = _run(tmp_path, ["db-creds"], [])
    assert r.returncode == 1
    assert "names no backend type" in r.stderr and "HEADWATER_DEFAULT_SECRETS_BACKEND_TYPE" in r.stderr


def test_missing_secret_fails_the_task(tmp_path, moto_url):
    r = _run(tmp_path, ["aws-secrets-manager.nope"], [], url=moto_url)
    assert r.returncode == 1
    assert "could not read secret 'nope': ResourceNotFoundException" in r.stderr
    assert "Traceback" not in r.stderr


def test_secret_that_is_not_a_json_object(tmp_path, moto_url):
    r = _run(tmp_path, ["aws-secrets-manager.not-an-object"], [], url=moto_url)
    assert r.returncode == 1
    assert "holds a JSON list, not an object" in r.stderr


def test_two_sources_setting_one_variable(tmp_path, moto_url):
    r = _run(tmp_path, ["aws-secrets-manager.db-creds", "aws-secrets-manager.other-creds"], [], url=moto_url)
    assert r.returncode == 1
    assert ("Secrets 'db-creds (aws-secrets-manager)' and 'other-creds (aws-secrets-manager)' both set "
            "environment variable 'DB_USER'") in r.stderr


def test_existing_variable_needs_allow_override(tmp_path, use_root):
    sources = [{"type": "inline", "id": "x", "options": {"env_vars": {"PRESET": "from-secret"}}}]
    r = _run(tmp_path, sources, ["PRESET"], extra_env={"PRESET": "from-env", "HW_PRESET": "PRESET"})
    assert r.returncode == 1
    assert "sets environment variable 'PRESET', which is already set" in r.stderr
    assert "allow_override=True" in r.stderr
    r = _run(tmp_path, sources, ["PRESET"], extra_env={"PRESET": "from-env", "HW_PRESET": "PRESET",
                                                       "HW_ALLOW_OVERRIDE": "1"})
    assert r.returncode == 0, r.output
    assert _start(use_root, r)["start"].task.data.digests == {"PRESET": _sha("from-secret")}


def test_unknown_backend_type(tmp_path):
    r = _run(tmp_path, ["vault.x"], [])
    assert r.returncode == 1
    assert "There is no secrets backend of type 'vault'" in r.stderr and "aws-secrets-manager" in r.stderr


def test_provider_whose_dependency_is_missing(tmp_path):
    fake = tmp_path / "nobotocore"
    (fake / "boto3").mkdir(parents=True)
    (fake / "boto3" / "__init__.py").write_text("raise ImportError('No module named boto3', name='boto3')\n")
    src = str(Path(__file__).resolve().parents[2] / "src")
    r = _run(tmp_path, ["aws-secrets-manager.db-creds"], [],
             extra_env={"PYTHONPATH": os.pathsep.join([str(fake), src])})
    assert r.returncode == 1
    assert "needs the package 'boto3', which is not installed" in r.stderr
    assert "pip install 'headwater[aws]'" in r.stderr


def test_bad_sources_attribute():
    with pytest.raises(InvalidDecoratorAttribute, match=r"sources must be a list"):
        parse_decospec("secrets:sources=\"aws-secrets-manager.x\"")


@pytest.mark.parametrize("source, expected", [
    ("aws-secrets-manager.db-creds", SecretSpec("aws-secrets-manager", "db-creds", {}, "r0")),
    ("aws-secrets-manager.a.b", SecretSpec("aws-secrets-manager", "a.b", {}, "r0")),
    ("plain", SecretSpec("inline", "plain", {}, "r0")),
    ({"id": "x", "options": {"k": 1}}, SecretSpec("inline", "x", {"k": 1}, "r0")),
    ({"type": "aws-secrets-manager", "id": "x", "role": "r1"}, SecretSpec("aws-secrets-manager", "x", {}, "r1")),
])
def test_parse_source(source, expected):
    assert parse_source(source, role="r0", default_type="inline") == expected


@pytest.mark.parametrize("source, match", [
    (3, r"is a int; a source is a string or a dict"),
    ({"type": "inline"}, r"needs 'id'"),
    ({"id": "x", "options": []}, r"'options' must be a dict"),
    ({"id": "x", "bogus": 1}, r"unknown keys: bogus"),
    (".x", r"must be '<type>.<id>' or '<id>'"),
])
def test_parse_source_errors(source, match):
    with pytest.raises(SecretsError, match=match):
        parse_source(source, role=None, default_type="inline")


def test_get_provider_by_type_name():
    assert get_provider("inline").get_secret_as_dict("x", {"env_vars": {"A": "1"}}) == {"A": "1"}
    with pytest.raises(UnknownSecretsBackendError, match=r"no secrets backend of type 'nope'"):
        get_provider("nope")


def test_variables_are_removed_after_the_task(monkeypatch):
    class Ctx:
        pass

    monkeypatch.setenv("KEEP", "before")
    deco = SecretsDecorator({"sources": [{"type": "inline", "id": "x",
                                          "options": {"env_vars": {"KEEP": "secret", "NEW_ONE": "v"}}}],
                             "allow_override": True}).validate()
    ctx = Ctx()
    deco.hw_task_pre_step(ctx)
    assert os.environ["KEEP"] == "secret" and os.environ["NEW_ONE"] == "v"
    deco.hw_task_finished(ctx)
    assert os.environ["KEEP"] == "before" and "NEW_ONE" not in os.environ


def test_reserved_variable_names_are_refused():
    deco = SecretsDecorator({"sources": [{"type": "inline", "id": "x",
                                          "options": {"env_vars": {"HEADWATER_USER": "eve"}}}]}).validate()
    with pytest.raises(SecretsError, match=r"would set 'HEADWATER_USER'"):
        deco.hw_task_pre_step(object())


def test_errors_about_a_source_never_show_option_values():
    source = {"type": "inline", "id": "x", "options": {"env_vars": {"PW": "hunter2"}}, "rol": "r"}
    with pytest.raises(SecretsError, match=r"unknown keys: rol") as info:
        parse_source(source, role=None, default_type=None)
    assert "hunter2" not in str(info.value) and "hunter2" not in info.value.render()
    spec = parse_source({"type": "inline", "id": "x", "options": {"env_vars": {"PW": "hunter2"}}},
                        role=None, default_type=None)
    assert "hunter2" not in repr(spec) and "hunter2" not in str(spec)


def test_malformed_sources_are_refused_when_the_decorator_is_validated():
    with pytest.raises(SecretsError, match=r"must be '<type>.<id>' or '<id>'"):
        SecretsDecorator({"sources": [".x"]}).validate()
    # A bare id is fine until the task: the default backend type is read there.
    assert SecretsDecorator({"sources": ["just-an-id"]}).validate()
