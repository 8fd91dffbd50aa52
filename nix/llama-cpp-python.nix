# llama-cpp-python pinned to the version pyproject.toml's `backend` extra names (0.3.36).
# nixpkgs' own package lagged (0.3.6 when this was written) and lacks the vocab API
# (`llama_model_get_vocab`) vps_appliance/engine/chat.py calls. The PyPI sdist vendors
# llama.cpp, so one fixed-output fetch is the whole source; the hash is that of the sdist on
# PyPI.
{ python3Packages, fetchPypi }:

python3Packages.llama-cpp-python.overridePythonAttrs (old: rec {
  version = "0.3.36";
  src = fetchPypi {
    pname = "llama_cpp_python";
    inherit version;
    hash = "sha256-gy2waZAH8b6Vp+Qe8S6IkmsCuoNkYeNqNjctsnYMGi4=";
  };
  # nixpkgs' patch targets the 0.3.6 vendored llama.cpp.
  patches = [ ];
  # Its upstream tests download models.
  doCheck = false;
})
