#!/usr/bin/env python3
"""Checks the deployment files in deploy/ against each other and against the real server.

Docker has no engine here, so nothing is built or started in a container. Instead:
  - every YAML file parses, and the compose file, the Kubernetes manifests, nginx.conf and the
    Dockerfile are checked for what deploy/README.md promises (shared secret, PostgreSQL,
    Redis, trusted proxy, probes, non-root, ...);
  - every OXIDP_* variable named anywhere in deploy/ must be a field of `pub struct Config`
    in src/config/mod.rs (the server rejects unknown OXIDP_* variables at start);
  - when a built oxidp binary is there (target/debug or target/release), the environment of
    each deployment is fed to its configuration loader, a server is started with the Kubernetes
    settings to answer the probe paths and the Dockerfile's HEALTHCHECK command, and the
    placeholder secret must be refused;
  - the Kubernetes manifests are validated against the API schemas kubernetes-validate ships
    (strict: unknown fields fail), and checked for probes, enableServiceLinks: false, the
    security context, resources against docs/PERFORMANCE.md and the NetworkPolicy's ports; the
    binary must ignore the service-link variables of their Services and refuse OXIDP_PORT=8080;
  - `docker compose config` runs when the docker client has the compose plugin.

Prints one line per check and ends with "deploy: N passed, M failed"; exits 1 on any failure.
Needs Python 3.9+, PyYAML and kubernetes-validate (scripts/deploy-requirements.txt).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
NGINX = DEPLOY / "nginx.conf"
K8S = DEPLOY / "k8s"

# Variables the configuration loader passes over (src/config/load.rs): the TOML file's path and
# the log filter.
NOT_CONFIG_FIELDS = {"OXIDP_CONFIG", "OXIDP_LOG"}
# Values that must never sit in a ConfigMap or a Dockerfile.
SECRET_VARIABLES = {"OXIDP_SECRET_KEY", "OXIDP_INTERNAL_SECRET", "OXIDP_DATABASE_URL", "OXIDP_SMTP_URL"}
# The SPEC variables that README.md names in a sentence below its table.
SPEC_VARIABLES = {
    "OXIDP_REDIS_URL", "OXIDP_REGISTRATION", "OXIDP_PASSWORD_LOGIN_API", "OXIDP_INTERNAL_SECRET",
    "OXIDP_CORS_ORIGINS", "OXIDP_SMTP_URL", "OXIDP_MAIL_DIR", "OXIDP_CONFIG",
}

passed = 0
failed = 0


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def report(ok: bool, name: str, detail: str = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}{' - ' + detail if detail else ''}", flush=True)
    return ok


def skip(name: str, why: str) -> None:
    print(f"skip {name} - {why}", flush=True)


def warn(name: str, detail: str) -> None:
    print(f"warn {name} - {detail}", flush=True)


# ---------------------------------------------------------------------------------------------
# Sources of truth: the Config struct and the README's configuration table
# ---------------------------------------------------------------------------------------------

def config_fields() -> set[str]:
    """`pub NAME: TYPE,` lines of `pub struct Config { ... }`, as OXIDP_NAME."""
    text = (ROOT / "src" / "config" / "mod.rs").read_text()
    match = re.search(r"^pub struct Config \{\n(.*?)^\}", text, re.S | re.M)
    if not match:
        return set()
    return {f"OXIDP_{name.upper()}" for name in re.findall(r"^    pub (\w+):", match.group(1), re.M)}


def readme_variables() -> set[str]:
    """First cells of the table rows that start with "| `OXIDP_", and the SPEC sentence below."""
    names: set[str] = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| `OXIDP_"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`(OXIDP_[A-Z0-9_]+)`", first_cell))
    text = (ROOT / "README.md").read_text()
    sentence = re.search(r"Variables of the SPEC.*?are accepted already", text, re.S)
    if sentence:
        names.update(re.findall(r"`(OXIDP_[A-Z0-9_]+)`", sentence.group(0)))
    if "`OXIDP_CONFIG`" in text:
        names.add("OXIDP_CONFIG")
    return names


def top_level(variable: str) -> str:
    """OXIDP_UPSTREAM__GOOGLE__KIND names the nested key `upstream`."""
    return variable.split("__", 1)[0]


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def environment_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $$."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        expression = match.group("braced") or match.group("plain")
        found = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?$", expression, re.S)
        if not found:
            raise ValueError(f"bad interpolation {match.group(0)!r}")
        name, operator, argument = found.groups()
        current = env.get(name)
        if operator in (":-", ":?"):
            unset = not current
        else:
            unset = current is None
        if operator and operator.endswith("-"):
            return argument if unset else current
        if operator and operator.endswith("?"):
            if unset:
                raise ValueError(f"{name} is required: {argument}")
            return current
        return current or ""

    return INTERPOLATION.sub(substitute, value)


def parse_cidrs(text: str) -> list:
    return [ipaddress.ip_network(item) for item in re.split(r"[,\s]+", text.strip()) if item]


def find_binary() -> Path | None:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    candidates = [target / profile / "oxidp" for profile in ("debug", "release")]
    existing = [path for path in candidates if path.is_file() and os.access(path, os.X_OK)]
    return max(existing, key=lambda path: path.stat().st_mtime) if existing else None


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without any OXIDP_* variable, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OXIDP_")}
    env.update({key: str(value) for key, value in extra.items()})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def docs_of_kind(documents: list[tuple[Path, dict]], kind: str) -> list[tuple[Path, dict]]:
    return [(path, doc) for path, doc in documents if doc.get("kind") == kind]


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------

def check_yaml_files() -> dict[Path, list]:
    parsed: dict[Path, list] = {}
    files = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    report(bool(files), "deploy/ has YAML files", f"{len(files)} found")
    for path in files:
        try:
            documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        except yaml.YAMLError as error:
            report(False, f"{rel(path)} parses", str(error).replace("\n", " "))
            continue
        ok = bool(documents) and all(isinstance(doc, dict) for doc in documents)
        report(ok, f"{rel(path)} parses", f"{len(documents)} document(s)")
        if ok:
            parsed[path] = documents
    return parsed


def check_variables(fields: set[str]) -> None:
    report("OXIDP_BIND" in fields and "OXIDP_SECRET_KEY" in fields, "src/config/mod.rs: Config fields found",
           f"{len(fields)} fields")
    documented = readme_variables()
    report(bool(documented) and SPEC_VARIABLES <= documented, "README.md: configuration variables found",
           f"{len(documented)} variables")
    drift = sorted(v for v in documented if top_level(v) not in fields and v not in NOT_CONFIG_FIELDS)
    if drift:
        # Not a deploy/ file, so not a failure here; it is what the server would reject.
        warn("README.md names variables that are not Config fields", ", ".join(drift))
    text = (ROOT / "README.md").read_text()
    mentioned = set(re.findall(r"\bOXIDP_[A-Z0-9_]*[A-Z0-9]", text))
    unknown = sorted(v for v in mentioned - documented if top_level(v) not in fields and v not in NOT_CONFIG_FIELDS)
    if unknown:
        warn("README.md mentions variables the configuration loader rejects", ", ".join(unknown))
    undocumented = sorted(fields - documented)
    if undocumented:
        warn("Config fields missing from README.md", ", ".join(undocumented))

    usage: dict[str, list[str]] = {}
    for path in sorted(DEPLOY.rglob("*")):
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for variable in sorted(set(re.findall(r"\bOXIDP_[A-Z0-9_]*[A-Z0-9]", text))):
            usage.setdefault(variable, []).append(rel(path))
    report(bool(usage), "deploy/ names OXIDP_* variables", f"{len(usage)} distinct")
    for variable, files in sorted(usage.items()):
        known = top_level(variable) in fields or variable in NOT_CONFIG_FIELDS
        report(known, f"{variable} is a real configuration variable",
               ("in " if known else "not a field of Config in src/config/mod.rs; used in ") + ", ".join(files))


def check_compose(documents: list) -> dict:
    info: dict = {}
    if not report(len(documents) == 1, "compose.yaml is one document"):
        return info
    compose = documents[0]
    services: dict = compose.get("services") or {}
    report(bool(services), "compose: has services", ", ".join(services))

    def is_oxidp(service: dict) -> bool:
        build = service.get("build") or {}
        dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
        return dockerfile.endswith("deploy/Dockerfile") or str(service.get("image", "")).startswith("oxidp")

    def command(service: dict) -> list:
        value = service.get("command") or ["serve"]
        return value.split() if isinstance(value, str) else list(value)

    oxidp = {name: s for name, s in services.items() if is_oxidp(s)}
    instances = {name: s for name, s in oxidp.items() if command(s)[:1] == ["serve"]}
    migrations = {name: s for name, s in oxidp.items() if command(s)[:1] == ["migrate"]}
    postgres = [n for n, s in services.items() if str(s.get("image", "")).startswith("postgres")]
    redis = [n for n, s in services.items() if str(s.get("image", "")).startswith("redis")]
    proxies = [n for n, s in services.items() if re.match(r"(nginx|traefik|haproxy|caddy)", str(s.get("image", "")))]
    report(bool(postgres), "compose: a PostgreSQL service", ", ".join(postgres))
    report(bool(redis), "compose: a Redis service", ", ".join(redis))
    report(len(instances) >= 2, "compose: at least two oxidp instances", ", ".join(instances))
    report(len(proxies) == 1, "compose: one reverse proxy", ", ".join(proxies))
    report(len(migrations) == 1, "compose: a one-shot `oxidp migrate` service", ", ".join(migrations))
    info.update(instances=instances, oxidp=oxidp, services=services)

    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            if dependency not in services:
                report(False, f"compose: {name} depends on an existing service", dependency)
    if postgres:
        report("healthcheck" in services[postgres[0]] and "pg_isready" in json.dumps(services[postgres[0]]["healthcheck"]),
               "compose: PostgreSQL has a pg_isready healthcheck")

    # Build: context and Dockerfile resolve to the repository and deploy/Dockerfile.
    for name, service in oxidp.items():
        build = service.get("build")
        if isinstance(build, dict):
            context = (COMPOSE.parent / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            report(context == ROOT and dockerfile == DOCKERFILE.resolve(),
                   f"compose: {name} builds deploy/Dockerfile from the repository root",
                   f"context {rel(context)}, dockerfile {rel(dockerfile)}")

    # Environment of every oxidp service.
    dummy = {"OXIDP_SECRET_KEY": base64.b64encode(b"\x01" * 32).decode()}
    resolved: dict[str, dict[str, str]] = {}
    for name, service in oxidp.items():
        raw = environment_of(service)
        try:
            resolved[name] = {key: interpolate(value, dummy) for key, value in raw.items()}
        except ValueError as error:
            report(False, f"compose: {name} environment interpolates", str(error))
            continue
        env = resolved[name]
        report(raw.get("OXIDP_SECRET_KEY", "").startswith("${OXIDP_SECRET_KEY"),
               f"compose: {name} takes OXIDP_SECRET_KEY from the caller's environment",
               raw.get("OXIDP_SECRET_KEY", "missing"))
        report(env.get("OXIDP_DATABASE_URL", "").startswith("postgres://"),
               f"compose: {name} OXIDP_DATABASE_URL is postgres://", env.get("OXIDP_DATABASE_URL", "missing"))
        if name in instances:
            report(env.get("OXIDP_REDIS_URL", "").startswith("redis://"),
                   f"compose: {name} OXIDP_REDIS_URL is redis://", env.get("OXIDP_REDIS_URL", "missing"))
            report(bool(env.get("OXIDP_TRUSTED_PROXIES")), f"compose: {name} sets OXIDP_TRUSTED_PROXIES",
                   env.get("OXIDP_TRUSTED_PROXIES", "missing"))
        try:
            secret = interpolate(raw.get("OXIDP_SECRET_KEY", ""), {})
            report(False, f"compose: {name} refuses to start without OXIDP_SECRET_KEY", f"got {secret!r}")
        except ValueError:
            report(True, f"compose: {name} refuses to start without OXIDP_SECRET_KEY")
    info["environments"] = resolved
    shared = ("OXIDP_SECRET_KEY", "OXIDP_DATABASE_URL", "OXIDP_REDIS_URL", "OXIDP_ISSUER")
    values = {key: {env.get(key) for name, env in resolved.items() if name in instances} for key in shared}
    report(all(len(v) == 1 for v in values.values()), "compose: instances share secret, database, Redis and issuer",
           ", ".join(f"{k}: {len(v)} value(s)" for k, v in values.items()))

    for name in instances:
        conditions = services[name].get("depends_on") or {}
        for migrate in migrations:
            condition = conditions.get(migrate, {}).get("condition") if isinstance(conditions, dict) else None
            report(condition == "service_completed_successfully",
                   f"compose: {name} starts after {migrate} completed", str(condition))

    # The proxy: fixed address inside the network, trusted by every instance, and nothing else.
    if proxies and instances:
        proxy = services[proxies[0]]
        info["proxy"] = proxies[0]
        published = [str(p) for p in proxy.get("ports") or []]
        issuer = next(iter(values["OXIDP_ISSUER"])) or ""
        issuer_port = re.search(r":(\d+)$", issuer)
        report(bool(issuer_port) and any(p.split(":")[0] == issuer_port.group(1) for p in published),
               "compose: the proxy publishes the issuer's port", f"issuer {issuer}, ports {published}")
        info["proxy_container_ports"] = {p.split(":")[-1].split("/")[0] for p in published}
        mounts = [str(v).split(":")[0] for v in proxy.get("volumes") or []]
        report(all((COMPOSE.parent / m).exists() for m in mounts if m.startswith(".")),
               "compose: the proxy's mounted files exist", ", ".join(mounts))
        proxy_networks = proxy.get("networks") or {}
        addresses = [ipaddress.ip_address(n["ipv4_address"]) for n in proxy_networks.values()
                     if isinstance(proxy_networks, dict) and isinstance(n, dict) and n.get("ipv4_address")]
        networks = compose.get("networks") or {}
        subnets, ranges = [], []
        for network in networks.values():
            for pool in ((network or {}).get("ipam") or {}).get("config") or []:
                if pool.get("subnet"):
                    subnets.append(ipaddress.ip_network(pool["subnet"]))
                if pool.get("ip_range"):
                    ranges.append(ipaddress.ip_network(pool["ip_range"]))
        report(bool(subnets), "compose: the network has an explicit subnet", ", ".join(map(str, subnets)))
        report(bool(addresses) and all(any(a in s for s in subnets) for a in addresses)
               and not any(a in r for a in addresses for r in ranges),
               "compose: the proxy has a fixed address in the subnet, outside the dynamic range",
               ", ".join(map(str, addresses)) or "none")
        for name in instances:
            try:
                trusted = parse_cidrs(resolved.get(name, {}).get("OXIDP_TRUSTED_PROXIES", ""))
            except ValueError as error:
                report(False, f"compose: {name} OXIDP_TRUSTED_PROXIES parses", str(error))
                continue
            covers = bool(addresses) and all(any(a in net for net in trusted) for a in addresses)
            inside = bool(trusted) and all(any(net.subnet_of(s) for s in subnets) for net in trusted)
            gateways = [next(s.hosts()) for s in subnets]
            report(covers and inside and not any(g in net for g in gateways for net in trusted),
                   f"compose: {name} trusts the proxy, within the network, not the gateway",
                   ", ".join(map(str, trusted)))
    return info


def check_nginx(compose_info: dict) -> None:
    if not report(NGINX.is_file(), "nginx.conf exists"):
        return
    text = re.sub(r"#.*", "", NGINX.read_text())
    report(text.count("{") == text.count("}"), "nginx.conf: braces balance")
    upstream_servers = set(re.findall(r"^\s*server\s+([\w.-]+:\d+)", text, re.M))
    instances = compose_info.get("instances") or {}
    expected = {f"{name}:8080" for name in instances}
    report(bool(expected) and expected <= upstream_servers, "nginx.conf: upstream lists every oxidp instance",
           ", ".join(sorted(upstream_servers)))
    for header, pattern in (
        ("X-Forwarded-For", r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for"),
        ("X-Forwarded-Proto", r"proxy_set_header\s+X-Forwarded-Proto\s+\$scheme"),
        ("X-Request-Id", r"proxy_set_header\s+X-Request-Id\s+\$\w+"),
    ):
        report(re.search(pattern, text) is not None, f"nginx.conf: sets {header}")
    request_id_map = re.search(r"map\s+\$http_x_request_id\s+\$(\w+)", text)
    report(bool(request_id_map) and f"X-Request-Id ${request_id_map.group(1)}" in re.sub(r"\s+", " ", text),
           "nginx.conf: passes the client's X-Request-Id through")
    listens = set(re.findall(r"^\s*listen\s+(\d+)", text, re.M))
    container_ports = compose_info.get("proxy_container_ports") or set()
    report(bool(listens) and container_ports <= listens, "nginx.conf: listens on the proxy's published port",
           f"listen {sorted(listens)}, published to {sorted(container_ports)}")
    report("non_idempotent" not in text, "nginx.conf: never resends a POST to another instance")

    nginx = shutil.which("nginx")
    if not nginx:
        skip("nginx -t", "nginx is not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        config = NGINX.read_text()
        for name in instances:  # the compose service names resolve only inside compose
            config = re.sub(rf"\b{re.escape(name)}:8080", "127.0.0.1:8080", config)
        (Path(tmp) / "nginx.conf").write_text(f"pid {tmp}/nginx.pid;\n" + config)
        result = subprocess.run([nginx, "-t", "-p", tmp, "-c", f"{tmp}/nginx.conf"], capture_output=True, text=True)
        report(result.returncode == 0, "nginx -t", result.stderr.strip().splitlines()[-1] if result.stderr else "")


def parse_dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        if current and line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            if current.strip():
                keyword, _, rest = current.strip().partition(" ")
                instructions.append((keyword.upper(), rest.strip()))
            current = ""
    return instructions


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """ENV of the last stage (KEY=VALUE pairs)."""
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    env: dict[str, str] = {}
    for keyword, rest in instructions[last_from:]:
        if keyword == "ENV":
            for pair in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                env[pair[0]] = pair[1].strip('"')
    return env


def compile_time_inputs() -> set[str]:
    """Top-level paths the crate reads while compiling: include_str!/include_bytes!, sqlx::migrate!, askama."""
    needed = {"Cargo.toml", "Cargo.lock", "src"}
    for source in (ROOT / "src").rglob("*.rs"):
        text = source.read_text()
        for path in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', text):
            target = (source.parent / path).resolve()
            if ROOT in target.parents:
                needed.add(target.relative_to(ROOT).parts[0])
        for path in re.findall(r'migrate!\(\s*"([^"]+)"', text):
            needed.add(Path(path).parts[0])
        if re.search(r"#\[template\(", text):
            needed.add("templates")
    return needed


def check_dockerfile() -> dict:
    info: dict = {}
    if not report(DOCKERFILE.is_file(), "Dockerfile exists"):
        return info
    instructions = parse_dockerfile()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    report(len(stages) >= 2, "Dockerfile: multi-stage", f"{len(stages)} FROM lines")
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    runtime = instructions[last_from:]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    user = users[-1] if users else ""
    uid = user.split(":")[0]
    report(bool(users) and uid not in ("root", "0") and uid.isdigit(), "Dockerfile: runs as a numeric non-root USER",
           user or "no USER in the last stage")
    info["uid"] = int(uid) if uid.isdigit() else None
    report(any("--locked" in rest and "--release" in rest for keyword, rest in instructions if keyword == "RUN"),
           "Dockerfile: cargo build --release --locked")
    builds = [i for i, (keyword, rest) in enumerate(instructions) if keyword == "RUN" and "cargo build" in rest]
    copies_src = [i for i, (keyword, rest) in enumerate(instructions) if keyword == "COPY" and re.match(r"src\b", rest)]
    report(len(builds) >= 2 and bool(copies_src) and builds[0] < copies_src[0] < builds[-1],
           "Dockerfile: dependencies build in a layer before the sources are copied")
    copied = set()
    for keyword, rest in instructions[:last_from]:
        if keyword == "COPY" and not rest.startswith("--from"):
            copied.update(Path(p).parts[0] for p in rest.split()[:-1] if not p.startswith("--"))
    needed = compile_time_inputs()
    missing = sorted(n for n in needed if n not in copied and "." not in copied)
    report(not missing, "Dockerfile: copies every compile-time input",
           f"needs {', '.join(sorted(needed))}" + (f"; missing {', '.join(missing)}" if missing else ""))
    info["compile_inputs"] = needed
    runtime_text = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    report("libssl3" in runtime_text and "ca-certificates" in runtime_text,
           "Dockerfile: runtime installs libssl3 and ca-certificates")
    env = dockerfile_env(instructions)
    info["env"] = env
    exposed = {rest.split("/")[0] for keyword, rest in runtime if keyword == "EXPOSE"}
    bind_port = env.get("OXIDP_BIND", "").rsplit(":", 1)[-1]
    report(bind_port in exposed, "Dockerfile: EXPOSE matches OXIDP_BIND", f"OXIDP_BIND={env.get('OXIDP_BIND')}, EXPOSE {sorted(exposed)}")
    report(env.get("OXIDP_BIND", "").startswith(("0.0.0.0:", "[::]:")), "Dockerfile: listens on all interfaces")
    leaked = sorted(SECRET_VARIABLES & set(env) - {"OXIDP_DATABASE_URL"})
    report(not leaked, "Dockerfile: no secret in ENV", ", ".join(leaked))
    entrypoint = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    cmd = [rest for keyword, rest in runtime if keyword == "CMD"]
    report(bool(entrypoint) and json.loads(entrypoint[-1])[0] in ("oxidp", "/usr/local/bin/oxidp"),
           "Dockerfile: ENTRYPOINT is oxidp", entrypoint[-1] if entrypoint else "none")
    report(bool(cmd) and json.loads(cmd[-1]) == ["serve"], "Dockerfile: CMD is serve", cmd[-1] if cmd else "none")
    healthchecks = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    if healthchecks:
        command = re.search(r"CMD\s+(\[.*\])\s*$", healthchecks[-1])
        try:
            info["healthcheck"] = json.loads(command.group(1)) if command else None
        except json.JSONDecodeError:
            info["healthcheck"] = None
        report(bool(info["healthcheck"]), "Dockerfile: HEALTHCHECK is an exec-form command",
               " ".join(info["healthcheck"] or [])[:60])
        report("/healthz" in healthchecks[-1], "Dockerfile: HEALTHCHECK asks /healthz")

    ignore = ROOT / ".dockerignore"
    if report(ignore.is_file(), ".dockerignore at the build context (repository root)"):
        patterns = [line.strip().rstrip("/").lstrip("/") for line in ignore.read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
        for entry in ("target", ".git", "keys"):
            report(any(p == entry or p.startswith(entry + "/") for p in patterns), f".dockerignore excludes {entry}")
        report(not any(p.split("/")[0] in needed for p in patterns if not p.startswith("!")),
               ".dockerignore keeps every compile-time input")
    return info


def check_kubernetes(parsed: dict[Path, list], docker: dict) -> dict:
    documents = [(path, doc) for path, docs in parsed.items() if K8S in path.parents for doc in docs]
    info: dict = {}
    if not report(bool(documents), "k8s: manifests found", f"{len(documents)} objects"):
        return info
    for path, doc in documents:
        metadata = doc.get("metadata") or {}
        ok = bool(doc.get("apiVersion") and doc.get("kind") and metadata.get("name")) and "namespace" not in metadata
        report(ok, f"k8s: {rel(path)} {doc.get('kind')}/{metadata.get('name')} is namespace-agnostic and complete")

    configmaps = {doc["metadata"]["name"]: doc for _, doc in docs_of_kind(documents, "ConfigMap")}
    secrets = {doc["metadata"]["name"]: doc for _, doc in docs_of_kind(documents, "Secret")}
    for name, configmap in configmaps.items():
        data = configmap.get("data") or {}
        report(all(isinstance(v, str) for v in data.values()), f"k8s: ConfigMap {name} values are strings",
               ", ".join(k for k, v in data.items() if not isinstance(v, str)))
        report(not SECRET_VARIABLES & set(data), f"k8s: ConfigMap {name} holds no secrets",
               ", ".join(sorted(SECRET_VARIABLES & set(data))))
    secret_env: dict[str, str] = {}
    for name, secret in secrets.items():
        data = dict(secret.get("stringData") or {})
        data.update({k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()})
        secret_env.update(data)
        report("OXIDP_SECRET_KEY" in data, f"k8s: Secret {name} has OXIDP_SECRET_KEY")
        key = data.get("OXIDP_SECRET_KEY", "")
        try:
            usable = len(base64.b64decode(key, validate=True)) >= 32
        except ValueError:
            usable = False
        report(not usable, f"k8s: Secret {name} OXIDP_SECRET_KEY is a placeholder nobody can deploy by mistake",
               "it decodes to a usable key" if usable else "")
        if "OXIDP_DATABASE_URL" in data:
            report(data["OXIDP_DATABASE_URL"].startswith("postgres://"), f"k8s: Secret {name} database is PostgreSQL")
    report(any("OXIDP_SECRET_KEY" in (s.get("stringData") or s.get("data") or {}) for s in secrets.values()),
           "k8s: a Secret carries OXIDP_SECRET_KEY")
    info["env"] = {k: v for cm in configmaps.values() for k, v in (cm.get("data") or {}).items()}
    info["secret_env"] = secret_env

    def check_pod(kind: str, name: str, pod: dict) -> dict:
        spec = pod.get("spec") or {}
        pod_security = spec.get("securityContext") or {}
        containers = spec.get("containers") or []
        report(len(containers) == 1, f"k8s: {kind} {name} has one container")
        container = containers[0] if containers else {}
        security = {**pod_security, **(container.get("securityContext") or {})}
        report(security.get("runAsNonRoot") is True, f"k8s: {kind} {name} runAsNonRoot")
        if "runAsUser" in security:
            report(security["runAsUser"] != 0 and security["runAsUser"] == docker.get("uid"),
                   f"k8s: {kind} {name} runAsUser matches the image's USER",
                   f"{security['runAsUser']} vs {docker.get('uid')}")
        report(security.get("allowPrivilegeEscalation") is False, f"k8s: {kind} {name} allowPrivilegeEscalation false")
        report("ALL" in ((security.get("capabilities") or {}).get("drop") or []), f"k8s: {kind} {name} drops ALL capabilities")
        report(security.get("readOnlyRootFilesystem") is True, f"k8s: {kind} {name} readOnlyRootFilesystem")
        report((security.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
               f"k8s: {kind} {name} seccompProfile RuntimeDefault")
        # A Service named oxidp makes the kubelet add OXIDP_SERVICE_HOST, OXIDP_PORT=tcp://...
        report(spec.get("enableServiceLinks") is False, f"k8s: {kind} {name} enableServiceLinks false",
               "no OXIDP_* service-link variables in the pod")
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        report(all(requests.get(r) and limits.get(r) for r in ("cpu", "memory"))
               and quantity(requests["memory"]) <= quantity(limits["memory"])
               and quantity(requests["cpu"]) <= quantity(limits["cpu"]),
               f"k8s: {kind} {name} requests and limits CPU and memory", json.dumps(resources))
        env_from = container.get("envFrom") or []
        refs_cm = [e["configMapRef"]["name"] for e in env_from if "configMapRef" in e]
        refs_secret = [e["secretRef"]["name"] for e in env_from if "secretRef" in e]
        report(bool(refs_cm) and all(r in configmaps for r in refs_cm) and bool(refs_secret)
               and all(r in secrets for r in refs_secret),
               f"k8s: {kind} {name} envFrom the ConfigMap and the Secret", f"{refs_cm} {refs_secret}")
        if security.get("readOnlyRootFilesystem"):
            volumes = {v.get("name"): v for v in spec.get("volumes") or []}
            mounts = [m["mountPath"] for m in container.get("volumeMounts") or []
                      if "emptyDir" in (volumes.get(m.get("name")) or {}) and not m.get("readOnly")]
            env = {**docker.get("env", {}), **info["env"]}
            for variable in ("OXIDP_KEYS_DIR", "OXIDP_MAIL_DIR"):
                path = env.get(variable, "")
                writable = path.startswith("/") and any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)
                report(writable, f"k8s: {kind} {name} {variable} is on a writable emptyDir (read-only root)",
                       f"{path} in {mounts}")
        return container

    for path, deployment in docs_of_kind(documents, "Deployment"):
        name = deployment["metadata"]["name"]
        spec = deployment.get("spec") or {}
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        report((spec.get("replicas") or 1) >= 2, f"k8s: Deployment {name} runs at least 2 replicas", str(spec.get("replicas")))
        report(bool(selector) and selector.items() <= labels.items(), f"k8s: Deployment {name} selector matches its pods")
        container = check_pod("Deployment", name, template)
        ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
        bind = {**docker.get("env", {}), **info["env"]}.get("OXIDP_BIND", "")
        report(str(bind.rsplit(":", 1)[-1]) in {str(p) for p in ports.values()},
               f"k8s: Deployment {name} containerPort matches OXIDP_BIND", f"{bind} vs {ports}")
        for probe, path_expected in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"),
                                     ("livenessProbe", "/healthz")):
            http = (container.get(probe) or {}).get("httpGet") or {}
            port = http.get("port")
            report(http.get("path") == path_expected and (port in ports or port in ports.values()),
                   f"k8s: Deployment {name} {probe} GET {path_expected}", f"{http.get('path')} on port {port}")
        info.setdefault("probes", []).extend(
            (container.get(p) or {}).get("httpGet", {}).get("path")
            for p in ("startupProbe", "readinessProbe", "livenessProbe"))
        startup = container.get("startupProbe") or {}
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        report(budget >= 60, f"k8s: Deployment {name} startupProbe allows a minute for migrations at start",
               f"{budget}s")
        check_sizing(name, container.get("resources") or {}, {**docker.get("env", {}), **info["env"]})
        grace = template.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        pre_stop = " ".join(map(str, ((container.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command", [])))
        sleep = int(re.search(r"sleep (\d+)", pre_stop).group(1)) if re.search(r"sleep (\d+)", pre_stop) else 0
        report(grace >= sleep + 10, f"k8s: Deployment {name} grace period leaves time to drain after preStop",
               f"{grace}s, preStop sleep {sleep}s")
        info["image"] = container.get("image")
        info["deployment_labels"] = labels
        info["ports"] = ports

    for path, service in docs_of_kind(documents, "Service"):
        name = service["metadata"]["name"]
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        labels = info.get("deployment_labels") or {}
        report(bool(selector) and selector.items() <= labels.items(), f"k8s: Service {name} selects the Deployment's pods")
        report(spec.get("type", "ClusterIP") == "ClusterIP", f"k8s: Service {name} is ClusterIP")
        for port in spec.get("ports") or []:
            target = port.get("targetPort")
            ports = info.get("ports") or {}
            report(target in ports or target in ports.values(), f"k8s: Service {name} port {port.get('port')} -> {target}",
                   f"container ports {ports}")
        info["service_selector"] = selector

    jobs = docs_of_kind(documents, "Job")
    report(bool(jobs), "k8s: a migration Job")
    for path, job in jobs:
        name = job["metadata"]["name"]
        template = (job.get("spec") or {}).get("template") or {}
        container = check_pod("Job", name, template)
        report((container.get("args") or container.get("command") or [])[-1:] == ["migrate"],
               f"k8s: Job {name} runs `oxidp migrate`")
        report(template.get("spec", {}).get("restartPolicy") in ("Never", "OnFailure"), f"k8s: Job {name} restartPolicy")
        report(container.get("image") == info.get("image"), f"k8s: Job {name} uses the Deployment's image")
        job_labels = (template.get("metadata") or {}).get("labels") or {}
        selector = info.get("service_selector") or {}
        report(not (selector and selector.items() <= job_labels.items()), f"k8s: Job {name} pods are not behind the Service")
        info["job_labels"] = job_labels
    info["service_links"] = service_link_variables(documents)
    check_network_policies(documents, info)
    check_schemas(parsed)
    return info


# ---------------------------------------------------------------------------------------------
# Kubernetes: sizing from the benchmark, network policies, schemas, service links
# ---------------------------------------------------------------------------------------------

PERFORMANCE = ROOT / "docs" / "PERFORMANCE.md"
ARGON2_MIB = 19  # one argon2id block per password check in flight (README.md, Security)
QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|Ki|Mi|Gi)?$")
FACTORS = {None: 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value) -> float:
    """A Kubernetes quantity (`250m`, `2`, `64Mi`) as a number (cores or bytes)."""
    match = QUANTITY.match(str(value))
    if not match:
        raise ValueError(f"unsupported quantity {value!r}")
    return float(match.group(1)) * FACTORS[match.group(2)]


def benchmark_figures() -> dict:
    """Idle and peak RSS (MB) and the server's busiest core count from docs/PERFORMANCE.md."""
    text = PERFORMANCE.read_text()
    rss = re.findall(r"Server RSS: idle ([0-9.]+) MB.*?peak under load \(VmHWM\) ([0-9.]+) MB", text)
    flood = re.findall(r"^\| defaults:[^|]*\|[^|]*\| *[0-9.]+[–-]([0-9.]+) MiB", text, re.M)
    cores = []
    for table in re.findall(r"^\| scenario \| oxidp server cores \|.*?(?=^\s*$)", text, re.S | re.M):
        cores += [float(row.split("|")[2]) for row in table.splitlines()[2:] if row.startswith("|")]
    return {
        "idle": max((float(i) for i, _ in rss), default=0.0),
        "peak": max((float(p) for _, p in rss), default=0.0),
        "flood": max((float(f) for f in flood), default=0.0),
        "cores": max(cores, default=0.0),
    }


