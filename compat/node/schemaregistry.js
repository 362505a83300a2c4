// Confluent's Node.js Schema Registry client (@confluentinc/schemaregistry)
// against our registry: register a schema under a subject, look it up by id
// and by subject and version, test a compatible and an incompatible change,
// register the compatible one, and get the registry's errors for an
// incompatible registration and an unknown subject.
//
// Usage: node schemaregistry.js REGISTRY_URL
// Prints one JSON object of what the calls returned; TestNodeSchemaRegistryClient
// checks it.
'use strict';
const { SchemaRegistryClient } = require('@confluentinc/schemaregistry');

const url = process.argv[2];
const subject = 'node-compat-value';
const record = (fields) => JSON.stringify({ type: 'record', name: 'User', namespace: 'userstream', fields });
const v1 = record([{ name: 'id', type: 'string' }, { name: 'email', type: 'string' }]);
// Backward compatible: a new field with a default.
const v2 = record([{ name: 'id', type: 'string' }, { name: 'email', type: 'string' },
  { name: 'phone', type: 'string', default: '' }]);
// Not backward compatible: a new field without a default.
const bad = record([{ name: 'id', type: 'string' }, { name: 'email', type: 'string' }, { name: 'age', type: 'int' }]);
const avro = (schema) => ({ schemaType: 'AVRO', schema });
// A client caches what it registered: the look-ups use a second one, so
// they are answered by the registry.
const client = () => new SchemaRegistryClient({ baseURLs: [url], maxRetries: 0 });
const same = (a, b) => JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));

async function failure(fn) {
  try {
    await fn();
    return null;
  } catch (e) {
    return { status: e.status, error_code: e.errorCode };
  }
}

async function main() {
  const out = {};
  const id = await client().register(subject, avro(v1));
  out.registered_id_positive = Number.isInteger(id) && id > 0;
  const reader = client();
  const byId = await reader.getBySubjectAndId(subject, id);
  out.by_id_same_schema = same(byId.schema, v1);
  const byVersion = await reader.getSchemaMetadata(subject, 1);
  out.by_version = { id_matches: byVersion.id === id, version: byVersion.version, subject: byVersion.subject,
    same_schema: same(byVersion.schema, v1) };
  const latest = await reader.getLatestSchemaMetadata(subject);
  out.latest_version = latest.version;
  out.lookup_version = await reader.getVersion(subject, avro(v1));
  out.lookup_id_matches = (await reader.getId(subject, avro(v1))) === id;
  out.subject_listed = (await reader.getAllSubjects()).includes(subject);

  out.compatible = await reader.testSubjectCompatibility(subject, avro(v2));
  out.compatible_with_v1 = await reader.testCompatibility(subject, 1, avro(v2));
  out.incompatible = await reader.testSubjectCompatibility(subject, avro(bad));

  const id2 = await client().register(subject, avro(v2));
  out.second_id_differs = id2 !== id;
  out.versions = await reader.getAllVersions(subject);
  out.register_incompatible = await failure(() => client().register(subject, avro(bad)));
  out.unknown_subject = await failure(() => client().getLatestSchemaMetadata('no-such-subject'));
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
