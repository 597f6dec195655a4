"""The Docker files, checked statically (no Docker engine runs the tests), and their docs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from chachaml.cli import build_parser
from chachaml.settings import Settings
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.artifacts.s3 import S3ArtifactStore

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
REPLICAS = sorted(name for name in SERVICES if name.startswith("chachaml-"))
CHACHAML: dict[str, Any] = SERVICES[REPLICAS[0]]
CADDYFILE = (ROOT / "deploy" / "Caddyfile").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def resolved(value: str, given: dict[str, str]) -> str:
    """Compose's interpolation: ``${X}``, ``${X:-default}``, ``${X:?error}`` and ``$$``."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if given.get(name):
            return given[name]
        assert kind != "?", f"compose would refuse to start: {rest}"
        return rest if kind == "-" else ""

    return VARIABLE.sub(one, value).replace("$$", "$")


def final_stage(dockerfile: str) -> list[str]:
    joined = dockerfile.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last_from:]


def instruction(lines: list[str], name: str) -> list[str]:
    return [line[len(name) + 1 :] for line in lines if line.startswith(name + " ")]


def test_compose_runs_chachaml_with_postgres_and_minio_on_named_volumes() -> None:
    assert {"proxy", *REPLICAS, "postgres", "minio", "minio-init"} == set(SERVICES)
    assert set(COMPOSE["volumes"]) == {"pgdata", "miniodata"}
    assert "pgdata:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "miniodata:/data" in SERVICES["minio"]["volumes"]
    assert CHACHAML["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "minio-init": {"condition": "service_completed_successfully"},
    }
    assert SERVICES["postgres"]["healthcheck"]["test"] and SERVICES["minio"]["healthcheck"]["test"]


def test_only_the_proxy_is_published_and_on_port_8080() -> None:
    assert SERVICES["proxy"]["ports"] == ["8080:8080"]
    assert [name for name, svc in SERVICES.items() if "ports" in svc] == ["proxy"]
    assert not any("expose" in svc or "network_mode" in svc for svc in SERVICES.values())


def test_compose_runs_identical_replicas_behind_a_proxy_that_names_each() -> None:
    assert len(REPLICAS) >= 2
    assert all(SERVICES[name] == CHACHAML for name in REPLICAS)  # one definition, N copies
    assert SERVICES["proxy"]["image"].startswith("caddy:")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in SERVICES["proxy"]["volumes"]
    assert SERVICES["proxy"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in REPLICAS
    }
    upstreams = re.findall(r"^\s*reverse_proxy\s+(?:@\w+\s+)?([^{]+)\{", CADDYFILE, re.M)
    assert len(upstreams) == 2  # /mcp (sticky per client) and everything else
    for listed in upstreams:
        assert listed.split() == [f"{name}:8080" for name in REPLICAS]
    assert "lb_policy client_ip_hash" in CADDYFILE  # sessions of handshake-era MCP clients
    assert CADDYFILE.count("health_uri /readyz") == 2
    assert ":8080 {" in CADDYFILE


def test_compose_needs_a_write_token_and_serves_read_only_until_tokens_are_checked() -> None:
    env = CHACHAML["environment"]
    assert env["CHACHAML_TOKENS"].startswith("${CHACHAML_TOKENS:?")
    command = CHACHAML["command"]
    args = build_parser().parse_args(command[1:])
    assert (command[0], args.command, args.host, args.port) == (
        "chachaml",
        "serve",
        "0.0.0.0",
        8080,
    )
    assert args.read_only


def test_compose_environment_configures_postgres_and_the_minio_bucket() -> None:
    given = {"CHACHAML_TOKENS": "admin:a-long-enough-token"}
    env = {k: resolved(v, given) for k, v in CHACHAML["environment"].items()}
    settings = Settings.from_env(env)
    postgres = {k: resolved(v, given) for k, v in SERVICES["postgres"]["environment"].items()}
    minio = {k: resolved(v, given) for k, v in SERVICES["minio"]["environment"].items()}
    user, password, db = (
        postgres[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    )
    assert settings.store_url == f"postgresql://{user}:{password}@postgres:5432/{db}"
    assert settings.s3.endpoint == "http://minio:9000"
    assert (settings.s3.access_key_id, settings.s3.secret_access_key) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    store = open_artifact_store(settings.artifact_root, settings.s3)
    assert isinstance(store, S3ArtifactStore)
    bucket = settings.artifact_root.removeprefix("s3://").split("/")[0]
    init = " ".join(SERVICES["minio-init"]["entrypoint"])
    assert f"mc mb --ignore-existing local/{bucket}" in init
    assert "$$MINIO_ROOT_PASSWORD" in init  # left for the container's shell, not compose


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthz_healthcheck() -> None:
    assert DOCKERFILE.count("\nFROM ") + DOCKERFILE.startswith("FROM ") >= 2
    stage = final_stage(DOCKERFILE)
    assert stage[0].startswith("FROM python:") and stage[0].endswith("-slim")
    users = instruction(stage, "USER")
    assert users and users[-1] not in ("root", "0")
    assert f"--uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin {users[-1]}" in (
        DOCKERFILE.replace("\\\n", " ")
    )
    healthcheck = instruction(stage, "HEALTHCHECK")
    assert len(healthcheck) == 1 and "http://127.0.0.1:8080/healthz" in healthcheck[0]
    assert instruction(stage, "EXPOSE") == ["8080"]
    command = json.loads(instruction(stage, "CMD")[-1])
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8080)
    assert "COPY --from=build /wheels /wheels" in stage


def test_dockerignore_keeps_the_build_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "tests", "bench", "chachaml-artifacts", ".env"} <= ignored
    assert not {"chachaml", "pyproject.toml", "README.md"} & ignored


def test_every_environment_variable_is_documented() -> None:
    read_by_code = {
        name
        for path in (ROOT / "chachaml").rglob("*.py")
        for name in re.findall(r"\"((?:CHACHAML|AWS)_[A-Z0-9_]+|CHACHA_USER)\"", path.read_text())
    }
    in_compose = {m.group(1) for m in VARIABLE.finditer((ROOT / "docker-compose.yml").read_text())}
    in_compose |= set(CHACHAML["environment"])
    in_image = set(re.findall(r"\b(CHACHAML_[A-Z_]+)=", DOCKERFILE))
    undocumented = sorted(n for n in read_by_code | in_compose | in_image if f"`{n}`" not in README)
    assert undocumented == []
    assert {"CHACHAML_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "CHACHAML_STORE"} <= read_by_code
