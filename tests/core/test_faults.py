"""Fault rules, ``--fault`` specs, presets and the engine: plain data, a fake clock and seeds.

Okta's reactions the presets describe come from OKTA.md ("Errors, rate limits and retries").
"""

from __future__ import annotations

import email.utils
import random

import pytest

from scim_desktop.core.errors import ERROR_SCHEMA
from scim_desktop.core.fault_engine import Decision, FaultEngine, RuleState
from scim_desktop.core.faults import (
    DATE_RETRY_SECONDS,
    PRESETS,
    FaultRequest,
    FaultRule,
    FaultSpecError,
    get_preset,
    parse_fault_spec,
    relative_path,
)

WALL = 784_111_777.0  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 7231's example date)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def req(
    method: str = "GET", path: str = "/Users", step: str | None = None, client: str = "10.0.0.1"
) -> FaultRequest:
    return FaultRequest(method=method, path=path, step=step, client=client)


def engine(*rules: FaultRule, seed: int = 1, clock: FakeClock | None = None) -> FaultEngine:
    return FaultEngine(rules, seed=seed, clock=clock or FakeClock(), wall_clock=lambda: WALL)


# --- parsing ----------------------------------------------------------------------------------
def test_parse_issue_example() -> None:
    rule = parse_fault_spec("status=429,retry_after=30,method=POST,path=/Users,count=2")
    assert rule == FaultRule(method="POST", path="/Users", count=2, status=429, retry_after="30")
    assert rule.describe() == "429 Retry-After: 30 on POST /Users (next 2)"


def test_parse_every_key() -> None:
    rule = parse_fault_spec(
        " status = 503 , retry_after=date, method=get|put ,path=/Groups/*, step=push_group_*,"
        "probability=0.25,count=3,latency_ms=150,name= my rule "
    )
    assert rule.status == 503
    assert rule.retry_after == "date"
    assert rule.method == "GET|PUT"
    assert rule.path == "/Groups/*"
    assert rule.step == "push_group_*"
    assert rule.probability == 0.25
    assert rule.count == 3
    assert rule.latency_ms == 150
    assert rule.name == "my rule"
    assert rule.describe().startswith("my rule: delay 150 ms, then 503 Retry-After: <HTTP-date>")

    limiter = parse_fault_spec("rate=2.5,burst=4,per_client=true")
    assert (limiter.rate, limiter.burst, limiter.per_client) == (2.5, 4, True)
    assert limiter.effective_status == 429
    assert parse_fault_spec("rate=2.5").effective_burst == 3  # default: ceil(rate)
    assert parse_fault_spec("rate=0.1").effective_burst == 1
    assert parse_fault_spec("rate=1,per_client=no").per_client is False

    for action in ("drop", "empty", "not_implemented"):
        assert parse_fault_spec(f"action={action}").action == action
    assert parse_fault_spec("action=not-implemented").action == "not_implemented"


@pytest.mark.parametrize(
    ("value", "expected"), [("0.2", 0.2), ("20%", 0.2), ("100%", 1.0), ("1", 1.0), ("5 %", 0.05)]
)
def test_parse_probability_forms(value: str, expected: float) -> None:
    rule = parse_fault_spec(f"status=500,probability={value}")
    assert rule.probability == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30", "30"), ("0", "0"), ("007", "7"), ("DATE", "date"), ("None", "none")],
)
def test_parse_retry_after_forms(value: str, expected: str) -> None:
    assert parse_fault_spec(f"status=429,retry_after={value}").retry_after == expected


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("/Users", "/Users"),
        ("/Users/", "/Users"),
        ("Users*", "/Users*"),
        ("/scim/v2/Groups/*", "/Groups/*"),
        ("*", "*"),
        ("/", "/"),
    ],
)
def test_path_is_normalised(written: str, stored: str) -> None:
    assert parse_fault_spec(f"status=500,path={written}").path == stored


