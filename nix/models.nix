# The pinned public GGUF files (Hugging Face, exact revisions). Sizes are the files' byte counts;
# fetchurl checks the sha256.
{
  "qwen2.5-coder-7b-instruct" = {
    url = "https://huggingface.co/Qwen/Qwen2.5-Coder-7B-Instruct-GGUF/resolve/13fb94bfda8c8cf22497dc57b78f391a9acb426a/qwen2.5-coder-7b-instruct-q4_k_m.gguf";
    sha256 = "509287f78cb4d4cf6b3843734733b914b2c158e43e22a7f4bf5e963800894d3c";
    # 4683073536 bytes
    nCtx = 8192;
    threads = null;
    chatFormat = "auto";
  };
  "codellama-7b-instruct" = {
    url = "https://huggingface.co/TheBloke/CodeLlama-7B-Instruct-GGUF/resolve/2f064ee0c6ae3f025ec4e392c6ba5dd049c77969/codellama-7b-instruct.Q4_K_M.gguf";
    sha256 = "0701500c591c2c1b910516658e58044cdfa07b2e8b5a2e3b6808d983441daf1a";
    # 4081095360 bytes
    nCtx = 8192;
    threads = null;
    chatFormat = "llama-2";
  };
  # For a small VPS (2-4 GB RAM): route both families to it in the orchestrator.
  "qwen2.5-coder-1.5b-instruct" = {
    url = "https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/resolve/f86cb2c1fa58255f8052cc32aeede1b7482d4361/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
    sha256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046";
    # 1117320768 bytes
    nCtx = 8192;
    threads = null;
    chatFormat = "auto";
  };
}
