"""Airflow 3's own Python client (apache-airflow-client 3.x, /api/v2) drives
our REST API as a user's script would, with a bearer token from
POST /auth/token. Its pydantic models check every answer (a wrong type, a
missing required field or an unknown enum value raises).

Usage: airflow_client_v2.py BASE_URL USER PASSWORD

Prints one JSON object of what the calls returned; TestAirflowClientV2 checks it.
"""
import base64
import json
import urllib.error
import urllib.request

import airflow_client.client as client
from airflow_client.client.api import dag_api, dag_run_api, monitor_api, task_instance_api
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.dag_run_clear_body import DAGRunClearBody
from airflow_client.client.models.dag_run_patch_body import DAGRunPatchBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

from airflow_common import DAG_ID, TASK_ID, base, done, out, password, record_dags, status, user, wait_state


def token():
    req = urllib.request.Request(base + "/auth/token", method="POST",
                                 data=json.dumps({"username": user, "password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        out["token_status"] = resp.status
        return json.load(resp)["access_token"]


def raw_status(method, path, body, tok, basic=False):
    """The status of a call the client's models would not let through."""
    headers = {"Content-Type": "application/json"}
    if tok:
        headers["Authorization"] = "Bearer " + tok
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    req = urllib.request.Request(base + path, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


with client.ApiClient(client.Configuration(host=base)) as anon:
    status("no_token", lambda: dag_api.DAGApi(anon).get_dags())
    out["health"] = monitor_api.MonitorApi(anon).get_health().metadatabase.status

with client.ApiClient(client.Configuration(host=base, access_token=token())) as api:
    dags = dag_api.DAGApi(api)
    runs = dag_run_api.DagRunApi(api)
    tis = task_instance_api.TaskInstanceApi(api)

    record_dags(dags)
    out["paused"] = dags.patch_dag(DAG_ID, DAGPatchBody(is_paused=True), update_mask=["is_paused"]).is_paused
    out["unpaused"] = dags.patch_dag(DAG_ID, DAGPatchBody(is_paused=False)).is_paused

    run = runs.trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf={"users": 10}))
    run_id = run.dag_run_id
    out["triggered"] = {"run_type": run.run_type.value, "conf": run.conf, "has_run_after": run.run_after is not None,
                        "manual": run_id.startswith("manual__")}
    status("trigger_taken_run_id", lambda: runs.trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, dag_run_id=run_id)))
    status("trigger_unknown_dag", lambda: runs.trigger_dag_run("nope", TriggerDAGRunPostBody(logical_date=None)))
    out["errors"]["trigger_bad_conf"] = raw_status("POST", "/api/v2/dags/%s/dagRuns" % DAG_ID, {"conf": [1]}, api.configuration.access_token)
    out["errors"]["basic_auth"] = raw_status("GET", "/api/v2/dags", None, None, basic=True)

    wait_state(lambda r: runs.get_dag_run(DAG_ID, r).state.value, run_id, "success")
    finished = runs.get_dag_run(DAG_ID, run_id)
    out["run_done"] = {"state": finished.state.value, "has_end_date": finished.end_date is not None}
    listed = runs.get_dag_runs(DAG_ID)
    out["runs_total"] = listed.total_entries

    ti = tis.get_task_instances(DAG_ID, run_id).task_instances[0]
    out["task_instance"] = {"task_id": ti.task_id, "state": ti.state.value, "try_number": ti.try_number}
    ti = tis.get_task_instance(DAG_ID, run_id, TASK_ID)
    out["task_instance_same_run"] = ti.dag_run_id == run_id
    log = tis.get_log(DAG_ID, run_id, TASK_ID, 1)
    out["log_has_line"] = "streamed users=3" in log.to_json()
    status("unknown_run", lambda: runs.get_dag_run(DAG_ID, "nope"))

    cleared = runs.clear_dag_run(DAG_ID, run_id, DAGRunClearBody(dry_run=False))
    out["cleared"] = json.loads(cleared.to_json())["state"]
    wait_state(lambda r: runs.get_dag_run(DAG_ID, r).state.value, run_id, "success")
    out["marked"] = runs.patch_dag_run(DAG_ID, run_id, DAGRunPatchBody(state="failed")).state.value
    runs.delete_dag_run(DAG_ID, run_id)
    status("deleted_run", lambda: runs.get_dag_run(DAG_ID, run_id))

done()
