import json

import pytest

from marketbus.settings import Settings
from signals.service import SignalsService


def test_strategy_parameters_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETBUS_STRATEGY_PARAMS", '{"volume_wave": {"devil": 30, "multiplier": 15}}')
    svc = SignalsService(Settings(redis_url="redis://127.0.0.1:1/0", _env_file=None))  # type: ignore[call-arg]
    wave = next(s for s in svc.strategies if s.key == "volume_wave")
    assert wave.describe().params["devil"] == 30
    assert wave.describe().params["multiplier"] == 15
    assert wave.describe().params["angel"] == 2  # untouched defaults stay


@pytest.mark.parametrize("params", ['{"no_such_strategy": {}}', '{"volume_wave": {"no_such_param": 1}}'])
def test_unknown_strategy_or_parameter_stops_the_service_at_start(params: str) -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", strategy_params={}, _env_file=None)  # type: ignore[call-arg]
    bad = settings.model_copy(update={"strategy_params": json.loads(params)})
    with pytest.raises(ValueError, match="no_such"):
        SignalsService(bad)
