#!/usr/bin/env bash
# Side by side, in one run, against the same built-in API and embedded broker
# (docs/benchmarks.md, "Side by side"):
#
#  1. the original tutorial's DAG task: Python, kafka-python and requests, one
#     user per request, reshaped and sent as JSON, for TUTORIAL_SECONDS (with
#     its id bug fixed: str(uuid4()), or nothing would be sent at all);
#  2. `userstream produce` (our ingest) of USERS users, JSON;
#  3. a plain consumer-group loop into SQLite, as a user would write one in
#     Python (kafka-python, a poll, INSERT OR REPLACE, commit the database,
#     then the offsets), reading every message of the topic;
#  4. `userstream stream` into SQLite, reading the same messages.
#
# Then it prints each rate and the two ratios. Needs python3-kafka, python3-lz4 and
# python3-requests (Debian). Everything listens on 127.0.0.1 and stops by
# itself.
#
#   scripts/compare.sh
#   USERS=50000 TUTORIAL_SECONDS=10 scripts/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-200000}
tsecs=${TUTORIAL_SECONDS:-20}
bin=${BIN:-bin/userstream}
[ -x "$bin" ] || go build -o "$bin" ./cmd/userstream
py=${PYTHON:-/usr/bin/python3} # Debian's, which has python3-kafka
command -v sqlite3 >/dev/null || { echo "compare: needs the sqlite3 shell (apt-get install -y sqlite3)" >&2; exit 2; }
"$py" -c 'import kafka, requests, lz4' 2>/dev/null || {
  echo "compare: needs python3-kafka, python3-requests and python3-lz4 (apt-get install -y python3-kafka python3-requests python3-lz4; our producer compresses with LZ4)" >&2
  exit 2
}
dir=$(mktemp -d /tmp/userstream-compare-XXXXXX)
base=$((20000 + RANDOM % 20000))
kafka=127.0.0.1:$base api=127.0.0.1:$((base + 1))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
"$bin" broker --data-dir "$dir/kafka" --addr "$kafka" --registry-addr "" >"$dir/broker.log" 2>&1 &
pids+=($!)
"$bin" api --addr "$api" >"$dir/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/${kafka#*:}") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/${api#*:}") 2>/dev/null && break
  sleep 0.1
done
now() { date +%s.%N; }
rate() { "$py" -c "import sys; print(f'{float(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.1f}')" "$@"; }

echo "compare: 1/4 the tutorial's loop (Python, one user a request) for ${tsecs}s..."
tutorial=$("$py" - "$kafka" "http://$api/api/" "$tsecs" <<'EOF'
# The original DAG task's loop, as published, but for its id (uuid.uuid4()
# is not JSON-serialisable there, so it sent nothing).
import json, sys, time, uuid
import requests
from kafka import KafkaProducer

def get_data(url):
    res = requests.get(url)
    return res.json()['results'][0]

def format_data(res):
    location = res['location']
    return {
        'id': str(uuid.uuid4()),
        'first_name': res['name']['first'],
        'last_name': res['name']['last'],
        'gender': res['gender'],
        'address': f"{location['street']['number']} {location['street']['name']}, "
                   f"{location['city']}, {location['state']}, {location['country']}",
        'post_code': location['postcode'],
        'email': res['email'],
        'username': res['login']['username'],
        'dob': res['dob']['date'],
        'registered_date': res['registered']['date'],
        'phone': res['phone'],
        'picture': res['picture']['medium'],
    }

broker, url, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
producer = KafkaProducer(bootstrap_servers=[broker], max_block_ms=5000)
n, start = 0, time.time()
while time.time() < start + secs:
    producer.send('users_created', json.dumps(format_data(get_data(url))).encode('utf-8'))
    n += 1
producer.flush()
print(f"{n / (time.time() - start):.1f}")
EOF
)

echo "compare: 2/4 userstream produce of $users users..."
t0=$(now)
"$bin" produce --brokers "$kafka" --source "http://$api/api/" --schema-registry none --users "$users" >"$dir/produce.log" 2>&1
t1=$(now)
ours_in=$(rate "$users" "$t0" "$t1")
total=$("$py" - "$kafka" <<'EOF'
import sys
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=[sys.argv[1]])
tps = [TopicPartition('users_created', p) for p in c.partitions_for_topic('users_created')]
print(sum(c.end_offsets(tps).values()))
EOF
)

