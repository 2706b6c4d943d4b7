#!/usr/bin/env python3
"""Keeps the docs and the compose file true to shared/src/config/mod.rs.

shared/src/config/mod.rs's `//!` header is the one list of PULSE_* variables. This checks that
  - README.md's configuration table has exactly those rows, word for word;
  - every PULSE_* name in docker-compose.yml is one of them;
  - every PULSE_* name in README.md and docs/operations.md is one of them, or a variable of
    the scripts or the test kit (found by reading scripts/ and testkit/);
  - docker-compose.yml's services depend only on services that exist, and api, worker and
    scheduler have a /readyz healthcheck; the worker publishes no host port (so it scales).

    scripts/check-docs.py            check; exit 1 with one line per problem
    scripts/check-docs.py --table    print the README table from config.rs
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\|\s*`(PULSE_[A-Z0-9_]+)`\s*\|(.*)\|(.*)\|\s*$")
NAME = re.compile(r"\bPULSE_[A-Z0-9_]+\b")


def config_rows():
    rows = []
    for line in (ROOT / "shared/src/config/mod.rs").read_text().splitlines():
        if not line.startswith("//!"):
            if rows:
                break
            continue
        text = line[3:].strip()
        if ROW.match(text):
            rows.append(text)
    return rows


def row_key(row):
    match = ROW.match(row)
    return match.group(1), match.group(2).strip(), match.group(3).strip()


def table(rows):
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows])


def tool_variables():
    names = set()
    for folder in ("scripts", "testkit", ".ci", "bench"):
        base = ROOT / folder
        if not base.exists():
            continue
        for path in base.rglob("*"):
            if path.is_file() and path.suffix in {"", ".sh", ".rs", ".py", ".md"}:
                try:
                    names.update(NAME.findall(path.read_text(errors="replace")))
                except OSError:
                    pass
    return names


def main():
    rows = config_rows()
    if "--table" in sys.argv:
        print(table(rows))
        return 0
    problems = []
    config = {row_key(r)[0]: row_key(r) for r in rows}
    if not config:
        problems.append("shared/src/config/mod.rs: no variable table found in the //! header")

    readme = ROOT / "README.md"
    if readme.exists():
        text = readme.read_text()
        readme_rows = {}
        for line in text.splitlines():
            if ROW.match(line.strip()):
                key = row_key(line.strip())
                readme_rows[key[0]] = key
        for name, key in config.items():
            if name not in readme_rows:
                problems.append(f"README.md: configuration table lacks {name}")
            elif readme_rows[name] != key:
                problems.append(f"README.md: row of {name} differs from shared/src/config/mod.rs")
        for name in readme_rows.keys() - config.keys():
            problems.append(f"README.md: table row {name} is not in shared/src/config/mod.rs")

    known = set(config) | tool_variables()
    for doc in ("README.md", "docs/operations.md"):
        path = ROOT / doc
        if path.exists():
            for name in sorted(set(NAME.findall(path.read_text())) - known):
                problems.append(f"{doc}: {name} is neither in shared/src/config/mod.rs nor used by scripts/ or testkit/")

    compose = ROOT / "docker-compose.yml"
    if compose.exists():
        try:
            import yaml
        except ImportError:
            print("check-docs: PyYAML missing, docker-compose.yml not checked", file=sys.stderr)
            yaml = None
        if yaml is not None:
            spec = yaml.safe_load(compose.read_text())
            services = spec.get("services", {})
            for name, service in services.items():
                env = service.get("environment") or {}
                if isinstance(env, list):
                    env = dict(item.split("=", 1) for item in env)
                for var in env:
                    if var.startswith("PULSE_") and var not in config:
                        problems.append(f"docker-compose.yml: {name}: {var} is not in shared/src/config/mod.rs")
                for dep in service.get("depends_on") or {}:
                    if dep not in services:
                        problems.append(f"docker-compose.yml: {name} depends on unknown service {dep}")
            for name in ("api", "worker", "scheduler"):
                service = services.get(name)
                if service is None:
                    problems.append(f"docker-compose.yml: service {name} is missing")
                    continue
                test = " ".join(service.get("healthcheck", {}).get("test", []))
                if "/readyz" not in test:
                    problems.append(f"docker-compose.yml: {name} has no /readyz healthcheck")
            worker = services.get("worker", {})
            if worker.get("ports") or worker.get("container_name"):
                problems.append("docker-compose.yml: worker publishes ports or has a container_name; it cannot scale")

    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
