"""Offline checks of everything that deploys the services: docker-compose.yml, the Dockerfiles,
deploy/ (collector, Prometheus, Grafana, PostgreSQL init) and the Kubernetes manifests in deploy/k8s.

Nothing here needs Docker, a cluster or the network:
- docker-compose.yml is interpolated the way Compose does it and validated against the official
  Compose Specification JSON schema, vendored unchanged as compose-spec.json (Apache-2.0, see
  LICENSE.compose-spec; the copy that check-jsonschema 0.39.0 ships, sha256 pinned below);
- the Kubernetes manifests are validated with kubernetes-validate's bundled OpenAPI schemas;
- (the Grafana dashboard's queries and the Prometheus alert rules are checked in test_monitoring.py);
- every environment variable handed to a service is checked against that service's pydantic settings
  class (introspected, so new settings need no change here) and the settings are actually built from
  it, production checks included.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
import shlex
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from notifications.settings import NotificationsSettings
from referrals.settings import ReferralsSettings
from waitlists.settings import WaitlistsSettings

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = HERE / "compose-spec.json"
COMPOSE_SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Oldest Kubernetes minor we support and a recent one; kubernetes-validate ships schemas for both.
K8S_VERSIONS = ("1.30.0", "1.35.0")

SETTINGS: dict[str, type[BaseSettings]] = {
    "referrals": ReferralsSettings,
    "waitlists": WaitlistsSettings,
    "notifications": NotificationsSettings,
}
SERVICES = tuple(SETTINGS)

# Settings that a deployment must set explicitly even though the class has a (development) default.
MUST_SET = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "ENVIRONMENT", "HTTP_HOST", "OTEL_EXPORTER_OTLP_ENDPOINT")


# --------------------------------------------------------------------------------------------------
# helpers


@functools.cache
def _parsed_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def load_yaml_documents(path: Path) -> list[Any]:
    """The YAML documents of a file (parsed once per test run; each caller gets its own copy)."""
    return copy.deepcopy(_parsed_yaml(path))


def load_yaml(path: Path) -> Any:
    (document,) = load_yaml_documents(path)
    return document


def env_names(settings: type[BaseSettings]) -> dict[str, FieldInfo]:
    """Environment variable name -> field, as pydantic-settings reads them (prefix, aliases, upper case)."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    names: dict[str, FieldInfo] = {}
    for name, info in settings.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        names[(alias or f"{prefix}{name}").upper()] = info
    return names


def is_secret(info: FieldInfo) -> bool:
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        return any(arg is SecretStr for arg in get_args(annotation))
    return annotation is SecretStr


def secret_env_names(settings: type[BaseSettings]) -> set[str]:
    """Variables that carry secrets: the SecretStr fields, and DATABASE_URL (it holds a password)."""
    return {name for name, info in env_names(settings).items() if is_secret(info)} | {"DATABASE_URL"}


