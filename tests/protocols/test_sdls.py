"""Space Data Link Security (CCSDS 355.0-B-2) on TC frames: known answers for the primitives, the
frame layout against a construction by hand, and every rejection reason."""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
from pathlib import Path

import crcmod.predefined
import cryptography_vectors
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols.ccsds.sdls import (
    AES256_GCM,
    FORGED,
    HMAC_SHA256,
    OUT_OF_WINDOW,
    REPLAYED,
    UNAUTHENTICATED,
    AntiReplayWindow,
    SecurityAssociation,
    SecurityError,
    apply_security,
    hmac_sha256_mac,
    key_file_text,
    parse_key_file,
    process_security,
)
from protocols.ccsds.tcframe import TcFrame, TcProfile, parse_tc_frame
from protocols.errors import ProtocolError

VECTORS = Path(cryptography_vectors.__file__).parent
CRC16 = crcmod.predefined.mkCrcFun("crc-ccitt-false")
KEY = bytes(range(0x40, 0x60))


def cavp_records(path: Path) -> list[dict[str, str]]:
    """The records of a NIST CAVP .rsp file, each with its section's [Name = value] lines."""
    records, section, current = [], {}, None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if current is not None:
                records.append(current)
                current = None
            name, _, value = line.strip("[]").partition("=")
            section = {**section, name.strip(): value.strip()}
            continue
        if line.startswith("Count"):
            if current is not None:
                records.append(current)
            current = dict(section)
        if current is None:
            continue
        if line == "FAIL":
            current["FAIL"] = "1"
        else:
            name, _, value = line.partition("=")
            current[name.strip()] = value.strip()
    if current is not None:
        records.append(current)
    return records


def gcm_profile_records(name: str) -> list[dict[str, str]]:
    """AES-256-GCM records with this profile's 96-bit IV and 128-bit tag."""
    records = [r for r in cavp_records(VECTORS / "ciphers" / "AES" / "GCM" / name)
               if r["Keylen"] == "256" and r["IVlen"] == "96" and r["Taglen"] == "128"]
    assert len(records) >= 100, name
    return records


# --------------------------------------------------------------------------- primitives: known answers

def test_aes256_gcm_encrypt_known_answers_nist_cavp():
    """gcmEncryptExtIV256.rsp (NIST CAVS 14.0, shipped by cryptography-vectors)."""
    records = gcm_profile_records("gcmEncryptExtIV256.rsp")
    for r in records:
        sealed = AESGCM(bytes.fromhex(r["Key"])).encrypt(bytes.fromhex(r["IV"]), bytes.fromhex(r["PT"]),
                                                         bytes.fromhex(r["AAD"]) or None)
        assert sealed.hex() == r["CT"] + r["Tag"], r["Count"]


def test_aes256_gcm_decrypt_known_answers_nist_cavp_including_failures():
    records = gcm_profile_records("gcmDecrypt256.rsp")
    failures = 0
    for r in records:
        gcm = AESGCM(bytes.fromhex(r["Key"]))
        args = bytes.fromhex(r["IV"]), bytes.fromhex(r["CT"] + r["Tag"]), bytes.fromhex(r["AAD"]) or None
        if "FAIL" in r:
            failures += 1
            with pytest.raises(InvalidTag):
                gcm.decrypt(*args)
        else:
            assert gcm.decrypt(*args).hex() == r["PT"], r["Count"]
    assert failures > 20


