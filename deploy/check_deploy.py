#!/usr/bin/python3
"""Static checks of the deployment files, run by scripts/check-deploy.sh.

Standard library plus PyYAML (python3-yaml, which Debian's docker-compose
depends on, so it is there whenever docker-compose is).

  check_deploy.py compose CONFIG.yml     rules for `docker-compose config` output
  check_deploy.py selftest CONFIG.yml    each of those rules catches a broken copy
  check_deploy.py source COMPOSE.yml     renders COMPOSE.yml with docker-compose
                                         under several environments (defaults, a
                                         missing password, moved ports, the JMX
                                         override) and checks each render
  check_deploy.py source-selftest COMPOSE.yml
                                         the old forms of the file, one at a
                                         time, and each is rejected by its rule
  check_deploy.py dockerfile Dockerfile  rules for the Dockerfile; prints the
                                         builder's `go build` command on stdout
  check_deploy.py dockerfile-selftest Dockerfile
                                         each rule catches a broken copy
  check_deploy.py images                 prints the image references of
                                         deploy/images.lock
  check_deploy.py build-sources Dockerfile
                                         the context paths the build stage copies
  check_deploy.py commands CONFIG.yml    "service sub,commands --flags" of each
                                         service that runs our image
  check_deploy.py smoke-calls LOG        checks the docker calls compose-smoke.sh
                                         made (stand-in docker's log); prints the
                                         same lines for its `run`s of our image

Each finding is one line on stderr; the exit status is 1 when there is any.
"""

import concurrent.futures
import copy
import os
import re
import shlex
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("check_deploy: PyYAML is missing: apt-get install python3-yaml "
             "(docker-compose depends on it)")

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(HERE, "images.lock")
JMX_OVERRIDE = os.path.join(HERE, "compose.jmx.yml")

# The services of the stack and the host ports they publish by default
# (the original's, minus JMX 9101, which only deploy/compose.jmx.yml
# publishes; plus ours: api 8088, postgres 5432). docs/deploy.md lists the
# same, with the variable that moves each.
REQUIRED_PORTS = {
    "zookeeper": {2181},
    "broker": {9092},
    "schema-registry": {8081},
    "control-center": {9021},
    "cassandra": {9042},
    "postgres": {5432},
    "api": {8088},
    "scheduler": {8080},
}
# The variable that moves each published port (container port -> variable).
PORT_VARS = {
    ("zookeeper", 2181): "USERSTREAM_ZOOKEEPER_HOST_PORT",
    ("broker", 9092): "USERSTREAM_KAFKA_HOST_PORT",
    ("schema-registry", 8081): "USERSTREAM_SCHEMA_REGISTRY_HOST_PORT",
    ("control-center", 9021): "USERSTREAM_CONTROL_CENTER_HOST_PORT",
    ("cassandra", 9042): "USERSTREAM_CASSANDRA_HOST_PORT",
    ("postgres", 5432): "USERSTREAM_POSTGRES_HOST_PORT",
    ("api", 8088): "USERSTREAM_API_HOST_PORT",
    ("scheduler", 8080): "USERSTREAM_SCHEDULER_HOST_PORT",
    ("connect", 8083): "USERSTREAM_CONNECT_HOST_PORT",
}
HOST_IP_VAR = "USERSTREAM_HOST_IP"
JMX_PORT_VAR = "USERSTREAM_JMX_HOST_PORT"
JMX_PORT = 9101
DEFAULT_HOST_IP = "127.0.0.1"
OURS = ("init", "api", "stream", "producer", "scheduler", "connect")
HEALTHCHECKED = ("zookeeper", "broker", "schema-registry", "control-center",
                 "postgres", "cassandra")

# Memory: every container has a ceiling, every JVM a heap cap below it, and
# the ceilings of what runs at once (a plain `up`, a producer run and two
# more stream workers) stay within what an 8 GB Docker leaves after its own
# VM. docs/deploy.md, "Memory".
MIB = 1024 * 1024
MEMORY_BUDGET = 7680 * MIB  # 7.5 GiB
EXTRA_STREAM_WORKERS = 2    # --scale stream=3
HEAP_HEADROOM = 256 * MIB   # metaspace, threads, direct buffers above -Xmx
HEAP_VARS = {
    "zookeeper": ("KAFKA_HEAP_OPTS",),
    "broker": ("KAFKA_HEAP_OPTS",),
    "schema-registry": ("SCHEMA_REGISTRY_HEAP_OPTS",),
    "control-center": ("CONTROL_CENTER_HEAP_OPTS",),
    "cassandra": ("MAX_HEAP_SIZE", "HEAP_NEWSIZE"),
}

# Image lines that are past their end of support on the project's dates.
# (prefix of the image name, lowest supported version, why)
SUPPORT_FLOOR = (
    ("confluentinc/cp-", (7, 9), "Confluent Platform before 7.9 is out of support "
     "(7.4.x ended in May 2026) and Confluent removes EOL images from Docker Hub"),
    ("postgres", (15,), "PostgreSQL 14 reaches end of life in November 2026"),
    ("golang", (1, 26), "Go supports only its two newest releases (1.27 and 1.26)"),
)
EOL_IMAGES = (
    (re.compile(r"^gcr\.io/distroless/[a-z0-9-]+-debian1[0-2](:|@|$)"),
     "distroless debian10-12 images end with Debian 12's support (September 2026); use -debian13"),
)

# The only places a host-side name may appear: what the broker advertises to
# clients on the host (its PLAINTEXT_HOST listener) and the JMX RMI host name
# handed to the same clients. Inside the network, service names only. A
# healthcheck runs inside its own container, so there the loopback is the
# container itself and is fine.
HOST_SIDE = {("broker", "KAFKA_JMX_HOSTNAME")}
HOST_LISTENER = re.compile(r"^PLAINTEXT_HOST://[^,]+$")

LOOPBACK = re.compile(r"(?i)\blocalhost\b|\b127\.\d+\.\d+\.\d+\b|\[?::1\]?(?=[:/\s]|$)")
# host:port, optionally inside a URL (scheme://[user[:pass]@]host:port).
HOSTPORT = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:[^@/\s,]+@)?([A-Za-z0-9_.-]+):(\d{2,5})\b")
# An exact version: 7.9.11, 16.15-bookworm, 4.1.12-bookworm, 1.26.8-bookworm.
PINNED_TAG = re.compile(r"^\d+\.\d+(\.\d+)*(-[a-z0-9][a-z0-9.]*)?$")
# How many numeric parts make a version exact, per image (default 2:
# PostgreSQL's 16.15 is exact, while golang:1.26 and cassandra:4.1 float).
EXACT_PARTS = (("golang", 3), ("confluentinc/", 3), ("cassandra", 3))
# Tags that name a variant rather than a version; allowed only with a digest.
VARIANT_TAGS = {"nonroot"}
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PIP = re.compile(r"\bpip3?\b|\bpip install\b|requirements\.txt")
SYNTAX = re.compile(r"^#\s*syntax\s*=\s*docker/dockerfile:1(\.\d+)*\s*$")


