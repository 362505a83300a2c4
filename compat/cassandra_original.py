"""The original stack's consumer side against userstream's Cassandra table,
with the DataStax Python driver it used (cassandra-driver, pinned in
requirements-compat.txt).

    cassandra_original.py HOST PORT KEYSPACE select
        prints the users of KEYSPACE.created_users as a JSON list, read with
        the original's column names
    cassandra_original.py HOST PORT KEYSPACE insert JSON
        inserts one user given as a JSON object, with the original's
        INSERT (spark_stream.py's insert_data) and its columns only
"""
import json
import uuid
import sys

from cassandra.cluster import Cluster

# created_users as the original creates it (no dob: see seed-contract.md).
COLUMNS = ["id", "first_name", "last_name", "gender", "address", "post_code",
           "email", "username", "registered_date", "phone", "picture"]


def main():
    host, port, keyspace, mode = sys.argv[1:5]
    cluster = Cluster([host], port=int(port))
    session = cluster.connect()
    try:
        if mode == "select":
            rows = session.execute(
                "SELECT " + ", ".join(COLUMNS) + " FROM " + keyspace + ".created_users")
            out = []
            for r in rows:
                d = {c: getattr(r, c) for c in COLUMNS}
                d["id"] = str(d["id"])
                out.append(d)
            print(json.dumps(out))
        elif mode == "insert":
            u = json.loads(sys.argv[5])
            session.execute(
                "INSERT INTO " + keyspace + ".created_users(id, first_name, last_name, gender, address, "
                "post_code, email, username, registered_date, phone, picture) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (uuid.UUID(u["id"]), u["first_name"], u["last_name"], u["gender"],
                 u["address"], u["post_code"], u["email"], u["username"], u["registered_date"],
                 u["phone"], u["picture"]))
            print(json.dumps({"inserted": u["id"]}))
        else:
            sys.exit("mode must be select or insert")
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
