"""JupyterHub pre-spawn hook: register the user with swarmkeeper, then wait for their home folder.

Before a notebook service starts, its NFS volume must point at a folder that exists, with the
user's quota on it. swarmkeeper makes the folder once it knows the User, so the hook

1. PUTs /api/v1/users/{name} (the e-mail when the username is one; nothing else, so a quota an
   administrator set with `swarmkeeper apply` stays), then
2. polls GET /api/v1/users/{name} until `folder.ready` is true, or raises when `timeout` passes so
   the spawn fails with a message the user and the hub log can act on.

Standard library only, so it drops into any hub image. HTTP calls run in a worker thread, so the
hub's event loop keeps serving other users meanwhile.

In jupyterhub_config.py:

    from swarmkeeper_hook import make_pre_spawn_hook
    c.Spawner.pre_spawn_hook = make_pre_spawn_hook(
        'http://swarmkeeper:9464', '/run/secrets/swarmkeeper_api_token')

As a command (for tests and by hand); exit 0 ready, 1 timed out, 2 refused or misconfigured:

    python3 swarmkeeper_hook.py --api URL --token-file F --user NAME [--email E] [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Coroutine, Optional
from urllib.parse import quote

__all__ = [
    'FolderNotReadyError',
    'SwarmkeeperApiError',
    'SwarmkeeperHookError',
    'make_pre_spawn_hook',
    'register_and_wait',
]

# Answers that mean "not now": swarmkeeper restarting, Redis briefly away, the rate limit.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
# One slow request must not eat the whole spawn timeout.
REQUEST_TIMEOUT_SECONDS = 10.0


class SwarmkeeperHookError(Exception):
    """The hook could not get the user's home folder ready."""


