// Package compat holds the fidelity tests: the originals' own clients and
// published specs (Confluent's serializers, Airflow's client and OpenAPI
// spec) run against userstream. They need the pinned Python packages of
// requirements-compat.txt, installed by scripts/compat.sh in a virtual
// environment it names in USERSTREAM_COMPAT_PYTHON; without it they skip
// and say how to run them (make compat). docs/compatibility.md has the
// results.
package compat