def build_settings(settings: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build the settings exactly from ``env``: nothing from this machine's environment leaks in."""
    known = set(env_names(settings))
    for name in list(os.environ):
        if name.upper() in known:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings()


# Image references: a tag must name an exact release (major.minor.patch), or the image is pinned by
# digest. PostgreSQL numbers its releases MAJOR.MINOR since version 10 (15.14 is an exact release), so
# for it two parts are exact.
EXACT_TAG = re.compile(r"v?\d+\.\d+\.\d+(?:[-.+_][0-9A-Za-z][0-9A-Za-z._-]*)?")
TWO_PART_RELEASES = {"postgres": re.compile(r"\d+\.\d+(?:-[0-9a-z][0-9a-z.]*)?")}
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def image_problem(image: str) -> str | None:
    """Why ``image`` is not pinned to an exact version, or None when it is."""
    if not image or "$" in image:
        return "empty or interpolated image reference"
    reference, _, digest = image.partition("@")
    if digest:
        return None if DIGEST.fullmatch(digest) else f"malformed digest {digest!r}"
    repository, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:
        return "no tag (means latest)"
    if "latest" in tag.lower():
        return f"floating tag {tag!r}"
    pattern = TWO_PART_RELEASES.get(repository.rsplit("/", 1)[-1], EXACT_TAG)
    if not pattern.fullmatch(tag):
        return f"tag {tag!r} is not an exact major.minor.patch release"
    return None


# Compose interpolation (https://docs.docker.com/reference/compose-file/interpolation/), strict: a
# variable with neither a default nor a required-message is an error here (Compose would use "").
_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


class InterpolationError(ValueError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            raise InterpolationError(f"${match.group('named')} has no default and is not marked required")
        braced = _BRACED.fullmatch(match.group("braced"))
        if braced is None:
            raise InterpolationError(f"invalid interpolation ${{{match.group('braced')}}}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg") or ""
        value = env.get(name)
        if op is None:
            raise InterpolationError(f"${{{name}}} has no default and is not marked required")
        if op == ":-":
            return value or arg
        if op == "-":
            return arg if value is None else value
        if op == ":?":
            if not value:
                raise InterpolationError(f"{name}: {arg}")
            return value
        if op == "?":
            if value is None:
                raise InterpolationError(f"{name}: {arg}")
            return value
        if op == ":+":
            return arg if value else ""
        return "" if value is None else arg  # "+"

    return _VARIABLE.sub(substitute, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env) for value in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def compose_raw() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)  # type: ignore[no-any-return]


def required_compose_variables() -> dict[str, str]:
    """Every ``${NAME:?...}`` in docker-compose.yml, with a test value that passes the settings checks."""
    names = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", COMPOSE_FILE.read_text(encoding="utf-8"))
    return {name: f"test-{name.lower().replace('_', '-')}-0123456789abcdef0123456789" for name in names}


def compose_resolved() -> dict[str, Any]:
    return interpolate_tree(compose_raw(), required_compose_variables())  # type: ignore[no-any-return]


def as_env_dict(environment: Any) -> dict[str, str]:
    if environment is None:
        return {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_stages(path: Path, build_args: dict[str, str]) -> list[Stage]:
    """A small Dockerfile reader: continuation lines joined, comments dropped, split into stages, and
    ``${NAME}`` of every declared ARG replaced by its build argument (or the ARG's default), as BuildKit
    does within the stage that declares it."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if pending or line.strip():
            logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    stages: list[Stage] = []
    declared: dict[str, str] = {}
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
            declared = {}
        elif keyword == "ARG":
            name, _, default = args.partition("=")
            declared[name] = build_args.get(name, default)
        else:
            assert stages, f"{path}: {keyword} before FROM"
            for name, value in declared.items():
                args = args.replace("${" + name + "}", value)
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def compose_build_args(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in compose_raw()["services"][service]["build"].get("args", {}).items()}


def exec_form(args: str) -> list[str]:
    """CMD/ENTRYPOINT arguments as a list (JSON exec form, or shell form run by /bin/sh -c)."""
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list)
        assert all(isinstance(part, str) for part in value)
        return value
    return ["/bin/sh", "-c", args]


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_documents(path):
            yield path, doc


def k8s_objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc.get("kind") == kind]


def k8s_single(kind: str) -> dict[str, Any]:
    objects = k8s_objects(kind)
    assert len(objects) == 1, f"expected one {kind}, found {len(objects)}"
    return objects[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def workloads_of(service: str) -> list[dict[str, Any]]:
    found = [
        doc
        for doc in k8s_objects("Deployment") + k8s_objects("Job")
        if doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") == service
    ]
    kinds = sorted(doc["kind"] for doc in found)
    assert kinds == ["Deployment", "Job"], f"{service}: expected one Deployment and one Job, found {kinds}"
    return found


@dataclass
class K8sEnv:
    values: dict[str, str]
    from_secret: set[str]
    from_config_map: set[str]
    literal: set[str]


def k8s_container_env(container: dict[str, Any]) -> K8sEnv:
    """The environment a container gets, resolved against configmap.yaml and secret.yaml."""
    config_maps = {cm["metadata"]["name"]: cm.get("data", {}) for cm in k8s_objects("ConfigMap")}
    secrets = {s["metadata"]["name"]: {**s.get("data", {}), **s.get("stringData", {})} for s in k8s_objects("Secret")}
    env = K8sEnv(values={}, from_secret=set(), from_config_map=set(), literal=set())
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name in config_maps, f"envFrom names ConfigMap {name!r}, which deploy/k8s does not define"
            for key, value in config_maps[name].items():
                env.values[prefix + key] = str(value)
                env.from_config_map.add(prefix + key)
        elif "secretRef" in source:
            name = source["secretRef"]["name"]
            assert name in secrets, f"envFrom names Secret {name!r}, which deploy/k8s does not define"
            for key, value in secrets[name].items():
                env.values[prefix + key] = str(value)
                env.from_secret.add(prefix + key)
    for item in container.get("env", []):
        name = item["name"]
        env.from_secret.discard(name)
        env.from_config_map.discard(name)
        if "value" in item:
            env.values[name] = str(item["value"])
            env.literal.add(name)
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            secret, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
            assert key in secrets.get(secret, {}), f"{name}: Secret {secret!r} has no key {key!r}"
            env.values[name] = str(secrets[secret][key])
            env.from_secret.add(name)
        elif "configMapKeyRef" in ref:
            cm, key = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
            assert key in config_maps.get(cm, {}), f"{name}: ConfigMap {cm!r} has no key {key!r}"
            env.values[name] = str(config_maps[cm][key])
            env.from_config_map.add(name)
        else:
            pytest.fail(f"{name}: unsupported valueFrom {ref}")
    return env


# --------------------------------------------------------------------------------------------------
# (a) docker-compose.yml against the Compose Specification


def test_vendored_compose_schema_is_the_unmodified_official_copy() -> None:
    schema_bytes = COMPOSE_SCHEMA.read_bytes()
    assert hashlib.sha256(schema_bytes).hexdigest() == COMPOSE_SCHEMA_SHA256
    schema = json.loads(schema_bytes)
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose_resolved()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_compose_schema_check_rejects_a_broken_file() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8")))
    broken = compose_resolved()
    broken["services"]["referrals"]["depends_on"]["kafka"]["condition"] = "service_is_ready"
    broken["services"]["waitlists"]["helthcheck"] = {"test": ["CMD", "true"]}
    assert len(list(validator.iter_errors(broken))) >= 2


def test_compose_secrets_are_required_variables_never_values() -> None:
    required = required_compose_variables()
    assert {"POSTGRES_PASSWORD", "CHILD_REF_KEY", "JWT_SECRET"} <= set(required)
    for name in required:
        env = {key: value for key, value in required.items() if key != name}
        with pytest.raises(InterpolationError, match=name):
            interpolate_tree(compose_raw(), env)


def test_compose_runs_the_whole_stack() -> None:
    services = compose_resolved()["services"]
    assert set(SERVICES) | {"kafka", "postgres", "otel-collector", "jaeger", "prometheus", "grafana"} <= set(services)
    kafka_env = as_env_dict(services["kafka"]["environment"])
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, "Kafka must run in KRaft"
    assert "ZOOKEEPER" not in " ".join(kafka_env).upper()
    assert services["postgres"]["image"].startswith("postgres:15.")
    assert services["jaeger"]["image"].startswith("jaegertracing/all-in-one:")
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["kafka"]
    for name in SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy"
        assert depends_on["kafka"]["condition"] == "service_healthy"
        build = services[name]["build"]
        assert build["context"] == "."
        assert ROOT / build.get("dockerfile", "Dockerfile") == DOCKERFILE, "one Dockerfile builds every service"
        assert build["args"]["SERVICE"] == name


# --------------------------------------------------------------------------------------------------
# (b) every image pinned to an exact version


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("python:3.11.14-slim-bookworm", True),
        ("apache/kafka:3.9.1", True),
        ("prom/prometheus:v3.5.0", True),
        ("postgres:15.14-bookworm", True),
        ("ghcr.io/example/send-referrals:0.1.0", True),
        ("localhost:5000/team/app:1.2.3", True),
        (f"grafana/grafana@sha256:{'a' * 64}", True),
        ("python:3.11-slim-bookworm", False),
        ("python:3-slim", False),
        ("postgres:15", False),
        ("postgres:latest", False),
        ("grafana/grafana", False),
        ("localhost:5000/team/app", False),
        ("prom/prometheus:v3", False),
        ("otel/opentelemetry-collector-contrib:latest-1.2.3", False),
        ("busybox:${TAG:-1.36.1}", False),
    ],
)
def test_the_pin_rule_itself(image: str, pinned: bool) -> None:
    assert (image_problem(image) is None) is pinned


def containers_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every container (and init container) anywhere in a Kubernetes object, whatever its kind."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(value, list):
                yield from value
            else:
                yield from containers_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from containers_in(value)


def all_images() -> list[tuple[str, str]]:
    images = []
    for name, service in compose_raw()["services"].items():
        assert "image" in service, f"compose service {name} has no image (a build needs a pinned image name too)"
        images.append((f"docker-compose.yml:{name}", service["image"]))
    for path, doc in k8s_documents():
        images += [(f"{path.name}:{container['name']}", container["image"]) for container in containers_in(doc)]
    for image in load_yaml(K8S / "kustomization.yaml").get("images", []):
        reference = f"{image.get('newName', image['name'])}:{image.get('newTag', '')}"
        if "digest" in image:
            reference = f"{image.get('newName', image['name'])}@{image['digest']}"
        images.append((f"kustomization.yaml:{image['name']}", reference))
    for service in SERVICES:
        for stage in dockerfile_stages(DOCKERFILE, compose_build_args(service)):
            images.append((f"Dockerfile ({service})", stage.base))
    return images


def test_every_image_is_pinned_to_an_exact_version() -> None:
    images = all_images()
    assert len(images) >= 20
    problems = [f"{where}: {image}: {image_problem(image)}" for where, image in images if image_problem(image)]
    assert not problems, "\n".join(problems)


def test_kubernetes_and_compose_run_the_same_service_images() -> None:
    compose_images = {name: compose_raw()["services"][name]["image"] for name in SERVICES}
    overrides = {i["name"]: i["newTag"] for i in load_yaml(K8S / "kustomization.yaml").get("images", [])}
    for service in SERVICES:
        for workload in workloads_of(service):
            image = pod_spec(workload)["containers"][0]["image"]
            assert image == compose_images[service], f"{workload['metadata']['name']}: {image}"
            repository, _, tag = image.rpartition(":")
            assert overrides.get(repository) == tag, f"kustomization.yaml images: {repository} should be {tag}"


# --------------------------------------------------------------------------------------------------
# (c) the environment of every service is made of its settings


@pytest.mark.parametrize("service", SERVICES)
def test_compose_environment_is_made_of_settings_fields(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_class = SETTINGS[service]
    fields = env_names(settings_class)
    raw_env = as_env_dict(compose_raw()["services"][service]["environment"])
    env = as_env_dict(compose_resolved()["services"][service]["environment"])

    unknown = sorted(set(env) - set(fields))
    assert not unknown, f"{service}: not settings of {settings_class.__name__}: {unknown}"
    required = sorted(name for name, info in fields.items() if info.is_required())
    assert not set(required) - set(env), f"{service}: required settings not set: {set(required) - set(env)}"
    assert not set(MUST_SET) - set(env), f"{service}: must be set for a deployment: {set(MUST_SET) - set(env)}"
    for name in secret_env_names(settings_class) & set(raw_env):
        assert re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?", raw_env[name]), f"{service}: {name} must be ${{VAR:?...}}"

    settings = build_settings(settings_class, env, monkeypatch)
    assert settings.environment == "production"
    assert settings.http_host == "0.0.0.0"
    assert settings.kafka_replication_factor == 1
    assert settings.otel_exporter_otlp_endpoint == "http://otel-collector:4318"
    kafka_hosts = {server.rsplit(":", 1)[0] for server in settings.kafka_bootstrap_servers.split(",")}
    assert kafka_hosts == {"kafka"}
    url = urlsplit(settings.database_url)
    assert url.scheme == "postgresql+asyncpg"
    assert (url.hostname, url.port, url.path) == ("postgres", 5432, f"/{service}")
    ports = compose_raw()["services"][service]["ports"]
    assert any(str(p).endswith(f":{settings.http_port}") for p in ports), f"{service}: {settings.http_port} unpublished"


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_environment_is_made_of_settings_fields(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_class = SETTINGS[service]
    fields = env_names(settings_class)
    secret_names = secret_env_names(settings_class)
    for workload in workloads_of(service):
        where = f"{workload['kind']} {workload['metadata']['name']}"
        containers = pod_spec(workload)["containers"]
        assert len(containers) == 1, where
        env = k8s_container_env(containers[0])

        unknown = sorted(set(env.values) - set(fields))
        assert not unknown, f"{where}: not settings of {settings_class.__name__}: {unknown}"
        required = {name for name, info in fields.items() if info.is_required()}
        assert not required - set(env.values), f"{where}: required settings not set: {required - set(env.values)}"
        assert not set(MUST_SET) - set(env.values), f"{where}: must be set: {set(MUST_SET) - set(env.values)}"
        leaked = sorted(secret_names & (env.from_config_map | env.literal))
        assert not leaked, f"{where}: secrets must come from a Secret, not a ConfigMap or a literal: {leaked}"

        with monkeypatch.context() as patch:
            settings = build_settings(settings_class, env.values, patch)
        assert settings.environment == "production"
        assert settings.http_host == "0.0.0.0"
        assert settings.jwt_jwks_url is not None or "JWT_SECRET" in env.from_secret
        assert urlsplit(settings.database_url).scheme == "postgresql+asyncpg"
        assert urlsplit(settings.database_url).path == f"/{service}"


def test_the_shared_config_map_holds_only_settings_every_service_has() -> None:
    config_map = k8s_single("ConfigMap")
    for service, settings_class in SETTINGS.items():
        unknown = sorted(set(config_map["data"]) - set(env_names(settings_class)))
        assert not unknown, f"send-config keys that {service} does not read: {unknown}"
        assert not set(config_map["data"]) & secret_env_names(settings_class)


def test_the_secret_template_holds_placeholders_only() -> None:
    secret = k8s_single("Secret")
    values = {**secret.get("data", {}), **secret.get("stringData", {})}
    assert values
    for key, value in values.items():
        assert "REPLACE-ME" in value, f"secret.yaml {key}: a template must not carry a real value"


# --------------------------------------------------------------------------------------------------
# (d) Kubernetes manifests


def k8s_manifest_paths() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", k8s_manifest_paths(), ids=lambda p: p.name)
def test_kubernetes_manifest_validates(path: Path, version: str) -> None:
    documents = load_yaml_documents(path)
    assert documents, f"{path.name} is empty"
    problems = []
    for doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            location = "/".join(str(p) for p in exc.path)
            problems.append(f"{path.name} {doc.get('kind')}: {location}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_kubernetes_validation_catches_mistakes() -> None:
    deployment = json.loads(json.dumps(k8s_objects("Deployment")[0]))
    pod_spec(deployment)["containers"][0]["livenessProbe"]["httpGet"]["port"] = {"name": "http"}
    pod_spec(deployment)["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    assert sorted(listed) == sorted(path.name for path in k8s_manifest_paths())
    namespace = k8s_single("Namespace")["metadata"]["name"]
    assert kustomization["namespace"] == namespace
    for path, doc in k8s_documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, f"{path.name}: {doc['kind']} outside {namespace}"


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_workloads_of_a_service(service: str) -> None:
    port = SETTINGS[service].model_fields["http_port"].default
    (deployment,) = (w for w in workloads_of(service) if w["kind"] == "Deployment")
    (job,) = (w for w in workloads_of(service) if w["kind"] == "Job")

    container = pod_spec(deployment)["containers"][0]
    assert container["command"] == ["python", "-m", service, "serve"]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{service}: resources.{kind}"

    job_container = pod_spec(job)["containers"][0]
    assert job_container["command"] == ["python", "-m", service, "migrate"]
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")

    for workload in (deployment, job):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"].get("runAsUser", 1) != 0
        for c in spec["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert c["securityContext"].get("runAsUser", 1) != 0

    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_spec_labels(deployment).items()
    assert not selector.items() <= pod_spec_labels(job).items(), "the Job's pods must not match the Deployment"
    (k8s_service,) = (s for s in k8s_objects("Service") if s["metadata"]["name"] == service)
    assert k8s_service["spec"]["selector"] == selector
    (service_port,) = k8s_service["spec"]["ports"]
    assert service_port["port"] == port
    assert service_port["targetPort"] in (port, container["ports"][0].get("name"))


def pod_spec_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------------
# (e) Prometheus, the collector, Grafana, PostgreSQL


def scrape_targets() -> dict[str, tuple[str, list[str]]]:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets: dict[str, tuple[str, list[str]]] = {}
    for job in config["scrape_configs"]:
        assert job["job_name"] not in targets, f"duplicate job {job['job_name']}"
        addresses = [t for static in job.get("static_configs", []) for t in static["targets"]]
        targets[job["job_name"]] = (job.get("metrics_path", "/metrics"), addresses)
    return targets


def test_prometheus_scrapes_every_service() -> None:
    compose_services = set(compose_raw()["services"])
    scraped = {address: path for path, addresses in scrape_targets().values() for address in addresses}
    for service, settings_class in SETTINGS.items():
        address = f"{service}:{settings_class.model_fields['http_port'].default}"
        assert scraped.get(address) == "/metrics", f"Prometheus does not scrape {address}/metrics"
    for address in scraped:
        host = address.rsplit(":", 1)[0]
        assert host in compose_services | {"localhost"}, f"{address} is not a compose service"
    prometheus = compose_raw()["services"]["prometheus"]
    assert any(v.startswith("./deploy/prometheus/prometheus.yml:") for v in prometheus["volumes"])


def test_collector_receives_otlp_and_exports_to_jaeger_and_prometheus() -> None:
    config = load_yaml(DEPLOY / "otel-collector" / "config.yaml")
    pipelines = config["service"]["pipelines"]
    defined = {
        kind: set(config.get(kind) or {})
        for kind in ("receivers", "processors", "exporters", "connectors", "extensions")
    }
    for name, pipeline in pipelines.items():
        for receiver in pipeline["receivers"]:
            assert receiver in defined["receivers"] | defined["connectors"], f"{name}: receiver {receiver}"
        for processor in pipeline.get("processors", []):
            assert processor in defined["processors"], f"{name}: processor {processor}"
        for exporter in pipeline["exporters"]:
            assert exporter in defined["exporters"] | defined["connectors"], f"{name}: exporter {exporter}"
    for extension in config["service"].get("extensions", []):
        assert extension in defined["extensions"]

    otlp_http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert otlp_http == "0.0.0.0:4318", "the collector must listen for OTLP/HTTP on all interfaces"
    assert "otlp" in pipelines["traces"]["receivers"]
    jaeger_exporters = [
        name
        for name in pipelines["traces"]["exporters"]
        if name.split("/")[0] in ("otlp", "otlphttp")
        and "jaeger" in str(config["exporters"][name]["endpoint"]).split(":")[0].split("//")[-1]
    ]
    assert jaeger_exporters, "traces must be exported to Jaeger"

    targets = {address for _, addresses in scrape_targets().values() for address in addresses}
    telemetry_port = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"]
    assert f"otel-collector:{telemetry_port}" in targets
    prometheus_exporter_port = config["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    assert f"otel-collector:{prometheus_exporter_port}" in targets

    collector = compose_raw()["services"]["otel-collector"]
    (config_arg,) = [arg for arg in collector["command"] if arg.startswith("--config=")]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in collector["volumes"]}
    assert mounts[config_arg.removeprefix("--config=")] == "./deploy/otel-collector/config.yaml"


def test_grafana_is_provisioned_with_prometheus_and_jaeger() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = {d["type"]: d for d in load_yaml(provisioning / "datasources" / "datasources.yaml")["datasources"]}
    assert urlsplit(datasources["prometheus"]["url"]).netloc == "prometheus:9090"
    assert urlsplit(datasources["jaeger"]["url"]).netloc == "jaeger:16686"

    grafana = compose_raw()["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    (provider,) = load_yaml(provisioning / "dashboards" / "dashboards.yaml")["providers"]
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"

    uids = {d["uid"] for d in datasources.values()}
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            if panel["type"] != "row":  # rows only group panels; they query nothing
                assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"


def test_postgres_creates_a_database_per_service() -> None:
    init_sql = (DEPLOY / "postgres" / "init.sql").read_text(encoding="utf-8")
    statements = [s.strip() for s in re.sub(r"--[^\n]*", "", init_sql).split(";") if s.strip()]
    created = {m.group(1) for s in statements if (m := re.fullmatch(r"(?i)CREATE\s+DATABASE\s+(\w+)", s))}
    assert created == set(SERVICES)
    postgres = compose_raw()["services"]["postgres"]
    assert "./deploy/postgres/init.sql:/docker-entrypoint-initdb.d/" in " ".join(postgres["volumes"])


# --------------------------------------------------------------------------------------------------
# (f) Dockerfiles


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_of_a_service(service: str) -> None:
    stages = dockerfile_stages(DOCKERFILE, compose_build_args(service))
    stage_names = {s.name for s in stages if s.name}
    bases = [s.base for s in stages if s.base not in stage_names]
    assert bases, "no base image"
    for base in bases:
        assert image_problem(base) is None, f"{service}: base image {base}: {image_problem(base)}"
        assert base.startswith("python:3.11."), f"{service}: the services run on Python 3.11, not {base}"

    everything = [i for stage in stages for i in stage.instructions]
    copies = [shlex.split(i.args) for i in everything if i.keyword in ("COPY", "ADD") and "--from=" not in i.args]
    sources = {src.rstrip("/") for args in copies for src in [a for a in args if not a.startswith("--")][:-1]}
    assert sources == {"requirements.lock", "shared", f"services/{service}"}, f"{service}: copies {sources}"

    runs = [" ".join(i.args.split()) for i in everything if i.keyword == "RUN"]
    assert any(re.search(r"pip install (?:\S+ )*--require-hashes (?:\S+ )*-r requirements\.lock", r) for r in runs)
    local = [r for r in runs if f"./services/{service}" in r]
    assert local, f"{service}: local packages are not installed"
    assert all("--no-deps" in r and "./shared" in r for r in local)

    final = stages[-1]
    users = final.all("USER")
    assert users, f"{service}: the final stage runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    env = dict(kv.split("=", 1) for args in final.all("ENV") for kv in shlex.split(args))
    assert env.get("HTTP_HOST") == "0.0.0.0"
    port = SETTINGS[service].model_fields["http_port"].default
    assert env.get("HTTP_PORT", str(port)) == str(port)
    assert [p.split("/")[0] for args in final.all("EXPOSE") for p in args.split()] == [str(port)]

    (healthcheck,) = final.all("HEALTHCHECK")
    assert "urllib" in healthcheck
    assert "/healthz" in healthcheck

    entrypoint = exec_form(final.all("ENTRYPOINT")[-1]) if final.all("ENTRYPOINT") else []
    cmd = exec_form(final.all("CMD")[-1]) if final.all("CMD") else []
    command = " ".join(entrypoint + cmd).replace('"$SERVICE"', env["SERVICE"])
    migrate = re.search(rf"python -m {service} migrate\b", command)
    serve = re.search(rf"python -m {service} serve\b", command)
    assert migrate, f"{service}: the image does not migrate: {command!r}"
    assert serve, f"{service}: the image does not serve: {command!r}"
    assert migrate.start() < serve.start()
    assert re.search(rf"migrate\s*&&\s*exec python -m {service} serve", command) or "&&" not in command


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", "var", ".git", "bench/results", "test-artefacts"):
        assert required in entries, f".dockerignore misses {required}"
    assert entries & {"__pycache__", "**/__pycache__"}
    for needed in ("requirements.lock", "shared", "services"):
        assert needed not in entries and f"!{needed}" not in entries
