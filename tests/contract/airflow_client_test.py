#!/usr/bin/env python3
"""Drives a running Updraft server through the official Airflow Python client
(apache-airflow-client 3.x, see requirements.txt). Prints `ok <step>` per step; on the first
failure prints what went wrong (status and body for HTTP errors) and exits 1.

    contract-venv/bin/python tests/contract/airflow_client_test.py \
        --base-url http://127.0.0.1:8080 --username admin --password secret [--dag-id contract_demo]

The DAG (tests/contract/dags/contract_demo.yaml) must be in the server's DAG folder.
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timezone

import pydantic
from airflow_client.client import (ApiClient, BackfillApi, Configuration, ConnectionApi, DAGApi,
                                   DagRunApi, EventLogApi, ImportErrorApi, MonitorApi, PoolApi,
                                   TaskInstanceApi, VariableApi, VersionApi, XComApi)
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models import (
    ActionsInner2, ActionsInner3, ActionsInner4, BackfillPostBody, BulkBodyConnectionBody,
    BulkBodyPoolBody, BulkBodyVariableBody, BulkCreateActionConnectionBody,
    BulkCreateActionPoolBody, BulkCreateActionVariableBody, BulkDeleteActionConnectionBody,
    BulkDeleteActionPoolBody, BulkDeleteActionVariableBody,
    ClearTaskInstancesBody, ClearTaskInstancesBodyTaskIdsInner, ConnectionBody, DAGPatchBody,
    DAGRunClearBody, DAGRunPatchBody, DAGRunResponse, DAGRunsBatchBody, DagRunMutableStates,
    EntitiesInner2, EntitiesInner3, EntitiesInner4, PatchTaskInstanceBody, PoolBody,
    PoolPatchBody, TaskInstancesBatchBody, TaskInstanceState, TriggerDAGRunPostBody,
    VariableBody, XComCreateBody, XComUpdateBody)

MASK = "***"


def fail(msg):
    print(f"FAIL {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


@contextmanager
def step(name):
    """One contract step: any client error, model mismatch or failed assert ends the run."""
    try:
        yield
    except ApiException as e:
        fail(f"{name}: HTTP {e.status} {e.reason}\n{e.body}")
    except pydantic.ValidationError as e:
        fail(f"{name}: pydantic validation failed (usually: the response does not match the client's model)\n{e}")
    except AssertionError as e:
        fail(f"{name}: {e}")
    except Exception as e:  # connection refused, a non-JSON body, ...
        fail(f"{name}: {type(e).__name__}: {e}")
    print(f"ok {name}", flush=True)


def get_token(base, username, password):
    req = urllib.request.Request(
        f"{base}/auth/token", method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201, f"POST /auth/token answered {r.status}, expected 201"
            body = json.load(r)
    except urllib.error.HTTPError as e:
        fail(f"auth token: HTTP {e.code}\n{e.read().decode(errors='replace')}")
    assert isinstance(body.get("access_token"), str), f"no access_token in {body}"
    return body["access_token"]


def deleted(call):
    """Runs a *_with_http_info delete and checks the 204."""
    r = call()
    assert r.status_code == 204, f"expected 204, got {r.status_code}"
    assert r.data is None, f"a 204 with a body the client parsed: {r.data!r}"


def not_found(call):
    """The call must raise the client's ApiException with status 404."""
    try:
        got = call()
    except ApiException as e:
        assert e.status == 404, f"expected 404, got {e.status}: {e.body}"
        return
    raise AssertionError(f"expected 404, got {got!r}")


def wait_run(runs, dag_id, run_id, limit=60):
    """Polls a run until it is over; returns it."""
    deadline = time.monotonic() + limit
    while (run := runs.get_dag_run(dag_id, run_id)).state.value not in ("success", "failed"):
        assert time.monotonic() < deadline, f"run {run_id} still {run.state.value} after {limit} s"
        time.sleep(0.5)
    return run