def test_method_any_means_no_filter() -> None:
    assert parse_fault_spec("status=500,method=*").method is None
    assert parse_fault_spec("status=500,method=post|POST|get").method == "POST|GET"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("stauts=429", "fault spec: unknown key 'stauts' (did you mean 'status'? known: status,"),
        ("frobnicate=1", "fault spec: unknown key 'frobnicate' (known: status, retry_after,"),
        (
            "status=429,retry_after=soon",
            "fault spec: retry_after must be seconds, 'date' or 'none', got 'soon'",
        ),
        ("status=429,retry_after=-5", "retry_after must be seconds, 'date' or 'none', got '-5'"),
        ("status=abc", "fault spec: status must be a whole number, got 'abc'"),
        ("status=200", "fault spec: status must be an HTTP error status 400-599, got 200"),
        ("status=600", "status must be an HTTP error status 400-599, got 600"),
        ("status=302", "status must be an HTTP error status 400-599, got 302"),
        ("status=500,count=0", "fault spec: count must be at least 1, got 0"),
        ("status=500,count=two", "fault spec: count must be a whole number, got 'two'"),
        ("status=500,probability=0", "fault spec: probability must be above 0 and at most 1"),
        ("status=500,probability=1.5", "probability must be above 0 and at most 1, got 1.5"),
        ("status=500,probability=150%", "probability must be above 0 and at most 1, got 1.5"),
        ("status=500,probability=often", "fault spec: probability must be a number, got 'often'"),
        ("status=500,probability=nan", "fault spec: probability must be a finite number"),
        ("latency_ms=-1", "fault spec: latency_ms must be 0-600000, got -1"),
        ("latency_ms=1.5", "fault spec: latency_ms must be a whole number, got '1.5'"),
        ("rate=0", "fault spec: rate must be a positive number of requests per second, got 0.0"),
        ("rate=-2", "rate must be a positive number of requests per second, got -2.0"),
        ("rate=inf", "fault spec: rate must be a finite number, got 'inf'"),
        ("rate=2,burst=0", "fault spec: burst must be at least 1, got 0"),
        ("status=500,burst=3", "fault spec: burst needs rate"),
        ("status=500,per_client=true", "fault spec: per_client needs rate"),
        ("rate=2,per_client=maybe", "fault spec: per_client must be true or false, got 'maybe'"),
        ("rate=2,probability=0.5", "fault spec: probability cannot be combined with rate"),
        ("action=explode", "fault spec: action must be one of drop, empty, not_implemented"),
        ("action=drop,status=500", "fault spec: action=drop cannot be combined with status"),
        ("action=empty,status=500", "fault spec: action=empty cannot be combined with status"),
        (
            "action=drop,retry_after=5",
            "fault spec: retry_after cannot be combined with action=drop",
        ),
        ("latency_ms=100,retry_after=5", "fault spec: retry_after needs status or rate"),
        ("action=empty,method=PUT", "fault spec: action=empty only applies to POST creates"),
        ("method=POST,path=/Users", "fault spec: a rule needs an effect: status, latency_ms"),
        ("latency_ms=0", "fault spec: a rule needs an effect"),
        ("method=P0ST,status=500", "fault spec: method must be HTTP methods like POST or GET|PUT"),
        # Rules that could never fire (issue 12): the server answers other methods 405 before
        # faults are asked, and fnmatch reads these globs as matching no request path.
        ("method=FOO,status=500", "fault spec: method FOO is not one this server answers"),
        ("method=GET|TRACE,status=500", "fault spec: method TRACE is not one this server"),
        ("status=500,path=/Users[", "fault spec: path '/Users[' has an unclosed '[' at position 7"),
        ("status=500,path=/Users/[!]", "fault spec: path '/Users/[!]' has an unclosed '['"),
        ("status=500,path=/Us[z-a]rs", "fault spec: path '/Us[z-a]rs' has a set that matches no"),
        ("status=500,path=/Users x", "fault spec: path '/Users x' contains ' '"),
        ("status=500,step=push_[group", "fault spec: step 'push_[group' has an unclosed '['"),
        ("status=500,status=503", "fault spec: duplicate key 'status'"),
        ("status=500,,count=1", "fault spec: empty entry"),
        ("status=500,", "fault spec: empty entry"),
        ("status", "fault spec: 'status' is not key=value"),
        ("=500", "fault spec: '=500' has no key"),
        ("status=", "fault spec: status needs a value"),
        ("status=500,path=", "fault spec: path needs a value"),
        ("", "fault spec: empty"),
        ("   ", "fault spec: empty"),
    ],
)
def test_bad_specs_name_the_key_or_value(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_fault_spec(spec)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [("/Users/[[]x", "/Users/[x"), ("/Us[e]rs", "/Users"), ("/Users/[!a-z]*", "/Users/0ab")],
)
def test_valid_glob_sets_are_kept(pattern: str, path: str) -> None:
    rule = parse_fault_spec(f"status=500,path={pattern}")
    assert rule.path == pattern and rule.matches(req(path=path))