# ---- helpers -------------------------------------------------------------------

def strings(node, path=()):
    """Yields (path, string) for every scalar under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, path + (str(k),))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, path + (str(i),))
    elif node is not None:
        yield path, str(node)


def as_list(cmd):
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return [str(c) for c in cmd]


def port_entries(svc):
    """[(host_ip, published, target)] for short (v1) and long (v2) syntax."""
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append((str(p.get("host_ip") or ""), str(p.get("published") or ""),
                        str(p.get("target") or "")))
            continue
        s = str(p).split("/")[0]
        parts = s.split(":")
        if len(parts) >= 3:
            out.append((":".join(parts[:-2]), parts[-2], parts[-1]))
        elif len(parts) == 2:
            out.append(("", parts[0], parts[1]))
        else:
            out.append(("", "", parts[0]))
    return out


def published_ports(svc):
    out = set()
    for _ip, pub, _tgt in port_entries(svc):
        if pub:
            out.add(int(pub.split("-")[0]))
    return out


def mem_bytes(v):
    """512m, 1g, 1664m, 536870912 -> bytes; None when unset or unreadable."""
    if v in (None, ""):
        return None
    s = str(v).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", s)
    if not m:
        return None
    return int(float(m.group(1)) * {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[m.group(2)])


def heap_max(name, env):
    """The heap cap a JVM service's environment sets, in bytes, or None."""
    if name == "cassandra":
        return mem_bytes(env.get("MAX_HEAP_SIZE"))
    for var in HEAP_VARS.get(name, ()):
        m = re.search(r"-Xmx(\d+[kKmMgG]?)", str(env.get(var) or ""))
        if m:
            return mem_bytes(m.group(1))
    return None


def split_ref(ref):
    """name:tag@sha256:x -> (name, tag, digest); missing parts are ''."""
    ref, _, digest = ref.partition("@")
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        name, tag = ref, ""
    return name, tag, digest


def version_tuple(tag):
    m = re.match(r"^(\d+(?:\.\d+)*)", tag)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def read_lock(path=LOCK):
    """{name:tag: (digest or 'unverified', source)} from deploy/images.lock."""
    lock = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                raise SystemExit(f"{path}: want 'reference digest source': {line}")
            lock[parts[0]] = (parts[1], parts[2])
    return lock


def image_problems(image, built, lock):
    """Why an image reference breaks the pinning rules (a list)."""
    if built:
        name, tag, _ = split_ref(image)
        if not tag or tag == "latest":
            return [f"image {image!r}: our own image needs a tag other than latest"]
        return []
    errs = []
    name, tag, digest = split_ref(image)
    if not tag:
        return [f"image {image!r} has no tag: pin an exact version and its digest"]
    if tag == "latest":
        return [f"image {image!r} uses latest: pin an exact version and its digest"]
    if tag in VARIANT_TAGS:
        if not digest:
            errs.append(f"image {image!r}: a bare {tag!r} tag moves; pin it with @sha256:")
    elif not PINNED_TAG.match(tag):
        errs.append(f"image {image!r}: tag {tag!r} is not an exact version")
    else:
        parts = next((n for prefix, n in EXACT_PARTS if name.startswith(prefix)), 2)
        if len(version_tuple(tag) or ()) < parts:
            errs.append(f"image {image!r}: tag {tag!r} is not an exact version (want {parts} numbers)")
    if digest and not DIGEST.match(digest):
        errs.append(f"image {image!r}: {digest!r} is not a sha256 digest")
    for prefix, floor, why in SUPPORT_FLOOR:
        if name.startswith(prefix) or name == prefix.rstrip("-"):
            v = version_tuple(tag)
            if v is not None and v[:len(floor)] < floor:
                errs.append(f"image {image!r} is past end of support: {why}")
    for pattern, why in EOL_IMAGES:
        if pattern.search(image):
            errs.append(f"image {image!r} is past end of support: {why}")
    ref = f"{name}:{tag}"
    if ref not in lock:
        errs.append(f"image {ref!r} is not in deploy/images.lock (its digest and where it was read)")
    else:
        want, _source = lock[ref]
        if want == "unverified":
            if digest:
                errs.append(f"image {image!r} carries a digest that deploy/images.lock does not vouch for")
        elif not digest:
            errs.append(f"image {image!r}: pin it by digest too ({ref}@{want})")
        elif digest != want:
            errs.append(f"image {image!r}: digest differs from deploy/images.lock ({want})")
    return errs


# ---- the rendered compose file -------------------------------------------------