def check_sizing(name: str, resources: dict, env: dict[str, str]) -> None:
    figures = benchmark_figures()
    if not report(all(figures.values()), "k8s: docs/PERFORMANCE.md has the measured RSS and CPU figures",
                  json.dumps(figures)):
        return
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    mib = 2**20
    request = quantity(requests.get("memory", 0)) / mib
    limit = quantity(limits.get("memory", 0)) / mib
    report(request >= figures["peak"], f"k8s: Deployment {name} memory request covers the benchmark's peak under load",
           f"{request:.0f} MiB vs {figures['peak']} MB")
    slots = env.get("OXIDP_PASSWORD_HASH_CONCURRENCY", "0")
    report(slots.isdigit() and int(slots) > 0,
           f"k8s: Deployment {name} fixes OXIDP_PASSWORD_HASH_CONCURRENCY (memory grows by {ARGON2_MIB} MiB a slot)",
           slots)
    needed = max(figures["flood"], figures["idle"] + ARGON2_MIB * int(slots or 0) if slots.isdigit() else 0)
    report(limit >= 1.5 * needed and limit >= 2 * figures["peak"],
           f"k8s: Deployment {name} memory limit leaves room over the measured peaks",
           f"{limit:.0f} MiB vs flood {figures['flood']} MiB, {slots} slot(s), load {figures['peak']} MB")
    cpu = quantity(limits.get("cpu", 0))
    report(cpu >= figures["cores"], f"k8s: Deployment {name} CPU limit is above what a saturated server used",
           f"{cpu} vs {figures['cores']} cores")


