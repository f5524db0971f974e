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
from airflow_client.client import (ApiClient, Configuration, ConnectionApi, DAGApi, DagRunApi,
                                   EventLogApi, ImportErrorApi, MonitorApi, PoolApi,
                                   TaskInstanceApi, VariableApi, VersionApi, XComApi)
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models import (ConnectionBody, DAGPatchBody, PoolBody, PoolPatchBody,
                                          TriggerDAGRunPostBody, VariableBody)

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

    # --- a run ----------------------------------------------------------------------------
    with step("trigger DAG run"):
        body = TriggerDAGRunPostBody(conf={"x": 1}, logical_date=datetime.now(timezone.utc))
        run = runs.trigger_dag_run(dag_id, body)
        assert run is not None, "trigger answered a status the client does not expect (200)"
        assert run.dag_id == dag_id and run.conf == {"x": 1}, run
        assert run.run_type.value == "manual" and run.state.value in ("queued", "running"), run
        run_id = run.dag_run_id
    with step("run finishes"):
        deadline = time.monotonic() + 60
        while (run := runs.get_dag_run(dag_id, run_id)).state.value not in ("success", "failed"):
            assert time.monotonic() < deadline, f"run still {run.state.value} after 60 s"
            time.sleep(0.5)
        assert run.state.value == "success", f"run ended {run.state.value}"
        assert run.start_date and run.end_date, run
    with step("list DAG runs"):
        page = runs.get_dag_runs(dag_id, limit=10, order_by=["-run_after"])
        assert run_id in [r.dag_run_id for r in page.dag_runs], page
    with step("list DAG runs for ~"):
        page = runs.get_dag_runs("~", state=["success"])
        assert run_id in [r.dag_run_id for r in page.dag_runs], page

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

    # --- import errors, audit log -----------------------------------------------------------------
    with step("import errors"):
        page = ImportErrorApi(client).get_import_errors(limit=10)
        assert page.total_entries >= len(page.import_errors), page
    with step("event logs"):
        page = EventLogApi(client).get_event_logs(limit=50, order_by=["-when"])
        assert page.total_entries >= len(page.event_logs), page
    print("all contract steps passed")


if __name__ == "__main__":
    main()
