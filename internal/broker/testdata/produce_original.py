#!/usr/bin/python3
"""Produce users in the original tutorial pipeline's JSON shape, without keys.

This is what the original Airflow task sends to Kafka (its reshaping of one
Random User API user), written with kafka-python as the original did, minus
its bugs: the id is a UUID *string* (the original passed a uuid.UUID object,
which json.dumps cannot serialise) and the producer is flushed.

Usage: /usr/bin/python3 produce_original.py BOOTSTRAP [COUNT] [TOPIC]
Prints one line per message: "<partition> <offset>".
Run it with Debian's /usr/bin/python3 (python3-kafka), not another python.
"""
import json
import sys
import uuid

from kafka import KafkaProducer

FIRST = ["Jane", "Amit", "Lucas", "Mia", "Oskar", "Leila", "Tom", "Sofia", "Kenji", "Ana"]
LAST = ["Doe", "Patel", "Martin", "Nielsen", "Berg", "Karimi", "Brown", "Rossi", "Sato", "Silva"]


def user(i):
    first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
    return {
        "id": str(uuid.uuid4()),
        "first_name": first,
        "last_name": last,
        "gender": "female" if i % 2 else "male",
        "address": f"{100 + i} Main Street, Springfield, Oregon, United States",
        # A number for most nationalities, a string for CA, GB and NO.
        "post_code": 97400 + i if i % 3 else f"SW{i} 1AA",
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "username": f"bluebird{100 + i}",
        "dob": "1980-05-17T08:12:45.123Z",
        "registered_date": "2015-11-02T10:01:02.456Z",
        "phone": "(555) 010-%04d" % i,
        "picture": f"https://randomuser.me/api/portraits/med/{'women' if i % 2 else 'men'}/{i}.jpg",
    }


def main():
    bootstrap = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    topic = sys.argv[3] if len(sys.argv) > 3 else "users_created"
    # No api_version: like the original, let kafka-python probe the broker.
    # Against the embedded broker kafka-python 2.0.2 settles on (2, 5, 0).
    producer = KafkaProducer(
        bootstrap_servers=[bootstrap],
        acks="all",
        retries=5,
        max_block_ms=10000,
        request_timeout_ms=10000,
    )
    futures = [producer.send(topic, json.dumps(user(i)).encode("utf-8")) for i in range(count)]
    producer.flush(timeout=20)
    for f in futures:
        md = f.get(timeout=10)
        print(md.partition, md.offset, file=sys.stdout)
    producer.close(timeout=10)


if __name__ == "__main__":
    main()