def test_every_method_the_server_answers_is_accepted() -> None:
    spec = "status=500,method=get|head|post|put|patch|delete|options"
    assert parse_fault_spec(spec).method == "GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS"


def test_rules_built_in_code_are_validated_too() -> None:
    with pytest.raises(FaultSpecError, match="method FOO is not one this server answers"):
        FaultRule(status=500, method="FOO")
    with pytest.raises(FaultSpecError, match="unclosed"):
        FaultRule(status=500, path="/Groups[")
    with pytest.raises(FaultSpecError, match="status must be an HTTP error status"):
        FaultRule(status=201)
    with pytest.raises(FaultSpecError, match="a rule needs an effect"):
        FaultRule(path="/Users")
    with pytest.raises(FaultSpecError, match="step must not be empty"):
        FaultRule(status=500, step=" ")


# --- matching ---------------------------------------------------------------------------------
def test_relative_path() -> None:
    assert relative_path("/scim/v2/Users/abc") == "/Users/abc"
    assert relative_path("/scim/v2/Users?filter=x") == "/Users"
    assert relative_path("/scim/v2") == "/"
    assert relative_path("/scim/v2/") == "/"
    assert relative_path("/favicon.ico") == "/favicon.ico"
    assert relative_path("/scim/v2x/Users") == "/scim/v2x/Users"
    assert relative_path("/api/Users", base="/api/") == "/Users"


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/Users", "/Users", True),
        ("/Users", "/Users/", True),
        ("/Users", "/Users/abc", False),  # exact: the issue's count=2 example targets creates
        ("/Users", "/users", False),  # case-sensitive
        ("/Users", "/Users?filter=userName", True),  # query string ignored
        ("/Users*", "/Users", True),
        ("/Users*", "/Users/abc", True),
        ("/Users/*", "/Users/abc", True),
        ("/Users/*", "/Users", False),
        ("/Groups*", "/Users", False),
        ("/Groups/*", "/Groups/g1", True),
        ("*", "/ServiceProviderConfig", True),
    ],
)
def test_path_glob(pattern: str, path: str, expected: bool) -> None:
    assert FaultRule(status=500, path=pattern).matches(req(path=path)) is expected


def test_method_filter() -> None:
    rule = FaultRule(status=500, method="GET|put")
    assert rule.matches(req("GET"))
    assert rule.matches(req("put"))  # request methods are compared upper-cased
    assert not rule.matches(req("POST"))
    assert not rule.matches(req("PATCH"))


def test_step_filter() -> None:
    rule = FaultRule(status=500, step="push_group_*")
    assert rule.matches(req(step="push_group_add_members"))
    assert rule.matches(req(step="PUSH_GROUP_CREATE"))  # step ids compared case-insensitively
    assert not rule.matches(req(step="create_user"))
    assert not rule.matches(req(step=None))
    exact = FaultRule(status=500, step="create_user")
    assert exact.matches(req("POST", step="create_user"))
    assert not exact.matches(req("POST", step="create_user_check"))


def test_filters_combine() -> None:
    rule = FaultRule(status=500, method="POST", path="/Users", step="create_user")
    assert rule.matches(req("POST", "/Users", "create_user"))
    assert not rule.matches(req("GET", "/Users", "create_user"))
    assert not rule.matches(req("POST", "/Groups", "create_user"))
    assert not rule.matches(req("POST", "/Users", "push_group_create"))


