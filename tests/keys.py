"""Signing keys made in the test, and a JWKS endpoint on loopback that a test can steer."""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


@dataclass
class SigningKey:
    algorithm: str
    private_key: Any
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    publish_alg: bool = True

    @property
    def public_jwk(self) -> dict:
        public = self.private_key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        jwk["kid"] = self.kid
        if self.publish_alg:
            jwk["alg"] = self.algorithm
        return jwk

    def sign(self, claims: dict, **header: Any) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=self.algorithm, headers={"kid": self.kid, **header}
        )


def new_key(algorithm: str, *, publish_alg: bool = True) -> SigningKey:
    if algorithm == "EdDSA":
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        private_key = ec.generate_private_key(curve[algorithm])
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(algorithm, private_key, publish_alg=publish_alg)


def claims_for(issuer: str, user_id: str = "alice", **overrides: Any) -> dict:
    now = int(time.time())
    return {
        "sub": user_id,
        "iat": now,
        "exp": now + 900,
        "iss": issuer,
        "aud": issuer,
        "email": f"{user_id}@example.com",
        "name": user_id.title(),
        **overrides,
    }


class JwksEndpoint:
    """What the endpoint answers: the published keys, or a failure the test chose."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.keys: list[SigningKey] = []
        self.status = 200
        self.body: bytes | None = None  # when set, sent instead of the key set
        self.delay_seconds = 0.0
        self.hits = 0

    def publish(self, *keys: SigningKey) -> None:
        self.keys = list(keys)

    def document(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps({"keys": [key.public_jwk for key in self.keys]}).encode()


@contextmanager
def loopback_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port until the block ends; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def jwks_endpoint() -> Iterator[JwksEndpoint]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            endpoint.hits += 1
            if endpoint.delay_seconds:
                time.sleep(endpoint.delay_seconds)
            body = endpoint.document()
            self.send_response(endpoint.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_http_server(Handler) as base_url:
        endpoint = JwksEndpoint(base_url)
        yield endpoint