#: NIST CAVP HMACVS vectors, HMAC_SHA2 file section [L=32] (SHA-256): (Count, Key, Msg, Mac truncated to Tlen).
CAVP_HMAC_SHA256 = [
    (0, "6f35628d65813435534b5d67fbdb54cb33403d04e843103e6399f806cb5df95febbdd61236f33245",
     "752cff52e4b90768558e5369e75d97c69643509a5e5904e0a386cbe4d0970ef73f918f675945a9aefe26daea27587e8dc909dd56fd0468805"
     "f834039b345f855cfe19c44b55af241fff3ffcd8045cd5c288e6c4e284c3720570b58e4d47b8feeedc52fd1401f698a209fccfa3b4c0d9a79"
     "7b046a2759f82a54c41ccd7b5f592b", "05d1243e6465ed9620c9aec1c351a186"),
    (33, "5448998f9d8f98534addf0c8ba631c496bf8a8006cbb46ad15fa1fa2f55367120c19348c3afa90c3",
     "1c4396f7b7f9228e832a13692002ba2aff439dcb7fddbfd456c022d133ee8903a2d482562fdaa493ce3916d77a0c51441dab26f6b034023"
     "8a36a71f87fc3e179cabca9482b704971ce69f3f20ab64b70413d6c2908532b2a888a9fc224cae1365da410b6f2e298904b63b4a41726321"
     "835a4774dd063c211cfc8b5166c2d11a2", "7e8cba9dd9f06ebdd7f92e0f1a67c7f4df52693c212bdd84f67370b351533c6c"),
    (91, "eae255d9e083268f896429ce36645502aff9dbeaca7159f93c7d51fdaeefdbfe14c396693a5ce46e9f1157a687e866f94ca165bff5f7b"
         "425092236d2a6a004cb",
     "c28f6a09ce076ef270458967fe19d46e6f6b2cbeb6362bdc4fd55684177e984a600cf0814501665c3bcb4353e94681c83a8381ebb0c8fcd"
     "bfbd73c0eca738cf2e121edd46b2c0a0292eb6e2c4e46f5107a7780572d0eedb9473847684a4039ac6c56c9caea90432b9e2e72bad422168"
     "e5ad093c9d612e7c05c7fde5c40ed89c0", "b84003c417a472fd2935341962744330"),
    (120, "992868504d2564c4fb47bcbd4ae482d8fb0e8e56d7b81864e61986a0e25682daeb5b50177c095edc9e971da95c3210c376e723365ac33d"
          "1b4f391817f4c35124",
     "ed4f269a8851eb3154771516b27228155200778049b2dc1963f3ac32ba46ea1387cfbb9c39151a2cc406cdc13c3c9860a27eb0b7fe8a7201"
     "ad11552afd041e33f70e53d97c62f17194b66117028fa9071cc0e04bd92de4972cd54f719010a694e414d4977abed7ca6b90ba612df6c3d4"
     "67cded85032598a48546804f9cf2ecfe", "2f8321f416b9bb249f113b13fc12d70e1668dc332839c10daa5717896cb70ddf"),
]


@pytest.mark.parametrize("count,key,msg,mac", CAVP_HMAC_SHA256, ids=[f"count{c[0]}" for c in CAVP_HMAC_SHA256])
def test_hmac_sha256_known_answers_nist_cavp(count, key, msg, mac):
    """The SA's MAC is HMAC-SHA-256 truncated to 16 octets: a Tlen=16 vector is the MAC itself,
    a Tlen=32 one starts with it."""
    assert hmac_sha256_mac(bytes.fromhex(key), bytes.fromhex(msg)).hex() == mac[:32]
    assert HMAC_SHA256.mac_length == 16


def test_hmac_sha256_known_answers_rfc4231():
    """RFC 4231 §4 test cases (cryptography-vectors' HMAC/rfc-4231-sha256.txt)."""
    text = (VECTORS / "HMAC" / "rfc-4231-sha256.txt").read_text()
    cases = [dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
             for block in text.split("\n\n") if "MD = " in block]
    assert len(cases) == 6
    for case in cases:
        assert hmac_sha256_mac(bytes.fromhex(case["Key"]), bytes.fromhex(case["Msg"])).hex() == case["MD"][:32]


# --------------------------------------------------------------------------- frame layout, by hand