def test_no_rules_no_decision() -> None:
    eng = engine()
    assert eng.decide(req()) is None
    assert not eng.active
    assert eng.states() == []


def test_unmatched_request_is_served_normally() -> None:
    eng = engine(FaultRule(status=503, path="/Groups*"))
    assert eng.decide(req(path="/Users")) is None
    assert eng.states()[0].fired == 0


# --- counts and order -------------------------------------------------------------------------
def test_issue_example_fires_twice_on_creates_only() -> None:
    eng = engine(parse_fault_spec("status=429,retry_after=30,method=POST,path=/Users,count=2"))
    assert eng.decide(req("GET", "/Users")) is None  # the existence check is not a create
    assert eng.decide(req("POST", "/Users/abc")) is None
    first = eng.decide(req("POST", "/Users"))
    assert first is not None
    assert first.status == 429
    assert first.headers == {"Retry-After": "30"}
    assert first.description == "429 Retry-After: 30 on POST /Users (next 2) [rule 1, 1 left]"
    assert eng.states() == [RuleState(eng.rules[0], fired=1, remaining=1)]
    second = eng.decide(req("POST", "/Users/"))
    assert second is not None and second.description.endswith("[rule 1, 0 left]")
    assert eng.decide(req("POST", "/Users")) is None  # used up
    assert eng.states()[0].remaining == 0
    assert not eng.active


def test_count_is_used_only_when_the_rule_fires() -> None:
    # With probability 0.5 some matching requests pass; only those that fire use the count.
    eng = engine(FaultRule(status=500, probability=0.5, count=3), seed=7)
    outcomes = [eng.decide(req()) is not None for _ in range(40)]
    assert outcomes.count(True) == 3
    assert outcomes.count(False) == 37
    assert eng.states()[0] == RuleState(eng.rules[0], fired=3, remaining=0)


def test_first_matching_rule_that_fires_wins() -> None:
    eng = engine(
        FaultRule(status=503, path="/Groups*", count=1),
        FaultRule(status=500, method="GET"),
        FaultRule(status=502),
    )
    d = eng.decide(req("GET", "/Groups"))
    assert d is not None and (d.rule_index, d.status) == (0, 503)
    d = eng.decide(req("GET", "/Groups"))  # rule 0 used up: falls through to rule 1
    assert d is not None and (d.rule_index, d.status) == (1, 500)
    d = eng.decide(req("POST", "/Users"))
    assert d is not None and (d.rule_index, d.status) == (2, 502)
    assert [s.fired for s in eng.states()] == [1, 1, 1]


def test_a_probability_miss_falls_through_to_later_rules() -> None:
    eng = engine(FaultRule(status=500, probability=0.3), FaultRule(status=503), seed=3)
    statuses = [eng.decide(req()).status for _ in range(200)]  # type: ignore[union-attr]
    assert set(statuses) == {500, 503}


def test_latency_only_rule_wins_and_serves_normally() -> None:
    eng = engine(FaultRule(latency_ms=2000), FaultRule(status=500))
    d = eng.decide(req())
    assert d == Decision(
        rule_index=0,
        rule=eng.rules[0],
        latency_ms=2000,
        status=None,
        headers={},
        body=None,
        description="delay 2000 ms on every request [rule 1]",
    )


# --- probability ------------------------------------------------------------------------------
def test_probability_repeats_with_a_seed_and_is_roughly_right() -> None:
    def run(seed: int) -> list[bool]:
        eng = engine(FaultRule(status=500, probability=0.2), seed=seed)
        return [eng.decide(req()) is not None for _ in range(10_000)]

    first = run(42)
    assert run(42) == first
    assert run(43) != first
    assert 1_800 <= first.count(True) <= 2_200


def test_rng_is_drawn_only_when_the_rule_matches() -> None:
    rng = random.Random(5)
    expected = random.Random(5)
    eng = FaultEngine([FaultRule(status=500, probability=0.5, path="/Groups*")], rng=rng)
    for _ in range(10):
        eng.decide(req(path="/Users"))  # no match: no draw
    assert rng.random() == expected.random()
    eng2 = FaultEngine([FaultRule(status=500)], rng=rng)  # probability 1: no draw either
    eng2.decide(req())
    assert rng.random() == expected.random()


