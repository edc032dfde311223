"""``headwater gc`` on a store of 30 real runs that share artifacts, on the local and the S3
datastore: each retention policy frees exactly the blobs that only removed runs name
(computed here from the records), every surviving artifact still loads, and verify passes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from gcstores import GcStore, artifact_values, build_master, set_env


@pytest.fixture(scope="session")
def gc_master(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("gc-master") / ".headwater"
    return root, build_master(root)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, gc_master: tuple[Path, list[str]], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> GcStore:
    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    s = GcStore.copy_of(gc_master[0], gc_master[1], request.param, tmp_path, server)
    set_env(monkeypatch, s)
    return s


def _created(store: GcStore, run_id: str) -> float:
    return float(store.read_json(f"runs/GcFlow/{run_id}/_run.json")["created_at"])


def _check_after(store: GcStore, kept: set[tuple[str, str]], before: set[tuple[str, str]],
                 gone_blobs: set[str], blobs_before: set[str]) -> None:
    """The store holds exactly the kept runs and blobs; survivors load; verify passes."""
    from headwater import Run, namespace

    assert set(store.all_runs()) == kept
    for flow, run_id in before - kept:
        assert store.sizes(f"runs/{flow}/{run_id}/") == {}, f"{flow}/{run_id} left objects behind"
    assert set(store.blob_sizes()) == blobs_before - gone_blobs
    namespace(None)
    for flow, run_id in sorted(kept):
        if flow != "GcFlow":
            continue
        i = store.ids.index(run_id)
        data = Run(f"GcFlow/{run_id}")["start"].task.data
        want = artifact_values(i)
        np.testing.assert_array_equal(data.shared, want["shared"])
        np.testing.assert_array_equal(data.own, want["own"])
    listed = store.cli("runs", "--all", "--limit", "100")
    assert listed.exit_code == 0, listed.output
    for flow, run_id in before - kept:
        assert run_id not in listed.stdout
    verified = store.cli("verify")
    assert verified.exit_code == 0, verified.output
    assert "No damage." in verified.stdout


POLICIES = {
    "keep-last": (["--keep-last", "5"], lambda ids: {("GcFlow", r) for r in ids[-5:]} | {"other"}),
    "keep-tag": (["--keep-tag", "golden"], lambda ids: {("GcFlow", ids[i]) for i in (3, 13, 23)}),
    "keep-run": (None, lambda ids: {("GcFlow", ids[0]), ("GcFlow", ids[7])}),
    "flow": (["--flow", "GcFlow", "--keep-last", "2"], lambda ids: {("GcFlow", r) for r in ids[-2:]} | {"other"}),
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_each_policy_frees_exactly_the_blobs_only_removed_runs_name(store: GcStore, policy: str) -> None:
    args, kept_of = POLICIES[policy]
    ids = store.ids
    if args is None:
        args = ["--keep-run", f"GcFlow/{ids[0]}", "--keep-run", f"GcFlow/{ids[7]}"]
    before = set(store.all_runs())
    assert len(before) == 32
    kept = kept_of(ids)
    if "other" in kept:
        kept = (kept - {"other"}) | {r for r in before if r[0] == "StoreFaultFlow"}
    gone_blobs, gone_bytes = store.expected_freed(kept)
    assert gone_blobs and gone_bytes > 0
    blobs_before = set(store.blob_sizes())
    records_before = sum(s for k, s in store.sizes("runs/").items() if tuple(k.split("/")[1:3]) not in kept)

    warm = store.cli("runs", "--all", "--limit", "100")  # the index knows every run before gc
    assert warm.exit_code == 0 and store.ids[0] in warm.stdout, warm.output
    dry = store.cli("gc", *args, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    preview = json.loads(dry.stdout)
    assert preview["dry_run"] is True and preview["blob_bytes"] == gone_bytes and preview["blobs"] == len(gone_blobs)
    assert {tuple(p.split("/")) for p in preview["removed_runs"]} == before - kept
    assert set(store.all_runs()) == before  # a dry run changes nothing

    r = store.cli("gc", *args, "--json")
    assert r.exit_code == 0, r.output
    done = json.loads(r.stdout)["result"]
    assert done["blob_bytes"] == gone_bytes and done["blobs_deleted"] == len(gone_blobs)
    assert done["runs_removed"] == len(before - kept)
    assert done["record_bytes"] == records_before
    _check_after(store, kept, before, gone_blobs, blobs_before)


def test_keep_newer_than_counts_back_from_now(store: GcStore) -> None:
    from headwater.meta import open_index
    from headwater.store.gc import Retention, plan
    from headwater.store.gc import _sweep as sweep

    ids = store.ids
    before = set(store.all_runs())
    # Everything here is seconds old: 30 days keeps every run.
    r = store.cli("gc", "--keep-newer-than", "30d")
    assert r.exit_code == 0, r.output
    assert "Removed 0 runs" in r.stdout and set(store.all_runs()) == before
    # Seen from just after the last run, keep the runs started since run 20.
    now = max(_created(store, i) for i in ids) + 60.0
    age = now - _created(store, ids[20]) + 1e-3
    kept = {("GcFlow", i) for i in ids[20:]} | {r for r in before if r[0] == "StoreFaultFlow"}
    gone_blobs, gone_bytes = store.expected_freed(kept)
    blobs_before = set(store.blob_sizes())
    objects = store.objects()
    the_plan = plan(objects, Retention(keep_newer_than=age), now=now)
    assert {(r.flow, r.run_id) for r in the_plan.removed} == before - kept
    with open_index(store.root) as index:
        result = sweep(objects, the_plan, index=index)
    assert result.blob_bytes == gone_bytes and result.blobs_deleted == len(gone_blobs)
    _check_after(store, kept, before, gone_blobs, blobs_before)


def test_policies_combine_a_run_stays_when_any_policy_keeps_it(store: GcStore) -> None:
    ids = store.ids
    r = store.cli("gc", "--flow", "GcFlow", "--keep-last", "1", "--keep-tag", "golden",
                  "--keep-run", f"GcFlow/{ids[0]}", "--json")
    assert r.exit_code == 0, r.output
    kept = json.loads(r.stdout)["kept_runs"]
    assert kept == {f"GcFlow/{ids[-1]}": "--keep-last", f"GcFlow/{ids[3]}": "--keep-tag",
                    f"GcFlow/{ids[13]}": "--keep-tag", f"GcFlow/{ids[23]}": "--keep-tag",
                    f"GcFlow/{ids[0]}": "--keep-run",
                    **{f"StoreFaultFlow/{i}": "not in --flow" for i in store.run_ids("StoreFaultFlow")}}


def test_a_second_gc_frees_nothing_and_removes_no_run(store: GcStore) -> None:
    assert store.cli("gc", "--keep-last", "3").exit_code == 0
    again = store.cli("gc", "--keep-last", "3", "--json")
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)["result"]
    assert result["runs_removed"] == 0 and result["blobs_deleted"] == 0 and result["blob_bytes"] == 0
    # The removed runs' pins went with the first gc; the kept runs' stay PIN_GRACE after they ended.
    pinned = {tuple(k.split("/")[2:4]) for k in store.sizes("pins/")}
    kept = {("GcFlow", i) for i in store.run_ids("GcFlow")} | {("StoreFaultFlow", i) for i in store.run_ids("StoreFaultFlow")}
    assert pinned and pinned <= kept


def test_text_report_names_the_runs_and_the_bytes(store: GcStore) -> None:
    ids = store.ids
    r = store.cli("gc", "--flow", "GcFlow", "--keep-last", "28", "--dry-run")
    assert r.exit_code == 0, r.output
    assert f"would remove GcFlow/{ids[0]}\nwould remove GcFlow/{ids[1]}\n" in r.stdout
    assert "Would remove 2 runs of " in r.stdout and "would be freed." in r.stdout
    r = store.cli("gc", "--flow", "GcFlow", "--keep-last", "28")
    assert r.exit_code == 0, r.output
    assert f"removed GcFlow/{ids[0]}\n" in r.stdout and "Removed 2 runs of " in r.stdout and "freed " in r.stdout


@pytest.mark.parametrize("args, message, code", [
    ([], "headwater gc needs at least one retention policy; without one it would delete every run.", 1),
    (["--keep-newer-than", "soon"], "--keep-newer-than 'soon' is not a duration.", 1),
    (["--keep-run", "GcFlow"], "--keep-run expects FLOW/RUN_ID, got 'GcFlow'.", 1),
    (["--keep-run", "GcFlow/123"], "Run 'GcFlow/123' does not exist in the datastore", 1),
    (["--keep-last", "1", "--flow", "NoFlow"], "Flow 'NoFlow' has no runs in the datastore", 1),
    (["--keep-last", "-1"], "Invalid value for '--keep-last'", 2),
    (["--keep-last", "0"], "--keep-last 0 would keep no run of any flow.", 1),
])
def test_errors_name_the_problem_and_change_nothing(store: GcStore, args: list[str], message: str,
                                                    code: int) -> None:
    before = store.sizes()
    r = store.cli("gc", *args)
    assert r.exit_code == code, r.output
    assert message in r.output
    if code == 1 and not args:
        assert "Hint: Name what to keep: --keep-last N" in r.output
    assert store.sizes() == before


def test_no_datastore_is_an_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from headwater.cli.main import cli

    r = CliRunner().invoke(cli, ["gc", "--keep-last", "1", "--datastore-root", str(tmp_path / "none")])
    assert r.exit_code == 1 and "There is no datastore at" in r.output


def test_durations() -> None:
    from headwater.store.gc import GcError, parse_duration

    assert parse_duration("30d") == 30 * 86400 and parse_duration("12h") == 12 * 3600
    assert parse_duration("90m") == 5400 and parse_duration("1d12h") == 1.5 * 86400
    assert parse_duration("45s") == 45 and parse_duration("2w") == 14 * 86400
    assert parse_duration("1d 12h") == parse_duration(" 1d  12h ") == 1.5 * 86400
    for bad in ("", "d", "30", "30x", "1d 2"):
        with pytest.raises(GcError, match="is not a duration"):
            parse_duration(bad)


def test_a_deployed_templates_code_package_is_a_root_gc_keeps(s3_env, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`argo-workflows create` stores the code package that only the template (outside the store)
    names; it records a root for it, and gc keeps it however little else it keeps."""
    import os
    import subprocess
    import sys

    from flowrun import FLOWS, USER
    from headwater.cli.main import cli
    from click.testing import CliRunner

    root = f"s3://{s3_env.new_bucket()}/argo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({**s3_env.env(), "HEADWATER_USER": USER, "HEADWATER_HOME": str(tmp_path / "home"),
                "HEADWATER_DATASTORE_ROOT": root})
    p = subprocess.run([sys.executable, str(FLOWS / "linear_flow.py"), "argo-workflows", "create", "--only-json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    key = p.stdout.split('"--package-key",')[1].split('"')[1]
    s3 = s3_env.boto3()
    bucket = root.split("/")[2]
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="argo/").get("Contents", [])}
    assert f"argo/blobs/{key[:2]}/{key}" in listed
    (root_key,) = [k for k in listed if k.startswith("argo/roots/")]
    assert root_key.startswith("argo/roots/argo-workflows/") and root_key.endswith(f"/{key}")
    r = subprocess.run([sys.executable, str(FLOWS / "linear_flow.py"), "run"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    gc = CliRunner().invoke(cli, ["gc", "--keep-newer-than", "0s"], env=env)
    assert gc.exit_code == 0, gc.output
    assert "Removed 1 run" in gc.stdout
    # A day later, the pin `create` set as it stored the package has expired: only the root keeps it.
    from headwater.store import open_object_store
    from headwater.store.gc import Retention, plan
    from headwater.store.gc import _sweep as sweep
    from headwater.store.pins import PIN_GRACE

    monkeypatch.setenv("HEADWATER_HOME", env["HEADWATER_HOME"])
    objects = open_object_store(root)
    later = time.time() + PIN_GRACE + 1
    result = sweep(objects, plan(objects, Retention(keep_newer_than=0.0)), clock=lambda: later, lease_seconds=1e12)
    assert result.pins_removed >= 1 and result.blobs_spared == 0
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="argo/blobs/").get("Contents", [])}
    assert listed == {f"argo/blobs/{key[:2]}/{key}"}  # the run's blobs went; the template's package stayed
