"""The configuration schema: every section of ``dialer.yaml`` as frozen, typed objects.

Each field's docstring is what an operator reads in ``dialer.yaml``; the YAML
file is the commented example. Checks that need more than one field, or the
file system, live in :mod:`sip_config.load`.

:class:`Config` is the whole file. Its sections live by what they configure:
the engine, SIP and MQTT in :mod:`sip_config.engine_sections`; screening, the
dialer, the hotline and the SMS line in :mod:`sip_config.service_sections`;
the value types they share (SIP URIs, seconds, time windows) in
:mod:`sip_config.values`. Every name is importable from here.
"""

from __future__ import annotations

from .engine_sections import (
    BalancerConfig,
    ConsoleConfig,
    EngineConfig,
    ListenConfig,
    MqttConfig,
    SipConfig,
    TrunkConfig,
)
from .service_sections import (
    AmdConfig,
    AreaCode,
    DialerConfig,
    HotlineConfig,
    ListConfig,
    MessageConfig,
    PrefixConfig,
    ProgressConfig,
    RateConfig,
    RetryConfig,
    ScreeningConfig,
    SmsConfig,
    TextsConfig,
    VerdictConfig,
)
from .values import (
    ActionName,
    Digits,
    EnvName,
    Hours,
    HoursOrClosed,
    Port,
    Seconds,
    Section,
    SipStatus,
    SipUri,
    TimeZoneName,
    Weekday,
    parse_hours,
    parse_hours_or_closed,
)

__all__ = [
    "ActionName",
    "AmdConfig",
    "AreaCode",
    "BalancerConfig",
    "Config",
    "ConsoleConfig",
    "DialerConfig",
    "Digits",
    "EngineConfig",
    "EnvName",
    "HotlineConfig",
    "Hours",
    "HoursOrClosed",
    "ListConfig",
    "ListenConfig",
    "MessageConfig",
    "MqttConfig",
    "Port",
    "PrefixConfig",
    "ProgressConfig",
    "RateConfig",
    "RetryConfig",
    "ScreeningConfig",
    "Seconds",
    "Section",
    "SipConfig",
    "SipStatus",
    "SipUri",
    "SmsConfig",
    "TextsConfig",
    "TimeZoneName",
    "TrunkConfig",
    "VerdictConfig",
    "Weekday",
    "parse_hours",
    "parse_hours_or_closed",
]


class Config(Section):
    engine: EngineConfig = EngineConfig()
    sip: SipConfig = SipConfig()
    screening: ScreeningConfig = ScreeningConfig()
    dialer: DialerConfig = DialerConfig()
    hotline: HotlineConfig = HotlineConfig()
    mqtt: MqttConfig | None = None
    sms: SmsConfig | None = None
    console: ConsoleConfig | None = None