# --- effects ----------------------------------------------------------------------------------
def test_status_body_is_a_scim_error() -> None:
    eng = engine(FaultRule(status=503, path="/Groups*"))
    d = eng.decide(req(path="/Groups/g1"))
    assert d is not None
    assert d.status == 503
    assert d.headers == {}
    assert d.body == {
        "schemas": [ERROR_SCHEMA],
        "status": "503",
        "detail": "Injected fault: 503 Service Unavailable "
        "(SCIM Desktop fault rule '503 on /Groups*')",
    }
    assert "scimType" not in d.body
    assert not d.drop and not d.empty


def test_429_body_has_no_scim_type() -> None:
    d = engine(FaultRule(status=429)).decide(req())
    assert d is not None and d.body is not None
    assert d.body["status"] == "429"
    assert "scimType" not in d.body  # RFC 7644 §3.12: tooMany is a 400 about result sizes
    assert d.headers == {}  # retry_after unset on a fixed 429: no header


def test_unknown_phrase_status() -> None:
    d = engine(FaultRule(status=599)).decide(req())
    assert d is not None and d.body is not None
    assert d.body["detail"].startswith("Injected fault: 599 Error (")


def test_latency_then_status() -> None:
    d = engine(parse_fault_spec("latency_ms=500,status=500")).decide(req())
    assert d is not None
    assert (d.latency_ms, d.status) == (500, 500)
    assert d.body is not None and d.body["status"] == "500"


def test_action_drop_applies_to_anything() -> None:
    eng = engine(FaultRule(action="drop", latency_ms=100))
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        d = eng.decide(req(method))
        assert d is not None
        assert d.drop and d.status is None and d.body is None and d.headers == {}
        assert d.latency_ms == 100
    assert d.description == "delay 100 ms, then drop connection on every request [rule 1]"


def test_action_empty_applies_only_to_creates() -> None:
    eng = engine(FaultRule(action="empty"))
    for method, path in [
        ("GET", "/Users"),
        ("PUT", "/Users/u1"),
        ("PATCH", "/Users/u1"),
        ("POST", "/Users/u1"),
        ("POST", "/Users/.search"),
        ("POST", "/.search"),
        ("POST", "/Bulk"),
    ]:
        assert eng.decide(req(method, path)) is None, (method, path)
    for path in ("/Users", "/Groups", "/Users/"):
        d = eng.decide(req("POST", path))
        assert d is not None
        assert (d.status, d.empty, d.body, d.drop) == (201, True, None, False)
    assert eng.rules[0].describe() == "empty 201 on POST"


def test_action_not_implemented() -> None:
    d = engine(FaultRule(action="not_implemented", method="PATCH")).decide(req("PATCH", "/Users/1"))
    assert d is not None
    assert d.status == 501
    assert d.body is not None
    assert d.body["status"] == "501"
    assert d.body["detail"].startswith("Injected fault: 501 Not Implemented")


# --- Retry-After ------------------------------------------------------------------------------
def test_retry_after_seconds() -> None:
    d = engine(parse_fault_spec("status=429,retry_after=30")).decide(req())
    assert d is not None and d.headers == {"Retry-After": "30"}


def test_retry_after_none() -> None:
    d = engine(parse_fault_spec("status=429,retry_after=none")).decide(req())
    assert d is not None and d.headers == {}
    assert d.rule.describe() == "429 without Retry-After on every request"


def test_retry_after_date_is_an_imf_fixdate() -> None:
    eng = FaultEngine(
        [parse_fault_spec("status=429,retry_after=date")],
        wall_clock=lambda: WALL - DATE_RETRY_SECONDS,
    )
    d = eng.decide(req())
    assert d is not None
    assert d.headers == {"Retry-After": "Sun, 06 Nov 1994 08:49:37 GMT"}  # RFC 7231 §7.1.1.1
    assert d.description.endswith("[rule 1, Retry-After: Sun, 06 Nov 1994 08:49:37 GMT]")