def check_compose(cfg, lock=None):
    lock = read_lock() if lock is None else lock
    errs = []
    services = cfg.get("services") or {}
    names = set(services)
    for want in list(REQUIRED_PORTS) + list(OURS):
        if want not in services:
            errs.append(f"service {want} is missing")

    networks = set()
    for name, svc in services.items():
        image = svc.get("image")
        if not image:
            errs.append(f"{name}: no image")
        else:
            errs.extend(f"{name}: {p}" for p in image_problems(str(image), "build" in svc, lock))
        if name in OURS:
            if "build" not in svc or image != "userstream:dev":
                errs.append(f"{name}: must be built from the Dockerfile as userstream:dev")
        nets = svc.get("networks") or {}
        networks.add(tuple(sorted(nets)))

        for path, s in strings(svc):
            where = ".".join((name,) + path)
            if PIP.search(s):
                errs.append(f"{where}: mentions pip ({s!r}): nothing is installed at start")
            if path and path[0] in ("ports", "healthcheck"):
                continue
            if LOOPBACK.search(s):
                key = (name, path[1]) if len(path) > 1 and path[0] == "environment" else None
                if key in HOST_SIDE:
                    continue
                if key == ("broker", "KAFKA_ADVERTISED_LISTENERS"):
                    bad = [l for l in s.split(",") if LOOPBACK.search(l) and not HOST_LISTENER.match(l)]
                    if not bad:
                        continue
                errs.append(f"{where}: {s!r} names the loopback; inside the network use a service name")
                continue
            for host, _port in HOSTPORT.findall(s):
                if host in names or host == "0.0.0.0":
                    continue
                if re.fullmatch(r"[A-Z_]+", host):  # listener names: PLAINTEXT://...
                    continue
                errs.append(f"{where}: {s!r} names host {host!r}, which is no service of this file")

    if len(networks) != 1 or networks == {()}:
        errs.append(f"services are not all on one network: {sorted(networks)}")
    for net, spec in (cfg.get("networks") or {}).items():
        spec = spec or {}
        if spec.get("name"):
            errs.append(f"network {net}: a fixed name ({spec['name']!r}) makes `up` fail where another "
                        "project left a network of that name; let Compose name it")
        if spec.get("external"):
            errs.append(f"network {net}: external networks must exist before `up`; let Compose create it")

    for name in HEALTHCHECKED:
        hc = (services.get(name) or {}).get("healthcheck")
        if not hc or not hc.get("test") or hc.get("disable"):
            errs.append(f"{name}: needs a healthcheck")

    # Control Center: its UI root, as Confluent's deployments probe it, with
    # a start period for its slow start.
    cc_hc = (services.get("control-center") or {}).get("healthcheck") or {}
    cc_test = " ".join(as_list(cc_hc.get("test")))
    if not re.search(r"https?://control-center:9021/?(\s|$)", cc_test):
        errs.append(f"control-center: healthcheck must probe http://control-center:9021/ (got {cc_test!r}); "
                    "/health is no documented path of Control Center")
    if not cc_hc.get("start_period"):
        errs.append("control-center: healthcheck needs a start_period (it takes minutes to start)")

    # PostgreSQL: over TCP, so the image's first-start init server (socket
    # only) does not count as ready.
    pg_test = as_list(((services.get("postgres") or {}).get("healthcheck") or {}).get("test"))
    if "pg_isready" not in " ".join(pg_test):
        errs.append("postgres: healthcheck must use pg_isready")
    else:
        host = None
        for i, a in enumerate(pg_test):
            if a in ("-h", "--host") and i + 1 < len(pg_test):
                host = pg_test[i + 1]
            elif a.startswith("--host="):
                host = a.split("=", 1)[1]
            elif a.startswith("-h") and len(a) > 2:
                host = a[2:]
        if not host or host.startswith("/"):
            errs.append("postgres: pg_isready must ask over TCP (-h 127.0.0.1): over the Unix socket it "
                        "passes while the image's init server is up")

    for name, ports in REQUIRED_PORTS.items():
        got = published_ports(services.get(name) or {})
        if not ports <= got:
            errs.append(f"{name}: publishes {sorted(got)}, want {sorted(ports)}")

    # Host ports bind the loopback by default.
    for name, svc in services.items():
        for ip, pub, tgt in port_entries(svc):
            if pub and ip != DEFAULT_HOST_IP:
                errs.append(f"{name}: port {pub}:{tgt} binds {ip or 'every interface'}; "
                            f"bind ${{{HOST_IP_VAR}:-{DEFAULT_HOST_IP}}} by default")

    # JMX has no authentication: never published or switched on by default.
    broker = services.get("broker") or {}
    benv = broker.get("environment") or {}
    if JMX_PORT in {int(t) for _ip, _p, t in port_entries(broker) if t.isdigit()} or \
            JMX_PORT in published_ports(broker):
        errs.append("broker: JMX 9101 (no authentication) is published by default; only deploy/compose.jmx.yml may")
    for var in ("KAFKA_JMX_PORT", "JMX_PORT"):
        if var in benv:
            errs.append(f"broker: {var} switches JMX on by default; only deploy/compose.jmx.yml may")

    # Memory.
    total = 0
    for name, svc in services.items():
        limit = mem_bytes(svc.get("mem_limit"))
        if limit is None:
            errs.append(f"{name}: needs mem_limit (docs/deploy.md, \"Memory\")")
            continue
        if not svc.get("profiles") or name == "producer":
            total += limit
        if name == "stream":
            total += EXTRA_STREAM_WORKERS * limit
    for name, vars_ in HEAP_VARS.items():
        env = (services.get(name) or {}).get("environment") or {}
        missing = [v for v in vars_ if not env.get(v)]
        if missing:
            errs.append(f"{name}: heap not capped: set {', '.join(missing)}")
            continue
        heap = heap_max(name, env)
        limit = mem_bytes((services.get(name) or {}).get("mem_limit"))
        if heap is None:
            errs.append(f"{name}: {vars_[0]} sets no -Xmx")
        elif limit is not None and heap + HEAP_HEADROOM > limit:
            errs.append(f"{name}: heap {heap // MIB} MiB leaves less than {HEAP_HEADROOM // MIB} MiB "
                        f"under mem_limit {limit // MIB} MiB")
    if total > MEMORY_BUDGET:
        errs.append(f"memory: ceilings of `up` + a producer run + {EXTRA_STREAM_WORKERS} more stream workers "
                    f"sum to {total / MIB / 1024:.2f} GiB, over the {MEMORY_BUDGET / MIB / 1024:.1f} GiB "
                    "that an 8 GB Docker leaves")

    stream = services.get("stream") or {}
    if "container_name" in stream:
        errs.append("stream: container_name prevents --scale stream=3")
    if stream.get("ports"):
        errs.append("stream: a published host port prevents --scale stream=3 (use expose)")
    for name in ("init", "producer"):
        if str((services.get(name) or {}).get("restart", "no")) not in ("no", "False", "false"):
            errs.append(f"{name}: a one-shot job must have restart: \"no\"")

    # The producer ingests on every start: never part of a plain `up`.
    if not (services.get("producer") or {}).get("profiles"):
        errs.append("producer: without a profile every `up` (and `up --scale`) runs another ingest; "
                    "put it behind profiles: [ingest]")

    # A one-shot service of a plain `up` must be awaited by a long-running
    # one, or `docker compose up --wait` fails on its exit (docker/compose#10596).
    def one_shot(svc):
        # A job that is meant to exit says so: restart: "no" (services
        # without a restart key are long-running infrastructure).
        return "restart" in svc and str(svc["restart"]) in ("no", "False", "false")

    for name, svc in services.items():
        if svc.get("profiles") or not one_shot(svc):
            continue
        adopted = any(
            isinstance(o.get("depends_on"), dict)
            and (o["depends_on"].get(name) or {}).get("condition") == "service_completed_successfully"
            and not one_shot(o) and not o.get("profiles")
            for o in services.values())
        if not adopted:
            errs.append(f"{name}: one-shot service that no long-running service awaits with "
                        "service_completed_successfully: `up --wait` would fail on its exit")

    def dep(svc, on, cond):
        d = (services.get(svc) or {}).get("depends_on") or {}
        got = d.get(on, {}).get("condition") if isinstance(d, dict) else None
        if got != cond:
            errs.append(f"{svc}: depends_on {on} should be condition {cond}, is {got}")

    dep("broker", "zookeeper", "service_healthy")
    dep("init", "broker", "service_healthy")
    dep("stream", "init", "service_completed_successfully")
    dep("producer", "init", "service_completed_successfully")
    dep("producer", "schema-registry", "service_healthy")
    # The scheduler (the orchestrator's role) keeps its runs in PostgreSQL
    # and runs for good: part of every `up`, restarted when it dies.
    dep("scheduler", "postgres", "service_healthy")
    dep("scheduler", "init", "service_completed_successfully")
    sched = services.get("scheduler") or {}
    if sched.get("profiles"):
        errs.append("scheduler: the orchestrator runs for good; it needs no profile")
    if str(sched.get("restart", "")) not in ("unless-stopped", "always", "on-failure"):
        errs.append("scheduler: a long-running service should restart (unless-stopped)")

    args = {n: as_list((services.get(n) or {}).get("command")) for n in OURS}

    def flag(n, f):
        a = args.get(n, [])
        return a[a.index(f) + 1] if f in a and a.index(f) + 1 < len(a) else None

    for n in ("init", "stream", "producer", "scheduler"):
        if flag(n, "--brokers") != "broker:29092":
            errs.append(f"{n}: --brokers is {flag(n, '--brokers')!r}, want broker:29092")
    for n in ("stream", "producer", "scheduler"):
        if flag(n, "--schema-registry") != "http://schema-registry:8081":
            errs.append(f"{n}: --schema-registry is {flag(n, '--schema-registry')!r}")
    cc = (services.get("control-center") or {}).get("environment") or {}
    if str(cc.get("CONTROL_CENTER_SCHEMA_REGISTRY_URL")) != "http://schema-registry:8081":
        errs.append("control-center: CONTROL_CENTER_SCHEMA_REGISTRY_URL must be http://schema-registry:8081 to show Avro")
    return errs


