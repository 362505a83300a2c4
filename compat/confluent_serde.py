"""Confluent's own serializers (confluent-kafka[avro], fastavro) against our
broker and registry.

Usage:
  confluent_serde.py produce BOOTSTRAP REGISTRY_URL TOPIC USER_SCHEMA_FILE N
  confluent_serde.py consume BOOTSTRAP REGISTRY_URL TOPIC N

produce writes N users in four equal phases, each with its own AvroSerializer
configuration, as a user's producer would:
  auto_register_normalize  auto.register.schemas on, normalize.schemas on (v1)
  lookup                   auto.register.schemas off: the serializer looks v1 up
  auto_register_v2         auto.register.schemas on, v2 (a new optional field)
  use_latest_version       auto.register.schemas off, use.latest.version on
and prints {"phases": {name: {"count", "schema_id"}}, "users": [...]}, the
schema id read from each message's wire header.

consume reads N messages from the start of every partition with
AvroDeserializer and prints {"users": [...]}, ingested_at as epoch
milliseconds. The Go tests in this folder check both.
"""
import datetime
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer


def user(i, phase):
    uid = str(uuid.uuid4())
    return {
        "id": uid,
        "first_name": "Ana%d" % i,
        "last_name": "Núñez-%s" % phase,
        "gender": "female" if i % 2 else "male",
        "address": "%d Rue de la Paix, Lyon, Rhône, France" % i,
        "post_code": "%05d" % (i * 7 % 100000),
        "email": "ana%d@example.com" % i,
        "username": "ana%d" % i,
        "dob": "1987-03-14T08:21:55.123Z",
        "registered_date": "2011-07-01T00:00:00.000Z",
        "phone": "05-%04d" % i,
        "picture": "https://randomuser.me/api/portraits/med/women/%d.jpg" % (i % 100),
        "nat": "FR",
        # Whole milliseconds: timestamp-millis keeps no more.
        "ingested_at": datetime.datetime(2026, 1, 2, 3, 4, 5, (i % 1000) * 1000, tzinfo=datetime.timezone.utc),
        "run_id": "confluent-" + phase,
    }


def as_json(u):
    # fastavro reads the uuid logical type as a uuid.UUID.
    out = dict(u, id=str(u["id"]))
    out["ingested_at"] = int(u["ingested_at"].timestamp() * 1000 + 0.5)
    return out


def produce(bootstrap, registry, topic, schema_file, n):
    with open(schema_file) as f:
        v1 = json.load(f)
    v2 = dict(v1)
    v2["fields"] = v1["fields"] + [{"name": "middle_name", "type": ["null", "string"], "default": None}]
    client = SchemaRegistryClient({"url": registry})
    phases = [
        ("auto_register_normalize", v1, {"auto.register.schemas": True, "normalize.schemas": True}),
        ("lookup", v1, {"auto.register.schemas": False}),
        ("auto_register_v2", v2, {"auto.register.schemas": True}),
        ("use_latest_version", v2, {"auto.register.schemas": False, "use.latest.version": True}),
    ]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    keys = StringSerializer("utf_8")
    failures = []

    def delivered(err, msg):
        if err is not None:
            failures.append(str(err))

    out = {"phases": {}, "users": []}
    i = 0
    for name, schema, conf in phases:
        ser = AvroSerializer(client, json.dumps(schema), conf=conf)
        ctx = SerializationContext(topic, MessageField.VALUE)
        ids = set()
        count = n // len(phases)
        for _ in range(count):
            i += 1
            u = user(i, name)
            if schema is v2:
                u["middle_name"] = "M%d" % i if i % 2 else None
            value = ser(u, ctx)
            ids.add(int.from_bytes(value[1:5], "big"))
            producer.produce(topic, key=keys(u["id"]), value=value, on_delivery=delivered)
            producer.poll(0)
            u.pop("middle_name", None)
            out["users"].append(as_json(u))
        if len(ids) != 1:
            sys.exit("phase %s wrote schema ids %s, want one" % (name, sorted(ids)))
        out["phases"][name] = {"count": count, "schema_id": ids.pop()}
    left = producer.flush(60)
    if left or failures:
        sys.exit("%d messages undelivered, failures: %s" % (left, failures[:5]))
    json.dump(out, sys.stdout)


def consume(bootstrap, registry, topic, n):
    deser = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-" + str(uuid.uuid4()),
                         "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=30)
    if meta.topics[topic].error is not None:
        raise KafkaException(meta.topics[topic].error)
    # assign, not subscribe: read every partition from the start without a group.
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.topics[topic].partitions])
    users = []
    deadline = time.time() + 60
    while len(users) < n and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        u = deser(msg.value(), SerializationContext(topic, MessageField.VALUE))
        if msg.key().decode() != str(u["id"]):
            sys.exit("message key %r is not the user id %r" % (msg.key(), u["id"]))
        users.append(as_json(u))
    consumer.close()
    json.dump({"users": users}, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif sys.argv[1] == "consume":
        consume(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit("usage: confluent_serde.py produce|consume ...")