echo "compare: 3/4 a plain consumer loop (Python) into SQLite, $total messages..."
plain=$("$py" - "$kafka" "$dir/plain.db" "$total" <<'EOF'
import json, sqlite3, sys, time
from kafka import KafkaConsumer

broker, path, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = sqlite3.connect(path)
db.execute('PRAGMA journal_mode=WAL')
db.execute('''CREATE TABLE created_users (id TEXT PRIMARY KEY, first_name TEXT, last_name TEXT,
    gender TEXT, address TEXT, post_code TEXT, email TEXT, username TEXT, dob TEXT,
    registered_date TEXT, phone TEXT, picture TEXT)''')
cols = ['id', 'first_name', 'last_name', 'gender', 'address', 'post_code', 'email', 'username',
        'dob', 'registered_date', 'phone', 'picture']
sql = f"INSERT OR REPLACE INTO created_users VALUES ({', '.join('?' * len(cols))})"
c = KafkaConsumer('users_created', bootstrap_servers=[broker], group_id='plain-loop',
                  auto_offset_reset='earliest', enable_auto_commit=False)
n, start = 0, time.time()
while n < total:
    for _, msgs in c.poll(timeout_ms=1000, max_records=1000).items():
        rows = []
        for m in msgs:
            u = json.loads(m.value)
            rows.append([str(u.get(k, '')) for k in cols])
        db.executemany(sql, rows)
        n += len(rows)
    db.commit()
    c.commit()
print(f"{n / (time.time() - start):.1f}")
EOF
)

echo "compare: 4/4 userstream stream into SQLite, $total messages..."
t0=$(now)
"$bin" stream --brokers "$kafka" --schema-registry none --group compare-stream --metrics-addr "" \
  --sink "sqlite:$dir/ours.db" >"$dir/stream.log" 2>&1 &
spid=$!
pids+=($spid)
# The sink's own exact count (its per-nat counts plus the rows above their
# mark) read with the sqlite3 shell: a `userstream users count` process
# every 50 ms would take CPU from what is measured.
count_sql='SELECT (SELECT coalesce(sum(n), 0) FROM user_counts) + (SELECT count(*) FROM created_users WHERE rowid > (SELECT counted FROM user_counts_mark))'
while :; do
  n=$(sqlite3 -readonly "$dir/ours.db" "$count_sql" 2>/dev/null || echo 0)
  [ "${n:-0}" -ge "$total" ] 2>/dev/null && break
  kill -0 "$spid" 2>/dev/null || { echo "compare: the stream exited:" >&2; cat "$dir/stream.log" >&2; exit 1; }
  sleep 0.05
done
t1=$(now)
ours_out=$(rate "$total" "$t0" "$t1")

printf '\n%-58s %12s\n' "stage (same API, same broker, JSON)" "users/s"
printf '%-58s %12s\n' "tutorial loop: Python, one user a request" "$tutorial"
printf '%-58s %12s\n' "userstream produce" "$ours_in"
printf '%-58s %12s\n' "plain consumer loop: Python, kafka-python -> SQLite" "$plain"
printf '%-58s %12s\n' "userstream stream -> SQLite (counts startup)" "$ours_out"
"$py" -c "import sys; t,i,p,o = map(float, sys.argv[1:]); print(f'\ningest: {i/t:.0f}x the tutorial loop; stream: {o/p:.1f}x the plain loop')" \
  "$tutorial" "$ours_in" "$plain" "$ours_out"