def trigger(runs, dag_id, conf):
    body = TriggerDAGRunPostBody(conf=conf, logical_date=datetime.now(timezone.utc))
    run = runs.trigger_dag_run(dag_id, body)
    assert run is not None, "trigger answered a status the client does not expect (200)"
    assert run.dag_id == dag_id and run.conf == conf, run
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True, help="server root, without /api/v2")
    ap.add_argument("--username", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--dag-id", default="contract_demo")
    args = ap.parse_args()
    base, dag_id = args.base_url.rstrip("/"), args.dag_id

    with step("auth token"):
        token = get_token(base, args.username, args.password)
    # The client's paths all start with /api/v2, so host is the bare server root.
    client = ApiClient(Configuration(host=base, access_token=token))
    dags, runs, tis = DAGApi(client), DagRunApi(client), TaskInstanceApi(client)
    variables, conns, pools = VariableApi(client), ConnectionApi(client), PoolApi(client)

    with step("version"):
        v = VersionApi(client).get_version()
        assert v.version, v
    with step("health"):
        h = MonitorApi(client).get_health()
        assert h.metadatabase.status == "healthy", h

    # --- DAGs ---------------------------------------------------------------------------
    with step("wait for the DAG"):
        deadline = time.monotonic() + 30
        while dag_id not in [d.dag_id for d in dags.get_dags(limit=100).dags]:
            assert time.monotonic() < deadline, f"{dag_id} not listed after 30 s"
            time.sleep(0.5)
    with step("list DAGs"):
        page = dags.get_dags(dag_id_pattern=dag_id, limit=10, offset=0)
        assert page.total_entries >= 1 and page.dags[0].dag_id == dag_id, page
    with step("get DAG"):
        d = dags.get_dag(dag_id)
        assert d.dag_id == dag_id and not d.is_stale, d
    with step("get DAG details"):
        d = dags.get_dag_details(dag_id)
        assert d.dag_id == dag_id and "contract" in [t.name for t in d.tags], d
    for paused in (False, True, False):
        with step(f"patch DAG is_paused={paused}"):
            d = dags.patch_dag(dag_id, DAGPatchBody(is_paused=paused), update_mask=["is_paused"])
            assert d is not None and d.is_paused is paused, d
            assert dags.get_dag(dag_id).is_paused is paused
    with step("list DAGs by tag, order_by=-dag_id"):
        page = dags.get_dags(tags=["contract"], order_by=["-dag_id"], limit=100)
        ids = [d.dag_id for d in page.dags]
        assert dag_id in ids and ids == sorted(ids, reverse=True), ids
        assert all("contract" in [t.name for t in d.tags] for d in page.dags), page
        assert page.total_entries == len(ids), page
        page = dags.get_dags(tags=["no-such-tag-contract"], limit=100)
        assert dag_id not in [d.dag_id for d in page.dags] and page.total_entries == 0, page
    for paused in (True, False):
        with step(f"patch DAGs (bulk, dag_id_pattern) is_paused={paused}"):
            page = dags.patch_dags(DAGPatchBody(is_paused=paused), update_mask=["is_paused"],
                                   dag_id_pattern=dag_id)
            assert page is not None, "patch_dags answered a status the client does not expect"
            got = {d.dag_id: d.is_paused for d in page.dags}
            assert got.get(dag_id) is paused, got
            assert dags.get_dag(dag_id).is_paused is paused

    # --- a run ----------------------------------------------------------------------------
    with step("trigger DAG run"):
        run = trigger(runs, dag_id, {"x": 1})
        assert run.run_type.value == "manual" and run.state.value in ("queued", "running"), run
        run_id = run.dag_run_id
    with step("run finishes"):
        run = wait_run(runs, dag_id, run_id)
        assert run.state.value == "success", f"run ended {run.state.value}"
        assert run.start_date and run.end_date, run
    with step("list DAG runs"):
        page = runs.get_dag_runs(dag_id, limit=10, order_by=["-run_after"])
        assert run_id in [r.dag_run_id for r in page.dag_runs], page
    with step("list DAG runs for ~"):
        page = runs.get_dag_runs("~", state=["success"])
        assert run_id in [r.dag_run_id for r in page.dag_runs], page
    with step("patch DAG run note"):
        r = runs.patch_dag_run(dag_id, run_id, DAGRunPatchBody(note="contract note"),
                               update_mask=["note"])
        assert r.dag_run_id == run_id and r.note == "contract note", r
        assert r.state.value == "success", r
        assert runs.get_dag_run(dag_id, run_id).note == "contract note"
    with step("DAG runs batch (dag_ids)"):
        page = runs.get_list_dag_runs_batch("~", DAGRunsBatchBody(dag_ids=[dag_id]))
        assert run_id in [r.dag_run_id for r in page.dag_runs], page
        assert {r.dag_id for r in page.dag_runs} == {dag_id}, page
        assert page.total_entries is None or page.total_entries >= len(page.dag_runs), page
    with step("trigger a second run"):
        run2_id = trigger(runs, dag_id, {"x": 2}).dag_run_id
        run = wait_run(runs, dag_id, run2_id)
        assert run.state.value == "success", f"second run ended {run.state.value}"
    with step("clear DAG run (dry run)"):
        # Read raw: client 3.3.2 cannot deserialize this answer from any server, Airflow's
        # included: each full TaskInstanceResponse also matches the oneOf's NewTaskResponse
        # ("Multiple matches found when deserializing ... TaskInstancesInner").
        r = runs.clear_dag_run_without_preload_content(dag_id, run2_id, DAGRunClearBody(dry_run=True))
        assert r.status == 200, (r.status, r.data[:500])
        body = json.loads(r.data)
        would = {t["task_id"] for t in body["task_instances"]}
        assert would == {"echo", "compute"}, would
        assert body["total_entries"] == len(body["task_instances"]), body
        assert runs.get_dag_run(dag_id, run2_id).state.value == "success", "dry run changed the run"
    with step("clear DAG run"):
        r = runs.clear_dag_run(dag_id, run2_id, DAGRunClearBody(dry_run=False))
        r = r.actual_instance
        assert isinstance(r, DAGRunResponse), r
        assert r.dag_run_id == run2_id and r.state.value in ("queued", "running"), r
    with step("cleared run succeeds again"):
        run = wait_run(runs, dag_id, run2_id)
        assert run.state.value == "success", f"cleared run ended {run.state.value}"
        ti = tis.get_task_instance(dag_id, run2_id, "echo")
        assert ti.try_number == 2 and ti.state.value == "success", ti
    with step("patch a third run to failed"):
        run3_id = trigger(runs, dag_id, {"x": 3}).dag_run_id
        r = runs.patch_dag_run(dag_id, run3_id, DAGRunPatchBody(state=DagRunMutableStates.FAILED),
                               update_mask=["state"])
        assert r.dag_run_id == run3_id and r.state.value == "failed", r
        assert runs.get_dag_run(dag_id, run3_id).state.value == "failed"
    with step("delete DAG run"):
        deleted(lambda: runs.delete_dag_run_with_http_info(dag_id, run3_id))
        not_found(lambda: runs.get_dag_run(dag_id, run3_id))

    # --- task instances, logs, XCom ---------------------------------------------------------
    with step("task instances of the run"):
        page = tis.get_task_instances(dag_id, run_id)
        states = {t.task_id: t.state.value for t in page.task_instances}
        assert states == {"echo": "success", "compute": "success"}, states
    with step("task instances for ~/~"):
        page = tis.get_task_instances("~", "~", dag_id_pattern=dag_id, limit=50)
        assert {(t.dag_run_id, t.task_id) for t in page.task_instances} >= {
            (run_id, "echo"), (run_id, "compute")}, page
    with step("get task instance"):
        ti = tis.get_task_instance(dag_id, run_id, "echo")
        assert ti.task_id == "echo" and ti.try_number == 1 and ti.map_index == -1, ti
    with step("task instance tries"):
        tries = tis.get_task_instance_tries(dag_id, run_id, "echo")
        assert tries.total_entries >= 1 and tries.task_instances[0].try_number == 1, tries
    with step("task instances batch"):
        page = tis.get_task_instances_batch("~", "~", TaskInstancesBatchBody(
            dag_ids=[dag_id], dag_run_ids=[run_id]))
        states = {t.task_id: t.state.value for t in page.task_instances}
        assert states == {"echo": "success", "compute": "success"}, states
        assert {t.dag_run_id for t in page.task_instances} == {run_id}, page
    with step("patch task instance dry run new_state=success"):
        page = tis.patch_task_instance_dry_run(dag_id, run_id, "echo", PatchTaskInstanceBody(
            new_state=TaskInstanceState.SUCCESS))
        # Airflow lists only the task instances whose state would change: none, echo succeeded.
        assert {t.task_id for t in page.task_instances} <= {"echo"}, page
    with step("patch task instance dry run new_state=failed"):
        page = tis.patch_task_instance_dry_run(dag_id, run_id, "echo", PatchTaskInstanceBody(
            new_state=TaskInstanceState.FAILED))
        assert [t.task_id for t in page.task_instances] == ["echo"], page
        assert tis.get_task_instance(dag_id, run_id, "echo").state.value == "success", \
            "the dry run changed the task instance"
    with step("clear task instances (dry run)"):
        page = tis.post_clear_task_instances(dag_id, ClearTaskInstancesBody(
            dry_run=True, dag_run_id=run_id, only_failed=False,
            task_ids=[ClearTaskInstancesBodyTaskIdsInner("echo")]))
        assert page is not None, "clearTaskInstances answered a status the client does not expect"
        assert [(t.dag_run_id, t.task_id) for t in page.task_instances] == [(run_id, "echo")], page
        assert tis.get_task_instance(dag_id, run_id, "echo").state.value == "success", \
            "the dry run cleared the task instance"
    with step("task instance try details (try 1)"):
        t = tis.get_task_instance_try_details(dag_id, run_id, "echo", 1)
        assert (t.task_id, t.dag_run_id, t.try_number) == ("echo", run_id, 1), t
        assert t.state.value == "success", t
    with step("log of try 1 (JSON)"):
        log = tis.get_log(dag_id, run_id, "echo", 1, full_content=True)
        lines = log.content.actual_instance
        text = "\n".join(m if isinstance(m, str) else m.event for m in lines)
        assert "x=1" in text, f"'x=1' not in the log:\n{text}"
    with step("log continuation token"):
        log = tis.get_log(dag_id, run_id, "echo", 1)
        if log.continuation_token:  # reading on from the token must work (and may be empty)
            more = tis.get_log(dag_id, run_id, "echo", 1, token=log.continuation_token)
            assert more.content is not None, more
    with step("log by continuation tokens"):
        texts, token, calls = [], None, 0
        while True:
            log = tis.get_log(dag_id, run_id, "echo", 1, token=token)
            calls += 1
            texts += [m if isinstance(m, str) else m.event for m in log.content.actual_instance]
            token = log.continuation_token
            if token is None:
                break
            assert calls < 50, f"still a continuation token after {calls} reads"
        text = "\n".join(texts)
        assert "x=1" in text, f"'x=1' not in the log read in {calls} parts:\n{text}"
    with step("log of try 1 (text)"):
        # _headers, not accept=: the client would then send both its own Accept and ours.
        r = tis.get_log_without_preload_content(dag_id, run_id, "echo", 1,
                                                _headers={"Accept": "text/plain"})
        assert r.status == 200 and "x=1" in r.data.decode(), (r.status, r.data[:500])
    with step("XCom list"):
        page = XComApi(client).get_xcom_entries(dag_id, run_id, "compute")
        assert "return_value" in [x.key for x in page.xcom_entries], page
    with step("XCom entry"):
        x = XComApi(client).get_xcom_entry(dag_id, "compute", run_id, "return_value").actual_instance
        assert x.value == {"x": 1, "doubled": 2} or "doubled" in str(x.value), x
    xcoms = XComApi(client)
    with step("create XCom entry"):
        r = xcoms.create_xcom_entry_with_http_info(
            dag_id, "compute", run_id, XComCreateBody(key="contract_key", value={"a": 1}))
        assert r.status_code == 201, f"expected 201, got {r.status_code}"
        x = r.data
        assert x is not None and (x.key, x.task_id, x.run_id) == (
            "contract_key", "compute", run_id), x
        assert x.value == {"a": 1}, x
    with step("get XCom entry (default, deserialize, stringify)"):
        x = xcoms.get_xcom_entry(dag_id, "compute", run_id, "contract_key").actual_instance
        assert x.key == "contract_key" and x.value == {"a": 1}, x
        x = xcoms.get_xcom_entry(dag_id, "compute", run_id, "contract_key",
                                 deserialize=True).actual_instance
        assert x.value == {"a": 1}, x
        x = xcoms.get_xcom_entry(dag_id, "compute", run_id, "contract_key",
                                 stringify=True).actual_instance
        assert isinstance(x.value, str) and "a" in x.value and "1" in x.value, x
        x = xcoms.get_xcom_entry(dag_id, "compute", run_id, "contract_key",
                                 deserialize=True, stringify=True).actual_instance
        assert isinstance(x.value, str) and "a" in x.value and "1" in x.value, x
    with step("update XCom entry"):
        x = xcoms.update_xcom_entry(dag_id, "compute", run_id, "contract_key",
                                    XComUpdateBody(value={"a": 2}))
        assert x is not None and x.value == {"a": 2}, x
        x = xcoms.get_xcom_entry(dag_id, "compute", run_id, "contract_key").actual_instance
        assert x.value == {"a": 2}, x
    with step("delete XCom entry"):
        deleted(lambda: xcoms.delete_xcom_entry_with_http_info(
            dag_id, "compute", run_id, "contract_key"))
        not_found(lambda: xcoms.get_xcom_entry(dag_id, "compute", run_id, "contract_key"))

    # --- variables ------------------------------------------------------------------------------
    with step("create variables"):
        v = variables.post_variable(VariableBody(key="plain_var", value="plain", description="d"))
        assert v is not None and v.value == "plain", v  # None: not the 201 the client expects
        v = variables.post_variable(VariableBody(key="db_password", value="hunter2-secret"))
        assert v is not None and v.value == MASK, v
    with step("get variables"):
        assert variables.get_variable("plain_var").value == "plain"
        v = variables.get_variable("db_password")
        assert v.value == MASK, f"db_password came back as {v.value!r}, expected {MASK}"
    with step("patch variable"):
        v = variables.patch_variable("plain_var", VariableBody(key="plain_var", value="plain2"))
        assert v.value == "plain2", v
    with step("list variables"):
        page = variables.get_variables(limit=100)
        values = {v.key: v.value for v in page.variables}
        assert values.get("plain_var") == "plain2" and values.get("db_password") == MASK, values
    with step("delete variables"):
        for key in ("plain_var", "db_password"):
            deleted(lambda: variables.delete_variable_with_http_info(key))
    with step("bulk variables: create two, delete one"):
        variables.post_variable(VariableBody(key="bulk_old", value="old"))
        r = variables.bulk_variables(BulkBodyVariableBody(actions=[
            ActionsInner4(BulkCreateActionVariableBody(action="create", entities=[
                VariableBody(key="bulk_a", value="A"), VariableBody(key="bulk_b", value="B")])),
            ActionsInner4(BulkDeleteActionVariableBody(action="delete", entities=[
                EntitiesInner4("bulk_old")])),
        ]))
        assert sorted(r.create.success) == ["bulk_a", "bulk_b"] and not r.create.errors, r
        assert r.delete.success == ["bulk_old"] and not r.delete.errors, r
        assert variables.get_variable("bulk_a").value == "A"
        assert variables.get_variable("bulk_b").value == "B"
        not_found(lambda: variables.get_variable("bulk_old"))
    with step("bulk variables: delete"):
        r = variables.bulk_variables(BulkBodyVariableBody(actions=[
            ActionsInner4(BulkDeleteActionVariableBody(action="delete", entities=[
                EntitiesInner4("bulk_a"), EntitiesInner4("bulk_b")]))]))
        assert sorted(r.delete.success) == ["bulk_a", "bulk_b"] and not r.delete.errors, r
        not_found(lambda: variables.get_variable("bulk_a"))

    # --- connections ----------------------------------------------------------------------------
    cid = "contract_conn"
    with step("create connection"):
        c = conns.post_connection(ConnectionBody(
            connection_id=cid, conn_type="http", host="example.com", login="me", port=443,
            password="s3cret-pw", extra=json.dumps({"api_key": "k-123", "region": "eu"})))
        assert c is not None and c.connection_id == cid, c
    with step("get connection (masked)"):
        c = conns.get_connection(cid)
        assert c.password == MASK, f"password came back as {c.password!r}"
        extra = json.loads(c.extra)
        assert extra == {"api_key": MASK, "region": "eu"}, extra
        assert (c.host, c.login, c.port) == ("example.com", "me", 443), c
    with step("patch connection with the masked values"):
        c.extra = json.dumps({**extra, "region": "us"})
        c = conns.patch_connection(cid, ConnectionBody.from_dict(c.to_dict()))
        assert c.password == MASK and json.loads(c.extra) == {"api_key": MASK, "region": "us"}, c
    with step("list connections"):
        page = conns.get_connections(connection_id_pattern="contract", limit=10)
        assert cid in [c.connection_id for c in page.connections], page
    with step("delete connection"):
        deleted(lambda: conns.delete_connection_with_http_info(cid))
    with step("bulk connections: create"):
        r = conns.bulk_connections(BulkBodyConnectionBody(actions=[
            ActionsInner2(BulkCreateActionConnectionBody(action="create", entities=[
                ConnectionBody(connection_id="bulk_c1", conn_type="http", host="a.example"),
                ConnectionBody(connection_id="bulk_c2", conn_type="postgres", password="pw")]))]))
        assert sorted(r.create.success) == ["bulk_c1", "bulk_c2"] and not r.create.errors, r
        assert conns.get_connection("bulk_c1").host == "a.example"
        assert conns.get_connection("bulk_c2").password == MASK
    with step("bulk connections: delete"):
        r = conns.bulk_connections(BulkBodyConnectionBody(actions=[
            ActionsInner2(BulkDeleteActionConnectionBody(action="delete", entities=[
                EntitiesInner2("bulk_c1"), EntitiesInner2("bulk_c2")]))]))
        assert sorted(r.delete.success) == ["bulk_c1", "bulk_c2"] and not r.delete.errors, r
        not_found(lambda: conns.get_connection("bulk_c1"))

    # --- pools ------------------------------------------------------------------------------------
    with step("list pools"):
        page = pools.get_pools()
        assert "default_pool" in [p.name for p in page.pools], page
    with step("create pool"):
        p = pools.post_pool(PoolBody(name="contract_pool", slots=3, description="contract"))
        assert p is not None and (p.name, p.slots, p.open_slots) == ("contract_pool", 3, 3), p
    with step("get pool"):
        assert pools.get_pool("contract_pool").slots == 3
    with step("patch pool slots"):
        p = pools.patch_pool("contract_pool", PoolPatchBody(slots=5), update_mask=["slots"])
        assert p.slots == 5 and p.description == "contract", p
    with step("delete pool"):
        deleted(lambda: pools.delete_pool_with_http_info("contract_pool"))
    with step("bulk pools: create"):
        r = pools.bulk_pools(BulkBodyPoolBody(actions=[
            ActionsInner3(BulkCreateActionPoolBody(action="create", entities=[
                PoolBody(name="bulk_p1", slots=1), PoolBody(name="bulk_p2", slots=2)]))]))
        assert sorted(r.create.success) == ["bulk_p1", "bulk_p2"] and not r.create.errors, r
        assert pools.get_pool("bulk_p2").slots == 2
    with step("bulk pools: delete"):
        r = pools.bulk_pools(BulkBodyPoolBody(actions=[
            ActionsInner3(BulkDeleteActionPoolBody(action="delete", entities=[
                EntitiesInner3("bulk_p1"), EntitiesInner3("bulk_p2")]))]))
        assert sorted(r.delete.success) == ["bulk_p1", "bulk_p2"] and not r.delete.errors, r
        not_found(lambda: pools.get_pool("bulk_p1"))

    # --- backfills (contract_demo is @daily) ---------------------------------------------------
    backfills = BackfillApi(client)
    bf_body = BackfillPostBody(dag_id=dag_id, from_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
                               to_date=datetime(2024, 1, 3, tzinfo=timezone.utc), max_active_runs=1)
    with step("backfill dry run"):
        page = backfills.create_backfill_dry_run(bf_body)
        dates = [b.logical_date for b in page.backfills]
        want = [datetime(2024, 1, d, tzinfo=timezone.utc) for d in (1, 2, 3)]
        assert dates == want and page.total_entries == 3, page
        assert backfills.list_backfills(dag_id).total_entries == 0, "the dry run made a backfill"
    with step("create backfill"):
        b = backfills.create_backfill(bf_body)
        assert b is not None, "create_backfill answered a status the client does not expect"
        assert b.dag_id == dag_id and b.completed_at is None and b.is_paused is False, b
        assert (b.from_date, b.to_date, b.max_active_runs) == (
            bf_body.from_date, bf_body.to_date, 1), b
        backfill_id = b.id
    with step("pause backfill"):
        b = backfills.pause_backfill(backfill_id)
        assert b.id == backfill_id and b.is_paused is True, b
    with step("list backfills"):
        page = backfills.list_backfills(dag_id)
        assert backfill_id in [b.id for b in page.backfills], page
        assert page.total_entries == len(page.backfills), page
    with step("get backfill"):
        b = backfills.get_backfill(backfill_id)
        assert b.id == backfill_id and b.dag_id == dag_id and b.is_paused is True, b
    with step("unpause backfill"):
        b = backfills.unpause_backfill(backfill_id)
        assert b.id == backfill_id and b.is_paused is False, b
    with step("cancel backfill"):
        b = backfills.cancel_backfill(backfill_id)
        assert b.id == backfill_id and b.completed_at is not None, b
        assert backfills.get_backfill(backfill_id).completed_at is not None

    # --- import errors, audit log -----------------------------------------------------------------
    with step("import errors"):
        page = ImportErrorApi(client).get_import_errors(limit=10)
        assert page.total_entries >= len(page.import_errors), page
    with step("event logs"):
        page = EventLogApi(client).get_event_logs(limit=50, order_by=["-when"])
        assert page.total_entries >= len(page.event_logs), page
    with step("event logs filtered by event, and one by id"):
        page = EventLogApi(client).get_event_logs(event="trigger_dag_run", limit=100)
        assert {e.event for e in page.event_logs} == {"trigger_dag_run"}, page
        mine = [e for e in page.event_logs if e.owner == args.username and e.dag_id == dag_id]
        assert mine, f"no trigger_dag_run of {dag_id} by {args.username}: {page}"
        e = EventLogApi(client).get_event_log(mine[0].event_log_id)
        assert (e.event_log_id, e.event, e.owner, e.dag_id) == (
            mine[0].event_log_id, "trigger_dag_run", args.username, dag_id), e
    print("all contract steps passed")


if __name__ == "__main__":
    main()
