"""The metric book's math: windows as differences of snapshots, merges of unequal parts, every SLO metric."""

import pytest

from core.book_measure import BookMeasure, BookSnapshot, request_figures, total_figures, window_measure
from core.metric_book import MetricBook
from core.slo import evaluate, parse_slos


def requests(
    book: MetricBook, times: list[float], kind: str = "POST", name: str = "chat", failed: bool = False
) -> None:
    for ms in times:
        book.add_request(kind, name, ms, failed)


def test_a_window_holds_only_what_was_filed_between_its_snapshots() -> None:
    book = MetricBook()
    requests(book, [5000.0] * 50)  # a slow start the window must not see
    book.add_answer(
        "chat", failed=False, ttft_ms=900.0, itl_ms=[90.0] * 9, tpot_ms=90.0, e2e_ms=1710.0, output_tokens=10
    )
    before = BookSnapshot.take(book, now=10.0)
    requests(book, [100.0] * 18 + [300.0] * 2)
    requests(book, [50.0] * 5, failed=True)
    requests(book, [40.0] * 20, kind="TTFT")  # timings of exchanges, not exchanges
    book.add_answer(
        "chat", failed=False, ttft_ms=40.0, itl_ms=[5.0, 6.0, 7.0], tpot_ms=6.0, e2e_ms=58.0, output_tokens=4
    )
    book.add_answer("chat", failed=True)
    after = BookSnapshot.take(book, now=15.0)
    requests(book, [9000.0] * 10)  # after the window

    measure = window_measure(before, after)
    assert measure("p50") == 100.0 and measure("p95") == 300.0 and measure("max") == 300.0
    assert measure("avg") == pytest.approx((18 * 100 + 2 * 300) / 20)  # exact, successful exchanges only
    assert measure("fail_ratio") == pytest.approx(5 / 25)
    assert measure("rps") == pytest.approx(25 / 5.0)
    assert (measure("ttft_p95"), measure("itl_p99"), measure("tpot_p50"), measure("e2e_max")) == (40.0, 7.0, 6.0, 58.0)
    assert measure("tokens_per_s") == pytest.approx(4 / 5.0)
    assert measure("p95", "nosuch") is None and measure("ttft_p95", "nosuch") is None
    # The whole run still holds everything.
    whole = BookMeasure(book, 30.0)
    assert whole("max") == 9000.0 and whole("ttft_p50") == 40.0 and whole("ttft_max") == 900.0


def test_merging_unequal_parts_is_not_averaging_their_percentiles() -> None:
    busy, quiet = MetricBook(), MetricBook()
    requests(busy, [10.0] * 90)
    requests(quiet, [1000.0] * 10)
    for ms in [10.0] * 90:
        busy.add_answer("chat", failed=False, ttft_ms=ms, output_tokens=1)
    for ms in [1000.0] * 10:
        quiet.add_answer("chat", failed=False, ttft_ms=ms, output_tokens=1)
    assert BookMeasure(busy, 1)("p95") == 10.0 and BookMeasure(quiet, 1)("p95") == 1000.0  # their average: 505

    master = MetricBook()
    for part in (busy, quiet):  # as a worker sends it
        master.merge(MetricBook.from_message(part.to_message()))
    measure = BookMeasure(master, 10.0)
    assert measure("p90") == 10.0  # 90 of the 100 requests took 10 ms
    assert measure("p95") == 1000.0  # the 95th is one of the quiet worker's
    assert measure("avg") == pytest.approx((90 * 10 + 10 * 1000) / 100)
    assert (measure("ttft_p90"), measure("ttft_p95")) == (10.0, 1000.0)
    assert measure("rps") == pytest.approx(10.0)


def test_totals_count_exchanges_not_timing_rows() -> None:
    book = MetricBook()
    for failed in [False] * 51 + [True] * 12:  # 63 streamed answers, 12 failed (19%)
        book.add_request("E2E", "chat", 100.0, failed)
        if not failed:
            book.add_request("TTFT", "chat", 20.0, False)
    book.add_request("FANOUT", "peers", 3.0, False)
    totals = total_figures(book, 10.0)
    assert (totals["count"], totals["failures"]) == (63, 12)
    assert totals["fail_ratio"] == pytest.approx(12 / 63)
    assert totals["rps"] == pytest.approx(6.3)
    rows = request_figures(book, 10.0)
    assert list(rows) == ["E2E chat", "FANOUT peers", "TTFT chat"]  # each row still shown, as Locust shows it
    assert (rows["TTFT chat"]["count"], rows["E2E chat"]["p95_ms"]) == (51, 100.0)


def test_cut_short_exchanges_travel_from_workers_and_stay_out_of_the_failure_ratio() -> None:
    worker_a, worker_b = MetricBook(), MetricBook()
    requests(worker_a, [100.0] * 7)
    worker_a.add_cut_short("POST", "chat", 2)
    worker_b.add_cut_short("POST", "chat")
    worker_b.add_cut_short("TTFA", "call")  # a timing row's cut is not an exchange
    master = MetricBook()
    for part in (worker_a, worker_b):
        master.merge(MetricBook.from_message(part.to_message()))
    totals = total_figures(master, 1.0)
    assert (totals["count"], totals["failures"], totals["fail_ratio"], totals["cut_short"]) == (7, 0, 0.0, 3)
    before = master.copy()
    master.add_cut_short("POST", "chat")
    assert total_figures(master.minus(before), 1.0)["cut_short"] == 1


def test_every_metric_of_the_slo_language_is_measured() -> None:
    book = MetricBook()
    requests(book, [100.0] * 10)
    requests(book, [3.0, 4.0], kind="FANOUT", name="peers")
    requests(book, [700.0], kind="TTFA", name="audio:raw")
    book.add_answer("chat", failed=False, good=True, ttft_ms=50, itl_ms=[5, 5], tpot_ms=5, e2e_ms=60, output_tokens=3)
    book.add_answer("chat", failed=False, good=False, ttft_ms=90, itl_ms=[9], tpot_ms=9, e2e_ms=99, output_tokens=2)
    book.add_lateness("audio", {2000: 99, 30000: 1})
    book.add_lateness("arrival", {50000: 1})
    measure = BookMeasure(book, 2.0, {"lost": 0.05, "completeness": 0.95, "duplicates": 0.0})
    slos = parse_slos(
        [
            "p50<1, p90<1, p95<1, p99<1, avg<1, max<1, fail_ratio<1%, rps>1, tokens_per_s>1, goodput>0",
            "lost<1%, completeness>99%, duplicates<1%, lateness_p99<10, lateness_p99[audio]<10",
        ]
    )
    families = ("ttft", "itl", "tpot", "e2e", "fanout", "ttfa")
    slos += parse_slos([f"{family}_{stat}<1000" for family in families for stat in ("p50", "p90", "p95", "p99", "avg")])
    results = evaluate(slos, measure)
    assert [r.slo.text for r in results if r.value is None] == []
    values = {str(r.slo): r.value for r in results}
    assert (values["goodput>0"], values["tokens_per_s>1"]) == (0.5, 2.5)
    assert (values["lost<1%"], values["completeness>99%"]) == (0.05, 0.95)
    assert values["lateness_p99<10"] == 30.0 and values["lateness_p99[audio]<10"] == 2.0
    assert (values["fanout_p50<1000"], values["ttfa_p95<1000"], values["itl_avg<1000"]) == (3.0, 700.0, 19 / 3)
    # Plenary delivery is a whole run's: a window (no run values) has no data for it.
    assert BookMeasure(book, 2.0)("lost") is None