def hand_built_hmac_frame(key: bytes, spi: int, sn: int, scid: int, vcid: int, data: bytes, *, bypass: int,
                          fsn: int = 0) -> bytes:
    """355.0-B-2 §4.1 with 232.0-B: header 5 | SPI 2 | SN 4 | data | MAC 16 (HMAC-SHA-256, leftmost 128 bits) | FECF."""
    total = 5 + 2 + 4 + len(data) + 16 + 2
    header = struct.pack(">HHB", (bypass << 13) | scid, (vcid << 10) | (total - 1), fsn)
    security = struct.pack(">HI", spi, sn)
    mac = hmac.new(key, header + security + data, hashlib.sha256).digest()[:16]
    frame = header + security + data + mac
    return frame + CRC16(frame).to_bytes(2, "big")


def hand_built_gcm_frame(key: bytes, spi: int, sn: int, scid: int, vcid: int, data: bytes) -> bytes:
    total = 5 + 2 + 12 + 4 + len(data) + 16 + 2
    header = struct.pack(">HHB", (1 << 13) | scid, (vcid << 10) | (total - 1), 0)
    iv = bytes(4) + sn.to_bytes(8, "big")
    security = struct.pack(">H", spi) + iv + sn.to_bytes(4, "big")
    sealed = AESGCM(key).encrypt(iv, data, header + security)
    frame = header + security + sealed
    return frame + CRC16(frame).to_bytes(2, "big")


PACKET = bytes.fromhex("1864c00000090011010000a5a5")


@pytest.mark.parametrize("bypass", [0, 1])
def test_hmac_frame_matches_the_construction_by_hand_both_ways(bypass):
    sa = SecurityAssociation(7, HMAC_SHA256, KEY)
    frame = TcFrame(scid=466, vcid=2, data=PACKET, bypass_flag=bypass, frame_sequence_number=9 if not bypass else 0)
    ours = apply_security(frame, sa, 1234)
    theirs = hand_built_hmac_frame(KEY, 7, 1234, 466, 2, PACKET, bypass=bypass, fsn=frame.frame_sequence_number)
    assert ours == theirs
    # the frame length field counts header and trailer; the FECF covers the secured frame
    assert parse_tc_frame(theirs, verify=True).data[:6] == bytes.fromhex("0007000004d2")
    verified = process_security(theirs, {7: sa})
    assert (verified.spi, verified.sequence_number, verified.frame.data) == (7, 1234, PACKET)
    assert verified.frame.bypass_flag == bypass and verified.frame.scid == 466


def test_gcm_frame_matches_the_construction_by_hand_both_ways():
    sa = SecurityAssociation(9, AES256_GCM, KEY)
    frame = TcFrame(scid=673, vcid=0, data=PACKET, bypass_flag=1)
    ours = apply_security(frame, sa, 77)
    assert ours == hand_built_gcm_frame(KEY, 9, 77, 673, 0, PACKET)
    assert PACKET not in ours  # encrypted
    assert process_security(ours, {9: sa}).frame.data == PACKET


def test_segment_header_profile_is_authenticated_too():
    profile = TcProfile(has_segment_header=True)
    sa = SecurityAssociation(3, HMAC_SHA256, KEY)
    secured = bytearray(apply_security(TcFrame(scid=5, vcid=1, data=PACKET, map_id=4), sa, 1, profile))
    assert process_security(bytes(secured), {3: sa}, profile).frame.map_id == 4
    secured[5] ^= 0x01  # MAP ID 4 -> 5: authenticated, so refused
    secured[-2:] = CRC16(bytes(secured[:-2])).to_bytes(2, "big")
    with pytest.raises(SecurityError) as err:
        process_security(bytes(secured), {3: sa}, profile)
    assert err.value.cause == FORGED


# --------------------------------------------------------------------------- rejections

