"""A private "internet" CA and a site certificate for the namespace and end-to-end tests (trustme)."""

from __future__ import annotations

from pathlib import Path

import trustme


def make_site_ca(directory: Path, names: list[str], addresses: list[str]) -> tuple[Path, Path, Path]:
    """Write ca.pem, site.pem and site-key.pem into ``directory``; return their paths."""
    ca = trustme.CA(organization_name="netmon test internet CA")
    site = ca.issue_cert(*names, *addresses)
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "site.pem", directory / "site-key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    site.cert_chain_pems[0].write_to_path(str(cert_path))
    site.private_key_pem.write_to_path(str(key_path))
    return ca_path, cert_path, key_path
