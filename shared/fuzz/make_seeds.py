#!/usr/bin/env python3
"""Writes the fuzz seed corpora under seeds/<target>/ from the real fixtures in tests/fixtures.

Run from anywhere: python3 shared/fuzz/make_seeds.py. Seeds are small and committed; the fuzzers
work on a copy (corpus/<target>/, gitignored), so a run never changes them. Every seed comes from
real bytes: BLE vectors of other decoders, the Android btsnoop log, tcpdump's radiotap captures.
The only constructed files are the H1 and monitor btsnoop files, which wrap real events from the
Android log in the other two datalinks' framing (so the fuzzer starts on every datalink).
"""
import json
import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent.parent / "tests" / "fixtures"
SEEDS = HERE / "seeds"

# AD payloads: every beacon the vectors hold, plus malformed and padded generic payloads.
AD_TYPES = {
    "eddystone_eid", "eddystone_tlm", "eddystone_uid", "eddystone_url", "ibeacon",
    "gap_ad_parse:ibeacon", "negative_eddystone_other", "estimote_telemetry",
    "exposure_notification", "gap_ad_parse:apple_other_mfg", "gap_ad_parse:other_mfg",
    "gap_ad_parse:other_service_data",
}
AD_MALFORMED = {  # bluetooth-data-tools' truncated, zero-padded and overrunning payloads
    "00ff0050696e6554696d6502010611079ecadc240ee5a92833343093f3a3b50100406e",
    "0201060509525a5353", "0509abcd", "04084261720409466f6f", "030a0080",
    "12211a020a050aff06326b035200010409000407201a020a050aff", "0201060303",
}


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def btsnoop_records(raw):
    """(offset, header, data) of each record of a btsnoop file."""
    off = 16
    while off + 24 <= len(raw):
        orig, incl, flags, drops, ts = struct.unpack(">IIIIq", raw[off:off + 24])
        yield off, (orig, incl, flags, drops, ts), raw[off + 24:off + 24 + incl]
        off += 24 + incl


def btsnoop_file(datalink, records):
    out = b"btsnoop\0" + struct.pack(">II", 1, datalink)
    for flags, ts, data in records:
        out += struct.pack(">IIIIq", len(data), len(data), flags, 0, ts) + data
    return out


def pcap_packets(raw):
    e = "<" if raw[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    off = 24
    while off + 16 <= len(raw):
        _, _, incl, _ = struct.unpack(e + "IIII", raw[off:off + 16])
        yield raw[off + 16:off + 16 + incl]
        off += 16 + incl


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    vectors = [json.loads(l) for l in open(FIXTURES / "ble" / "ble_vectors.jsonl")]
    seen = set()
    for v in vectors:
        raw = v["raw_hex"]
        if raw in seen or not raw:
            continue
        if v["raw_kind"] == "adv_data" and (v["beacon_type"] in AD_TYPES or raw in AD_MALFORMED):
            seen.add(raw)
            write("ad", f"{v['beacon_type'].split(':')[-1]}-{v['id']}", bytes.fromhex(raw))
        elif v["raw_kind"] == "hci_le_meta_event":
            seen.add(raw)
            write("hci", f"{v['beacon_type']}-{v['id']}", bytes.fromhex(raw))

    log = (FIXTURES / "captures" / "horizon74_btsnoop_hci.log").read_bytes()
    records = list(btsnoop_records(log))
    # The head of the Android log, cut at the last record boundary before 4 KiB.
    end = max(off for off, _, _ in records if off <= 4096)
    write("btsnoop", "horizon74-head", log[:end])
    # Its first LE advertising report events: H4 seeds for `hci`, and the H1/monitor files.
    adv = [(h, d) for _, h, d in records if d[:2] == b"\x04\x3e" and d[3:4] == b"\x02"]
    for i, (_, d) in enumerate(adv[:4]):
        write("hci", f"horizon74-adv-{i}", d)
    events = [(h[4], d[1:]) for h, d in adv[:6]]
    write("btsnoop", "h1-events", btsnoop_file(1001, [(0b11, ts, ev) for ts, ev in events]))
    monitor = [(0, events[0][0], bytes(16))]  # a New Index record, skipped by the reader
    monitor += [((i % 2) << 16 | 3, ts, ev) for i, (ts, ev) in enumerate(events)]
    write("btsnoop", "monitor-events", btsnoop_file(2001, monitor))

    for cap in sorted((FIXTURES / "captures").glob("*.pcap")):
        stem = cap.stem.removeprefix("tcpdump_ieee802.11_")
        for i, p in enumerate(pcap_packets(cap.read_bytes())):
            write("wifi", f"{stem}-{i}", p)
            it_len = struct.unpack("<H", p[2:4])[0]
            if p[it_len] == 0x40:  # a probe request: also as plain 802.11 (linktype 105)
                write("wifi", f"{stem}-{i}-plain", p[it_len:])

    for t in sorted(SEEDS.iterdir()):
        files = sorted(t.iterdir())
        print(f"{t.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
