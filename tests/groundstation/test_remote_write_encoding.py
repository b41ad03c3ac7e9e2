"""Remote write's hand-built samples encoding against the protobuf runtime, and its bound on samples
waiting to be encoded."""
from __future__ import annotations

import numpy as np
import pytest

from groundstation.remote_write import Endpoint, RemoteWriter, WriteRequest, _spread_duplicates, _varint, encode_samples


def _parsed(values: np.ndarray, stamps: np.ndarray) -> list[tuple[bytes, int]]:
    series = WriteRequest().timeseries.add()
    series.labels.add(name="__name__", value="x")
    body = series.SerializeToString() + encode_samples(values, stamps)
    request = WriteRequest.FromString(b"\x0a" + _varint(len(body)) + body)
    (parsed,) = request.timeseries
    assert [(label.name, label.value) for label in parsed.labels] == [("__name__", "x")]
    return [(np.float64(s.value).tobytes(), s.timestamp) for s in parsed.samples]


@pytest.mark.parametrize("seed", range(6))
def test_encoded_samples_parse_back_to_their_values_and_timestamps(seed):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 400))
    if seed % 2:  # one varint width throughout (the table path)
        stamps = np.sort(rng.integers(1_600_000_000_000, 1_900_000_000_000, count))
    else:  # every width, negative ones too (10 octets)
        stamps = rng.integers(-2**40, 2**62, count) >> rng.integers(0, 62, count)
    values = rng.normal(size=count) * 10.0 ** rng.integers(-300, 300, count)
    values[: count // 5] = rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324], count // 5)
    expected = [(v.tobytes(), int(t)) for v, t in zip(values, stamps.tolist(), strict=True)]
    assert _parsed(values, stamps) == expected
    assert encode_samples(values[:0], stamps[:0]) == b""


def test_duplicate_timestamps_are_spread_one_millisecond_apart_in_order():
    rng = np.random.default_rng(1)
    stamps = np.sort(rng.integers(0, 50, 500))
    expected = stamps.copy()
    for i in range(1, expected.size):
        expected[i] = max(expected[i], expected[i - 1] + 1)
    assert _spread_duplicates(stamps).tolist() == expected.tolist()


def test_samples_beyond_the_bound_are_dropped_oldest_first_and_counted_for_every_endpoint():
    from protocols.missions import registry

    definition = registry().spacecraft("haiyang2d").housekeeping[0]
    per_packet = len(definition.parameters())
    endpoints = [Endpoint("http://127.0.0.1:1/w", name="a", queue_max_samples=10 * per_packet),
                 Endpoint("http://127.0.0.1:1/w", name="b", queue_max_samples=25 * per_packet)]
    writer = RemoteWriter(endpoints)
    assert writer.max_pending_samples == 25 * per_packet
    paths = [path for path, _ in definition.parameters()]
    for batch in range(10):  # 10 groups of 4 packets: 40 packets, the bound holds 25
        raw = {path: np.full(4, batch, dtype=np.int64) for path in paths}
        writer.add("haiyang2d", definition, raw, None, 1000.0 + batch)
    dropped = 4 * per_packet * 4  # the four oldest groups: 24 packets are left, a fifth would go under 25
    assert [e.stats.samples_dropped for e in endpoints] == [dropped, dropped]
    requests = writer.encode_pending()
    assert sum(n for _, n in requests) == 6 * 4 * per_packet == writer.samples_encoded


@pytest.mark.parametrize("timestamp", ["ground", "onboard"])
def test_many_small_groups_give_every_series_the_samples_each_group_gave(timestamp):
    """Groups are converted per spacecraft and definition (merge_groups); each sample must keep its
    own group's time stamp (onboard time where asked and known, else receipt) and value."""
    import cramjam

    from protocols.missions import registry

    definitions = registry().spacecraft("haiyang2d").housekeeping[:2]
    writer = RemoteWriter([Endpoint("http://127.0.0.1:1/w")], timestamp=timestamp)
    rng = np.random.default_rng(7)
    expected: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for i in range(60):
        spacecraft, definition = ("haiyang2d", "tianwen1")[i % 2], definitions[(i // 2) % 2]
        count = int(rng.integers(1, 4))
        raw = {path: rng.integers(0, 3, count) for path, _ in definition.parameters()}
        onboard = None if i % 5 == 0 else 1_800_000_000.0 + i + np.arange(count) * 0.25
        ground = 1_800_000_100.0 + i * 0.0101
        writer.add(spacecraft, definition, raw, onboard, ground)
        for path, parameter in definition.parameters():
            values = (raw[path].astype(float) if getattr(parameter.calibration, "states", None)
                      else parameter.calibration.to_eng_array(raw[path]))
            stamps = ([round(t * 1e6) // 1000 for t in onboard] if timestamp == "onboard" and onboard is not None
                      else [round(ground * 1e6) // 1000] * count)
            expected.setdefault((spacecraft, path.rsplit(".", 1)[-1]), []).extend(
                zip(stamps, values.tolist(), strict=True))
    got: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for body, _ in writer.encode_pending():
        for series in WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body))).timeseries:
            labels = {label.name: label.value for label in series.labels}
            got.setdefault((labels["spacecraft"], labels["parameter"]), []).extend(
                (s.timestamp, s.value) for s in series.samples)
    assert got.keys() == expected.keys()
    for key, samples in expected.items():
        samples.sort(key=lambda s: s[0])  # stable: a group's own order among equal stamps
        stamps = _spread_duplicates(np.array([s[0] for s in samples]))
        assert got[key] == [(int(t), v) for t, (_, v) in zip(stamps, samples, strict=True)], key
