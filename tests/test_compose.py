"""compose.yaml: validated by docker-compose when it is installed (no Docker engine is needed)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose_cmd() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_file_is_valid_and_exposes_only_the_gateway() -> None:
    cmd = compose_cmd()
    if cmd is None:
        pytest.skip("neither docker-compose nor `docker compose` is installed")
    res = subprocess.run(
        [*cmd, "-f", "compose.yaml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "MARKETBUS_API_TOKEN": ""},
    )
    assert res.returncode == 0, res.stderr
    # docker-compose 1.x lists every profile's services in `config` (v2 only the active ones); the
    # default stack is the services without a profile.
    services = {
        name: svc for name, svc in yaml.safe_load(res.stdout)["services"].items() if not svc.get("profiles")
    }
    assert set(services) == {"redis", "quotes", "signals", "scorecard", "gateway"}
    exposed = {name for name, svc in services.items() if svc.get("ports")}
    assert exposed == {"gateway"}
    assert all(
        str(p).startswith("127.0.0.1:") or p.get("host_ip") == "127.0.0.1"
        for p in services["gateway"]["ports"]
    )
    assert services["redis"]["healthcheck"]["test"]
    assert "--appendonly" in services["redis"]["command"]
    assert services["gateway"]["environment"]["MARKETBUS_API_TOKEN"] == ""  # no default secret


def test_each_service_image_installs_only_its_own_package() -> None:
    for service in ("quotes", "signals", "scorecard", "gateway"):
        text = (ROOT / "services" / service / "Dockerfile").read_text()
        assert f"--package marketbus-{service}" in text
        others = {"quotes", "signals", "scorecard", "gateway"} - {service}
        assert not any(f"COPY services/{o}/src" in text for o in others)


def test_the_sentinel_profile_is_valid_and_names_what_the_url_names() -> None:
    """`--profile sentinel`: the primary, a replica of it and three sentinels monitoring it with a
    quorum of two; the URL the file documents is a Sentinel URL naming those sentinels."""
    from marketbus.redis import parse

    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    documented = next(w for w in text.split() if w.startswith("MARKETBUS_COMPOSE_REDIS_URL=redis+sentinel"))
    target = parse(documented.partition("=")[2])
    assert target.kind == "sentinel" and target.service == "mb"
    sentinels = {host for host, port in target.nodes if port == 26379}
    assert sentinels == {"sentinel-1", "sentinel-2", "sentinel-3"}
    cmd = compose_cmd()
    if cmd is None:
        services = yaml.safe_load(text)["services"]  # without docker: the file as written
    else:
        res = subprocess.run(
            [*cmd, "-f", "compose.yaml", "--profile", "sentinel", "config"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={
                "PATH": "/usr/bin:/bin:/usr/local/bin",
                "MARKETBUS_API_TOKEN": "",
                "MARKETBUS_COMPOSE_REDIS_URL": documented.partition("=")[2],
            },
        )
        assert res.returncode == 0, res.stderr
        services = yaml.safe_load(res.stdout)["services"]
        assert services["signals"]["environment"]["MARKETBUS_REDIS_URL"] == documented.partition("=")[2]
    assert sentinels | {"redis", "redis-replica"} <= set(services)
    replica = services["redis-replica"]["command"]
    assert replica[replica.index("--replicaof") + 1 :][:2] == ["redis", "6379"]
    for name in sentinels:
        script = " ".join(services[name]["command"])
        assert "sentinel monitor mb redis 6379 2" in script and "--sentinel" in script
    exposed = {name for name, svc in services.items() if svc.get("ports")}
    assert exposed == {"gateway"}
