"""Space Data Link Security (CCSDS 355.0-B-2) on TC transfer frames.

A secured TC frame (355.0-B-2 §4.1; its frame length field and FECF count the whole of it):

    primary header 5 | segment header 0/1 | security header | frame data field | security trailer | FECF 2

- Security header: SPI 16 bits | IV (SA-managed: 12 octets for AES-GCM, none for HMAC) | sequence
  number (SA-managed: 4 octets here) | pad length (SA-managed: 0 octets, neither algorithm pads).
- Security trailer: the MAC (SA-managed: 16 octets).

A security association (SA) gives the service, the algorithm and the key; the baseline
cryptographic profile (CCSDS 352.0-B, as 355.0-B-2 refers to it) supplies the two offered here:

- authentication, HMAC-SHA-256 (FIPS 198-1) truncated to its leftmost 128 bits (SP 800-107 §5.3.3;
  the baseline MAC length of 16 octets).  The MAC covers the primary header, the segment header,
  the security header and the frame data field, which travel in clear.  The authentication bit
  mask is all ones: no field of a TC frame changes between the two ends, so all are protected;
- authenticated encryption, AES-256-GCM (SP 800-38D) with a 96-bit IV and a 128-bit tag as the
  MAC: the headers (security header included) are the additional authenticated data, the frame
  data field is encrypted.  The IV is built deterministically (SP 800-38D §8.2.1): four zero octets
  and the sequence number in eight, so it never repeats while sequence numbers do not, which the
  sending end guarantees by persisting them.

Anti-replay (355.0-B-2 §4.2.4): the receiving end accepts a sequence number only when it is
greater than the last one accepted on that SA and at most ``window`` ahead of it; it moves only
after the MAC verified, so a forged frame cannot move it.

Everything here is pure: keys come in as bytes, files are the callers' business
(:func:`parse_key_file` reads the text of one).
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

import construct as cs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols.ccsds.tcframe import (
    TC_MAX_FRAME_LENGTH,
    TcFrame,
    TcProfile,
    build_tc_frame,
    parse_tc_frame,
    tc_frame_headers,
)
from protocols.ccsds.tmframe import FECF_LENGTH
from protocols.errors import ProtocolError, build_with, parse_with

#: SPI values 0 and 0xFFFF are reserved (355.0-B-2 §4.1.1.2).
SPI_RANGE = range(1, 0xFFFF)
SEQUENCE_NUMBER_LENGTH = 4
MAC_LENGTH = 16
#: Default anti-replay window: how far ahead of the last accepted sequence number a frame may be.
DEFAULT_WINDOW = 1 << 16
DEFAULT_PROFILE = TcProfile()

#: Why a frame was refused, as counted and reported on board.
UNAUTHENTICATED = "unauthenticated"  # no security header of a known SA (a plain frame, an unknown SPI)
FORGED = "forged"                    # the MAC does not verify
REPLAYED = "replayed"                # authentic, but its sequence number is not beyond the last accepted
OUT_OF_WINDOW = "out_of_window"      # authentic, but too far ahead of the last accepted
REASONS = (UNAUTHENTICATED, FORGED, REPLAYED, OUT_OF_WINDOW)


@dataclass(frozen=True, slots=True)
class Algorithm:
    name: str
    encrypts: bool
    key_length: int
    iv_length: int
    mac_length: int = MAC_LENGTH


HMAC_SHA256 = Algorithm("HMAC-SHA-256", encrypts=False, key_length=32, iv_length=0)
AES256_GCM = Algorithm("AES-256-GCM", encrypts=True, key_length=32, iv_length=12)
ALGORITHMS = {a.name: a for a in (HMAC_SHA256, AES256_GCM)}


class SecurityError(ProtocolError):
    """A TC frame refused by security processing; ``cause`` is one of :data:`REASONS`."""

    def __init__(self, cause: str, message: str, *, spi: int | None = None, sequence_number: int | None = None,
                 field: str = "") -> None:
        super().__init__("SDLS TC frame", message, field=field)
        self.cause = cause
        self.spi = spi
        self.sequence_number = sequence_number


@dataclass(frozen=True)
class SecurityAssociation:
    """One SA: SPI, algorithm and key (the key never appears in repr or logs)."""

    spi: int
    algorithm: Algorithm
    key: bytes = field(repr=False)
    sequence_number_length: int = SEQUENCE_NUMBER_LENGTH

    def __post_init__(self) -> None:
        if self.spi not in SPI_RANGE:
            raise ValueError(f"SPI {self.spi}: must be 1..65534 (0 and 65535 are reserved)")
        if len(self.key) != self.algorithm.key_length:
            raise ValueError(f"SPI {self.spi}: {self.algorithm.name} takes a {self.algorithm.key_length}-octet key, "
                             f"not {len(self.key)} octets")

    @property
    def header(self) -> cs.Struct:
        return security_header_struct(self)

    @property
    def trailer(self) -> cs.Struct:
        return security_trailer_struct(self)

    @property
    def header_length(self) -> int:
        return 2 + self.algorithm.iv_length + self.sequence_number_length

    @property
    def overhead(self) -> int:
        """Octets the security header and trailer add to a frame."""
        return self.header_length + self.algorithm.mac_length

    @property
    def max_sequence_number(self) -> int:
        return (1 << (8 * self.sequence_number_length)) - 1

    def iv(self, sequence_number: int) -> bytes:
        n = self.algorithm.iv_length
        return sequence_number.to_bytes(8, "big").rjust(n, b"\0") if n else b""

    def mac(self, authenticated: bytes) -> bytes:
        return hmac_sha256_mac(self.key, authenticated, self.algorithm.mac_length)


def hmac_sha256_mac(key: bytes, message: bytes, length: int = MAC_LENGTH) -> bytes:
    """HMAC-SHA-256 of ``message``, truncated to its leftmost ``length`` octets."""
    return hmac.new(key, message, hashlib.sha256).digest()[:length]


def security_header_struct(sa: SecurityAssociation) -> cs.Struct:
    """The security header of ``sa``'s frames."""
    return cs.Struct(
        "spi" / cs.Int16ub,
        "iv" / cs.Bytes(sa.algorithm.iv_length),
        "sequence_number" / cs.BytesInteger(sa.sequence_number_length),
    )


