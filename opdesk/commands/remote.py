"""``opdesk attach URL`` and ``opdesk web``: the console against a running (headless) desk.

The token comes from ``--token``, ``$OPDESK_TOKEN``, or — for a desk on this machine — the desk's own
``remote-tokens.json`` in its data directory. It is never put on a command line we spawn.
"""

from __future__ import annotations

import argparse
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attach", help="run the console against a running desk over WebSocket")
    p.add_argument("url", nargs="?", help="ws://HOST:PORT of the desk (default: the local desk's)")
    p.add_argument("--token", help="access token (default: $OPDESK_TOKEN, or the local desk's operator token)")
    p.add_argument("--viewer", action="store_true", help="with the local desk's tokens: attach read-only")
    p.add_argument("--cafile", help="CA certificate to trust for a wss:// desk with its own certificate")
    p.set_defaults(func=run_attach)

    w = sub.add_parser("web", help="serve the console in a browser, attached to the running desk")
    w.add_argument("url", nargs="?", help="ws://HOST:PORT of the desk (default: the local desk's)")
    w.add_argument("--token", help="token every browser session attaches with (default as for attach)")
    w.add_argument("--viewer", action="store_true", help="with the local desk's tokens: read-only sessions")
    w.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    w.add_argument("--port", type=int, help="port to serve on (default: remote.web_port from config)")
    w.set_defaults(func=run_web)


def resolve(args: argparse.Namespace) -> tuple[str, str]:
    """The desk URL and token to attach with; raises SystemExit with a clear message if unknown."""
    from engines.config import load_config
    from engines.remote.server import read_tokens_file

    url, token = args.url, args.token or os.environ.get("OPDESK_TOKEN")
    if url and token:
        return url, token
    config = load_config(getattr(args, "config", None))
    local = read_tokens_file(config.desk.path)
    if local is None:
        raise SystemExit(
            "opdesk: no desk URL/token given and no local desk found "
            f"(no {config.desk.path / 'remote-tokens.json'}); pass URL and --token or set $OPDESK_TOKEN"
        )
    role = "viewer" if args.viewer else "operator"
    if not token:
        token = next((t["token"] for t in local["tokens"] if t["role"] == role), None)
        if token is None:
            raise SystemExit(f"opdesk: the local desk has no generated {role} token; pass --token")
    return url or local["url"], token


def run_attach(args: argparse.Namespace) -> int:
    url, token = resolve(args)
    from console.main import run_remote_console
    from engines.config import load_config

    ssl_context = None
    if args.cafile:
        import ssl

        ssl_context = ssl.create_default_context(cafile=args.cafile)
    return run_remote_console(load_config(args.config), url, token, ssl_context=ssl_context)


def run_web(args: argparse.Namespace) -> int:
    from engines.config import load_config

    url, token = resolve(args)
    config = load_config(args.config)
    port = args.port if args.port is not None else config.remote.web_port
    from textual_serve.server import Server

    # Each browser tab runs its own `opdesk attach` process against the ONE running desk: engines are
    # never duplicated. The token travels in the environment, not on the command line.
    os.environ["OPDESK_TOKEN"] = token
    config_opt = f" --config {args.config}" if args.config else ""
    command = f"{sys.executable} -m opdesk{config_opt} attach {url}"
    print(f"opdesk web: serving the console on http://{args.host}:{port} (desk {url})", flush=True)
    Server(command, host=args.host, port=port, title="opdesk").serve()
    return 0