def test_retry_after_on_503() -> None:
    d = engine(parse_fault_spec("status=503,retry_after=10")).decide(req())
    assert d is not None and d.headers == {"Retry-After": "10"}


# --- rate limiter -----------------------------------------------------------------------------
def test_rate_limit_burst_then_429_with_retry_after() -> None:
    clock = FakeClock()
    eng = engine(parse_fault_spec("rate=2,burst=3"), clock=clock)
    assert [eng.decide(req()) for _ in range(3)] == [None, None, None]  # the burst
    d = eng.decide(req())
    assert d is not None
    assert d.status == 429
    assert d.headers == {"Retry-After": "1"}  # next token in 0.5 s, rounded up to 1
    assert d.body is not None
    assert d.body["detail"] == (
        "Injected fault: 429 Too Many Requests; more than 2 requests per second in total "
        "(burst 3) (SCIM Desktop fault rule '429 over 2/s (burst 3, overall) on every request')"
    )
    assert d.description.endswith("[rule 1, Retry-After: 1]")
    # A refused request takes no token: half a second later exactly one request passes.
    clock.advance(0.5)
    assert eng.decide(req()) is None
    assert eng.decide(req()) is not None


def test_rate_limit_retry_after_counts_whole_seconds_to_the_next_token() -> None:
    clock = FakeClock()
    eng = engine(parse_fault_spec("rate=0.1"), clock=clock)  # one request per 10 s, burst 1
    assert eng.decide(req()) is None
    clock.advance(2.5)
    d = eng.decide(req())
    assert d is not None and d.headers == {"Retry-After": "8"}  # 7.5 s, rounded up
    clock.advance(7.0)
    d = eng.decide(req())
    assert d is not None and d.headers == {"Retry-After": "1"}  # 0.5 s: at least 1
    clock.advance(0.5)
    assert eng.decide(req()) is None  # obeying Retry-After finds a token


def test_rate_limit_refills_over_time_up_to_the_burst() -> None:
    clock = FakeClock()
    eng = engine(parse_fault_spec("rate=10,burst=5"), clock=clock)
    assert sum(eng.decide(req()) is None for _ in range(20)) == 5
    clock.advance(0.3)  # three tokens (float-safe: 0.1 * 3)
    assert sum(eng.decide(req()) is None for _ in range(20)) == 3
    clock.advance(3600)  # long idle: capped at the burst
    assert sum(eng.decide(req()) is None for _ in range(20)) == 5


def test_rate_limit_default_burst_is_one_second_of_requests() -> None:
    eng = engine(parse_fault_spec("rate=4"))
    assert sum(eng.decide(req()) is None for _ in range(10)) == 4


def test_rate_limit_per_client_and_global() -> None:
    clock = FakeClock()
    per_client = engine(parse_fault_spec("rate=1,burst=2,per_client=true"), clock=clock)
    overall = engine(parse_fault_spec("rate=1,burst=2"), clock=clock)
    for eng in (per_client, overall):
        assert eng.decide(req(client="a")) is None
        assert eng.decide(req(client="a")) is None
        assert eng.decide(req(client="a")) is not None
    assert per_client.decide(req(client="b")) is None  # b has its own bucket
    assert overall.decide(req(client="b")) is not None  # one bucket for everyone
    assert "from this client" in per_client.decide(req(client="a")).body["detail"]  # type: ignore[union-attr]


def test_rate_limit_only_counts_matching_requests() -> None:
    eng = engine(parse_fault_spec("rate=1,burst=1,method=POST,path=/Users"))
    for _ in range(5):
        assert eng.decide(req("GET", "/Users")) is None
    assert eng.decide(req("POST", "/Users")) is None
    assert eng.decide(req("POST", "/Users")) is not None


def test_rate_limit_passes_on_to_later_rules() -> None:
    eng = engine(parse_fault_spec("rate=1,burst=1"), FaultRule(latency_ms=50))
    d = eng.decide(req())  # within the rate: the next rule decides
    assert d is not None and (d.rule_index, d.latency_ms, d.status) == (1, 50, None)
    d = eng.decide(req())
    assert d is not None and (d.rule_index, d.status) == (0, 429)


