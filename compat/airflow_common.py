"""What the Airflow client scripts (airflow_client_v1.py, _v2.py) share:
their arguments, the results they print, how they record the status of a
call that must fail, and how they wait for a run."""
import json
import sys
import time

base, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
DAG_ID, TASK_ID = "user_automation", "stream_data_from_api"
out = {"errors": {}}


def status(name, fn):
    """Records the HTTP status of a call that must fail (None if it did not)."""
    try:
        fn()
    except Exception as e:  # each client's ApiException carries .status
        if not hasattr(e, "status"):
            raise
        out["errors"][name] = e.status
        return
    out["errors"][name] = None


def record_dags(dags):
    """Records the DAG list and user_automation's details through either
    client's DAG API (both name these calls and fields alike)."""
    coll = dags.get_dags()
    out["dags"] = [d.dag_id for d in coll.dags]
    out["dags_total"] = coll.total_entries
    dag = dags.get_dag(DAG_ID)
    out["dag"] = {"dag_id": dag.dag_id, "owners": dag.owners, "tags": [t.name for t in dag.tags]}


def wait_state(get_state, run_id, want):
    """Waits up to 30 s for get_state(run_id) to be want."""
    deadline = time.time() + 30
    while time.time() < deadline:
        state = get_state(run_id)
        if state == want:
            return
        time.sleep(0.1)
    sys.exit("run %s is %s after 30 s, want %s" % (run_id, state, want))


def done():
    print(json.dumps(out, sort_keys=True))
