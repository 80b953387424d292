"""The SLO expression parser and judge: accepted and rejected expressions, units, request names, no data."""

import math

import pytest

from core.errors import InputError
from core.slo import SLO, SLOResult, evaluate, parse_slo, parse_slos


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold", "name"),
    [
        ("p95<2500", "p95", "<", 2500.0, None),
        ("ttft_p95<800", "ttft_p95", "<", 800.0, None),
        ("fail_ratio<0.01", "fail_ratio", "<", 0.01, None),
        ("fail_ratio<1%", "fail_ratio", "<", 0.01, None),
        ("rps>50", "rps", ">", 50.0, None),
        ("rps >= 50/s", "rps", ">=", 50.0, None),
        ("p99<=2.5s", "p99", "<=", 2500.0, None),
        ("e2e_p50<3000ms", "e2e_p50", "<", 3000.0, None),
        ("p95[chat:simple]<2000", "p95", "<", 2000.0, "chat:simple"),
        ("p95[POST /api/chat: long one]<2s", "p95", "<", 2000.0, "POST /api/chat: long one"),
        ("  avg [ ask ] <  1.5 s ", "avg", "<", 1500.0, "ask"),
        ("max<10000", "max", "<", 10000.0, None),
        ("P90<700", "p90", "<", 700.0, None),
        ("itl_p99<120", "itl_p99", "<", 120.0, None),
        ("tpot_avg<50", "tpot_avg", "<", 50.0, None),
        ("fanout_p95<300", "fanout_p95", "<", 300.0, None),
        ("ttfa_p90<1.2s", "ttfa_p90", "<", 1200.0, None),
        ("tokens_per_s>=200", "tokens_per_s", ">=", 200.0, None),
        ("goodput>.5", "goodput", ">", 0.5, None),
        ("fail_ratio<=0", "fail_ratio", "<=", 0.0, None),
        ("p95<1e3", "p95", "<", 1000.0, None),
    ],
)
def test_accepts(text: str, metric: str, op: str, threshold: float, name: str | None) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.op, slo.name) == (metric, op, name)
    assert slo.threshold == pytest.approx(threshold)
    assert slo.text == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95<<3", "--slo 'p95<<3': expected METRIC[NAME] OP VALUE, e.g. p95<2500"),
        ("p42<3", "--slo 'p42<3': unknown metric p42 (known: p50, p90, p95, p99, avg, max, fail_ratio, lost, "),
        ("p95", "--slo 'p95': expected METRIC[NAME] OP VALUE"),
        ("", "--slo '': expected METRIC[NAME] OP VALUE"),
        ("p95<", "expected METRIC[NAME] OP VALUE"),
        ("p95=100", "expected METRIC[NAME] OP VALUE"),
        ("p95<-5", "expected METRIC[NAME] OP VALUE"),
        ("p95<abc", "expected METRIC[NAME] OP VALUE"),
        ("p95<100 ms extra", "expected METRIC[NAME] OP VALUE"),
        ("p95[chat<100", "expected METRIC[NAME] OP VALUE"),
        ("p95[]<100", "--slo 'p95[]<100': empty request name"),
        ("p95<5%", "--slo 'p95<5%': p95 is a latency; give ms or s"),
        ("fail_ratio<5", "--slo 'fail_ratio<5': fail_ratio is a ratio from 0 to 1; write 5% for percent"),
        ("fail_ratio<2s", "fail_ratio is a ratio; give 0.01 or 1%"),
        ("fail_ratio<150%", "fail_ratio is a ratio from 0 to 1"),
        ("rps>5ms", "rps is a rate per second"),
        ("ttft_max<100", "unknown metric ttft_max"),
        ("foo_p95<100", "unknown metric foo_p95"),
    ],
)
def test_rejects_with_one_line_naming_the_input(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_slo(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"--slo {text!r}: ")
    assert "\n" not in str(caught.value)


def test_exact_messages() -> None:
    def message(text: str) -> str:
        with pytest.raises(InputError) as caught:
            parse_slo(text)
        return str(caught.value)

    assert message("p95<<3") == "--slo 'p95<<3': expected METRIC[NAME] OP VALUE, e.g. p95<2500"
    assert message("p42<3") == (
        "--slo 'p42<3': unknown metric p42 (known: p50, p90, p95, p99, avg, max, fail_ratio, lost, completeness, "
        "duplicates, call_setup, rps, tokens_per_s, goodput; ttft_, itl_, tpot_, e2e_, fanout_, ttfa_, bargein_, "
        "lateness_ + p50/p90/p95/p99/avg)"
    )
    assert message("fail_ratio<5") == "--slo 'fail_ratio<5': fail_ratio is a ratio from 0 to 1; write 5% for percent"


def test_parse_slos_takes_many_texts_and_comma_lists_but_not_commas_in_names() -> None:
    slos = parse_slos(["p95<2500, fail_ratio<1%", "p95[a,b]<100; rps>5", ""])
    assert [(s.metric, s.name) for s in slos] == [("p95", None), ("fail_ratio", None), ("p95", "a,b"), ("rps", None)]
    with pytest.raises(InputError, match="--slo 'p42<1'"):
        parse_slos(["p95<1", "p42<1"])


@pytest.mark.parametrize(
    ("text", "value", "passes"),
    [
        ("p95<2500", 2499.9, True),
        ("p95<2500", 2500, False),
        ("p95<=2500", 2500, True),
        ("rps>50", 50, False),
        ("rps>=50", 50, True),
        ("fail_ratio<1%", 0.0099, True),
        ("fail_ratio<1%", 0.02, False),
        ("p95<2500", math.nan, False),
    ],
)
def test_passes(text: str, value: float, passes: bool) -> None:
    assert parse_slo(text).passes(value) is passes


def test_rendering_round_trips_and_describes() -> None:
    for text in ["p95<2500", "fail_ratio<1%", "rps>=50", "p95[chat:simple]<=2000", "ttft_p95<800"]:
        assert str(parse_slo(text)) == text
        assert parse_slo(str(parse_slo(text))) == parse_slo(text)
    assert str(parse_slo("p99<2.5s")) == "p99<2500"
    slo = parse_slo("p95<2500")
    assert slo.compare(3100) == "p95 3100 > 2500"
    assert slo.describe(2310) == "PASS p95 2310 < 2500"
    assert slo.describe(3100.4) == "FAIL p95 3100 > 2500"
    assert slo.describe(None) == "FAIL NO DATA p95<2500"
    assert parse_slo("p95<2500?").describe(None) == "NO DATA p95<2500?"
    assert parse_slo("fail_ratio<1%").describe(0.05) == "FAIL fail_ratio 5% > 1%"
    assert parse_slo("p95[chat]<100").describe(100) == "FAIL p95[chat] 100 == 100"
    assert parse_slo("rps>5").describe(12.345) == "PASS rps 12.35 > 5"


def test_evaluate_asks_per_metric_and_name_and_reports_missing_data() -> None:
    slos = parse_slos(["p95<2500", "p95[chat:simple]<2000", "ttft_p95<800", "fail_ratio<1%"])
    values = {("p95", None): 2100.0, ("p95", "chat:simple"): 2600.0, ("fail_ratio", None): math.nan}
    asked = []

    def measure(metric: str, name: str | None) -> float | None:
        asked.append((metric, name))
        return values.get((metric, name))

    results = evaluate(slos, measure)
    assert asked == [("p95", None), ("p95", "chat:simple"), ("ttft_p95", None), ("fail_ratio", None)]
    assert [r.passed for r in results] == [True, False, False, False]
    assert [r.breached for r in results] == [False, True, True, True]  # no data is a breach
    assert results[2] == SLOResult(slos[2], None, False)
    assert results[1].describe() == "FAIL p95[chat:simple] 2600 > 2000"
    assert results[2].describe() == "FAIL NO DATA ttft_p95<800"


def test_an_optional_slo_without_data_is_no_breach() -> None:
    optional, required = parse_slos(["itl_p95<50?", "itl_p95<50"])
    assert (optional.optional, required.optional) == (True, False)
    assert (optional.metric, optional.threshold, optional.text) == ("itl_p95", 50.0, "itl_p95<50?")
    assert str(optional) == "itl_p95<50?" and parse_slo(str(optional)) == optional
    no_data, missing = evaluate([optional, required], lambda metric, name: None)
    assert (no_data.passed, no_data.breached, no_data.describe()) == (None, False, "NO DATA itl_p95<50?")
    assert (missing.passed, missing.breached) == (False, True)
    judged = evaluate([optional], lambda metric, name: 70.0)[0]
    assert judged.breached and judged.describe() == "FAIL itl_p95 70 > 50"  # optional only when there is no data


def test_slo_is_frozen_and_knows_its_kind() -> None:
    slo = parse_slo("ttft_p95<800")
    assert isinstance(slo, SLO)
    with pytest.raises(AttributeError):
        slo.threshold = 1.0  # type: ignore[misc]
    assert (slo.kind, parse_slo("fail_ratio<1%").kind, parse_slo("goodput>1").kind) == ("latency", "ratio", "rate")
