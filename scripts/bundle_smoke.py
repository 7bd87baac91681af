"""Launches an unpacked MCP Bundle's server as a desktop client would: the
manifest's command, arguments and environment with ${__dirname}, ${HOME} and
the user_config fields filled in (directories as the user would pick them), and
asks it for tools/list over stdio. Exits non-zero unless tools come back."""

import json
import os
import subprocess
import sys
import tempfile


def main(bundle_dir: str) -> None:
    with open(os.path.join(bundle_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    work = tempfile.mkdtemp()
    # Two users: one picks two folders and a data directory; the other keeps
    # the default folder and leaves the optional data directory empty (the
    # server's default then, under a throwaway home).
    launch(manifest, bundle_dir, {
        "allowed_directories": [work, tempfile.gettempdir()],
        "data_directory": os.path.join(work, "data"),
    }, {})
    home = os.path.join(work, "home")
    os.makedirs(home)
    launch(manifest, bundle_dir, {
        "allowed_directories": [home],
        "data_directory": "",
    }, {"HOME": home, "XDG_DATA_HOME": os.path.join(home, ".local", "share")})
    default_store = os.path.join(home, ".local", "share", "dataframe-mcp")
    if not os.path.isdir(default_store):
        sys.exit(f"an empty data directory should mean the default store, {default_store}")


def launch(manifest: dict, bundle_dir: str, picked: dict, env_extra: dict) -> None:
    config = manifest["server"]["mcp_config"]

    def fill(text: str) -> list[str]:
        text = text.replace("${__dirname}", bundle_dir).replace("${HOME}", os.path.expanduser("~"))
        for key, value in picked.items():
            token = "${user_config.%s}" % key
            if text == token and isinstance(value, list):
                # A multiple-value field stands for one argument per value.
                return value
            text = text.replace(token, value if isinstance(value, str) else ",".join(value))
        return [text]

    command = fill(config["command"])[0]
    args = [a for arg in config.get("args", []) for a in fill(arg)]
    env = dict(os.environ)
    env.update(env_extra)
    env.update({k: fill(v)[0] for k, v in config.get("env", {}).items()})
    if not os.access(command, os.X_OK):
        sys.exit(f"{command} is not executable in the bundle")
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bundle-smoke", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    proc = subprocess.Popen([command, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    replies = []
    try:
        for message in messages:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            if "id" not in message:
                continue
            # Each request's answer before the next request.
            while True:
                line = proc.stdout.readline()
                if not line:
                    break
                reply = json.loads(line)
                if reply.get("id") == message["id"]:
                    replies.append(reply)
                    break
        proc.stdin.close()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    tools = next((r["result"]["tools"] for r in replies if r.get("id") == 2), None)
    if code != 0 or not tools:
        sys.exit(f"the bundled server did not list its tools, or did not exit cleanly "
                 f"(exit {code}):\n{proc.stderr.read()[-2000:]}")
    info = next(r["result"]["serverInfo"] for r in replies if r.get("id") == 1)
    print(f"{info['name']} {info['version']} listed {len(tools)} tools "
          f"(args: {' '.join(args)})")


if __name__ == "__main__":
    main(sys.argv[1])
