"""The school's CA certificate (mitmproxy's) in the forms each OS installs, including an iOS profile."""

from __future__ import annotations

import base64
import plistlib
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

DEFAULT_CA_CERT = Path("~/.mitmproxy/mitmproxy-ca-cert.pem").expanduser()
_NAMESPACE = uuid.UUID("6d1f2b9e-8a51-4b0c-9a43-2c6f0e7f4a10")


@dataclass(frozen=True, slots=True)
class CaCertificate:
    pem: bytes
    der: bytes
    subject: str
    sha256: str  # colon-separated upper-case hex, as the OS settings screens show it
    not_after: str

    @classmethod
    def load(cls, path: Path) -> CaCertificate | None:
        """The certificate at ``path`` (PEM; a combined key+cert file is fine), or None when absent."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        start = data.find(b"-----BEGIN CERTIFICATE-----")
        if start < 0:
            return None
        end = data.find(b"-----END CERTIFICATE-----", start)
        pem = data[start : end + len(b"-----END CERTIFICATE-----")] + b"\n"
        cert = x509.load_pem_x509_certificate(pem)
        fingerprint = cert.fingerprint(hashes.SHA256()).hex().upper()
        return cls(
            pem=pem,
            der=cert.public_bytes(Encoding.DER),
            subject=cert.subject.rfc4514_string(),
            sha256=":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)),
            not_after=cert.not_valid_after_utc.date().isoformat(),
        )

    def mobileconfig(self, organisation: str) -> bytes:
        """An (unsigned) iOS/iPadOS/macOS configuration profile that installs the certificate."""
        payload_uuid = str(uuid.uuid5(_NAMESPACE, "cert:" + self.sha256))
        profile_uuid = str(uuid.uuid5(_NAMESPACE, "profile:" + self.sha256))
        profile = {
            "PayloadType": "Configuration",
            "PayloadVersion": 1,
            "PayloadIdentifier": f"uk.netmon.ca.{profile_uuid}",
            "PayloadUUID": profile_uuid,
            "PayloadDisplayName": f"{organisation} Wi-Fi certificate",
            "PayloadDescription": "Lets the school's safeguarding monitor check secure (https) pages.",
            "PayloadOrganization": organisation,
            "PayloadRemovalDisallowed": False,
            "PayloadContent": [
                {
                    "PayloadType": "com.apple.security.root",
                    "PayloadVersion": 1,
                    "PayloadIdentifier": f"uk.netmon.ca.cert.{payload_uuid}",
                    "PayloadUUID": payload_uuid,
                    "PayloadDisplayName": f"{organisation} Wi-Fi CA",
                    "PayloadCertificateFileName": "netmon-ca.cer",
                    "PayloadContent": self.der,
                }
            ],
        }
        return plistlib.dumps(profile, fmt=plistlib.FMT_XML)

    def der_base64(self) -> str:
        return base64.b64encode(self.der).decode()
