"""Drive the embedded schema registry with Confluent's own Python client.

Usage: confluent_client.py URL USER_SCHEMA_FILE

Prints one JSON object: what each call returned, and for the calls that
must fail, the SchemaRegistryError's error_code. TestConfluentPythonClient
(registry_python_test.go) checks it.
"""
import json
import sys

import confluent_kafka

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

url, user_file = sys.argv[1], sys.argv[2]
with open(user_file) as f:
    user = json.load(f)


def avro(obj):
    return Schema(json.dumps(obj), "AVRO")


def with_fields(fields):
    s = dict(user)
    s["fields"] = fields
    return s


def replace_field(name, new):
    return with_fields([new if f["name"] == name else f for f in user["fields"]])


v1 = avro(user)
v2 = avro(with_fields(user["fields"] + [{"name": "middle_name", "type": ["null", "string"], "default": None}]))
required = avro(with_fields(user["fields"] + [{"name": "middle_name", "type": "string"}]))
post_code_int = avro(replace_field("post_code", {"name": "post_code", "type": "int"}))
invalid = Schema('{"type":"recordx"}', "AVRO")

client = SchemaRegistryClient({"url": url})
out = {"errors": {}}


def error_code(name, fn):
    try:
        fn()
    except SchemaRegistryError as e:
        out["errors"][name] = e.error_code
        return
    out["errors"][name] = None


subject = "users_created-value"
out["register_v1"] = client.register_schema(subject, v1)
# A fresh client each time the cache of the first would answer instead.
out["register_v1_again"] = SchemaRegistryClient({"url": url}).register_schema(subject, avro(user))
out["register_v2"] = client.register_schema(subject, v2)
latest = client.get_latest_version(subject)
out["latest"] = {"id": latest.schema_id, "version": latest.version, "subject": latest.subject,
                 "type": latest.schema.schema_type, "same_text": latest.schema.schema_str == v2.schema_str}
found = client.lookup_schema(subject, v1)
out["lookup_v1"] = {"id": found.schema_id, "version": found.version, "subject": found.subject}
out["get_schema_v1"] = SchemaRegistryClient({"url": url}).get_schema(out["register_v1"]).schema_str == v1.schema_str
out["versions"] = client.get_versions(subject)
out["subjects"] = client.get_subjects()
out["compatible_optional_field"] = client.test_compatibility(subject, v2)
out["compatible_required_field"] = client.test_compatibility(subject, required)
out["compatible_post_code_int"] = client.test_compatibility(subject, post_code_int)
out["compatible_unknown_subject"] = client.test_compatibility("nobody-value", v1)

out["global_level_before"] = client.get_compatibility()
out["set_subject_level"] = client.set_compatibility(subject_name=subject, level="full")
out["subject_level"] = client.get_compatibility(subject)
out["set_global_level"] = client.set_compatibility(level="FORWARD")
out["global_level"] = client.get_compatibility()

error_code("register_incompatible", lambda: client.register_schema(subject, required))
error_code("register_invalid", lambda: client.register_schema("other-value", invalid))
error_code("compatibility_invalid", lambda: client.test_compatibility(subject, invalid))
error_code("compatibility_missing_version", lambda: client.test_compatibility(subject, v1, version=9))
error_code("compatibility_invalid_version", lambda: client.test_compatibility(subject, v1, version="first"))
error_code("lookup_unknown_subject", lambda: client.lookup_schema("nobody-value", v1))
error_code("lookup_unknown_schema", lambda: client.lookup_schema(subject, post_code_int))
error_code("get_missing_version", lambda: client.get_version(subject, 9))
error_code("get_unknown_id", lambda: client.get_schema(9999))
error_code("set_invalid_level", lambda: client.set_compatibility(level="SIDEWAYS"))
error_code("subject_level_not_set", lambda: client.get_compatibility("nobody-value"))

# Deletions: soft, soft again, permanent.
out["delete_version_soft"] = client.delete_version(subject, 1)
error_code("delete_version_soft_again", lambda: client.delete_version(subject, 1))
out["delete_subject_soft"] = client.delete_subject(subject)
error_code("delete_subject_soft_again", lambda: client.delete_subject(subject))
error_code("get_versions_soft_deleted", lambda: client.get_versions(subject))
client.register_schema("scratch-value", v1)
# Client 1.x soft-deletes before its permanent delete; 2.x sends the permanent
# one alone, which a registry refuses (40405) unless the subject was
# soft-deleted first, so the script does that itself.
if int(confluent_kafka.version()[0].split(".")[0]) >= 2:
    client.delete_subject("scratch-value")
out["delete_subject_permanent"] = client.delete_subject("scratch-value", permanent=True)
error_code("get_versions_permanently_deleted", lambda: client.get_versions("scratch-value"))
error_code("delete_unknown_subject", lambda: client.delete_subject("nobody-value"))
out["subjects_after"] = client.get_subjects()

print(json.dumps(out, sort_keys=True))
