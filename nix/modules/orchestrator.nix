# services.cerebrum-orchestrator: the context pipeline, routing and failover in front of one or
# more backends (on the uConsole, the VPS's backend over the tailnet). Socket-activated.
{ self }:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.cerebrum-orchestrator;
  inherit (lib) mkEnableOption mkOption mkIf types;
  toml = pkgs.formats.toml { };
  credentials = "/run/credentials/cerebrum-orchestrator.service";

  configFile = toml.generate "cerebrum-orchestrator.toml" (
    lib.recursiveUpdate {
      host = cfg.listenAddress;
      inherit (cfg) port;
      idle_exit = cfg.idleExit;
      max_concurrent = cfg.maxConcurrent;
      default_route = "qwen";
      backends = [
        (
          {
            name = "vps";
            url = cfg.upstream;
            tokenize = true;
          }
          // lib.optionalAttrs (cfg.upstreamApiKeyFile != null) {
            api_key_file = "${credentials}/upstream-key";
          }
        )
      ];
      routes = [
        {
          name = "qwen";
          model = cfg.routes.qwen;
          backends = [ "vps" ];
          languages = [
            "python"
            "javascript"
            "typescript"
          ];
          n_ctx = cfg.routeContext;
          chat = true;
          tokenizer = "qwen2"; # token-estimate family for budgeting (pipeline.TOKEN_ESTIMATES)
        }
        {
          name = "codellama";
          model = cfg.routes.codellama;
          backends = [ "vps" ];
          languages = [
            "rust"
            "c"
            "cpp"
          ];
          n_ctx = cfg.routeContext;
        }
      ];
    } cfg.settings
  );

  socketService = import ./socket-service.nix lib;
in
{
  options.services.cerebrum-orchestrator = {
    enable = mkEnableOption "the Cerebrum orchestrator (context pipeline, routing, failover)";

    package = mkOption {
      type = types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      defaultText = lib.literalExpression "cerebrum.packages.\${system}.default";
      description = "The Cerebrum build (without llama.cpp; the orchestrator does not need it).";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Address the socket unit listens on; non-loopback needs `apiKeyFile`.";
    };

    port = mkOption {
      type = types.port;
      default = 7000;
      description = "TCP port of the socket unit.";
    };

    idleExit = mkOption {
      type = types.ints.unsigned;
      default = 0;
      description = ''
        `--idle-exit` in seconds; 0 keeps it running once started (it holds no model, about
        45 MB resident, and keeps its breaker state and metrics between requests).
      '';
    };

    maxConcurrent = mkOption {
      type = types.ints.positive;
      default = 2;
      description = "Completion requests in flight before it sheds with 503 + Retry-After.";
    };

    upstream = mkOption {
      type = types.str;
      default = "http://vps:9000";
      example = "http://vps.tail1234.ts.net:9000";
      description = ''
        The backend's URL: by default the VPS by its tailnet (MagicDNS) name `vps`, port 9000.
      '';
    };

    upstreamApiKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        File holding the key sent to the backend as `Authorization: Bearer` (through
        `LoadCredential`, credential `upstream-key`).
      '';
    };

    routes = {
      qwen = mkOption {
        type = types.str;
        default = "qwen2.5-coder-7b-instruct";
        description = "Backend model of the `qwen` route (Python, JavaScript, TypeScript).";
      };
      codellama = mkOption {
        type = types.str;
        default = "codellama-7b-instruct";
        description = "Backend model of the `codellama` route (Rust, C, C++).";
      };
    };

    routeContext = mkOption {
      type = types.ints.positive;
      default = 8192;
      description = "`n_ctx` of both routes; must not exceed the backend models' nCtx.";
    };

    apiKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        Keys clients must send, one per line; through `LoadCredential` and
        `CEREBRUM_ORCHESTRATOR_API_KEYS_FILE`.
      '';
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      example = {
        timeouts.first_token = 180;
        pipeline.top_k = 4;
      };
      description = "Further TOML config (docs/configuration.md, \"Orchestrator configuration\"); it wins.";
    };

    openTailnetFirewall = mkOption {
      type = types.bool;
      default = true;
      description = "Open `port` on `tailnetInterface` only.";
    };

    tailnetInterface = mkOption {
      type = types.str;
      default = config.services.tailscale.interfaceName;
      defaultText = lib.literalExpression "config.services.tailscale.interfaceName";
      description = "The tailnet's interface, the only one the port is opened on.";
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalMD "generated from the options above";
      description = "The generated TOML config (read-only; for inspection).";
    };
  };

  config = mkIf cfg.enable (socketService {
    name = "cerebrum-orchestrator";
    description = "Cerebrum orchestrator";
    inherit cfg configFile;
    keysVariable = "CEREBRUM_ORCHESTRATOR_API_KEYS_FILE";
    restartSec = 2;
    credentials = lib.optional (cfg.upstreamApiKeyFile != null) "upstream-key:${cfg.upstreamApiKeyFile}";
    # No llama.cpp here: CPython, uvloop and httptools map no writable-executable pages.
    serviceConfig.MemoryDenyWriteExecute = true;
  });
}