def security_trailer_struct(sa: SecurityAssociation) -> cs.Struct:
    return cs.Struct("mac" / cs.Bytes(sa.algorithm.mac_length))


def apply_security(frame: TcFrame, sa: SecurityAssociation, sequence_number: int,
                   profile: TcProfile = DEFAULT_PROFILE) -> bytes:
    """The secured TC frame (FECF included) carrying ``frame.data`` under ``sa`` with ``sequence_number``."""
    if not 0 <= sequence_number <= sa.max_sequence_number:
        raise ProtocolError("SDLS TC frame", f"sequence number {sequence_number} does not fit "
                            f"{sa.sequence_number_length} octets (a new SA is due)", field="security.sequence_number")
    total = profile.overhead + sa.overhead + len(frame.data)
    if total > TC_MAX_FRAME_LENGTH or not frame.data:
        raise ProtocolError("SDLS TC frame", f"{len(frame.data)} data octets: 1.."
                            f"{TC_MAX_FRAME_LENGTH - profile.overhead - sa.overhead} with SPI {sa.spi}", field="data")
    headers = tc_frame_headers(frame, total, profile)
    iv = sa.iv(sequence_number)
    security = build_with("SDLS security header", sa.header,
                          {"spi": sa.spi, "iv": iv, "sequence_number": sequence_number})
    if sa.algorithm.encrypts:
        sealed = AESGCM(sa.key).encrypt(iv, bytes(frame.data), headers + security)
        body, mac = sealed[:-sa.algorithm.mac_length], sealed[-sa.algorithm.mac_length:]
    else:
        body = bytes(frame.data)
        mac = sa.mac(headers + security + body)
    trailer = build_with("SDLS security trailer", sa.trailer, {"mac": mac})
    return build_tc_frame(dataclasses.replace(frame, data=security + body + trailer), profile)


@dataclass(frozen=True, slots=True)
class VerifiedFrame:
    """A frame that passed security processing: ``frame.data`` is the plain frame data field."""

    frame: TcFrame
    spi: int
    sequence_number: int


class AntiReplayWindow:
    """The last accepted sequence number per SPI and the window ahead of it (receiving end)."""

    def __init__(self, window: int = DEFAULT_WINDOW, last: Mapping[int, int] | None = None) -> None:
        if window < 1:
            raise ValueError(f"anti-replay window must be >= 1, not {window}")
        self.window = window
        self.last: dict[int, int] = dict(last or {})

    def check(self, spi: int, sequence_number: int) -> str | None:
        """None when ``sequence_number`` may be accepted, else :data:`REPLAYED` or :data:`OUT_OF_WINDOW`."""
        last = self.last.get(spi, 0)
        if sequence_number <= last:
            return REPLAYED
        if sequence_number - last > self.window:
            return OUT_OF_WINDOW
        return None

    def accept(self, spi: int, sequence_number: int) -> None:
        self.last[spi] = sequence_number