class SwarmkeeperApiError(SwarmkeeperHookError):
    """swarmkeeper refused the request (bad token, bad name, invalid e-mail): retrying will not help."""

    def __init__(self, status: int, code: Optional[str], message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(f'swarmkeeper answered {status}{f" {code}" if code else ""}: {message}')


class FolderNotReadyError(SwarmkeeperHookError):
    """The home folder was not reported ready in time."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would resend the Authorization header to wherever a redirect points.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


# No proxies: the token goes straight to swarmkeeper on the overlay network, whatever
# HTTP_PROXY the hub container has for reaching the internet.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _read_token(token_file: str) -> str:
    with open(token_file, encoding='utf-8') as f:
        token = f.read().strip()
    if not token:
        raise SwarmkeeperHookError(f'the token file {token_file} is empty')
    return token


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _request(
    method: str, url: str, token: str, body: Optional[dict[str, Any]], timeout: float
) -> tuple[int, dict[str, Any], Any]:
    """One blocking HTTP call: (status, JSON body or {}, headers). Network failures raise OSError."""
    data = None if body is None else json.dumps(body).encode('utf-8')
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header('Authorization', f'Bearer {token}')
    req.add_header('Accept', 'application/json')
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, _parse_json(resp.read()), resp.headers
    except urllib.error.HTTPError as err:
        with err:
            return err.code, _parse_json(err.read()), err.headers


def _error_of(payload: dict[str, Any]) -> tuple[Optional[str], str]:
    error = payload.get('error')
    if not isinstance(error, dict):
        return None, 'no error details'
    code = error.get('code') if isinstance(error.get('code'), str) else None
    message = str(error.get('message', 'no error details'))
    fields = error.get('fields')
    if isinstance(fields, list) and fields:
        named = '; '.join(f"{f.get('path')}: {f.get('message')}" for f in fields if isinstance(f, dict))
        message = f'{message} ({named})' if named and named not in message else message
    return code, message


def _retry_after(headers: Any, default: float) -> float:
    try:
        return max(default, float(headers.get('Retry-After', default)))
    except (TypeError, ValueError):
        return default


async def register_and_wait(
    api_url: str,
    token: str,
    username: str,
    email: Optional[str] = None,
    timeout: float = 60,
    interval: float = 0.5,
) -> dict[str, Any]:
    """Registers `username` and waits until swarmkeeper reports the home folder ready.

    Returns the final GET answer. Raises SwarmkeeperApiError when swarmkeeper refuses the request
    and FolderNotReadyError when `timeout` seconds pass first (including while it is unreachable).
    """
    url = f"{api_url.rstrip('/')}/api/v1/users/{quote(username, safe='')}"
    body: dict[str, Any] = {} if email is None else {'email': email}
    deadline = time.monotonic() + timeout
    registered = False
    last = 'no answer from swarmkeeper yet'
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FolderNotReadyError(
                f'the home folder of {username!r} was not ready after {timeout:g} s: {last}'
            )
        pause = interval
        method = 'GET' if registered else 'PUT'
        try:
            status, payload, headers = await asyncio.to_thread(
                _request,
                method,
                url,
                token,
                None if registered else body,
                min(REQUEST_TIMEOUT_SECONDS, remaining),
            )
        except OSError as err:
            last = f'cannot reach swarmkeeper at {api_url}: {getattr(err, "reason", err)}'
        else:
            if method == 'PUT' and status in (200, 201):
                registered = True
                last = 'registered; waiting for the controller to make the folder'
                continue
            if method == 'GET' and status == 200:
                folder = payload.get('folder') if isinstance(payload.get('folder'), dict) else {}
                if folder.get('ready') is True:
                    return payload
                last = f"folder not ready (sync={folder.get('sync')}, health={folder.get('health')})"
                if folder.get('message'):
                    last += f": {folder.get('message')}"
            elif method == 'GET' and status == 404:
                # Deleted between our PUT and this GET: register again after the pause.
                registered = False
                last = 'the User disappeared; registering again'
            elif status in TRANSIENT_STATUSES:
                _, message = _error_of(payload)
                last = f'swarmkeeper answered {status}: {message}'
                pause = _retry_after(headers, interval)
            else:
                code, message = _error_of(payload)
                raise SwarmkeeperApiError(status, code, message)
        await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))


def make_pre_spawn_hook(
    api_url: str, token_file: str, timeout: float = 60, interval: float = 0.5
) -> Callable[[Any], Coroutine[Any, Any, None]]:
    """A `c.Spawner.pre_spawn_hook` that registers the spawning user and waits for their folder.

    The token file is read on every spawn, so a rotated Docker secret needs no hub restart.
    """

    async def pre_spawn_hook(spawner: Any) -> None:
        username = spawner.user.name
        email = username if '@' in username else None
        log = getattr(spawner, 'log', None)
        try:
            token = await asyncio.to_thread(_read_token, token_file)
        except OSError as err:
            raise SwarmkeeperHookError(
                f'cannot read the swarmkeeper token file {token_file}: {err.strerror}'
            ) from None
        if log is not None:
            log.info('swarmkeeper: waiting for the home folder of %s', username)
        await register_and_wait(api_url, token, username, email, timeout, interval)
        if log is not None:
            log.info('swarmkeeper: the home folder of %s is ready', username)

    return pre_spawn_hook


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Register a JupyterHub user with swarmkeeper and wait for the home folder.'
    )
    parser.add_argument('--api', required=True, help='swarmkeeper URL, e.g. http://swarmkeeper:9464')
    parser.add_argument('--token-file', required=True, help='file holding the API bearer token')
    parser.add_argument('--user', required=True, help='the JupyterHub username')
    parser.add_argument('--email', help='the e-mail to record (default: none sent)')
    parser.add_argument('--timeout', type=float, default=60, help='seconds to wait (default 60)')
    parser.add_argument('--interval', type=float, default=0.5, help='seconds between polls')
    args = parser.parse_args(argv)

    try:
        token = _read_token(args.token_file)
        asyncio.run(
            register_and_wait(args.api, token, args.user, args.email, args.timeout, args.interval)
        )
    except FolderNotReadyError as err:
        print(f'swarmkeeper_hook: {err}', file=sys.stderr)
        return 1
    except SwarmkeeperHookError as err:
        print(f'swarmkeeper_hook: {err}', file=sys.stderr)
        return 2
    except OSError as err:
        print(
            f'swarmkeeper_hook: cannot read the token file {args.token_file}: {err.strerror}',
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    print(f'the home folder of {args.user} is ready')
    return 0


if __name__ == '__main__':
    sys.exit(main())