def rule_ports(rules: list) -> set[tuple[str, object]]:
    """(protocol, port) pairs that a list of ingress or egress rules admits, from any peer."""
    return {(p.get("protocol", "TCP"), p.get("port")) for rule in rules or [] for p in rule.get("ports") or []}


def url_port(url: str, default: int) -> int:
    match = re.match(r"^\w+://(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/?]*)(?::(\d+))?", url)
    return int(match.group(1)) if match and match.group(1) else default


def check_network_policies(documents: list, info: dict) -> None:
    policies = docs_of_kind(documents, "NetworkPolicy")
    env = {**info.get("env", {}), **info.get("secret_env", {})}
    labels = info.get("deployment_labels") or {}
    ports = info.get("ports") or {}
    selected = [doc for _, doc in policies
                if labels and ((doc.get("spec") or {}).get("podSelector") or {}).get("matchLabels", {}).items() <= labels.items()
                and ((doc.get("spec") or {}).get("podSelector") or {}).get("matchLabels")]
    if not report(bool(selected), "k8s: a NetworkPolicy selects the Deployment's pods"):
        return
    spec = selected[0].get("spec") or {}
    name = selected[0]["metadata"]["name"]
    report({"Ingress", "Egress"} <= set(spec.get("policyTypes") or []), f"k8s: NetworkPolicy {name} restricts ingress and egress")
    ingress = rule_ports(spec.get("ingress"))
    report(all(("TCP", n) in ingress or ("TCP", p) in ingress for n, p in ports.items()) and bool(ports),
           f"k8s: NetworkPolicy {name} admits the container's ports", f"{sorted(map(str, ingress))} vs {ports}")
    egress = rule_ports(spec.get("egress"))
    required = {
        "DNS": [("UDP", 53), ("TCP", 53)],
        "PostgreSQL (OXIDP_DATABASE_URL)": [("TCP", url_port(env.get("OXIDP_DATABASE_URL", ""), 5432))],
        "Redis (OXIDP_REDIS_URL)": [("TCP", url_port(env.get("OXIDP_REDIS_URL", ""), 6379))],
        "HTTPS: upstream identity providers, webhooks, logout calls": [("TCP", 443)],
        "SMTP: submission, implicit TLS, relay": [("TCP", 587), ("TCP", 465), ("TCP", 25)],
    }
    for what, needed in required.items():
        report(all(pair in egress for pair in needed), f"k8s: NetworkPolicy {name} egress allows {what}",
               ", ".join(f"{port}/{protocol}" for protocol, port in needed))
    job_labels = info.get("job_labels") or {}
    for _, doc in policies:
        match = ((doc.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
        if job_labels and match and match.items() <= job_labels.items():
            egress = rule_ports((doc.get("spec") or {}).get("egress"))
            database = ("TCP", url_port(env.get("OXIDP_DATABASE_URL", ""), 5432))
            report(("UDP", 53) in egress and database in egress,
                   f"k8s: NetworkPolicy {doc['metadata']['name']} lets the migration Job reach DNS and PostgreSQL")


def check_schemas(parsed: dict[Path, list]) -> None:
    """Every manifest against the Kubernetes OpenAPI schemas shipped in kubernetes-validate."""
    try:
        import kubernetes_validate
    except ImportError:
        report(False, "k8s: kubernetes-validate is installed",
               "pip install -r scripts/deploy-requirements.txt (scripts/test does it)")
        return
    version = kubernetes_validate.latest_version()
    for path, documents in sorted(parsed.items()):
        if K8S not in path.parents:
            continue
        errors = []
        for doc in documents:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                errors.append(f"{doc.get('kind')}: {'.'.join(map(str, error.path))}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                errors.append(f"{doc.get('kind')}: no schema ({error})")
        report(not errors, f"k8s: {rel(path)} is valid against the Kubernetes {version} schemas (strict)",
               "; ".join(errors)[:300])


def service_link_variables(documents: list) -> dict[str, str]:
    """What the kubelet would put into a pod for the manifests' Services (fake cluster IPs)."""
    env: dict[str, str] = {}
    for number, (_, service) in enumerate(docs_of_kind(documents, "Service")):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        address = f"10.96.0.{20 + number}"
        ports = (service.get("spec") or {}).get("ports") or []
        for index, port in enumerate(ports):
            protocol = port.get("protocol", "TCP")
            url = f"{protocol.lower()}://{address}:{port['port']}"
            if index == 0:
                env[f"{prefix}_SERVICE_HOST"] = address
                env[f"{prefix}_SERVICE_PORT"] = str(port["port"])
                env[f"{prefix}_PORT"] = url
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
            base = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
            env.update({base: url, f"{base}_PROTO": protocol.lower(), f"{base}_PORT": str(port["port"]),
                        f"{base}_ADDR": address})
    return env


def check_with_binary(compose_info: dict, docker: dict, k8s: dict) -> None:
    binary = find_binary()
    if binary is None:
        for name in ("binary accepts the deployments' configuration", "probe paths and HEALTHCHECK answer"):
            skip(name, "no built oxidp (cargo build --bin oxidp)")
        return
    print(f"     (using {rel(binary)})", flush=True)

    def loads(name: str, env: dict[str, str]) -> None:
        result = subprocess.run([str(binary), "openapi"], env=clean_environment(env), capture_output=True,
                                text=True, timeout=60)
        report(result.returncode == 0, f"binary: {name} configuration is accepted",
               result.stderr.strip().splitlines()[-1] if result.returncode else "")

    dummy_secret = base64.b64encode(os.urandom(32)).decode()
    loads("Dockerfile ENV", docker.get("env", {}))
    for name, env in (compose_info.get("environments") or {}).items():
        loads(f"compose {name}", {**docker.get("env", {}), **env})
    k8s_env = {**docker.get("env", {}), **k8s.get("env", {}), **k8s.get("secret_env", {})}
    loads("k8s ConfigMap + Secret", k8s_env)
    # Should a pod get the Services' link variables after all (enableServiceLinks dropped, or a
    # Service named oxidp-<x> elsewhere), they are ignored, and a look-alike typo is not.
    links = k8s.get("service_links") or {}
    report(bool(links), "k8s: service-link variables of the Services", ", ".join(sorted(links))[:120])
    loads("k8s ConfigMap + Secret + service links", {**k8s_env, **links})
    result = subprocess.run([str(binary), "openapi"], env=clean_environment({**k8s_env, **links, "OXIDP_PORT": "8080"}),
                            capture_output=True, text=True, timeout=60)
    report(result.returncode == 2 and "OXIDP_PORT" in result.stderr, "binary: OXIDP_PORT=8080 (not a service link) is refused",
           f"exit {result.returncode}: {result.stderr.strip()[:100]}")

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite://{tmp}/oxidp.db?mode=rwc"
        local = {"OXIDP_DATABASE_URL": sqlite, "OXIDP_KEYS_DIR": f"{tmp}/keys", "OXIDP_MAIL_DIR": f"{tmp}/mail"}

        # The Secret's placeholder must stop the server rather than serve with a known key.
        placeholder = {**k8s_env, **local}
        result = subprocess.run([str(binary), "keys", "list"], env=clean_environment(placeholder),
                                capture_output=True, text=True, timeout=60)
        report(result.returncode == 2 and "OXIDP_SECRET_KEY" in result.stderr,
               "binary: the Secret's placeholder OXIDP_SECRET_KEY is refused",
               f"exit {result.returncode}: {result.stderr.strip()[:100]}")

        # A server with the Kubernetes settings: probe paths and the image's HEALTHCHECK.
        port = free_port()
        env = {**k8s_env, **links, **local, "OXIDP_SECRET_KEY": dummy_secret, "OXIDP_BIND": f"127.0.0.1:{port}"}
        log = open(Path(tmp) / "serve.log", "w+")
        server = subprocess.Popen([str(binary), "serve"], env=clean_environment(env), stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and server.poll() is None:
                if http_status(f"http://127.0.0.1:{port}/healthz") == 200:
                    break
                time.sleep(0.1)
            started = server.poll() is None and http_status(f"http://127.0.0.1:{port}/healthz") == 200
            if not report(started, "binary: serves with the k8s settings and service links"):
                log.seek(0)
                print("     " + "\n     ".join(log.read().strip().splitlines()[-10:]))
                return
            for path in k8s.get("probes") or []:
                status = http_status(f"http://127.0.0.1:{port}{path}")
                report(status == 200, f"binary: probe GET {path}", f"status {status}")
            healthcheck = docker.get("healthcheck")
            if healthcheck and shutil.which(healthcheck[0]):
                probe_env = clean_environment({**docker.get("env", {}), "OXIDP_BIND": f"0.0.0.0:{port}"})
                result = subprocess.run(healthcheck, env=probe_env, capture_output=True, text=True, timeout=10)
                report(result.returncode == 0, "binary: Dockerfile HEALTHCHECK passes on a live server",
                       result.stderr.strip()[:100])
            else:
                skip("binary: Dockerfile HEALTHCHECK", "no exec-form HEALTHCHECK or its program is missing")
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                code = None
            report(code == 0, "binary: SIGTERM stops the server cleanly within the grace period", f"exit {code}")
            if healthcheck and shutil.which(healthcheck[0]):
                result = subprocess.run(healthcheck, env=probe_env, capture_output=True, text=True, timeout=10)
                report(result.returncode != 0, "binary: Dockerfile HEALTHCHECK fails with no server")
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            log.close()


def check_docker_compose_config() -> None:
    docker = shutil.which("docker")
    if not docker:
        skip("docker compose config", "no docker client")
        return
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if version.returncode != 0:
        skip("docker compose config", "the docker client has no compose plugin")
        return
    env = clean_environment({"OXIDP_SECRET_KEY": base64.b64encode(b"\x02" * 32).decode()})
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "-q"], env=env,
                            capture_output=True, text=True, timeout=60)
    report(result.returncode == 0, "docker compose config", result.stderr.strip()[:200])


def guarded(section: str, function, *args, default=None):
    """Runs one group of checks; a file too broken for the checks themselves is one failure."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - any crash is reported, and the summary still printed
        report(False, f"{section}: checks ran to the end", f"{type(error).__name__}: {error}")
        return {} if default is None else default


def main() -> int:
    parsed = guarded("YAML", check_yaml_files)
    guarded("variables", lambda: check_variables(config_fields()))
    if COMPOSE in parsed:
        compose_info = guarded("compose", check_compose, parsed[COMPOSE])
    else:
        report(False, "compose.yaml exists and parses")
        compose_info = {}
    guarded("nginx", check_nginx, compose_info)
    docker = guarded("Dockerfile", check_dockerfile)
    k8s = guarded("k8s", check_kubernetes, parsed, docker)
    guarded("binary", check_with_binary, compose_info, docker, k8s)
    guarded("docker compose", check_docker_compose_config)
    print(f"deploy: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
