#!/usr/bin/python3
"""Static checks of the deployment files, run by scripts/check-deploy.sh.

Standard library plus PyYAML (python3-yaml, which Debian's docker-compose
depends on, so it is there whenever docker-compose is).

  check_deploy.py compose CONFIG.yml     rules for `docker-compose config` output
  check_deploy.py selftest CONFIG.yml    each rule catches a deliberately broken copy
  check_deploy.py dockerfile Dockerfile  rules for the Dockerfile; prints the
                                         builder's `go build` command on stdout
  check_deploy.py dockerfile-selftest Dockerfile
                                         each rule catches a broken copy

Each finding is one line on stderr; the exit status is 1 when there is any.
"""

import copy
import re
import shlex
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("check_deploy: PyYAML is missing: apt-get install python3-yaml "
             "(docker-compose depends on it)")

# The services of the stack and the host ports the original published
# (plus ours: api 8088, postgres 5432). docs/deploy.md lists the same.
REQUIRED_PORTS = {
    "zookeeper": {2181},
    "broker": {9092, 9101},
    "schema-registry": {8081},
    "control-center": {9021},
    "cassandra": {9042},
    "postgres": {5432},
    "api": {8088},
}
OURS = ("init", "api", "stream", "producer")
HEALTHCHECKED = ("zookeeper", "broker", "schema-registry", "control-center",
                 "postgres", "cassandra")

# The only places a host-side name may appear: what the broker advertises to
# clients on the host (its PLAINTEXT_HOST listener) and the JMX RMI host name
# handed to the same clients. Inside the network, service names only.
HOST_SIDE = {("broker", "KAFKA_JMX_HOSTNAME")}
HOST_LISTENER = re.compile(r"^PLAINTEXT_HOST://[^,]+$")

LOOPBACK = re.compile(r"(?i)\blocalhost\b|\b127\.\d+\.\d+\.\d+\b|\[?::1\]?(?=[:/\s]|$)")
# host:port, optionally inside a URL (scheme://[user[:pass]@]host:port).
HOSTPORT = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:[^@/\s,]+@)?([A-Za-z0-9_.-]+):(\d{2,5})\b")
# An exact version: 7.4.4, 16.4-bookworm, 4.1.5, 1.26.8-bookworm.
PINNED_TAG = re.compile(r"^\d+\.\d+(\.\d+)*(-[a-z0-9][a-z0-9.]*)?$")
PIP = re.compile(r"\bpip3?\b|\bpip install\b|requirements\.txt")


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


def published_ports(svc):
    out = set()
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            if p.get("published") not in (None, ""):
                out.add(int(str(p["published"]).split("-")[0]))
        else:
            parts = str(p).split("/")[0].split(":")
            if len(parts) >= 2:
                out.add(int(parts[-2].split("-")[0]))
    return out


def image_problem(image, built):
    """Returns why an image reference is not pinned, or None."""
    if "@sha256:" in image:
        return None
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return f"image {image!r} has no tag: pin an exact version"
    if tag == "latest":
        return f"image {image!r} uses latest: pin an exact version"
    if built:
        return None  # our own image, built from the Dockerfile
    if not PINNED_TAG.match(tag):
        return f"image {image!r}: tag {tag!r} is not an exact version"
    return None


def check_compose(cfg):
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
            p = image_problem(str(image), "build" in svc)
            if p:
                errs.append(f"{name}: {p}")
        if name in OURS:
            if "build" not in svc or image != "userstream:dev":
                errs.append(f"{name}: must be built from the Dockerfile as userstream:dev")
        nets = svc.get("networks") or {}
        networks.add(tuple(sorted(nets)))

        for path, s in strings(svc):
            where = ".".join((name,) + path)
            if PIP.search(s):
                errs.append(f"{where}: mentions pip ({s!r}): nothing is installed at start")
            if path and path[0] == "ports":
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

    for name in HEALTHCHECKED:
        hc = (services.get(name) or {}).get("healthcheck")
        if not hc or not hc.get("test") or hc.get("disable"):
            errs.append(f"{name}: needs a healthcheck")

    for name, ports in REQUIRED_PORTS.items():
        got = published_ports(services.get(name) or {})
        if not ports <= got:
            errs.append(f"{name}: publishes {sorted(got)}, want {sorted(ports)}")

    stream = services.get("stream") or {}
    if "container_name" in stream:
        errs.append("stream: container_name prevents --scale stream=3")
    if stream.get("ports"):
        errs.append("stream: a published host port prevents --scale stream=3 (use expose)")
    for name in ("init", "producer"):
        if str((services.get(name) or {}).get("restart", "no")) not in ("no", "False", "false"):
            errs.append(f"{name}: a one-shot job must have restart: \"no\"")

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

    args = {n: as_list((services.get(n) or {}).get("command")) for n in OURS}

    def flag(n, f):
        a = args.get(n, [])
        return a[a.index(f) + 1] if f in a and a.index(f) + 1 < len(a) else None

    for n in ("init", "stream", "producer"):
        if flag(n, "--brokers") != "broker:29092":
            errs.append(f"{n}: --brokers is {flag(n, '--brokers')!r}, want broker:29092")
    for n in ("stream", "producer"):
        if flag(n, "--schema-registry") != "http://schema-registry:8081":
            errs.append(f"{n}: --schema-registry is {flag(n, '--schema-registry')!r}")
    cc = (services.get("control-center") or {}).get("environment") or {}
    if str(cc.get("CONTROL_CENTER_SCHEMA_REGISTRY_URL")) != "http://schema-registry:8081":
        errs.append("control-center: CONTROL_CENTER_SCHEMA_REGISTRY_URL must be http://schema-registry:8081 to show Avro")
    return errs


