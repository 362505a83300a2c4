"""Airflow's own Python clients against `userstream dev` itself: the 2.x
client (/api/v1, basic auth) or the 3.x client (/api/v2, a token from
POST /auth/token) triggers a run of user_automation with conf, finds it in
the list of runs, waits for it to succeed and reads its task's log, as a
user's script would against Airflow.

Usage: airflow_on_dev.py BASE_URL USER PASSWORD v1|v2

Prints one JSON object of what the calls returned; TestAirflowClientsOnDev
checks it.
"""
import json
import sys
import time
import urllib.request

import airflow_client.client as client
from airflow_client.client.api import dag_run_api, task_instance_api

from airflow_common import DAG_ID, TASK_ID, base, done, out, password, user

USERS = 7


def wait_success(get_state, run_id):
    """Waits up to 90 s (dev produces real users) for the run to succeed."""
    deadline = time.time() + 90
    state = None
    while time.time() < deadline:
        state = get_state(run_id)
        if state in ("success", "failed"):
            break
        time.sleep(0.5)
    out["state"] = state


if sys.argv[4] == "v1":
    from airflow_client.client.model.dag_run import DAGRun

    conf = client.Configuration(host=base + "/api/v1", username=user, password=password)
    with client.ApiClient(conf) as api:
        runs = dag_run_api.DAGRunApi(api)
        tis = task_instance_api.TaskInstanceApi(api)
        run_id = runs.post_dag_run(DAG_ID, DAGRun(conf={"users": USERS})).dag_run_id
        out["listed"] = run_id in [r.dag_run_id for r in runs.get_dag_runs(DAG_ID, limit=100).dag_runs]
        wait_success(lambda r: str(runs.get_dag_run(DAG_ID, r).state), run_id)
        log = tis.get_log(DAG_ID, run_id, TASK_ID, 1).content
else:
    from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

    req = urllib.request.Request(base + "/auth/token", method="POST",
                                 data=json.dumps({"username": user, "password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        tok = json.load(resp)["access_token"]
    with client.ApiClient(client.Configuration(host=base, access_token=tok)) as api:
        runs = dag_run_api.DagRunApi(api)
        tis = task_instance_api.TaskInstanceApi(api)
        run_id = runs.trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf={"users": USERS})).dag_run_id
        out["listed"] = run_id in [r.dag_run_id for r in runs.get_dag_runs(DAG_ID, limit=100).dag_runs]
        wait_success(lambda r: runs.get_dag_run(DAG_ID, r).state.value, run_id)
        log = tis.get_log(DAG_ID, run_id, TASK_ID, 1).to_json()

out["manual"] = run_id.startswith("manual__")
out["log_produced"] = ("produced %d," % USERS) in log
del out["errors"]
done()
