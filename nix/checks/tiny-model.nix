# A random-weight 2-layer llama GGUF (~0.5 MB) written by tests/tiny_gguf.py with the `gguf`
# package, inside the build: a VM test cannot download a model.
{ runCommand, python3 }:

runCommand "tiny-llama.gguf"
  {
    nativeBuildInputs = [
      (python3.withPackages (ps: [
        ps.gguf
        ps.numpy
      ]))
    ];
  }
  ''
    cp ${../../tests/tiny_gguf.py} tiny_gguf.py
    python3 -c 'import sys, pathlib, tiny_gguf; tiny_gguf.write_tiny_llama(pathlib.Path(sys.argv[1]))' "$out"
  ''
