"""``python -m billing.stripe_emulator --host 127.0.0.1 --port 12111 --state-dir DIR``"""

from __future__ import annotations

import argparse
import signal
import sys

from billing.stripe_emulator.server import EmulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m billing.stripe_emulator",
        description="Local Stripe emulator (customers, invoices, invoice items) for Meterline.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=12111, help="TCP port (default 12111, 0 = any)")
    parser.add_argument(
        "--state-dir", default=None, help="directory for state.json (default: in memory)"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    try:
        server = EmulatorServer(args.host, args.port, args.state_dir, verbose=args.verbose)
    except OSError as exc:
        print(
            f"stripe emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(
        f"Stripe emulator listening on {server.url} (state: {args.state_dir or 'memory'})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
