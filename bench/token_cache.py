"""Benchmark: what the verified-token cache saves on each request.

    uv run bench/token_cache.py [--rounds 9] [--calls 2000]

Times `TokenVerifier.verify`, the call the bearer middleware makes on every `/api/` request,
for one token asked again and again (one person's requests), with the cache (`JWT_CACHE_ENTRIES`
as configured by default) and without it (`JWT_CACHE_ENTRIES=0`), for both kinds of JWT:

- secret: HS256 with the shared secret, a token as `main.py token` signs it;
- keys: EdDSA with a published key (Better Auth's default), the key set served in-process;
- keys RS256: an RSA key, the slowest check Better Auth's key sets offer here.

Rounds alternate which side goes first; each round times `--calls` calls after a warm-up, and
the figure is the median of the rounds' microseconds per call. The ratio is uncached / cached.
No network, no database: it measures verification alone, on one core.
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from bench.support import settings_for_bench
from shared.config import Settings
from shared.tokens import TokenVerifier, create_token_verifier, mint_token

SECRET = "a-benchmark-secret-of-more-than-thirty-two-bytes"  # noqa: S105
FRONTEND = "http://frontend.invalid"


def _key_set(private_key, algorithm: str) -> httpx2.AsyncClient:
    public = private_key.public_key()
    to_jwk = OKPAlgorithm.to_jwk if algorithm == "EdDSA" else RSAAlgorithm.to_jwk
    jwk = {**to_jwk(public, as_dict=True), "kid": "bench", "alg": algorithm}
    document = {"keys": [jwk]}
    return httpx2.AsyncClient(
        transport=httpx2.MockTransport(lambda _request: httpx2.Response(200, json=document))
    )


def _published_key_token(private_key, algorithm: str) -> str:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "email": "alice@example.com",
        "name": "Alice",
        "iat": now,
        "exp": now + 3600,
        "iss": FRONTEND,
        "aud": FRONTEND,
    }
    return jwt.encode(claims, private_key, algorithm=algorithm, headers={"kid": "bench"})


async def _per_call_microseconds(verifier: TokenVerifier, token: str, calls: int) -> float:
    for _ in range(50):
        await verifier.verify(token)
    started = time.perf_counter()
    for _ in range(calls):
        await verifier.verify(token)
    return (time.perf_counter() - started) / calls * 1e6


async def _case(settings: Settings, client: httpx2.AsyncClient, token: str, args) -> dict:
    sides = {
        "cached": create_token_verifier(settings, client),
        "uncached": create_token_verifier(
            settings.model_copy(update={"jwt_cache_entries": 0}), client
        ),
    }
    if sides["cached"].verified_tokens is None or sides["uncached"].verified_tokens is not None:
        raise SystemExit("JWT_CACHE_ENTRIES did not turn the cache on and off")
    timings: dict[str, list[float]] = {name: [] for name in sides}
    for round_number in range(args.rounds):
        order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
        for name in order:
            timings[name].append(await _per_call_microseconds(sides[name], token, args.calls))
    return {name: statistics.median(values) for name, values in timings.items()}


async def _run(args) -> None:
    secret = settings_for_bench(better_auth_secret=SECRET)
    edkey = ed25519.Ed25519PrivateKey.generate()
    rsakey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        (
            "secret (HS256)",
            secret,
            httpx2.AsyncClient(),
            mint_token(secret, "alice", email="a@b.c"),
        ),
        (
            "keys (EdDSA)",
            settings_for_bench(better_auth_url=FRONTEND),
            _key_set(edkey, "EdDSA"),
            _published_key_token(edkey, "EdDSA"),
        ),
        (
            "keys (RS256)",
            settings_for_bench(better_auth_url=FRONTEND, jwks_algorithms=["RS256"]),
            _key_set(rsakey, "RS256"),
            _published_key_token(rsakey, "RS256"),
        ),
    ]
    print(f"medians of {args.rounds} rounds of {args.calls} calls, microseconds per verify()")
    print(f"{'token':<16} {'uncached':>10} {'cached':>10} {'ratio':>8}")
    for name, settings, client, token in cases:
        async with client:
            medians = await _case(settings, client, token, args)
        ratio = medians["uncached"] / medians["cached"]
        print(f"{name:<16} {medians['uncached']:>10.2f} {medians['cached']:>10.2f} {ratio:>7.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