def test_rate_limit_retry_after_overrides() -> None:
    clock = FakeClock()
    none = engine(parse_fault_spec("rate=1,burst=1,retry_after=none"), clock=clock)
    fixed = engine(parse_fault_spec("rate=1,burst=1,retry_after=60"), clock=clock)
    dated = engine(parse_fault_spec("rate=0.5,burst=1,retry_after=date"), clock=clock)
    for eng in (none, fixed, dated):
        eng.decide(req())
    assert none.decide(req()).headers == {}  # type: ignore[union-attr]
    assert fixed.decide(req()).headers == {"Retry-After": "60"}  # type: ignore[union-attr]
    # The HTTP-date of the moment the next token arrives (2 s ahead).
    assert dated.decide(req()).headers == {  # type: ignore[union-attr]
        "Retry-After": email.utils.formatdate(WALL + 2, usegmt=True)
    }


def test_rate_limit_with_other_status_and_count() -> None:
    eng = engine(parse_fault_spec("rate=1,burst=1,status=503,count=1"))
    assert eng.decide(req()) is None
    d = eng.decide(req())
    assert d is not None and d.status == 503 and d.headers == {"Retry-After": "1"}
    assert eng.decide(req()) is None  # count used up
    assert eng.states()[0].remaining == 0


def test_rate_limit_forgets_idle_clients() -> None:
    clock = FakeClock()
    eng = engine(parse_fault_spec("rate=1,burst=1,per_client=true"), clock=clock)
    for i in range(4096):  # the map's cap
        eng.decide(req(client=f"c{i}"))
    assert eng.decide(req(client="c0")) is not None
    clock.advance(10)  # every bucket refills: the same as never having been seen
    assert eng.decide(req(client="new")) is None
    assert eng.decide(req(client="new")) is not None  # still limited after the cleanup
    assert len(eng._runtime[0].buckets) == 1


# --- changing rules ---------------------------------------------------------------------------
def test_set_rules_resets_counters_and_buckets() -> None:
    clock = FakeClock()
    limiter = parse_fault_spec("rate=1,burst=1")
    once = FaultRule(status=500, count=1)
    eng = engine(limiter, once, clock=clock)
    assert eng.decide(req()) is not None and eng.decide(req()) is not None  # 500, then 429
    assert [s.fired for s in eng.states()] == [1, 1]
    eng.set_rules([limiter, once])
    assert [s.fired for s in eng.states()] == [0, 0]
    assert eng.states()[1].remaining == 1
    d = eng.decide(req())  # a fresh bucket lets it through; the count is back
    assert d is not None and d.status == 500
    assert eng.rules == (limiter, once)


def test_add_remove_clear() -> None:
    eng = engine(FaultRule(status=500, count=2))
    eng.decide(req())
    assert eng.add_rule(FaultRule(status=503)) == 1
    assert [s.fired for s in eng.states()] == [1, 0]  # adding keeps existing counters
    removed = eng.remove_rule(0)
    assert removed.status == 500
    assert eng.decide(req()).status == 503  # type: ignore[union-attr]
    assert eng.states() == [RuleState(eng.rules[0], fired=1, remaining=None)]
    assert eng.active
    with pytest.raises(IndexError):
        eng.remove_rule(5)
    eng.clear()
    assert eng.rules == ()
    assert not eng.active
    assert eng.decide(req()) is None
    with pytest.raises(TypeError):
        eng.set_rules(["status=500"])  # type: ignore[list-item]


def test_active_with_unlimited_and_exhausted_rules() -> None:
    eng = engine(FaultRule(status=500, count=1), FaultRule(latency_ms=1, path="/none"))
    assert eng.active
    eng.decide(req())
    assert eng.active  # the second rule can still fire
    eng.remove_rule(1)
    assert not eng.active


