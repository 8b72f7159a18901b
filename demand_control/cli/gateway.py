"""`demand-control gateway` runs the webhook gateway; `demand-control events send` posts signed sample events.

Every error either command can meet (a malformed events file, a gateway that is down or refuses the
signature, a secret or certificate that cannot be used) ends in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from demand_control.gateway.limits import (
    BURST_ENV,
    DEFAULT_BURST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_RATE_PER_SECOND,
    MAX_BODY_ENV,
    RATE_ENV,
)

events_app = typer.Typer(no_args_is_help=True, help="Signed webhook events: send samples to the gateway.")

SSL_CERTFILE_ENV = "DEMAND_CONTROL_GATEWAY_SSL_CERTFILE"
SSL_KEYFILE_ENV = "DEMAND_CONTROL_GATEWAY_SSL_KEYFILE"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def _check_tls_pair(certfile: Path | None, keyfile: Path | None) -> None:
    """Both or neither, and a pair that loads: a clear error here rather than a traceback from uvicorn."""
    import ssl

    if (certfile is None) != (keyfile is None):
        _fail(f"TLS needs both --ssl-certfile ({SSL_CERTFILE_ENV}) and --ssl-keyfile ({SSL_KEYFILE_ENV}), "
              f"got only {'--ssl-certfile' if keyfile is None else '--ssl-keyfile'}", code=2)
    if certfile is None or keyfile is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        _fail(f"cannot use the TLS certificate {certfile} with the key {keyfile}: {exc}", code=2)


def gateway(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    max_body_bytes: Annotated[int, typer.Option(envvar=MAX_BODY_ENV, min=1,
                                                help="Largest accepted body (413 above).")] = DEFAULT_MAX_BODY_BYTES,
    rate: Annotated[float, typer.Option(envvar=RATE_ENV, min=0.001, help="Events per second per source, on "
                                        "average (429 above).")] = DEFAULT_RATE_PER_SECOND,
    burst: Annotated[int, typer.Option(envvar=BURST_ENV, min=1, help="Events a source may send at once before "
                                       "the rate applies.")] = DEFAULT_BURST,
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn access log).")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[int, typer.Option(envvar="DEMAND_CONTROL_GATEWAY_WORKERS", min=1,
                                         help="uvicorn worker processes sharing the port. The rate limit is kept "
                                              "per worker: N workers admit up to N x --rate (and N x --burst) "
                                              "per source.")] = 1,
    ssl_certfile: Annotated[Path | None, typer.Option(envvar=SSL_CERTFILE_ENV, dir_okay=False, help="PEM "
                                                      "certificate (chain): serve HTTPS. Needs --ssl-keyfile.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(envvar=SSL_KEYFILE_ENV, dir_okay=False, help="PEM private "
                                                     "key of --ssl-certfile (unencrypted).")] = None,
) -> None:
    """Serve the webhook gateway (POST /webhooks/{source}, GET /healthz) on uvicorn.

    Secrets per source come from DEMAND_CONTROL_WEBHOOK_SECRETS_<SOURCE> (space-separated whsec_ values; a
    source without secrets is unknown). The warehouse is the configured one, as for every other command.
    With --workers N, N processes accept on the same port, each with its own connection pool and its own
    per-source token bucket (so the rate limit applies per worker); every event still commits with its audit
    row before its 2xx, and redeliveries are deduplicated in the database, whichever worker receives them.

    With --ssl-certfile and --ssl-keyfile (or DEMAND_CONTROL_GATEWAY_SSL_CERTFILE / _KEYFILE) it serves HTTPS
    itself; otherwise run it on loopback behind a TLS-terminating reverse proxy (see the README).
    """
    import os

    import uvicorn

    from demand_control.gateway import create_app
    from demand_control.gateway.app import _verifiers
    from demand_control.resources.warehouse import warehouse_from_env

    _check_tls_pair(ssl_certfile, ssl_keyfile)
    tls = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)} if ssl_certfile else {}
    warehouse = warehouse_from_env()
    if workers == 1:
        try:
            app = create_app(warehouse, max_body_bytes=max_body_bytes, rate_per_second=rate, burst=burst)
        except ValueError as exc:  # a secret that is not a whsec_ value: named by its variable, never shown
            _fail(str(exc), code=2)
        uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level, **tls)
        return
    # Workers are fresh processes that build the app from the environment (uvicorn needs an import string):
    # hand them the options there, and migrate once here so they do not race to. A bad secret fails here, once.
    warehouse.migrate()
    try:
        _verifiers(None)
    except ValueError as exc:
        _fail(str(exc), code=2)
    os.environ.update({MAX_BODY_ENV: str(max_body_bytes), RATE_ENV: repr(rate), BURST_ENV: str(burst)})
    uvicorn.run("demand_control.gateway.app:create_app_from_env", factory=True, workers=workers, host=host,
                port=port, access_log=access_log, log_level=log_level, **tls)


def _load_events(path: Path) -> list[dict[str, Any]]:
    """The events of the file; one clear error line (exit 1) when it is unreadable, not JSON or not events."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        _fail(f"{path} is not UTF-8 text, so it is not a JSON events file")
    except json.JSONDecodeError as exc:
        _fail(f"{path} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        _fail(f"{path} is nested too deeply to hold events")
    events = document if isinstance(document, list) else [document]
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            _fail(f"{path} must hold one event object or a list of them; item {index} is {type(event).__name__}")
        if "webhook_id" in event and not (isinstance(event["webhook_id"], str) and event["webhook_id"].strip()):
            _fail(f"{path}: item {index} has a webhook_id that is not a non-empty string: {event['webhook_id']!r}")
    return events


@events_app.command("send")
def events_send(
    file: Annotated[Path, typer.Argument(help="JSON event or list of events; a 'webhook_id' key is used as the id "
                                              "(and not sent in the body). Samples: demand_control/gateway/samples/.",
                                         exists=True, dir_okay=False)],
    source: Annotated[str, typer.Option(help="Source name: posts to /webhooks/<source>.")],
    url: Annotated[str, typer.Option(help="Gateway base URL.")] = "http://127.0.0.1:8090",
    secret: Annotated[str | None, typer.Option(help="whsec_ secret (default: the first of the source's env secrets).")] = None,
    cafile: Annotated[Path | None, typer.Option(dir_okay=False, help="PEM certificate(s) to trust for an https "
                                                "--url (e.g. the gateway's self-signed one); default: the system's.")] = None,
) -> None:
    """Sign each event (Standard Webhooks, current time, fresh id unless the file names one) and post it.

    Prints one line per event (id, type, status, answer); exits 1 when any event was not accepted. A gateway
    that cannot be reached, or that refuses the signature (401), stops the command with one line on stderr.
    """
    import httpx

    from demand_control.gateway.signing import SourceVerifier, env_key, secrets_from_env, sign_headers

    secret = secret or next(iter(secrets_from_env(source)), None)
    if not secret:
        _fail(f"no --secret given and {env_key(source)} is not set", code=2)
    try:
        SourceVerifier([secret])  # decodes it: a mistyped secret is named here, not in a traceback
    except Exception:  # noqa: BLE001 - any decoding error; the secret itself is never printed
        _fail("the secret is not a valid whsec_<base64> value", code=2)
    try:
        base = httpx.URL(url)
    except httpx.InvalidURL as exc:
        _fail(f"--url {url!r} is not a URL: {exc}", code=2)
    if base.scheme not in ("http", "https") or not base.host:
        _fail(f"--url must be an http:// or https:// URL with a host, got {url!r}", code=2)
    verify: Any = True
    if cafile is not None:
        import ssl

        try:
            verify = ssl.create_default_context(cafile=str(cafile))
        except (ssl.SSLError, OSError) as exc:
            _fail(f"cannot use --cafile {cafile}: {exc}", code=2)
    events = _load_events(file)
    failed = 0
    with httpx.Client(base_url=base, timeout=30, verify=verify) as client:
        for event in events:
            event = dict(event)
            webhook_id = event.pop("webhook_id", None)
            body = json.dumps(event, separators=(",", ":")).encode()
            headers = sign_headers(secret, body, webhook_id=webhook_id)
            try:
                response = client.post(f"/webhooks/{source}", content=body,
                                       headers={**headers, "content-type": "application/json"})
            except httpx.HTTPError as exc:
                _fail(f"cannot reach the gateway at {url}: {type(exc).__name__}: {exc or 'no answer'}")
            if response.status_code == 401:
                _fail(f"the gateway at {url} refused the signature of {source}: {_reason(response)} "
                      f"(is --secret, or {env_key(source)}, one of the gateway's secrets for {source}?)")
            failed += not response.is_success
            typer.echo(f"{headers['webhook-id']}  {event.get('type', '?'):<22} {response.status_code}  {response.text}")
    if failed:
        raise typer.Exit(code=1)


def _reason(response: Any) -> str:
    """The gateway's reason for a rejection, else the start of the body."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "reason" in answer:
        return f"{answer.get('error', response.status_code)}: {answer['reason']}"
    return f"HTTP {response.status_code} {response.text[:200]!r}"
