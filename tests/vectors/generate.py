#!/usr/bin/env python3
"""Computes the HMAC-SHA256 known-answer vectors in signing.json with Python's standard library only.

This is an independent implementation of the ACS request-signing scheme (HMAC-SHA256 over the method, the path
and query, and the date, host and content-hash headers, keyed with the base64-decoded access key), written from
the protocol description rather than from the crate, so the vectors do not echo the crate's own output.
Run: python3 tests/vectors/generate.py > tests/vectors/signing.json
"""
import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

OFFICIAL_KEY = "pw=="  # key of the official Python SDK tests (azure-communication-identity test_hmac.py)
OFFICIAL_DATE = "Wed, 13 Apr 2022 18:09:12 GMT"
OFFICIAL_HOST = "https://contoso.communicationservices.azure.com"
KEY = base64.b64encode(b"acs-recording fixed test key, not a secret").decode()
DATE = "Thu, 26 Nov 2026 05:46:36 GMT"
ENDPOINT = "https://contoso.communication.azure.com/"

# Published signatures for the official vectors; the script checks it reproduces them.
OFFICIAL = {
    "/": "88MDmJhUR3m5QhFxb8ztShsSwlGrg7g/6XPnWf7QEO4=",
    "/testPath": "RoCrHjw7fb9fpHSbqvRUY2xa8RBS0YvI1cxI1x8AS38=",
    "/testPath?testQuery=yes": "il99+rd6V5O136roX/zVePCNle78HmvC4B7tu9zRH3I=",
}


def authority(url):
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}[parts.scheme]
    host = parts.hostname
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def vector(name, key, endpoint, method, url, date, body="", legacy=False):
    parts = urlsplit(url)
    cross_host = authority(url) != authority(endpoint)
    path = parts.path or "/"
    # Cross-host (recording storage): the endpoint's authority and the path only, plus x-ms-host.
    path_and_query = path if cross_host or not parts.query else f"{path}?{parts.query}"
    host = authority(endpoint)
    content_hash = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    string_to_sign = f"{method.upper()}\n{path_and_query}\n{date};{host};{content_hash}"
    mac = hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256)
    signature = base64.b64encode(mac.digest()).decode()
    signed = "date;host;x-ms-content-sha256" if legacy else "x-ms-date;host;x-ms-content-sha256"
    out = {
        "name": name,
        "key": key,
        "endpoint": endpoint,
        "method": method,
        "url": url,
        "date": date,
        "body": body,
        "legacy_date_header": legacy,
        "expected": {
            "string_to_sign": string_to_sign,
            "content_hash": content_hash,
            "signature": signature,
            "authorization": f"HMAC-SHA256 SignedHeaders={signed}&Signature={signature}",
            "x_ms_host": host if cross_host else None,
        },
    }
    return out


def main():
    vectors = []
    for path, published in OFFICIAL.items():
        v = vector(f"official sdk {path}", OFFICIAL_KEY, OFFICIAL_HOST + "/", "GET", OFFICIAL_HOST + path, OFFICIAL_DATE)
        assert v["expected"]["signature"] == published, (path, v["expected"]["signature"])
        vectors.append(v)
    vectors += [
        vector("get with empty body", KEY, ENDPOINT, "GET", ENDPOINT + "recording/download/doc-1", DATE),
        vector(
            "get with a query",
            KEY,
            ENDPOINT,
            "GET",
            ENDPOINT + "recording/download/0-eus-d2-3cca2175/metadata?api-version=2021-04-15-preview1",
            DATE,
        ),
        vector(
            "post with a json body",
            KEY,
            ENDPOINT,
            "POST",
            ENDPOINT + "calling/recordings?api-version=2023-10-15",
            DATE,
            body='{"callLocator":{"serverCallId":"aHR0cHM6Ly9jb250b3Nv"},"recordingContentType":"audio"}',
        ),
        vector(
            "non-default port",
            KEY,
            "https://contoso.communication.azure.com:8443/",
            "GET",
            "https://contoso.communication.azure.com:8443/recording/download/doc-2?api-version=2021-04-15-preview1",
            DATE,
        ),
        vector(
            "cross-host storage location with x-ms-host",
            KEY,
            ENDPOINT,
            "GET",
            "https://eu2-prod.asm.skype.com/v1/objects/0-eus-d2-3cca2175/content/acsmetadata?sv=1&sig=abc",
            DATE,
        ),
        vector(
            "legacy date header",
            KEY,
            ENDPOINT,
            "GET",
            ENDPOINT + "recording/download/doc-1?api-version=2021-04-15-preview1",
            DATE,
            legacy=True,
        ),
    ]
    print(json.dumps(vectors, indent=2))


if __name__ == "__main__":
    main()
