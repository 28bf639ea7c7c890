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
    services = yaml.safe_load(res.stdout)["services"]
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
