# services.cerebrum-backend: the llama.cpp inference backend, socket-activated, with its model
# manifest generated from `models` (each a fixed-output fetch of a pinned GGUF).
{ self }:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.cerebrum-backend;
  inherit (lib) mkEnableOption mkOption mkIf types;
  toml = pkgs.formats.toml { };
  pinned = import ../models.nix;

  modelType = types.submodule {
    options = {
      url = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Where the GGUF file is fetched from (a pinned revision, never a branch).";
      };
      sha256 = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "The file's sha256 (hex); the fetch is fixed-output.";
      };
      file = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = ''
          A GGUF already in the store (e.g. built by a derivation) instead of `url`/`sha256`.
        '';
      };
      nCtx = mkOption {
        type = types.ints.between 16 1048576;
        default = 8192;
        description = "Context size the model is loaded with (`n_ctx`).";
      };
      threads = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        description = "llama.cpp threads (`n_threads`); null means all cores.";
      };
      chatFormat = mkOption {
        type = types.enum [
          "auto"
          "chatml"
          "llama-2"
          "none"
        ];
        default = "auto";
        description = "Chat template: `auto` uses the GGUF's own.";
      };
      extraSettings = mkOption {
        type = toml.type;
        default = { };
        description = "More keys of this `[[models]]` entry (e.g. `n_batch`, `flash_attn`, `sampling`).";
      };
    };
  };

  fetchModel =
    name: m:
    if m.file != null then
      m.file
    else
      pkgs.fetchurl {
        inherit (m) url sha256;
        name = "${name}.gguf";
      };

  modelNames =
    let
      names = lib.attrNames cfg.models;
    in
    if cfg.defaultModel == null then names else [ cfg.defaultModel ] ++ lib.remove cfg.defaultModel names;

  manifest = map (
    name:
    let
      m = cfg.models.${name};
    in
    {
      inherit name;
      path = "${fetchModel name m}";
      n_ctx = m.nCtx;
      chat_format = m.chatFormat;
    }
    // lib.optionalAttrs (m.threads != null) { n_threads = m.threads; }
    // m.extraSettings
  ) modelNames;

  configFile = toml.generate "cerebrum-backend.toml" (
    lib.recursiveUpdate {
      host = cfg.listenAddress;
      inherit (cfg) port;
      idle_exit = cfg.idleExit;
      cache_dir = "/var/cache/cerebrum-backend/models";
      log_level = cfg.logLevel;
      models = manifest;
    } cfg.settings
  );

  socketService = import ./socket-service.nix lib;
in
{
  options.services.cerebrum-backend = {
    enable = mkEnableOption "the Cerebrum inference backend (llama.cpp, OpenAI-compatible)";

    package = mkOption {
      type = types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.backend;
      defaultText = lib.literalExpression "cerebrum.packages.\${system}.backend";
      description = "The Cerebrum build with llama-cpp-python (the `backend` package).";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = ''
        Address the socket unit listens on. Anything but loopback needs `apiKeyFile`
        (the backend refuses to serve a non-loopback address without keys).
      '';
    };

    port = mkOption {
      type = types.port;
      default = 9000;
      description = "TCP port of the socket unit.";
    };

    idleExit = mkOption {
      type = types.ints.unsigned;
      default = 900;
      description = ''
        `--idle-exit`: seconds without a request after which the backend exits cleanly,
        giving the model's RAM back; the socket starts it again on the next connection.
        0 keeps it running.
      '';
    };

    apiKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/cerebrum-api-keys";
      description = ''
        File with the accepted API keys, one per line. Passed with `LoadCredential`
        (never copied to the Nix store) and named by `CEREBRUM_BACKEND_API_KEYS_FILE`.
      '';
    };

    models = mkOption {
      type = types.attrsOf modelType;
      default = {
        inherit (pinned) "qwen2.5-coder-7b-instruct" "codellama-7b-instruct";
      };
      defaultText = lib.literalMD "the pinned Qwen2.5-Coder-7B and CodeLlama-7B Q4_K_M files (`nix/models.nix`)";
      description = ''
        The manifest: model name (what clients ask for) → a pinned GGUF fetched with
        `pkgs.fetchurl` (fixed-output) plus its load settings.
      '';
    };

    defaultModel = mkOption {
      type = types.nullOr types.str;
      default = "qwen2.5-coder-7b-instruct";
      description = "The model listed first, which answers requests that name none; null: by name.";
    };

    logLevel = mkOption {
      type = types.enum [
        "debug"
        "info"
        "warning"
        "error"
      ];
      default = "info";
      description = "Log level (JSON lines on the journal).";
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      example = {
        max_queue = 8;
        max_tokens_cap = 2048;
      };
      description = "Further top-level keys of the TOML config (docs/configuration.md, \"Backend configuration\"); they win.";
    };

    openTailnetFirewall = mkOption {
      type = types.bool;
      default = true;
      description = "Open `port` on `tailnetInterface` only (never on other interfaces).";
    };

    tailnetInterface = mkOption {
      type = types.str;
      default = config.services.tailscale.interfaceName;
      defaultText = lib.literalExpression "config.services.tailscale.interfaceName";
      description = "The tailnet's interface, the only one the port is opened on.";
    };

    memoryDenyWriteExecute = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Set `MemoryDenyWriteExecute`. Off by default: checked only on x86_64 (llama-cpp-python
        0.3.36 under `PR_SET_MDWE`, loading and generating with Q4_1 and Q4_K_M models, and in
        the VM test), not on aarch64 nor with every llama.cpp CPU kernel; a kernel that
        mapped executable pages would fail.
      '';
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalMD "generated from the options above";
      description = "The generated TOML config (read-only; for inspection).";
    };
  };

  config = mkIf cfg.enable (lib.mkMerge [
    (socketService {
      name = "cerebrum-backend";
      description = "Cerebrum inference backend";
      inherit cfg configFile;
      keysVariable = "CEREBRUM_BACKEND_API_KEYS_FILE";
      restartSec = 5;
      serviceConfig = {
        MemoryDenyWriteExecute = cfg.memoryDenyWriteExecute;
        # llama.cpp's thread pool may set thread priorities/affinity (@resources).
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        # Loading a 7B model takes a while on a small VPS.
        TimeoutStartSec = 300;
      };
    })
    {
      assertions =
        lib.mapAttrsToList (name: m: {
          assertion = (m.file != null) != (m.url != null && m.sha256 != null);
          message = "services.cerebrum-backend.models.${name}: set `file`, or both `url` and `sha256`.";
        }) cfg.models
        ++ [
          {
            assertion = cfg.models != { };
            message = "services.cerebrum-backend.models is empty.";
          }
          {
            assertion = cfg.defaultModel == null || cfg.models ? ${cfg.defaultModel};
            message = "services.cerebrum-backend.defaultModel is not one of models.";
          }
        ];
    }
  ]);
}
