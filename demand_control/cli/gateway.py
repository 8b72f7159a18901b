"""`demand-control gateway` runs the webhook gateway; `demand-control events send` posts signed sample events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

events_app = typer.Typer(no_args_is_help=True, help="Signed webhook events: send samples to the gateway.")

SAMPLES = Path(__file__).resolve().parents[1] / "gateway" / "samples"


def gateway(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    max_body_bytes: Annotated[int, typer.Option(envvar="DEMAND_CONTROL_GATEWAY_MAX_BODY_BYTES", min=1,
                                                help="Largest accepted body (413 above).")] = 256 * 1024,
    rate: Annotated[float, typer.Option(envvar="DEMAND_CONTROL_GATEWAY_RATE", min=0.001,
                                        help="Events per second per source, on average (429 above).")] = 2000.0,
    burst: Annotated[int, typer.Option(envvar="DEMAND_CONTROL_GATEWAY_BURST", min=1,
                                       help="Events a source may send at once before the rate applies.")] = 4000,
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn access log).")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[int, typer.Option(envvar="DEMAND_CONTROL_GATEWAY_WORKERS", min=1,
                                         help="uvicorn worker processes sharing the port. The rate limit is kept "
                                              "per worker: N workers admit up to N x --rate (and N x --burst) "
                                              "per source.")] = 1,
) -> None:
    """Serve the webhook gateway (POST /webhooks/{source}, GET /healthz) on uvicorn.

    Secrets per source come from DEMAND_CONTROL_WEBHOOK_SECRETS_<SOURCE> (space-separated whsec_ values; a
    source without secrets is unknown). The warehouse is the configured one, as for every other command.
    With --workers N, N processes accept on the same port, each with its own connection pool and its own
    per-source token bucket (so the rate limit applies per worker); every event still commits with its audit
    row before its 2xx, and redeliveries are deduplicated in the database, whichever worker receives them.
    """
    import os

    import uvicorn

    from demand_control.gateway import create_app
    from demand_control.gateway.app import _verifiers
    from demand_control.gateway.limits import BURST_ENV, MAX_BODY_ENV, RATE_ENV
    from demand_control.resources.warehouse import warehouse_from_env

    warehouse = warehouse_from_env()
    if workers == 1:
        app = create_app(warehouse, max_body_bytes=max_body_bytes, rate_per_second=rate, burst=burst)
        uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level)
        return
    # Workers are fresh processes that build the app from the environment (uvicorn needs an import string):
    # hand them the options there, and migrate once here so they do not race to. A bad secret fails here, once.
    warehouse.migrate()
    _verifiers(None)
    os.environ.update({MAX_BODY_ENV: str(max_body_bytes), RATE_ENV: repr(rate), BURST_ENV: str(burst)})
    uvicorn.run("demand_control.gateway.app:create_app_from_env", factory=True, workers=workers, host=host,
                port=port, access_log=access_log, log_level=log_level)


def _load_events(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    events = document if isinstance(document, list) else [document]
    if not all(isinstance(e, dict) for e in events):
        raise typer.BadParameter(f"{path} must hold one event object or a list of them")
    return events


@events_app.command("send")
def events_send(
    file: Annotated[Path, typer.Argument(help="JSON event or list of events; a 'webhook_id' key is used as the id "
                                              "(and not sent in the body). Samples: demand_control/gateway/samples/.",
                                         exists=True, dir_okay=False)],
    source: Annotated[str, typer.Option(help="Source name: posts to /webhooks/<source>.")],
    url: Annotated[str, typer.Option(help="Gateway base URL.")] = "http://127.0.0.1:8090",
    secret: Annotated[str | None, typer.Option(help="whsec_ secret (default: the first of the source's env secrets).")] = None,
) -> None:
    """Sign each event (Standard Webhooks, current time, fresh id unless the file names one) and post it."""
    import httpx

    from demand_control.gateway.signing import env_key, secrets_from_env, sign_headers

    secret = secret or next(iter(secrets_from_env(source)), None)
    if not secret:
        raise typer.BadParameter(f"no --secret given and {env_key(source)} is not set", param_hint="--secret")
    failed = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for event in _load_events(file):
            event = dict(event)
            webhook_id = event.pop("webhook_id", None)
            body = json.dumps(event, separators=(",", ":")).encode()
            headers = sign_headers(secret, body, webhook_id=webhook_id)
            response = client.post(f"/webhooks/{source}", content=body,
                                   headers={**headers, "content-type": "application/json"})
            failed += not response.is_success
            typer.echo(f"{headers['webhook-id']}  {event.get('type', '?'):<22} {response.status_code}  {response.text}")
    if failed:
        raise typer.Exit(code=1)
