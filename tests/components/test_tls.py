"""The certificate the program makes (`tlsSelfSigned`): a real key pair and certificate for the stack's hosts,
made once and replaced only when the hosts or the lifetime change."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from components.tls import _CertificateProvider, self_signed_pem


def test_the_certificate_names_the_hosts_and_matches_its_key() -> None:
    cert_pem, key_pem = self_signed_pem(["dt.example.org", "apps.example.org"], days=30)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["dt.example.org", "apps.example.org"]
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_the_pair_is_replaced_only_when_hosts_or_lifetime_change() -> None:
    provider = _CertificateProvider()
    made = provider.create({"hosts": ["dt.example.org"], "days": 365})
    assert made.outs["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in made.outs["private_key"]
    olds = made.outs
    same = provider.diff(made.id, olds, {"hosts": ["dt.example.org"], "days": 365})
    assert same.changes is False and not same.replaces
    moved = provider.diff(made.id, olds, {"hosts": ["new.example.org"], "days": 365})
    assert moved.changes is True and moved.replaces == ["hosts"]
