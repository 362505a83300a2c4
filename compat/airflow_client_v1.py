"""Airflow's own Python client (apache-airflow-client 2.x, /api/v1) drives our
REST API as a user's script would. The generated models check the type of
every field of every answer (a wrong type, a missing required field or an
unknown enum value raises), so getting through is itself the check.

Usage: airflow_client_v1.py BASE_URL USER PASSWORD

Prints one JSON object of what the calls returned; TestAirflowClientV1 checks it.
"""
import datetime

import airflow_client.client as client
from airflow_client.client.api import dag_api, dag_run_api, monitoring_api, task_instance_api
from airflow_client.client.model.clear_dag_run import ClearDagRun
from airflow_client.client.model.dag import DAG
from airflow_client.client.model.dag_run import DAGRun
from airflow_client.client.model.update_dag_run_state import UpdateDagRunState

from airflow_common import DAG_ID, TASK_ID, base, done, out, password, record_dags, status, user, wait_state


conf = client.Configuration(host=base + "/api/v1", username=user, password=password)
with client.ApiClient(conf) as api:
    dags = dag_api.DAGApi(api)
    runs = dag_run_api.DAGRunApi(api)
    tis = task_instance_api.TaskInstanceApi(api)

    out["health"] = str(monitoring_api.MonitoringApi(api).get_health().metadatabase.status)
    record_dags(dags)

    out["paused"] = dags.patch_dag(DAG_ID, DAG(is_paused=True), update_mask=["is_paused"]).is_paused
    out["paused_in_list"] = dags.get_dags(paused=True).total_entries
    out["unpaused"] = dags.patch_dag(DAG_ID, DAG(is_paused=False), update_mask=["is_paused"]).is_paused

    run = runs.post_dag_run(DAG_ID, DAGRun(conf={"users": 10}))
    run_id = run.dag_run_id
    out["triggered"] = {"run_type": str(run.run_type), "conf": run.conf, "manual": run_id.startswith("manual__")}
    named = runs.post_dag_run(DAG_ID, DAGRun(dag_run_id="compat_named", logical_date=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)))
    out["named"] = named.dag_run_id
    status("trigger_taken_run_id", lambda: runs.post_dag_run(DAG_ID, DAGRun(dag_run_id="compat_named")))
    status("trigger_unknown_dag", lambda: runs.post_dag_run("nope", DAGRun()))

    wait_state(lambda r: str(runs.get_dag_run(DAG_ID, r).state), run_id, "success")
    finished = runs.get_dag_run(DAG_ID, run_id)
    out["run_done"] = {"state": str(finished.state), "has_end_date": finished.end_date is not None}
    listed = runs.get_dag_runs(DAG_ID, order_by="-execution_date")
    out["runs_total"] = listed.total_entries
    out["runs_listed"] = sorted(r.dag_run_id for r in listed.dag_runs) == sorted([run_id, "compat_named"])

    tl = tis.get_task_instances(DAG_ID, run_id)
    out["task_instances"] = [{"task_id": t.task_id, "state": str(t.state), "try_number": t.try_number} for t in tl.task_instances]
    ti = tis.get_task_instance(DAG_ID, run_id, TASK_ID)
    out["task_instance"] = {"task_id": ti.task_id, "state": str(ti.state), "same_run": ti.dag_run_id == run_id}
    log = tis.get_log(DAG_ID, run_id, TASK_ID, 1)
    out["log_has_line"] = "streamed users=3" in log.content
    status("log_missing_try", lambda: tis.get_log(DAG_ID, run_id, TASK_ID, 9))
    status("unknown_run", lambda: runs.get_dag_run(DAG_ID, "nope"))

    cleared = runs.clear_dag_run(DAG_ID, run_id, ClearDagRun(dry_run=False))
    # The spec gives this answer no model (a run, or with dry_run the task
    # instances): the client returns the JSON as a dict.
    out["cleared"] = cleared["state"]
    wait_state(lambda r: str(runs.get_dag_run(DAG_ID, r).state), run_id, "success")
    marked = runs.update_dag_run_state(DAG_ID, run_id, UpdateDagRunState(state="failed"))
    out["marked"] = str(marked.state)
    runs.delete_dag_run(DAG_ID, "compat_named")
    status("deleted_run", lambda: runs.get_dag_run(DAG_ID, "compat_named"))
    out["runs_total_after"] = runs.get_dag_runs(DAG_ID).total_entries

done()