@pytest.mark.parametrize("algorithm", [HMAC_SHA256, AES256_GCM], ids=lambda a: a.name)
def test_forged_unauthenticated_replayed_out_of_window(algorithm):
    sa = SecurityAssociation(1, algorithm, KEY)
    table = {1: sa}
    window = AntiReplayWindow(window=100)
    frame = TcFrame(scid=466, vcid=0, data=PACKET, bypass_flag=1)

    def cause(data: bytes) -> str:
        with pytest.raises(SecurityError) as err:
            process_security(data, table, replay=window)
        return err.value.cause

    good = apply_security(frame, sa, 5)
    assert process_security(good, table, replay=window).sequence_number == 5
    assert cause(good) == REPLAYED
    assert cause(apply_security(frame, sa, 4)) == REPLAYED
    assert cause(apply_security(frame, sa, 106)) == OUT_OF_WINDOW
    assert window.last == {1: 5}
    # forged: a frame built with another key, and a good frame with one data bit flipped (FECF redone)
    assert cause(apply_security(frame, SecurityAssociation(1, algorithm, os.urandom(32)), 6)) == FORGED
    flipped = bytearray(apply_security(frame, sa, 6))
    flipped[-20] ^= 0x10
    flipped[-2:] = CRC16(bytes(flipped[:-2])).to_bytes(2, "big")
    assert cause(bytes(flipped)) == FORGED
    assert window.last == {1: 5}  # a forged frame does not move the window
    # unauthenticated: a plain frame; a frame of an unknown SPI
    assert cause(frame.build()) == UNAUTHENTICATED
    assert cause(apply_security(frame, SecurityAssociation(2, algorithm, KEY), 6)) == UNAUTHENTICATED
    assert process_security(apply_security(frame, sa, 105), table, replay=window).sequence_number == 105


def test_sequence_number_and_size_limits_are_protocol_errors():
    sa = SecurityAssociation(1, HMAC_SHA256, KEY)
    frame = TcFrame(scid=1, vcid=0, data=PACKET)
    with pytest.raises(ProtocolError, match="sequence number"):
        apply_security(frame, sa, 1 << 32)
    with pytest.raises(ProtocolError, match="data octets"):
        apply_security(TcFrame(scid=1, vcid=0, data=bytes(1024 - 7 - 22 + 1)), sa, 1)
    assert len(apply_security(TcFrame(scid=1, vcid=0, data=bytes(1024 - 7 - 22)), sa, 1)) == 1024


# --------------------------------------------------------------------------- key files

def test_key_file_round_trip_and_the_key_is_never_shown():
    sas = [SecurityAssociation(1, HMAC_SHA256, KEY), SecurityAssociation(2, AES256_GCM, bytes(32))]
    parsed = parse_key_file(key_file_text("haiyang2d", sas), "k.toml")
    assert parsed.spacecraft == "haiyang2d"
    assert parsed.associations == {1: sas[0], 2: sas[1]}
    assert parsed.association(2).algorithm is AES256_GCM
    assert KEY.hex() not in repr(parsed)
    with pytest.raises(KeyError, match="sdls_spi"):
        parsed.association()
    with pytest.raises(KeyError, match="no SPI 3"):
        parsed.association(3)


@pytest.mark.parametrize("text,message", [
    ('spacecraft = "x"', "no \\[\\[sa\\]\\] table"),
    ('[[sa]]\nspi = 1\nalgorithm = "HMAC-SHA-256"\nkey = "00"', "no spacecraft"),
    ('spacecraft = "x"\n[[sa]]\nspi = 1\nalgorithm = "DES"\nkey = "00"', "sa\\[0\\].algorithm"),
    ('spacecraft = "x"\n[[sa]]\nspi = 0\nalgorithm = "HMAC-SHA-256"\nkey = "' + "ab" * 32 + '"', "reserved"),
    ('spacecraft = "x"\n[[sa]]\nspi = 1\nalgorithm = "HMAC-SHA-256"\nkey = "zz-secret"', "sa\\[0\\].key: not a hex"),
    ('spacecraft = "x"\n[[sa]]\nspi = 1\nalgorithm = "AES-256-GCM"\nkey = "abcd"', "32-octet key"),
    ("spacecraft = ", "not TOML"),
])
def test_bad_key_files_name_the_entry_but_not_the_key(text, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_key_file(text, "/etc/queqiao/x.toml")
    assert "/etc/queqiao/x.toml" in str(err.value)
    assert "zz-secret" not in str(err.value)