def mutations(cfg):
    """Yields (what, broken copy of cfg) that check_compose must reject."""
    def m(what, f):
        c = copy.deepcopy(cfg)
        f(c["services"])
        return what, c

    yield m("latest tag", lambda s: s["zookeeper"].update(image="confluentinc/cp-zookeeper:latest"))
    yield m("untagged image", lambda s: s["postgres"].update(image="postgres"))
    yield m("floating tag", lambda s: s["cassandra"].update(image="cassandra:4"))
    yield m("pip at start", lambda s: s["api"].update(command=["sh", "-c", "pip install kafka-python && run"]))
    yield m("localhost broker inside",
            lambda s: s["stream"].update(command=["stream", "--brokers", "localhost:9092"]))
    yield m("127.0.0.1 sink", lambda s: s["stream"]["command"].__setitem__(
        s["stream"]["command"].index("--sink") + 1, "postgres://u:p@127.0.0.1:5432/db"))
    yield m("unknown host", lambda s: s["schema-registry"]["environment"].update(
        SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS="kafka:9092"))
    yield m("localhost internal listener", lambda s: s["broker"]["environment"].update(
        KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://localhost:29092,PLAINTEXT_HOST://localhost:9092"))
    yield m("container_name on stream", lambda s: s["stream"].update(container_name="stream"))
    yield m("host port on stream", lambda s: s["stream"].update(ports=["9102:9102"]))
    yield m("no postgres healthcheck", lambda s: s["postgres"].pop("healthcheck"))
    yield m("missing port", lambda s: s["broker"].update(ports=[{"published": 9092, "target": 9092}]))
    yield m("second network", lambda s: s["api"].update(networks={"other": None}))
    yield m("restarting producer", lambda s: s["producer"].update(restart="always"))
    yield m("stream not after init", lambda s: s["stream"]["depends_on"].pop("init"))
    yield m("control center without registry",
            lambda s: s["control-center"]["environment"].pop("CONTROL_CENTER_SCHEMA_REGISTRY_URL"))


def check_dockerfile(text):
    """Checks the Dockerfile; returns (errors, go build command)."""
    errs = []
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
    instr = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]

    froms = [a for i, a in instr if i == "FROM"]
    if len(froms) < 2:
        errs.append("Dockerfile: want a multi-stage build (a builder and a final stage)")
    for a in froms:
        image = [t for t in a.split() if not t.startswith("--")][0]
        if image == "scratch":
            continue
        name, _, tag = image.rpartition(":")
        if not name or tag == "latest":
            errs.append(f"Dockerfile: FROM {image}: pin a tag other than latest")
        elif "golang" in name and not PINNED_TAG.match(tag):
            errs.append(f"Dockerfile: FROM {image}: the Go image needs an exact version")
        elif "golang" not in name and not (PINNED_TAG.match(tag) or tag == "nonroot" or "@sha256:" in image):
            errs.append(f"Dockerfile: FROM {image}: unpinned tag")
    final = froms[-1].split()[0] if froms else ""
    if final not in ("gcr.io/distroless/static-debian12:nonroot", "scratch"):
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
    """Yields (what, broken copy of the Dockerfile) that check_dockerfile must reject."""
    def sub(what, old, new):
        if old not in text:
            raise SystemExit(f"dockerfile-selftest: {old!r} is not in the Dockerfile any more; update the self-test")
        return what, text.replace(old, new, 1)

    m = re.search(r"golang:\S+", text)
    yield sub("golang:latest", m.group(0) if m else "golang:", "golang:latest")
    yield sub("cgo on", "CGO_ENABLED=0 ", "")
    yield sub("no -trimpath", "-trimpath ", "")
    yield sub("root user", "USER 65532:65532", "USER root")
    yield sub("a base with a shell", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12.8")
    yield sub("no cache mount", "--mount=type=cache,target=/root/.cache/go-build", "")
    yield sub("/data owned by root", "--chown=65532:65532 /out/data", "/out/data")
    yield sub("no labels", "org.opencontainers.image.source=", "source=")


def main(argv):
    modes = ("compose", "selftest", "dockerfile", "dockerfile-selftest")
    if len(argv) != 3 or argv[1] not in modes:
        print(__doc__, file=sys.stderr)
        return 2
    mode, path = argv[1], argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if mode == "dockerfile":
        errs, cmd = check_dockerfile(text)
        for e in errs:
            print(e, file=sys.stderr)
        if cmd:
            print(cmd)
        return 1 if errs else 0
    if mode == "dockerfile-selftest":
        if check_dockerfile(text)[0]:
            print("dockerfile-selftest: the unbroken Dockerfile already fails", file=sys.stderr)
            return 1
        failed = 0
        for what, broken in dockerfile_mutations(text):
            errs, _ = check_dockerfile(broken)
            if errs:
                print(f"dockerfile-selftest: rejects {what}: {errs[0]}")
            else:
                print(f"dockerfile-selftest: FAILED to reject {what}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    cfg = yaml.safe_load(text)
    if mode == "compose":
        errs = check_compose(cfg)
        for e in errs:
            print(e, file=sys.stderr)
        return 1 if errs else 0
    failed = 0
    base = check_compose(cfg)
    if base:
        print(f"selftest: the unbroken file already fails: {base[0]}", file=sys.stderr)
        return 1
    for what, broken in mutations(cfg):
        errs = check_compose(broken)
        if errs:
            print(f"selftest: rejects {what}: {errs[0]}")
        else:
            print(f"selftest: FAILED to reject {what}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