def mutations(cfg):
    """Yields (what, expected finding, broken copy of cfg) that check_compose must reject."""
    def m(what, expect, f):
        c = copy.deepcopy(cfg)
        f(c)
        return what, expect, c

    def s(c):
        return c["services"]

    def env(c, svc):
        return s(c)[svc].setdefault("environment", {})

    yield m("latest tag", "uses latest", lambda c: s(c)["zookeeper"].update(image="confluentinc/cp-zookeeper:latest"))
    yield m("untagged image", "has no tag", lambda c: s(c)["postgres"].update(image="postgres"))
    yield m("floating tag", "not an exact version", lambda c: s(c)["cassandra"].update(image="cassandra:4"))
    yield m("Confluent 7.4.4", "past end of support",
            lambda c: s(c)["broker"].update(image="confluentinc/cp-server:7.4.4"))
    yield m("PostgreSQL 14", "past end of support", lambda c: s(c)["postgres"].update(image="postgres:14.20-bookworm"))
    yield m("digest dropped", "pin it by digest", lambda c: s(c)["postgres"].update(
        image=split_ref(s(c)["postgres"]["image"])[0] + ":" + split_ref(s(c)["postgres"]["image"])[1]))
    yield m("digest mistyped", "differs from deploy/images.lock", lambda c: s(c)["cassandra"].update(
        image=s(c)["cassandra"]["image"][:-1] + ("0" if s(c)["cassandra"]["image"][-1] != "0" else "1")))
    yield m("image not in the lock", "not in deploy/images.lock",
            lambda c: s(c)["cassandra"].update(image="cassandra:5.0.9-trixie"))
    yield m("pip at start", "mentions pip", lambda c: s(c)["api"].update(command=["sh", "-c", "pip install kafka-python && run"]))
    yield m("localhost broker inside", "names the loopback",
            lambda c: s(c)["stream"].update(command=["stream", "--brokers", "localhost:9092"]))
    yield m("127.0.0.1 sink", "names the loopback", lambda c: s(c)["stream"]["command"].__setitem__(
        s(c)["stream"]["command"].index("--sink") + 1, "postgres://u:p@127.0.0.1:5432/db"))
    yield m("unknown host", "no service of this file", lambda c: env(c, "schema-registry").update(
        SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS="kafka:9092"))
    yield m("localhost internal listener", "names the loopback", lambda c: env(c, "broker").update(
        KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://localhost:29092,PLAINTEXT_HOST://localhost:9092"))
    yield m("container_name on stream", "container_name", lambda c: s(c)["stream"].update(container_name="stream"))
    yield m("host port on stream", "published host port", lambda c: s(c)["stream"].update(ports=["127.0.0.1:9102:9102"]))
    yield m("no postgres healthcheck", "postgres: needs a healthcheck", lambda c: s(c)["postgres"].pop("healthcheck"))
    yield m("missing port", "publishes", lambda c: s(c)["broker"].update(ports=["127.0.0.1:29092:29092"]))
    yield m("port on every interface", "binds every interface",
            lambda c: s(c)["postgres"].update(ports=["5432:5432/tcp"]))
    yield m("port on 0.0.0.0", "binds 0.0.0.0",
            lambda c: s(c)["zookeeper"].update(ports=[{"host_ip": "0.0.0.0", "published": "2181", "target": 2181}]))
    yield m("JMX published", "JMX 9101", lambda c: s(c)["broker"]["ports"].append("127.0.0.1:9101:9101/tcp"))
    yield m("JMX on", "KAFKA_JMX_PORT", lambda c: env(c, "broker").update(KAFKA_JMX_PORT=9101))
    yield m("second network", "not all on one network", lambda c: s(c)["api"].update(networks={"other": None}))
    yield m("fixed network name", "fixed name",
            lambda c: c["networks"].__setitem__("userstream", {"name": "userstream"}))
    yield m("external network", "external", lambda c: c["networks"].__setitem__("userstream", {"external": True}))
    yield m("Control Center /health", "9021/", lambda c: s(c)["control-center"]["healthcheck"].update(
        test=["CMD", "curl", "-fsS", "-o", "/dev/null", "http://control-center:9021/health"]))
    yield m("Control Center without start period", "start_period",
            lambda c: s(c)["control-center"]["healthcheck"].pop("start_period"))
    yield m("pg_isready over the socket", "over TCP", lambda c: s(c)["postgres"]["healthcheck"].update(
        test=["CMD", "pg_isready", "-q", "-U", "userstream", "-d", "userstream"]))
    yield m("pg_isready on a socket dir", "over TCP", lambda c: s(c)["postgres"]["healthcheck"].update(
        test=["CMD", "pg_isready", "-h", "/var/run/postgresql", "-U", "userstream"]))
    yield m("restarting producer", "restart", lambda c: s(c)["producer"].update(restart="always"))
    yield m("producer in every up", "profiles: [ingest]", lambda c: s(c)["producer"].pop("profiles"))
    yield m("scheduler behind a profile", "needs no profile", lambda c: s(c)["scheduler"].update(profiles=["orchestrator"]))
    yield m("scheduler not restarted", "should restart", lambda c: s(c)["scheduler"].update(restart="no"))
    yield m("scheduler before postgres", "depends_on postgres", lambda c: s(c)["scheduler"]["depends_on"].pop("postgres"))
    yield m("one-shot nobody awaits", "up --wait",
            lambda c: [s(c)[n]["depends_on"].pop("init") for n in ("stream", "scheduler", "connect")])
    yield m("stream not after init", "depends_on init", lambda c: s(c)["stream"]["depends_on"].pop("init"))
    yield m("control center without registry", "CONTROL_CENTER_SCHEMA_REGISTRY_URL",
            lambda c: env(c, "control-center").pop("CONTROL_CENTER_SCHEMA_REGISTRY_URL"))
    yield m("Control Center heap uncapped", "control-center: heap not capped",
            lambda c: env(c, "control-center").pop("CONTROL_CENTER_HEAP_OPTS"))
    yield m("broker heap uncapped", "broker: heap not capped", lambda c: env(c, "broker").pop("KAFKA_HEAP_OPTS"))
    yield m("registry heap uncapped", "schema-registry: heap not capped",
            lambda c: env(c, "schema-registry").pop("SCHEMA_REGISTRY_HEAP_OPTS"))
    yield m("Cassandra heap uncapped", "cassandra: heap not capped", lambda c: env(c, "cassandra").pop("MAX_HEAP_SIZE"))
    yield m("Cassandra new size unset", "HEAP_NEWSIZE", lambda c: env(c, "cassandra").pop("HEAP_NEWSIZE"))
    yield m("heap over the ceiling", "leaves less than",
            lambda c: env(c, "broker").update(KAFKA_HEAP_OPTS="-Xms4g -Xmx4g"))
    yield m("no ceiling", "needs mem_limit", lambda c: s(c)["postgres"].pop("mem_limit"))
    yield m("over the 8 GB budget", "over the", lambda c: s(c)["control-center"].update(mem_limit="4g"))


# ---- the compose source, rendered under several environments --------------------

def render(compose_path, env, extra_files=(), project_dir=None):
    """docker-compose config of compose_path with exactly env (no .env file,
    nothing from this shell). Returns (cfg or None, error text)."""
    project_dir = project_dir or os.path.dirname(os.path.abspath(compose_path))
    with tempfile.TemporaryDirectory(prefix="check-deploy-render.") as tmp:
        envfile = os.path.join(tmp, "empty.env")
        open(envfile, "w").close()
        cmd = ["docker-compose", "--project-directory", project_dir, "--env-file", envfile, "-f", compose_path]
        for f in extra_files:
            cmd += ["-f", f]
        cmd.append("config")
        base_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
        base_env.update(env)
        p = subprocess.run(cmd, env=base_env, capture_output=True, text=True, cwd=project_dir)
        if p.returncode != 0:
            return None, (p.stderr or p.stdout).strip()
        return yaml.safe_load(p.stdout), ""


TEST_PASSWORD = "check-deploy-not-a-secret"
MOVED_IP = "192.0.2.10"  # TEST-NET-1: a documentation address


def moved_env():
    env = {"POSTGRES_PASSWORD": TEST_PASSWORD, HOST_IP_VAR: MOVED_IP, JMX_PORT_VAR: "49101"}
    for i, var in enumerate(sorted(set(PORT_VARS.values()))):
        env[var] = str(40001 + i)
    return env


def check_source(compose_path, lock=None, project_dir=None):
    lock = read_lock() if lock is None else lock
    project_dir = project_dir or os.path.dirname(os.path.abspath(compose_path))
    errs = []
    with open(compose_path, encoding="utf-8") as f:
        text = f.read()

    # Passwords: no weak default in the file, and a render without one fails.
    for m in re.finditer(r"\$\{([A-Z0-9_]*PASSWORD[A-Z0-9_]*)(:?-)([^}]*)\}", text):
        errs.append(f"source: ${{{m.group(1)}{m.group(2)}...}} gives a password a default "
                    f"({m.group(3)!r}); use ${{{m.group(1)}:?...}}")
    cfg, err = render(compose_path, {}, project_dir=project_dir)
    if cfg is not None:
        pw = str(((cfg.get("services") or {}).get("postgres") or {}).get("environment", {}).get("POSTGRES_PASSWORD"))
        errs.append(f"source: renders without POSTGRES_PASSWORD (postgres gets {pw!r}): "
                    "the password must have no default")
    elif "POSTGRES_PASSWORD" not in err:
        errs.append(f"source: render without POSTGRES_PASSWORD failed for another reason: {err}")

    # Defaults.
    cfg, err = render(compose_path, {"POSTGRES_PASSWORD": TEST_PASSWORD}, project_dir=project_dir)
    if cfg is None:
        return errs + [f"source: does not render with POSTGRES_PASSWORD set: {err}"]
    errs.extend(check_compose(cfg, lock))
    base_ports = {name: port_entries(svc) for name, svc in (cfg.get("services") or {}).items()}

    # Every host port and the bind address are variables, and the broker
    # advertises the host port it is reached on.
    env = moved_env()
    moved, err = render(compose_path, env, project_dir=project_dir)
    if moved is None:
        return errs + [f"source: does not render with moved ports: {err}"]
    services = moved.get("services") or {}
    for name, entries in base_ports.items():
        for (ip, pub, tgt), (mip, mpub, mtgt) in zip(entries, port_entries(services.get(name) or {})):
            if not pub:
                continue
            var = PORT_VARS.get((name, int(tgt) if tgt.isdigit() else -1))
            if mip != MOVED_IP:
                errs.append(f"{name}: port {pub}:{tgt} does not follow {HOST_IP_VAR} (bound {mip or 'everywhere'})")
            if var is None:
                errs.append(f"{name}: port {pub}:{tgt} has no USERSTREAM_*_HOST_PORT variable (docs/deploy.md)")
            elif mpub != env[var]:
                errs.append(f"{name}: host port {pub} is fixed; make it ${{{var}:-{pub}}}")
    adv = str(((services.get("broker") or {}).get("environment") or {}).get("KAFKA_ADVERTISED_LISTENERS", ""))
    m = re.search(r"PLAINTEXT_HOST://[^,:]+:(\d+)", adv)
    if not m or m.group(1) != env["USERSTREAM_KAFKA_HOST_PORT"]:
        errs.append("broker: the PLAINTEXT_HOST listener must advertise the host port "
                    f"(${{USERSTREAM_KAFKA_HOST_PORT}}), or host clients are sent to a port nobody publishes: {adv!r}")

    # JMX on demand: published on the bind address, same port in and out.
    for label, renv in (("defaults", {"POSTGRES_PASSWORD": TEST_PASSWORD}), ("moved", env)):
        jcfg, err = render(compose_path, renv, [JMX_OVERRIDE], project_dir=project_dir)
        if jcfg is None:
            errs.append(f"jmx: {os.path.relpath(JMX_OVERRIDE)} does not render ({label}): {err}")
            continue
        broker = (jcfg.get("services") or {}).get("broker") or {}
        want_ip = renv.get(HOST_IP_VAR, DEFAULT_HOST_IP)
        want_port = renv.get(JMX_PORT_VAR, str(JMX_PORT))
        jmx = [e for e in port_entries(broker) if e[2] == want_port or e[1] == want_port]
        benv = broker.get("environment") or {}
        if not jmx:
            errs.append(f"jmx ({label}): the override does not publish port {want_port}")
        for ip, pub, tgt in jmx:
            if ip != want_ip:
                errs.append(f"jmx ({label}): JMX binds {ip or 'every interface'}, want {want_ip}")
            if pub != tgt:
                errs.append(f"jmx ({label}): host port {pub} != container port {tgt}; JMX's RMI "
                            "address would send clients to the wrong port")
        if str(benv.get("KAFKA_JMX_PORT")) != want_port:
            errs.append(f"jmx ({label}): KAFKA_JMX_PORT is {benv.get('KAFKA_JMX_PORT')!r}, want {want_port}")
        if not benv.get("KAFKA_JMX_HOSTNAME"):
            errs.append(f"jmx ({label}): KAFKA_JMX_HOSTNAME unset: JMX clients on the host get the container's name")

    # The lock lists nothing that no file uses.
    used = set()
    for svc in (cfg.get("services") or {}).values():
        if "build" not in svc and svc.get("image"):
            n, t, _ = split_ref(str(svc["image"]))
            used.add(f"{n}:{t}")
    dockerfile = os.path.join(project_dir, "Dockerfile")
    if os.path.exists(dockerfile):
        for image in dockerfile_images(open(dockerfile, encoding="utf-8").read()):
            n, t, _ = split_ref(image)
            used.add(f"{n}:{t}")
        for ref in sorted(set(lock) - used):
            errs.append(f"deploy/images.lock: {ref} is used by no file; drop it")
    return errs


def source_mutations(text):
    """Yields (what, expected finding, broken copy of the compose source): the
    old form of each fixed item, one at a time."""
    def sub(what, expect, old, new, count=1):
        if old not in text:
            raise SystemExit(f"source-selftest: {old!r} is not in docker-compose.yml any more; update the self-test")
        return what, expect, text.replace(old, new, count)

    yield sub("item 1: Control Center heap uncapped", "control-center: heap not capped",
              "      CONTROL_CENTER_HEAP_OPTS: -Xms1g -Xmx1g\n", "")
    yield sub("item 1: broker heap uncapped", "broker: heap not capped",
              "      KAFKA_HEAP_OPTS: -Xms1g -Xmx1g\n", "")
    yield sub("item 1: over the memory budget", "over the", "    mem_limit: 1664m\n", "    mem_limit: 4g\n")
    yield sub("item 2: port on every interface", "binds every interface",
              '"${USERSTREAM_HOST_IP:-127.0.0.1}:${USERSTREAM_ZOOKEEPER_HOST_PORT:-2181}:2181"',
              '"${USERSTREAM_ZOOKEEPER_HOST_PORT:-2181}:2181"')
    yield sub("item 2: fixed host port 5432", "is fixed",
              "${USERSTREAM_POSTGRES_HOST_PORT:-5432}", "5432")
    yield sub("item 2: bind address fixed", f"does not follow {HOST_IP_VAR}",
              '"${USERSTREAM_HOST_IP:-127.0.0.1}:${USERSTREAM_API_HOST_PORT:-8088}:8088"',
              '"127.0.0.1:${USERSTREAM_API_HOST_PORT:-8088}:8088"')
    yield sub("item 2: advertised port fixed", "advertise the host port",
              "PLAINTEXT_HOST://${USERSTREAM_HOST_ADDR:-127.0.0.1}:${USERSTREAM_KAFKA_HOST_PORT:-9092}",
              "PLAINTEXT_HOST://${USERSTREAM_HOST_ADDR:-127.0.0.1}:9092")
    yield sub("item 2: JMX 9101 published", "JMX 9101",
              '      - "${USERSTREAM_HOST_IP:-127.0.0.1}:${USERSTREAM_KAFKA_HOST_PORT:-9092}:9092"\n',
              '      - "${USERSTREAM_HOST_IP:-127.0.0.1}:${USERSTREAM_KAFKA_HOST_PORT:-9092}:9092"\n'
              '      - "9101:9101"\n')
    yield sub("item 2: JMX on", "KAFKA_JMX_PORT", "      KAFKA_BROKER_ID: 1\n",
              "      KAFKA_BROKER_ID: 1\n      KAFKA_JMX_PORT: 9101\n")
    # Every use of the password (postgres's and the scheduler's URL) at once.
    yield sub("item 2: default password", "gives a password a default",
              '${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env (docs/deploy.md, "Passwords")}',
              "${POSTGRES_PASSWORD:-userstream}", -1)
    yield sub("item 2: literal password", "renders without POSTGRES_PASSWORD",
              '${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env (docs/deploy.md, "Passwords")}',
              "userstream", -1)
    yield sub("item 3: fixed network name", "fixed name",
              "  userstream: {}\n", "  userstream:\n    name: userstream\n")
    yield sub("item 4: Control Center /health", "9021/",
              '"http://control-center:9021/"]', '"http://control-center:9021/health"]')
    yield sub("item 4: no start period", "start_period", "      start_period: 180s\n", "")
    yield sub("item 5: pg_isready over the socket", "over TCP",
              '"pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432",', '"pg_isready", "-q",')
    yield sub("item 6: producer in every up", "profiles: [ingest]", "    profiles: [ingest]\n", "")
    yield sub("item 7: Confluent 7.4.4", "past end of support",
              "confluentinc/cp-server:7.9.11", "confluentinc/cp-server:7.4.4")
    yield sub("item 7: PostgreSQL digest dropped", "pin it by digest",
              "postgres:16.15-bookworm@sha256:", "postgres:16.15-bookworm #@sha256:")


# ---- the Dockerfile --------------------------------------------------------------

def dockerfile_lines(text):
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]


def dockerfile_images(text):
    out = []
    for i, a in dockerfile_lines(text):
        if i == "FROM":
            image = [t for t in a.split() if not t.startswith("--")][0]
            if image != "scratch":
                out.append(image)
    return out


def build_sources(text):
    """The build context paths the first (build) stage copies: COPY without --from."""
    out, stage = [], 0
    for i, a in dockerfile_lines(text):
        if i == "FROM":
            stage += 1
        elif i == "COPY" and stage == 1:
            toks = [t for t in a.split() if not t.startswith("--")]
            if not any(t.startswith("--from") for t in a.split()):
                out.extend(toks[:-1])
    return out


def check_dockerfile(text, lock=None):
    """Checks the Dockerfile; returns (errors, go build command)."""
    lock = read_lock() if lock is None else lock
    errs = []
    instr = dockerfile_lines(text)

    first = text.splitlines()[0] if text else ""
    if any(i == "RUN" and "--mount=" in a for i, a in instr) and not SYNTAX.match(first):
        errs.append("Dockerfile: RUN --mount needs BuildKit's Dockerfile 1.x syntax: the first line must be "
                    "`# syntax=docker/dockerfile:1` (a parser directive is ignored anywhere else)")

    froms = [a for i, a in instr if i == "FROM"]
    if len(froms) < 2:
        errs.append("Dockerfile: want a multi-stage build (a builder and a final stage)")
    for image in dockerfile_images(text):
        errs.extend(f"Dockerfile: FROM {p}" for p in image_problems(image, False, lock))
    final = [t for t in froms[-1].split() if not t.startswith("--")][0] if froms else ""
    fname, ftag, _ = split_ref(final)
    if not (final == "scratch" or (re.fullmatch(r"gcr\.io/distroless/static-debian\d+", fname) and ftag == "nonroot")):
        errs.append(f"Dockerfile: final stage {final} is not distroless static nonroot or scratch")

    last = max(i for i, (k, _) in enumerate(instr) if k == "FROM") if froms else 0
    final_instr = instr[last + 1:]

    builds = [a for i, a in instr if i == "RUN" and "go build" in a]
    cmd = None
    if len(builds) != 1:
        errs.append(f"Dockerfile: want exactly one RUN with go build, found {len(builds)}")
    else:
        toks = builds[0].split()
        while toks and toks[0].startswith("--"):
            toks.pop(0)
        cmd = " ".join(toks)
        for need in ("CGO_ENABLED=0", "-trimpath", "-ldflags='-s -w'", "-o /out/userstream", "./cmd/userstream"):
            if need not in cmd:
                errs.append(f"Dockerfile: the go build command lacks {need}: {cmd}")
        for target in ("/go/pkg/mod", "/root/.cache/go-build"):
            if f"--mount=type=cache,target={target}" not in builds[0]:
                errs.append(f"Dockerfile: the go build has no cache mount on {target}")

    want = {
        "COPY": "--from=build /out/userstream /userstream",
        "USER": "65532:65532",
        "ENTRYPOINT": '["/userstream"]',
    }
    for k, v in want.items():
        if not any(i == k and v in a for i, a in final_instr):
            errs.append(f"Dockerfile: final stage lacks {k} {v}")
    if not any(i == "VOLUME" and "/data" in a for i, a in final_instr):
        errs.append("Dockerfile: final stage lacks VOLUME /data")
    if not any(i == "COPY" and "--chown=65532:65532" in a and a.split()[-1] == "/data" for i, a in final_instr):
        errs.append("Dockerfile: /data is not owned by 65532:65532")
    exposed = " ".join(a for i, a in final_instr if i == "EXPOSE").split()
    for port in ("8088", "9102"):
        if port not in exposed:
            errs.append(f"Dockerfile: EXPOSE lacks {port}")
    labels = " ".join(a for i, a in final_instr if i == "LABEL")
    for lab in ("title", "description", "source", "version", "revision"):
        if f"org.opencontainers.image.{lab}=" not in labels:
            errs.append(f"Dockerfile: LABEL org.opencontainers.image.{lab} is missing")
    return errs, cmd


def dockerfile_mutations(text):
    """Yields (what, expected finding, broken copy of the Dockerfile)."""
    def sub(what, expect, old, new):
        if old not in text:
            raise SystemExit(f"dockerfile-selftest: {old!r} is not in the Dockerfile any more; update the self-test")
        return what, expect, text.replace(old, new, 1)

    golang = re.search(r"golang:[^\s@]+(@sha256:[0-9a-f]+)?", text)
    golang = golang.group(0) if golang else "golang:"
    final = re.search(r"gcr\.io/distroless/static-debian\d+:nonroot(@sha256:[0-9a-f]+)?", text)
    final = final.group(0) if final else "gcr.io/distroless/"
    yield sub("golang:latest", "uses latest", golang, "golang:latest")
    yield sub("golang floating 1.26", "not an exact version", golang, "golang:1.26-bookworm")
    yield sub("golang without digest", "pin it by digest", golang, golang.split("@")[0])
    yield sub("golang digest mistyped", "differs from deploy/images.lock", golang,
              golang[:-1] + ("0" if golang[-1] != "0" else "1"))
    yield sub("golang 1.25", "past end of support", golang, "golang:1.25.12-bookworm")
    yield sub("bare nonroot", "bare 'nonroot'", final, final.split("@")[0])
    yield sub("distroless debian12", "past end of support", final,
              final.replace("static-debian13", "static-debian12"))
    yield sub("no syntax line", "# syntax=docker/dockerfile:1", "# syntax=docker/dockerfile:1\n", "")
    yield sub("syntax line after a comment", "# syntax=docker/dockerfile:1",
              "# syntax=docker/dockerfile:1\n", "# userstream\n# syntax=docker/dockerfile:1\n")
    yield sub("cgo on", "CGO_ENABLED=0", "CGO_ENABLED=0 ", "")
    yield sub("no -trimpath", "-trimpath", "-trimpath ", "")
    yield sub("root user", "USER 65532:65532", "USER 65532:65532", "USER root")
    yield sub("a base with a shell", "not distroless", "FROM " + final, "FROM debian:12.8")
    yield sub("no cache mount", "no cache mount", "--mount=type=cache,target=/root/.cache/go-build", "")
    yield sub("/data owned by root", "/data is not owned", "--chown=65532:65532 /out/data", "/out/data")
    yield sub("no labels", "org.opencontainers.image.source", "org.opencontainers.image.source=", "source=")


# ---- the commands our image is given ----------------------------------------------

def sub_and_flags(args):
    """userstream argv -> (subcommand words, sorted --flags)."""
    sub = []
    for a in args:
        if a.startswith("-"):
            break
        sub.append(a)
    return sub, sorted({a.split("=")[0] for a in args if a.startswith("--")})


def compose_commands(cfg):
    """(service, subcommand words, flags) of every service that runs our image."""
    out = []
    for name, svc in sorted((cfg.get("services") or {}).items()):
        if svc.get("image") == "userstream:dev":
            out.append((name,) + sub_and_flags(as_list(svc.get("command"))))
    return out


# `docker compose run` options that take a value.
RUN_VALUED = {"--name", "-e", "--env", "-u", "--user", "-w", "--workdir", "--entrypoint", "-l", "--label",
              "-p", "--publish", "-v", "--volume"}


def smoke_commands(log_path):
    """Checks the docker calls compose-smoke.sh made against a stand-in docker
    (one shell-quoted argv a line) and returns (errors, [(smoke:SERVICE, sub, flags)])
    for every `run` of our image."""
    calls = [shlex.split(l) for l in open(log_path, encoding="utf-8") if l.strip()]
    compose = [c[1:] for c in calls if c and c[0] == "compose"]

    def verb(c):  # compose -p P -f F --env-file E [--profile X] VERB ...
        i = 0
        while i < len(c) and c[i].startswith("-"):
            i += 2
        return c[i:]

    errs = []
    for c in compose:
        if c[:1] != ["version"] and not ("-p" in c and "--env-file" in c and "-f" in c):
            errs.append(f"a compose call without its own project and env file: {c}")

    def has(pred, what):
        if not any(pred(c) for c in compose):
            errs.append(f"compose-smoke never ran: {what}")

    has(lambda c: verb(c)[:1] == ["up"] and {"-d", "--build", "--wait"} <= set(c), "up -d --build --wait")
    has(lambda c: "--profile" in c and verb(c)[:1] == ["run"] and "producer" in c and "--users" in c
        and c[c.index("--users") + 1] == "10000", "the producer through --profile ingest with --users 10000")
    has(lambda c: "cqlsh" in c and any("COUNT(*)" in a for a in c), "a cqlsh count")
    has(lambda c: "psql" in c and any("count(*)" in a for a in c), "a psql count")
    verbs = [verb(c) for c in compose]
    if not verbs or verbs[-1][:2] != ["down", "-v"]:
        errs.append(f"the last compose call is not down -v: {verbs[-1] if verbs else None}")
    out = []
    for v in verbs:
        if v[:1] != ["run"]:
            continue
        i = 1
        while i < len(v) and v[i].startswith("-"):
            i += 2 if v[i] in RUN_VALUED else 1
        if i < len(v):
            out.append((f"smoke:{v[i]}",) + sub_and_flags(v[i + 1:]))
    return errs, out


# ---- main ------------------------------------------------------------------------

def run_selftest(label, base_errs, cases, check):
    if base_errs:
        print(f"{label}: the unbroken file already fails: {base_errs[0]}", file=sys.stderr)
        return 1
    failed = 0
    cases = list(cases)
    # The source self-test renders each copy several times with
    # docker-compose; two at a time halves the wait on two cores.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda case: check(case[2]), cases))
    for (what, expect, _broken), errs in zip(cases, results):
        hit = [e for e in errs if expect in e]
        if hit:
            print(f"{label}: rejects {what} -> {hit[0]}")
        elif errs:
            print(f"{label}: {what} was rejected, but not by its rule (want {expect!r}): {errs[0]}",
                  file=sys.stderr)
            failed += 1
        else:
            print(f"{label}: FAILED to reject {what}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def main(argv):
    modes = ("compose", "selftest", "source", "source-selftest", "dockerfile", "dockerfile-selftest", "images",
             "build-sources", "commands", "smoke-calls")
    if len(argv) < 2 or argv[1] not in modes or (argv[1] != "images" and len(argv) != 3):
        print(__doc__, file=sys.stderr)
        return 2
    mode = argv[1]
    lock = read_lock()
    if mode == "images":
        for ref, (digest, _src) in lock.items():
            print(ref, digest)
        return 0
    path = argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()

    if mode in ("commands", "smoke-calls"):
        if mode == "commands":
            errs, cmds = [], compose_commands(yaml.safe_load(text))
        else:
            errs, cmds = smoke_commands(path)
        for e in errs:
            print(e, file=sys.stderr)
        for name, sub, flags in cmds:
            print(name, ",".join(sub), ",".join(flags))
        return 1 if errs else 0
    if mode == "build-sources":
        print("\n".join(build_sources(text)))
        return 0
    if mode == "dockerfile":
        errs, cmd = check_dockerfile(text, lock)
        for e in errs:
            print(e, file=sys.stderr)
        if cmd:
            print(cmd)
        return 1 if errs else 0
    if mode == "dockerfile-selftest":
        return run_selftest("dockerfile-selftest", check_dockerfile(text, lock)[0], dockerfile_mutations(text),
                            lambda t: check_dockerfile(t, lock)[0])
    if mode in ("source", "source-selftest"):
        if mode == "source":
            errs = check_source(path, lock)
            for e in errs:
                print(e, file=sys.stderr)
            unverified = sorted(r for r, (d, _s) in lock.items() if d == "unverified")
            if unverified and not errs:
                print("note: pinned by tag only, digest not verifiable here (deploy/pin-digests.sh on a "
                      "Docker host fills them in): " + ", ".join(unverified), file=sys.stderr)
            return 1 if errs else 0
        directory = os.path.dirname(os.path.abspath(path))

        def check_text(t):
            # A copy elsewhere, rendered with the original's directory as the
            # project directory, so `build: .` and the Dockerfile resolve.
            with tempfile.TemporaryDirectory(prefix="check-deploy-source.") as tmp:
                copy_path = os.path.join(tmp, "docker-compose.yml")
                with open(copy_path, "w", encoding="utf-8") as f:
                    f.write(t)
                return check_source(copy_path, lock, project_dir=directory)
        return run_selftest("source-selftest", check_source(path, lock), source_mutations(text), check_text)

    cfg = yaml.safe_load(text)
    if mode == "compose":
        errs = check_compose(cfg, lock)
        for e in errs:
            print(e, file=sys.stderr)
        return 1 if errs else 0
    return run_selftest("selftest", check_compose(cfg, lock), mutations(cfg), lambda c: check_compose(c, lock))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
