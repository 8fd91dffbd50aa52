# Cerebrum as a Python application. `withBackend = false` (the CM4 orchestrator and the REPL)
# leaves llama-cpp-python out of the closure; `cerebrum-backend` then fails at import, which is
# why the backend module uses the `backend` variant.
{
  lib,
  python3Packages,
  llama-cpp-python ? null,
  withBackend ? false,
}:

assert withBackend -> llama-cpp-python != null;

python3Packages.buildPythonApplication {
  pname = if withBackend then "cerebrum-backend" else "cerebrum";
  version = "0.1.0";
  pyproject = true;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../pyproject.toml
      ../README.md
      ../docs
      ../LICENSE
      ../cerebrum
      ../vps_appliance
      ../pi_appliance
      ../repl
      ../tests
    ];
  };

  build-system = [ python3Packages.hatchling ];

  dependencies =
    with python3Packages;
    [
      aiohttp
      falcon
      uvicorn
      uvloop
      httptools
      structlog
      prometheus-client
      readchar
    ]
    ++ lib.optional withBackend llama-cpp-python;

  nativeCheckInputs = with python3Packages; [
    pytestCheckHook
    pytest-aiohttp
    pytest-asyncio
  ];

  # The tests that need no model, no llama.cpp and no network. tests/conftest.py imports the
  # backend engine (llama.cpp) for its fixtures, so it is skipped; these tests use none of them.
  enabledTestPaths = [
    "tests/cerebrum"
    "tests/pi_appliance/test_service_units.py"
    "tests/pi_appliance/test_pipeline_assemble.py"
    "tests/pi_appliance/test_pipeline_budget.py"
    "tests/pi_appliance/test_pipeline_chunk.py"
    "tests/pi_appliance/test_pipeline_corpus.py"
    "tests/pi_appliance/test_pipeline_dedup.py"
    "tests/pi_appliance/test_pipeline_extract.py"
    "tests/pi_appliance/test_pipeline_language.py"
    "tests/pi_appliance/test_pipeline_prepare.py"
    "tests/pi_appliance/test_pipeline_rank.py"
    "tests/pi_appliance/test_pipeline_segment.py"
    "tests/vps_appliance/test_protocol.py"
    "tests/vps_appliance/test_settings.py"
  ];
  pytestFlags = [
    "--noconftest"
    "-p"
    "no:cacheprovider"
  ];
  preCheck = ''
    export HOME=$TMPDIR XDG_CACHE_HOME=$TMPDIR/cache XDG_CONFIG_HOME=$TMPDIR/config
  '';

  pythonImportsCheck = [
    "cerebrum"
    "pi_appliance"
    "repl"
  ]
  ++ lib.optional withBackend "vps_appliance";

  meta = {
    description = "Self-hosted AI code assistant: llama.cpp backend, orchestrator and REPL";
    license = lib.licenses.mit;
    mainProgram = if withBackend then "cerebrum-backend" else "cerebrum";
    platforms = lib.platforms.linux;
  };
}