# --- presets ----------------------------------------------------------------------------------
def test_preset_names() -> None:
    assert list(PRESETS) == [
        "okta-rate-limit",
        "retry-after-date",
        "429-no-retry-after",
        "500-everything",
        "503-groups",
        "slow",
        "near-timeout",
        "empty-create",
        "501-patch",
        "flaky",
    ]
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.title and preset.rules
        assert preset.description.count(".") == 1 and preset.description.endswith(".")
        assert "Okta" in preset.description
        assert all(rule.name == name for rule in preset.rules)
    assert get_preset(" Slow ") is PRESETS["slow"]
    with pytest.raises(FaultSpecError, match="unknown 'nope' \\(known: okta-rate-limit, "):
        get_preset("nope")


def preset_engine(name: str, seed: int = 1) -> FaultEngine:
    return FaultEngine(PRESETS[name].rules, seed=seed, clock=FakeClock(), wall_clock=lambda: WALL)


def test_preset_okta_rate_limit() -> None:
    d = preset_engine("okta-rate-limit").decide(req("POST", "/Users", "create_user"))
    assert d is not None and (d.status, d.headers) == (429, {"Retry-After": "60"})
    assert d.body is not None and d.body["status"] == "429"


def test_preset_retry_after_date() -> None:
    d = preset_engine("retry-after-date").decide(req("PATCH", "/Users/u1"))
    assert d is not None and d.status == 429
    expected = email.utils.formatdate(WALL + DATE_RETRY_SECONDS, usegmt=True)
    assert d.headers == {"Retry-After": expected}
    assert expected.endswith(" GMT") and not expected.isdigit()  # Okta then waits 5 minutes


def test_preset_429_no_retry_after() -> None:
    d = preset_engine("429-no-retry-after").decide(req())
    assert d is not None and (d.status, d.headers) == (429, {})


def test_preset_500_everything() -> None:
    eng = preset_engine("500-everything")
    for method, path in [("GET", "/Users"), ("POST", "/Groups"), ("GET", "/Schemas")]:
        d = eng.decide(req(method, path))
        assert d is not None and d.status == 500 and d.headers == {}


def test_preset_503_groups() -> None:
    eng = preset_engine("503-groups")
    assert eng.decide(req("GET", "/Users")) is None
    assert eng.decide(req("POST", "/Users")) is None
    for method, path in [("GET", "/Groups"), ("POST", "/Groups"), ("PATCH", "/Groups/g1")]:
        d = eng.decide(req(method, path))
        assert d is not None and d.status == 503
        assert d.body is not None
        assert d.body["detail"] == (
            "Injected fault: 503 Service Unavailable "
            "(SCIM Desktop fault rule '503-groups: 503 on /Groups*')"
        )


def test_preset_slow() -> None:
    d = preset_engine("slow").decide(req())
    assert d is not None and (d.latency_ms, d.status, d.drop) == (2000, None, False)


def test_preset_near_timeout() -> None:
    d = preset_engine("near-timeout").decide(req("PUT", "/Users/u1"))
    assert d is not None and (d.latency_ms, d.status) == (55_000, None)
    assert d.latency_ms < 60_000  # Okta closes the socket at 60 s


def test_preset_empty_create() -> None:
    eng = preset_engine("empty-create")
    assert eng.decide(req("GET", "/Users")) is None
    assert eng.decide(req("POST", "/Groups")) is None
    d = eng.decide(req("POST", "/Users", "create_user"))
    assert d is not None and (d.status, d.empty, d.body) == (201, True, None)


def test_preset_501_patch() -> None:
    eng = preset_engine("501-patch")
    assert eng.decide(req("PUT", "/Users/u1")) is None  # PUT keeps working
    d = eng.decide(req("PATCH", "/Users/u1", "deactivate_user"))
    assert d is not None and d.status == 501
    assert d.body is not None and d.body["status"] == "501"


def test_preset_flaky() -> None:
    eng = preset_engine("flaky", seed=2024)
    decisions = [eng.decide(req()) for _ in range(10_000)]
    fired = [d for d in decisions if d is not None]
    assert 1_800 <= len(fired) <= 2_200
    assert {d.status for d in fired} == {500}