def process_security(data: bytes, associations: Mapping[int, SecurityAssociation],
                     profile: TcProfile = DEFAULT_PROFILE, replay: AntiReplayWindow | None = None) -> VerifiedFrame:
    """Verify (and decrypt) one secured TC frame; raises :class:`SecurityError` naming the cause.

    The FECF is not checked here (the receiver does that first, as a channel error is no attack).
    With ``replay``, the sequence number is checked after the MAC and, when accepted, recorded.
    """
    frame = parse_tc_frame(data, profile)
    body = frame.data
    if len(body) < 2:
        raise SecurityError(UNAUTHENTICATED, f"{len(body)} data octets hold no security header", field="security.spi")
    spi = int.from_bytes(body[:2], "big")
    sa = associations.get(spi)
    if sa is None:
        raise SecurityError(UNAUTHENTICATED, f"SPI {spi} is no security association of this spacecraft "
                            f"(known: {sorted(associations)})", spi=spi, field="security.spi")
    if len(body) <= sa.overhead:
        raise SecurityError(UNAUTHENTICATED, f"{len(body)} data octets: too short for SPI {spi}'s security header "
                            f"and trailer ({sa.overhead} octets) and any data", spi=spi, field="data")
    header = parse_with("SDLS security header", sa.header, body)
    sn = header.sequence_number
    mac_length = sa.algorithm.mac_length
    headers = bytes(data[:profile.overhead - (FECF_LENGTH if profile.has_fecf else 0)])
    security = body[:sa.header_length]
    protected, mac = body[sa.header_length:-mac_length], body[-mac_length:]
    if sa.algorithm.encrypts:
        try:
            plain = AESGCM(sa.key).decrypt(header.iv, protected + mac, headers + security)
        except InvalidTag:
            raise SecurityError(FORGED, f"SPI {spi} sequence number {sn}: GCM tag does not verify", spi=spi,
                                sequence_number=sn, field="trailer.mac") from None
    else:
        if not hmac.compare_digest(sa.mac(headers + security + protected), mac):
            raise SecurityError(FORGED, f"SPI {spi} sequence number {sn}: MAC does not verify", spi=spi,
                                sequence_number=sn, field="trailer.mac")
        plain = protected
    if replay is not None:
        verdict = replay.check(spi, sn)
        if verdict is not None:
            last = replay.last.get(spi, 0)
            raise SecurityError(verdict, f"SPI {spi} sequence number {sn}, last accepted {last}, window "
                                f"{replay.window}", spi=spi, sequence_number=sn, field="security.sequence_number")
        replay.accept(spi, sn)
    return VerifiedFrame(dataclasses.replace(frame, data=plain), spi, sn)


# ---------------------------------------------------------------------------- key files

KEY_FILE_HELP = ("a TOML file: spacecraft = \"NAME\" and one [[sa]] table per security association with "
                 "spi (1..65534), algorithm (\"HMAC-SHA-256\" or \"AES-256-GCM\") and key (64 hex digits)")


@dataclass(frozen=True)
class KeyFile:
    """The security associations of one spacecraft, as a key file holds them."""

    spacecraft: str
    associations: Mapping[int, SecurityAssociation]

    def association(self, spi: int | None = None) -> SecurityAssociation:
        """The SA with ``spi``; without one, the only SA of the file."""
        if spi is None:
            if len(self.associations) != 1:
                raise KeyError(f"the key file holds SPIs {sorted(self.associations)}: say which one (sdls_spi)")
            return next(iter(self.associations.values()))
        try:
            return self.associations[spi]
        except KeyError:
            raise KeyError(f"the key file holds no SPI {spi} (it holds {sorted(self.associations)})") from None


def parse_key_file(text: str, source: str = "<key file>") -> KeyFile:
    """Parse a key file's text; ValueError naming ``source`` and the entry (never the key) on bad input."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not TOML ({exc}); expected {KEY_FILE_HELP}") from None
    spacecraft = doc.get("spacecraft")
    tables = doc.get("sa")
    if not isinstance(spacecraft, str) or not spacecraft:
        raise ValueError(f"{source}: no spacecraft = \"NAME\"; expected {KEY_FILE_HELP}")
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"{source}: no [[sa]] table; expected {KEY_FILE_HELP}")
    unknown = sorted(set(doc) - {"spacecraft", "sa"})
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; expected {KEY_FILE_HELP}")
    associations: dict[int, SecurityAssociation] = {}
    for i, t in enumerate(tables):
        where = f"{source}: sa[{i}]"
        if not isinstance(t, dict) or set(t) != {"spi", "algorithm", "key"}:
            raise ValueError(f"{where}: needs exactly spi, algorithm and key")
        spi, name, key_hex = t["spi"], t["algorithm"], t["key"]
        if not isinstance(spi, int) or isinstance(spi, bool):
            raise ValueError(f"{where}.spi: an integer 1..65534")
        if name not in ALGORITHMS:
            raise ValueError(f"{where}.algorithm: {name!r} is not one of {', '.join(ALGORITHMS)}")
        try:
            key = bytes.fromhex(key_hex) if isinstance(key_hex, str) else None
        except ValueError:
            key = None
        if key is None:
            raise ValueError(f"{where}.key: not a hex string")  # the value is not repeated: it is secret
        if spi in associations:
            raise ValueError(f"{where}.spi: SPI {spi} is defined twice")
        try:
            associations[spi] = SecurityAssociation(spi, ALGORITHMS[name], key)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return KeyFile(spacecraft, associations)


def key_file_text(spacecraft: str, associations: list[SecurityAssociation]) -> str:
    """A key file holding ``associations`` (what :func:`parse_key_file` reads)."""
    lines = [f"# CCSDS 355.0-B-2 security associations of {spacecraft}. Secret: keep it mode 0600 or 0640.",
             f'spacecraft = "{spacecraft}"']
    for sa in associations:
        lines += ["", "[[sa]]", f"spi = {sa.spi}", f'algorithm = "{sa.algorithm.name}"', f'key = "{sa.key.hex()}"']
    return "\n".join(lines) + "\n"
